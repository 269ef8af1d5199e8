"""FastChat / LMArena battle logs: ids, conversations, style features, filters, errors, round trip."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from arena.importers.formats import export, fastchat, parse
from arena.importers.records import (
    ImportRowError,
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
    VoteColumns,
)

SMALL = Path(__file__).resolve().parents[2] / "tests" / "data" / "formats"
BATTLES = SMALL / "fastchat_battles.jsonl"


def _rows():
    return [json.loads(line) for line in BATTLES.read_text().splitlines()]


def _judgments(records):
    return [r for r in records if isinstance(r, JudgmentRecord)]


def test_battles_map_to_slots_voters_and_ids():
    js = _judgments(parse("fastchat", BATTLES))
    assert [(r.contestants, r.winner, r.verdict_label) for r in js] == [
        (("gpt-4o-2024-05-13", "llama-3-70b-instruct"), "b", "model_b"),
        (("gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620"), "tie", "tie"),
        (("vicuna-13b", "koala-13b"), "a", "model_a"),
        (("vicuna-13b", "koala-13b"), "a", "model_a"),
        (("koala-13b", "vicuna-13b"), "bothbad", "tie (bothbad)"),
    ]
    assert [r.voter for r in js] == [
        "fastchat:arena_user_8f3a",
        "fastchat:arena_user_77aa",
        "fastchat:arena_user_3",
        "fastchat:arena_user_3",
        "fastchat:anonymous",
    ]
    # conversation id + timestamp name the vote; identical id-less rows stay two battles
    assert js[0].match_id == "5f0c2b6e9a8d4c31:1718000000.25"
    assert js[3].match_id == js[2].match_id + "#2"
    assert len({r.match_id for r in js}) == 5
    assert [r.match_id for r in _judgments(parse("fastchat", BATTLES))] == [
        r.match_id for r in js
    ]  # stable across re-reads
    assert [r.line for r in js] == [1, 2, 3, 4, 5] and js[0].turn == 2


def test_no_id_is_given_twice_in_a_file_even_to_a_battle_named_like_a_numbered_one(tmp_path):
    row = {"model_a": "m1", "model_b": "m2", "winner": "model_a"}  # no tstamp: id = name
    path = tmp_path / "log.jsonl"
    names = ["x", "x#2", "x", "x", "x#3#2", "x#3"]
    path.write_text("".join(json.dumps({**row, "question_id": q}) + "\n" for q in names))
    ids = [r.match_id for r in _judgments(parse("fastchat", path))]
    assert len(set(ids)) == len(ids) == 6
    # a repeat takes the next number not given; the named ones keep their names
    assert ids == ["x", "x#2", "x#3", "x#4", "x#3#2", "x#3#3"]
    assert [r.match_id for r in _judgments(parse("fastchat", path))] == ids  # stable


def test_conversations_give_the_prompt_its_later_turns_and_both_answers():
    records = list(parse("fastchat", BATTLES))
    prompts = [r for r in records if isinstance(r, PromptRecord)]
    outputs = {(r.prompt_id, r.contestant): r.text for r in records if isinstance(r, OutputRecord)}
    first = prompts[0]
    assert first.text == "Give me a word that rhymes with orange."
    assert first.turns == ("Use it in a sentence.",)
    assert outputs[(first.external_id, "gpt-4o-2024-05-13")] == (
        "Nothing rhymes perfectly; **sporange** comes close.\n\n"
        "- A fern's *sporange* releases spores."
    )
    vision = prompts[1]  # content [text, [images]]: the text is the prompt
    assert vision.text == "What is in this image?"
    assert len(prompts) == 2  # rows without conversations have no prompt
    assert _judgments(records)[2].prompt_id is None


def _fastchat_markdown_counts(answer: str) -> dict:
    """FastChat's add_markdown_info.count_markdown_elements, totals per feature."""
    answer = re.sub(r"```([^`]*)```", "", answer)
    headers = sum(len(re.findall(rf"^#{{{n}}}\s", answer, re.MULTILINE)) for n in range(1, 7))
    lists = len(re.findall(r"^\s*\d+\.\s", answer, re.MULTILINE)) + len(
        re.findall(r"^\s*[-*+]\s", answer, re.MULTILINE)
    )
    bold = len(re.findall(r"\*\*[^*\n]+\*\*", answer)) + len(re.findall(r"__[^_\n]+__", answer))
    return {"headers": headers, "lists": lists, "bold": bold}


def test_style_features_are_fastchats_conv_metadata_totals():
    row = _rows()[0]
    style = _judgments(parse("fastchat", BATTLES))[0].style
    for side, features in zip("ab", style, strict=True):
        meta = row["conv_metadata"]
        # FastChat's style control: an int as is, a dict by the sum of its values
        assert features["tokens"] == meta[f"sum_assistant_{side}_tokens"]
        assert features["headers"] == sum(meta[f"header_count_{side}"].values())
        # and the fixture's counts are what FastChat's own regexes find in the answers
        answers = "\n".join(
            m["content"] for m in row[f"conversation_{side}"] if m["role"] == "assistant"
        )
        assert {k: features[k] for k in ("headers", "lists", "bold")} == (
            _fastchat_markdown_counts(answers)
        )
    assert style[1] == {"tokens": 25.0, "headers": 1.0, "lists": 2.0, "bold": 1.0}


def test_the_leaderboard_filters_keep_anonymous_sampled_battles():
    everything = _judgments(parse("fastchat", BATTLES))
    anony = _judgments(parse("fastchat", BATTLES, anony_only=True))
    sampled = _judgments(parse("fastchat", BATTLES, anony_only=True, sampled_only=True))
    assert [r.line for r in anony] == [1, 2, 5]
    assert [r.line for r in sampled] == [1, 5]
    assert [r.match_id for r in sampled] == [everything[0].match_id, everything[4].match_id]
    assert everything[0].meta["dedup_tag"] == {"high_freq": False, "sampled": True}


