"""LMArena's published human-preference releases (55k, 100k, 140k) as Parquet and JSONL."""

import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.importers.formats import parse
from arena.importers.formats.lmarena import answer_config, prompt_id
from arena.importers.records import (
    ImportRowError,
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
    judgment_maker,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "formats" / "lmarena"
RELEASES = ("55k", "100k", "140k")


def _split(records):
    records = list(records)
    prompts = [r for r in records if isinstance(r, PromptRecord)]
    outputs = [r for r in records if isinstance(r, OutputRecord)]
    judgments = [r for r in records if isinstance(r, JudgmentRecord)]
    return prompts, outputs, judgments


@pytest.mark.parametrize("release", RELEASES)
def test_parquet_and_jsonl_of_a_release_give_the_same_records(release):
    jsonl = list(parse("lmarena", SAMPLES / f"arena_{release}.jsonl"))
    parquet = list(parse("lmarena", SAMPLES / f"arena_{release}.parquet"))
    assert jsonl == parquet
    assert [r.line for r in _split(jsonl)[2]] == list(range(1, len(_split(jsonl)[2]) + 1))


def test_55k_rows_read_the_one_hot_winner_and_the_json_encoded_turns():
    prompts, outputs, judgments = _split(parse("lmarena", SAMPLES / "arena_55k.jsonl"))
    assert [(j.match_id, j.contestants, j.winner, j.verdict_label) for j in judgments] == [
        ("30192", ("gpt-4-1106-preview", "gpt-4-0613"), "a", "winner_model_a"),
        ("53567", ("koala-13b", "gpt-4-0613"), "a", "winner_model_a"),
        ("65089", ("gpt-3.5-turbo-0613", "mistral-medium"), "tie", "winner_tie"),
        ("96401", ("mistral-medium", "gpt-3.5-turbo-0613"), "b", "winner_model_b"),
    ]
    assert {j.voter for j in judgments} == {"lmarena:anonymous"}
    two_turns = prompts[0]
    assert two_turns.text.startswith("Is it morally right")
    assert two_turns.turns == ("What about quotas in general?",)
    assert judgments[0].turn == 2
    answer = {(o.prompt_id, o.contestant): o.text for o in outputs}
    assert answer[(two_turns.external_id, "gpt-4-1106-preview")] == (
        "It is a question of fairness and of results; views differ.\n\n"
        "Quotas trade one kind of fairness for another."
    )
    assert answer[(prompts[1].external_id, "gpt-4-0613")] == ""  # a null answer is empty
    assert all(j.category == "" and j.language == "" for j in judgments)  # 55k has no tags


def test_prompts_and_answers_are_deduplicated_by_content():
    prompts, outputs, judgments = _split(parse("lmarena", SAMPLES / "arena_55k.jsonl"))
    # rows 3 and 4 ask the same question: one prompt; mistral-medium gave the same answer twice
    assert len(prompts) == 3 and judgments[2].prompt_id == judgments[3].prompt_id
    assert len(outputs) == 7
    assert judgments[2].output_configs[1] == judgments[3].output_configs[0]
    # gpt-3.5 answered it twice, differently: two outputs, each battle's slot names its own
    gpt = [o for o in outputs if o.contestant == "gpt-3.5-turbo-0613"]
    assert len({o.generation_config for o in gpt}) == 2
    assert judgments[2].output_configs[0] != judgments[3].output_configs[1]
    for j in judgments:
        texts = {(o.prompt_id, o.contestant, o.generation_config): o.text for o in outputs}
        for name, config in zip(j.contestants, j.output_configs, strict=True):
            assert answer_config(texts[(j.prompt_id, name, config)]) == config
    # the ids are hashes of the content, stable across files and releases
    assert prompts[2].external_id == prompt_id(
        ["explain function calling. how would you call a function?"]
    )


def test_100k_tags_give_category_language_voter_style_and_ids():
    prompts, outputs, judgments = _split(parse("lmarena", SAMPLES / "arena_100k.jsonl"))
    assert [(j.winner, j.category, j.language, j.voter, j.turn) for j in judgments] == [
        ("b", "coding", "English", "lmarena:6d1a0c5e", 1),
        ("bothbad", "math", "English", "lmarena:a90b33f1", 2),
        ("a", "coding", "English", "lmarena:6d1a0c5e", 1),
        ("tie", "", "German", "lmarena:c3f0e9d2", 1),
    ]
    assert judgments[0].match_id == "58210e39b3fd4441a2bd4a518bb44c2d:1720000000.25"
    assert judgments[1].style[0] == {"tokens": 9.0, "headers": 0.0, "lists": 0.0, "bold": 1.0}
    assert judgments[0].meta["dedup_tag"] == {"high_freq": False, "sampled": True}
    assert (prompts[0].category, prompts[0].language) == ("coding", "English")
    # koala-13b gave the same answer in battles 1 and 3: stored once
    assert len(prompts) == 3 and len(outputs) == 7
    math = prompts[1]
    assert (math.text, math.turns) == ("What is 17 * 23?", ("And divided by 7?",))


def test_100k_filters_keep_anonymous_and_sampled_battles():
    path = SAMPLES / "arena_100k.parquet"
    anony = _split(parse("lmarena", path, anony_only=True))[2]
    sampled = _split(parse("lmarena", path, sampled_only=True))[2]
    assert len(anony) == 3 and len(sampled) == 3
    assert "e0b4d2c8f0d54f0f9bb1ad3c64c2a5a3:1720000200.0" not in {j.match_id for j in anony}


def test_140k_reads_typed_content_parts_and_both_bad():
    prompts, outputs, judgments = _split(parse("lmarena", SAMPLES / "arena_140k.parquet"))
    assert [(j.winner, j.verdict_label, j.category, j.language) for j in judgments] == [
        ("a", "model_a", "creative_writing", "en"),
        ("bothbad", "both_bad", "instruction_following", "en"),
        ("b", "model_b", "creative_writing", "en"),
    ]
    assert judgments[0].match_id == "0199a3c1-4b5e-7f00-9a1b-2c3d4e5f6a01"
    assert prompts[0].text == "Write a haiku about the sea, in lowercase."
    assert len(prompts) == 2 and len(outputs) == 5  # gemini's haiku twice: one output
    assert judgments[0].meta["evaluation_session_id"].startswith("0199a3c1")


def _write(tmp_path, rows, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row55(**changes):
    row = json.loads((SAMPLES / "arena_55k.jsonl").read_text().splitlines()[0])
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"winner_tie": 1}, "winner_model_a", "exactly one"),
        ({"winner_model_b": 2}, "winner_model_b", "expected 0 or 1"),
        ({"prompt": "not json"}, "prompt", "JSON-encoded list"),
        ({"response_a": json.dumps([1])}, "response_a", "list of strings"),
        ({"model_b": "gpt-4-1106-preview"}, "model_b", "cannot battle itself"),
        ({"id": None}, "id", "expected an id"),
        ({"prompt": json.dumps(["a\u0000b"])}, "prompt", "NUL"),
    ],
)
def test_a_bad_55k_row_names_its_line_and_field(tmp_path, changes, field, message):
    path = _write(tmp_path, [_row55(), _row55(**{"id": 2, **changes})])
    with pytest.raises(ImportRowError) as err:
        list(parse("lmarena", path))
    assert (err.value.line, err.value.field) == (2, field)
    assert message in err.value.message


