"""Arena's own JSONL: the documented examples parse, every record field survives a round trip,
and each kind of mistake names its line and field."""

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.importers.formats import export, parse
from arena.importers.records import (
    WINNERS,
    ImportRowError,
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
    RubricRecord,
    VoterRecord,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "formats.md"


def _write(tmp_path, lines, name="arena.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return path


def test_the_documented_example_parses(tmp_path):
    block = re.search(r"Example:\n\n```\n(.*?)```", DOCS.read_text(), re.S).group(1)
    records = list(parse("jsonl", _write(tmp_path, block.strip().splitlines())))
    kinds = [type(r).__name__ for r in records]
    assert (
        kinds == ["PromptRecord"] + ["OutputRecord"] * 2 + ["RubricRecord"] + ["JudgmentRecord"] * 4
    )
    assert records[-1].ranking == (1, 2, 2) and records[-1].kind == "ranking"
    assert records[6].presentation == (1, 0) and records[5].strength == 2
    assert [c["name"] for c in records[3].criteria] == ["correctness", "style"]
    assert records[5].criteria == {"correctness": "a", "style": "tie"}


def test_every_documented_judgment_field_is_read():
    table = DOCS.read_text().split('### `"type": "judgment"`')[1].split("Example:")[0]
    documented = set()
    for cell in re.findall(r"^\| ([^|]+) \|", table, re.M):
        documented.update(re.findall(r"`(\w+)`", cell))
    written = set()
    record = JudgmentRecord(
        match_id="m",
        contestants=("x", "y"),
        winner="a",
        voter="v",
        prompt_id="p",
        category="c",
        language="en",
        turn=2,
        raw_text="r",
        verdict_label="A>B",
        gold_winner="a",
        style=({"tokens": 1}, {"tokens": 2}),
        criteria={"correctness": "a"},
        probabilities={"winner": {"a": 0.9, "b": 0.1}},
        error="e",
        meta={"k": 1},
        preference=1.2,
        strength=2,
        repeat=1,
        weight=3,
        presentation=(1, 0),
    )

    class Sink:
        def write(self, text):
            written.update(json.loads(text))

    export("jsonl", [record], Sink())
    # every field we write is documented (judge and voter are one row of the table)
    assert written - {"type"} <= documented


def _records():
    # no lone surrogates, no NUL: files holding them are refused (test_unstorable_text_...)
    text = st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
    )
    name = st.text("abcdefghij-.:", min_size=1, max_size=8)
    prompt = st.builds(
        PromptRecord,
        external_id=name,
        text=text.filter(lambda t: t.strip() != ""),
        category=text,
        language=text,
        reference_answer=text,
        turns=st.lists(text, max_size=2).map(tuple),
    )
    output = st.builds(
        OutputRecord, prompt_id=name, contestant=name, text=text, generation_config=text
    )
    criterion = st.fixed_dictionaries(
        {"name": st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)},
        optional={
            "weight": st.integers(1, 5) | st.floats(0.5, 100),
            "description": text,
            "levels": st.lists(text.filter(str.strip), min_size=2, max_size=4),
        },
    ).filter(lambda c: "levels" in c)
    rubric = st.builds(
        RubricRecord,
        criteria=st.lists(criterion, min_size=1, max_size=3, unique_by=lambda c: c["name"]).map(
            tuple
        ),
        prompt_id=st.none() | name,
        source=text,
    )

    @st.composite
    def judgment(draw):
        k = draw(st.integers(2, 4))
        contestants = tuple(draw(st.lists(name, min_size=k, max_size=k, unique=True)))
        kind = (
            "pairwise"
            if k == 2 and draw(st.booleans())
            else draw(st.sampled_from(["ranking", "score"]))
        )
        who = draw(st.sampled_from(["voter", "judge"]))
        order = draw(st.permutations(range(k)))
        extra = {}
        if kind == "pairwise":
            extra["winner"] = draw(st.none() | st.sampled_from(WINNERS))
            extra["preference"] = draw(st.none() | st.floats(1, 2))
            extra["strength"] = draw(st.sampled_from([1, 2]))
            verdicts = st.sampled_from(WINNERS)
        elif kind == "ranking":
            extra["ranking"] = draw(
                st.none() | st.lists(st.integers(1, k), min_size=k, max_size=k).map(tuple)
            )
            verdicts = None  # a ranking takes no criteria
        else:
            extra["score"] = draw(st.none() | st.floats(0, 10))
            verdicts = st.integers(0, 4) | st.floats(0, 1)  # levels
        if verdicts is not None:
            criterion = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)
            extra["criteria"] = draw(st.none() | st.dictionaries(criterion, verdicts, min_size=1))
        if all(extra.get(v) is None for v in ("winner", "ranking", "score")):  # no verdict
            extra["status"] = draw(st.sampled_from(["", "failed", "parse_failed"]))
        numbers = st.dictionaries(name, st.floats(0, 1), max_size=3)
        features = st.fixed_dictionaries({"tokens": st.integers(0, 9), "bold": st.floats(0, 3)})
        return JudgmentRecord(
            match_id=draw(name),
            contestants=contestants,
            kind=kind,
            presentation=tuple(order),
            repeat=draw(st.integers(0, 3)),
            weight=draw(st.integers(1, 50)),
            prompt_id=draw(st.none() | name),
            category=draw(text),
            language=draw(text),
            turn=draw(st.integers(1, 3)),
            raw_text=draw(text),
            verdict_label=draw(text),
            gold_winner=draw(st.none() | st.sampled_from(WINNERS)),
            style=draw(st.none() | st.lists(features, min_size=k, max_size=k).map(tuple)),
            meta=draw(st.dictionaries(name, st.integers() | text, max_size=2)),
            probabilities=draw(st.none() | st.dictionaries(name, st.floats(0, 1) | numbers)),
            error=draw(text),
            **{who: draw(name)},
            **extra,
        )

    voter = st.builds(VoterRecord, label=name, flagged=st.booleans(), reason=text)
    return st.lists(st.one_of(prompt, output, rubric, voter, judgment()), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(records=_records())
def test_any_records_survive_export_and_parse(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("rt") / "records.jsonl"
    with path.open("w") as f:
        export("jsonl", records, f)
    again = list(parse("jsonl", path))
    assert [_fields(r) for r in again] == [_fields(r) for r in records]


def _fields(r):
    values = {k: v for k, v in vars(r).items() if k != "line"}
    return type(r).__name__, values


# --- errors ---------------------------------------------------------------------------------

GOOD = {"type": "judgment", "match": "m1", "contestants": ["x", "y"], "winner": "a", "voter": "v"}


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({**GOOD, "type": "vote"}, "type"),
        ({**GOOD, "winner": "A"}, "winner"),
        ({**GOOD, "contestants": ["x", "x"]}, "contestants"),
        ({**GOOD, "contestants": ["x", "y", "z"], "kind": "pairwise"}, "contestants"),
        ({**GOOD, "judge": "j"}, "voter"),
        ({k: v for k, v in GOOD.items() if k != "voter"}, "voter"),
        ({**GOOD, "order": [1, 1]}, "order"),
        ({**GOOD, "order": ["1", 0]}, "order"),
        ({**GOOD, "strength": 3}, "strength"),
        ({**GOOD, "weight": 0}, "weight"),
        ({**GOOD, "preference": 2.5}, "preference"),
        ({**GOOD, "style": [{"tokens": 1}]}, "style"),
        ({**GOOD, "style": [{"tokens": -1}, {"tokens": 1}]}, "style"),
        ({**GOOD, "meta": [1]}, "meta"),
        ({**GOOD, "criteria": ["correctness"]}, "criteria"),
        ({**GOOD, "criteria": {"correctness": "A"}}, "criteria"),
        ({**GOOD, "criteria": {"": "a"}}, "criteria"),
        ({**GOOD, "criteria": {"Correctness": "a"}}, "criteria"),
        ({**GOOD, "kind": "score", "score": 7, "criteria": {"correctness": "a"}}, "criteria"),
        ({**GOOD, "kind": "score", "score": 7, "criteria": {"correctness": True}}, "criteria"),
        (
            {**GOOD, "contestants": ["x", "y", "z"], "ranking": [1, 2, 3], "criteria": {"c": "a"}},
            "criteria",
        ),
        ({**GOOD, "probabilities": 0.9}, "probabilities"),
        ({**GOOD, "status": "failed"}, "status"),
        ({**GOOD, "status": "done"}, "status"),
        ({k: v for k, v in GOOD.items() if k != "winner"} | {"status": "ok"}, "status"),
        ({"type": "rubric"}, "criteria"),
        ({"type": "voter", "flagged": True}, "label"),
        ({"type": "voter", "label": "v", "flagged": "yes"}, "flagged"),
        ({"type": "rubric", "criteria": [{"name": "c", "levels": ["one"]}]}, "criteria"),
        ({"type": "rubric", "criteria": [{"name": "C", "levels": ["lo", "hi"]}]}, "criteria"),
        (
            {"type": "rubric", "criteria": [{"name": "c", "levels": ["lo", "hi"]}], "prompt": 1},
            "prompt",
        ),
        ({**GOOD, "turn": 0}, "turn"),
        ({**GOOD, "contestants": ["x", "y", "z"], "ranking": [1, 2, 4]}, "ranking"),
        ({"type": "output", "prompt": "p", "contestant": "x"}, "text"),
        ({"type": "prompt", "id": "p", "text": "  "}, "text"),
        ([GOOD], "item"),
        ("{not json", "json"),
    ],
)
def test_a_bad_line_names_its_line_and_field(tmp_path, line, field):
    path = _write(tmp_path, [GOOD, "", line, GOOD])
    with pytest.raises(ImportRowError) as exc:
        list(parse("jsonl", path))
    assert (exc.value.path, exc.value.line, exc.value.field) == (str(path), 3, field)
    assert str(exc.value).startswith(f"{path}:3: {field}: ")


def test_an_output_may_be_empty_and_still_round_trips(tmp_path):
    path = _write(
        tmp_path,
        [
            {"type": "prompt", "id": "p", "text": "Say nothing."},
            {"type": "output", "prompt": "p", "contestant": "x", "text": ""},
        ],
    )
    records = list(parse("jsonl", path))
    again = tmp_path / "again.jsonl"
    with again.open("w") as f:
        export("jsonl", records, f)
    assert [r.text for r in parse("jsonl", again)] == ["Say nothing.", ""]