# --- errors ---------------------------------------------------------------------------------


def _error(tmp_path, rows) -> ImportRowError:
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ImportRowError) as exc:
        list(parse("fastchat", path))
    assert exc.value.path == str(path)
    return exc.value


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(winner="model_c"), "winner"),
        (lambda r: r.pop("model_a"), "model_a"),
        (lambda r: r.update(model_b=r["model_a"]), "model_b"),
        (lambda r: r.update(turn="2"), "turn"),
        (lambda r: r.update(judge=7), "judge"),
        (
            lambda r: r["conv_metadata"].update(bold_count_b={"**": "many"}),
            "conv_metadata.bold_count_b",
        ),
        (lambda r: r.update(conv_metadata=[1, 2]), "conv_metadata"),
        (lambda r: r.update(conversation_b=None), "conversation_b"),
        (
            lambda r: r.update(conversation_a=[{"role": "assistant", "content": "hi"}]),
            "conversation_a",
        ),
    ],
)
def test_a_broken_row_names_its_line_and_field(tmp_path, change, field):
    rows = _rows()
    change(rows[0])
    err = _error(tmp_path, [_rows()[2], rows[0]])
    assert (err.line, err.field) == (2, field)


def test_the_winner_error_lists_the_choices(tmp_path):
    rows = _rows()
    rows[4]["winner"] = "foo"
    err = _error(tmp_path, rows)
    assert (err.line, err.field) == (5, "winner")
    assert err.message == "expected one of model_a, model_b, tie, tie (bothbad); got 'foo'"


def test_a_json_list_reports_the_line_its_item_starts_on(tmp_path):
    rows = _rows()
    rows[3]["winner"] = None
    path = tmp_path / "battles.json"
    path.write_text(json.dumps(rows, indent=2))
    with pytest.raises(ImportRowError) as exc:
        list(parse("fastchat", path))
    starts = [n for n, line in enumerate(path.read_text().splitlines(), 1) if line == "  {"]
    assert (exc.value.line, exc.value.field) == (starts[3], "winner")


# --- round trip -----------------------------------------------------------------------------


def test_export_then_parse_keeps_votes_style_prompts_and_answers(tmp_path):
    records = list(parse("fastchat", BATTLES))
    path = tmp_path / "again.jsonl"
    with path.open("w") as f:
        export("fastchat", records, f)
    again = list(parse("fastchat", path))

    def votes(rs):
        return Counter(
            (r.contestants, r.winner, r.voter, r.turn, json.dumps(r.style)) for r in _judgments(rs)
        )

    assert votes(again) == votes(records)
    answers = Counter((r.contestant, r.text) for r in records if isinstance(r, OutputRecord))
    assert Counter((r.contestant, r.text) for r in again if isinstance(r, OutputRecord)) == answers
    assert [r.meta.get("tstamp") for r in _judgments(again)] == [
        r.meta.get("tstamp") for r in _judgments(records)
    ]


# --- the loader's batches: votes as columns --------------------------------------------------


def _stored_fields(records):
    """What the loader stores of each record (a judgment's meta, turn and style it does not)."""
    out = []
    for r in records:
        if isinstance(r, JudgmentRecord):
            out.append(
                (r.line, r.match_id, r.contestants, r.winner, r.voter, r.judge, r.prompt_id,
                 r.category, r.language, r.verdict_label, r.presentation, r.repeat, r.weight)
            )  # fmt: skip
        else:
            out.append(r)
    return out


def _from_batches(path, size, **options):
    out, kinds = [], []
    for batch in fastchat.batches(path, size=size, **options):
        kinds.append(type(batch).__name__)
        out.extend(batch.records() if isinstance(batch, VoteColumns) else batch)
    return out, kinds


@pytest.mark.parametrize("options", [{}, {"anony_only": True}, {"sampled_only": True}])
def test_batches_give_the_votes_of_parse_columns_for_lines_without_a_conversation(
    tmp_path, options
):
    plain = [{k: v for k, v in r.items() if not k.startswith("conversation")} for r in _rows()]
    no_id = {"model_a": "m-1", "model_b": "m-2", "winner": "tie", "category": "code"}
    rows = [*plain, *_rows()[:2], *plain, no_id, no_id, {**no_id, "judge": "x", "turn": 3}]
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records, kinds = _from_batches(path, 3, **options)
    assert _stored_fields(records) == _stored_fields(parse("fastchat", path, **options))
    if not options:
        assert kinds[:5] == ["VoteColumns", "VoteColumns", "list", "list", "VoteColumns"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(winner="model_c"), "winner"),
        (lambda r: r.update(model_b=r["model_a"]), "model_b"),
        (lambda r: r.update(turn=-1), "turn"),
        (lambda r: r.update(language=["en"]), "language"),
    ],
)
def test_batches_raise_the_error_of_parse_on_a_line_like_an_earlier_one(tmp_path, change, field):
    rows = [{k: v for k, v in r.items() if not k.startswith("conversation")} for r in _rows()]
    broken = dict(rows[2])
    change(broken)
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, broken]))
    with pytest.raises(ImportRowError) as exc:
        list(fastchat.batches(path, size=2))
    assert (exc.value.line, exc.value.field) == (6, field)
    with pytest.raises(ImportRowError) as same:
        list(parse("fastchat", path))
    assert str(exc.value) == str(same.value)