def test_a_bad_conversation_row_names_its_field(tmp_path):
    row = json.loads((SAMPLES / "arena_140k.jsonl").read_text().splitlines()[0])
    bad = {**row, "id": "x", "conversation_b": [{"role": "assistant", "content": [{"x": 1}]}]}
    with pytest.raises(ImportRowError) as err:
        list(parse("lmarena", _write(tmp_path, [row, bad])))
    assert (err.value.line, err.value.field) == (2, "conversation_b")
    with pytest.raises(ImportRowError, match="winner: expected one of"):
        list(parse("lmarena", _write(tmp_path, [{**row, "winner": "model_c"}])))


def test_a_broken_parquet_file_is_an_error_of_the_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(ImportRowError) as err:
        list(parse("lmarena", path))
    assert (err.value.line, err.value.field) == (0, "parquet")


PROMPTS = ["hi", "What is 2+2?", "Name a colour.", "hi "]
ANSWERS = ["Hello!", "4", "Blue.", "", "hello!"]
MODELS = ["m1", "m2", "m3"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(PROMPTS), min_size=1, max_size=2),
            st.sampled_from(ANSWERS),
            st.sampled_from(ANSWERS),
            st.permutations(MODELS).map(lambda p: p[:2]),
            st.sampled_from(["model_a", "model_b", "tie", "both_bad"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_dedup_keeps_one_prompt_per_conversation_and_one_output_per_answer(battles):
    rows = []
    for k, (users, answer_a, answer_b, (model_a, model_b), winner) in enumerate(battles):

        def conversation(answer, users=users):
            return [
                m
                for u in users
                for m in ({"role": "user", "content": u}, {"role": "assistant", "content": answer})
            ]

        rows.append({"id": f"v{k}", "model_a": model_a, "model_b": model_b, "winner": winner,
                     "conversation_a": conversation(answer_a),
                     "conversation_b": conversation(answer_b)})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        prompts, outputs, judgments = _split(parse("lmarena", path))
    assert len(judgments) == len(battles)
    assert len(prompts) == len({tuple(users) for users, *_ in battles})
    answers = {
        (tuple(users), model, "\n\n".join([answer] * len(users)))
        for users, answer_a, answer_b, models, _ in battles
        for model, answer in zip(models, (answer_a, answer_b), strict=True)
    }
    assert len(outputs) == len(answers)
    texts = {(o.prompt_id, o.contestant, o.generation_config): o.text for o in outputs}
    for j, (users, answer_a, answer_b, _, _) in zip(judgments, battles, strict=True):
        for name, config, answer in zip(
            j.contestants, j.output_configs, (answer_a, answer_b), strict=True
        ):
            assert texts[(j.prompt_id, name, config)] == "\n\n".join([answer] * len(users))


def test_judgment_maker_makes_the_records_the_dataclass_makes():
    names = ("match_id", "contestants", "winner", "output_configs", "weight")
    values = ("m1", ("x", "y"), "tie", ("text:1", "text:2"), 3)
    made = judgment_maker(names)(values)
    assert made == JudgmentRecord(**dict(zip(names, values, strict=True)))
    assert vars(made) == vars(JudgmentRecord(**dict(zip(names, values, strict=True))))
    assert made.meta == {} and made.meta is not judgment_maker(names)(values).meta
    with pytest.raises(ValueError, match="2 values for 5 fields"):
        judgment_maker(names)(values[:2])
    with pytest.raises(TypeError, match="no field nope"):
        judgment_maker(("nope",))
    with pytest.raises(TypeError, match="needs contestants"):
        judgment_maker(("match_id",))
