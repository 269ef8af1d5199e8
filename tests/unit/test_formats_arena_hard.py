"""Arena-Hard-Auto judgments (v0.1 and v2.0): slots, orders, prompts, repeats, errors, round trip.

The side checks restate Arena-Hard's own reading of a line (``show_result.py``, v2.0):
the model's score list is ``label_to_score[game2] + [1 - s for s in label_to_score[game1]]``
with A>B -> 1, A=B -> 0.5, B>A -> 0 (x3 for the strong labels), i.e. game 1 has the
baseline as answer A. Our slot winners must give the same scores.
"""

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from arena.importers.formats import export, parse
from arena.importers.formats.arena_hard import fill_template, split_template
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord

SMALL = Path(__file__).resolve().parents[2] / "tests" / "data" / "formats"
V01 = SMALL / "arena_hard_v01.jsonl"
V2 = SMALL / "arena_hard_v2.jsonl"

# show_result.py (arena-hard-auto v2.0), weight 3 for the strong labels
LABEL_TO_SCORE = {
    "A>B": [1],
    "A>>B": [1] * 3,
    "A=B": [0.5],
    "A<<B": [0] * 3,
    "A<B": [0],
    "B>A": [0],
    "B>>A": [0] * 3,
    "B=A": [0.5],
    "B<<A": [1] * 3,
    "B<A": [1],
}


def _by_type(records):
    out = {PromptRecord: [], OutputRecord: [], JudgmentRecord: []}
    for r in records:
        out[type(r)].append(r)
    return out[PromptRecord], out[OutputRecord], out[JudgmentRecord]


def _model_scores(judgments) -> list[float]:
    """The model's (slot a's) score per game, strong verdicts counted 3 times as upstream."""
    scores = []
    for r in judgments:
        value = {"a": 1.0, "b": 0.0, "tie": 0.5}[r.winner]
        scores += [value] * (3 if r.strength == 2 else 1)
    return scores


@pytest.mark.parametrize("path", [V01, V2], ids=["v0.1", "v2.0"])
def test_slot_winners_give_arena_hards_own_scores(path):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    judgments = _by_type(parse("arena-hard", path))[2]
    for number, line in enumerate(lines, start=1):
        games = [g for g in line["games"]]
        if any(g is None or g["score"] is None for g in games):
            continue  # show_result.py drops lines with a null game
        expected = LABEL_TO_SCORE[games[1]["score"]] + [
            1 - s for s in LABEL_TO_SCORE[games[0]["score"]]
        ]
        game1, game2 = [r for r in judgments if r.line == number]  # in the file's game order
        assert _model_scores([game2]) + _model_scores([game1]) == expected


def test_v01_prompt_and_both_answers_come_from_the_judge_template():
    prompts, outputs, judgments = _by_type(parse("arena-hard", V01))
    assert [p.text for p in prompts] == [
        "Write a haiku about autumn leaves.",
        "What does `git rebase -i HEAD~3` do?",
    ]
    first = json.loads(V01.read_text().splitlines()[0])["games"][0]["user_prompt"]
    _, baseline_answer, model_answer = split_template(first)
    by_name = {(o.prompt_id, o.contestant): o.text for o in outputs}
    assert by_name[("328c149ed45a41c0", "gpt-4-0314")] == baseline_answer
    assert by_name[("328c149ed45a41c0", "llama-3-8b-instruct")] == model_answer
    assert len(outputs) == 4  # the repeated line adds no answers
    assert all(r.prompt_id == r.match_id.split("|")[0] for r in judgments)


def test_games_orders_strengths_repeats_and_a_null_score():
    js = _by_type(parse("arena-hard", V01))[2]
    assert all(r.contestants == ("llama-3-8b-instruct", "gpt-4-0314") for r in js)
    assert [r.presentation for r in js] == [(1, 0), (0, 1)] * 3
    # game 1 "A>>B": A is the baseline, so the baseline (slot b) wins strongly
    assert (js[0].winner, js[0].strength, js[0].verdict_label) == ("b", 2, "A>>B")
    # game 2 "B>A": B is the baseline again
    assert (js[1].winner, js[1].strength) == ("b", 1)
    assert (js[2].winner, js[3].winner) == ("tie", "a")
    # the same question, model and judge again: a repeat, not a duplicate
    assert [r.repeat for r in js] == [0, 0, 0, 0, 1, 1]
    assert js[4].winner is None and js[4].verdict_label == "" and "hard to say" in js[4].raw_text
    assert len({r.match_id for r in js}) == 2 and js[0].judge == "gpt-4-1106-preview"


def test_v2_lines_name_their_own_baseline_and_category():
    prompts, outputs, js = _by_type(parse("arena-hard", V2, baseline="ignored-for-v2"))
    assert [r.contestants for r in js] == [("deepseek-r1", "o3-mini-2025-01-31")] * 2 + [
        ("deepseek-r1", "gemini-2.0-flash-001")
    ] * 2
    assert [p.category for p in prompts] == ["hard_prompt", "creative_writing"]
    assert {r.category for r in js} == {"hard_prompt", "creative_writing"}
    # "A<B" in game 1: the baseline (A) loses; "B=A" is a tie
    assert (js[0].winner, js[1].winner) == ("a", "tie")
    # a null game (the judge call failed) is kept as a verdict-less judgment
    assert (js[2].winner, js[2].presentation, js[2].raw_text) == (None, (1, 0), "")
    assert (js[3].winner, js[3].strength) == ("b", 2)
    assert js[0].raw_text.startswith("Both proofs")  # v2 stores {"answer": ...}
    # game 2 alone still gives both answers, the other way round
    texts = {o.contestant: o.text for o in outputs if o.prompt_id == "77d1c0a3b9e24f60"}
    assert texts == {
        "gemini-2.0-flash-001": "The sea keeps every secret we have lost,\n"
        "and hums them back at night, whatever the cost.",
        "deepseek-r1": "Waves.",
    }


def test_the_baseline_option_names_the_other_slot_of_v01_files():
    js = _by_type(parse("arena-hard", V01, baseline="gpt-4o-2024-05-13"))[2]
    assert {r.contestants for r in js} == {("llama-3-8b-instruct", "gpt-4o-2024-05-13")}


def test_a_plain_user_prompt_is_the_question():
    js = list(parse("arena-hard", SMALL / "arena_hard_judgments.jsonl"))
    assert [r.text for r in js if isinstance(r, PromptRecord)][0] == "Write a haiku about autumn."
    assert not any(isinstance(r, OutputRecord) for r in js)


def test_the_template_splits_back_into_its_parts():
    text = fill_template("Q?\n\nwith a blank line", "answer A", "answer\nB")
    assert split_template(text) == ("Q?\n\nwith a blank line", "answer A", "answer\nB")
    assert split_template("just a question") is None


# --- errors ---------------------------------------------------------------------------------


def _error(tmp_path, lines) -> ImportRowError:
    path = tmp_path / "judgments.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with pytest.raises(ImportRowError) as exc:
        list(parse("arena-hard", path))
    assert exc.value.path == str(path)
    return exc.value


def _line(**changes):
    line = json.loads(V01.read_text().splitlines()[1])
    line.update(changes)
    return line


def test_a_bad_score_names_its_game(tmp_path):
    bad = _line()
    bad["games"][1]["score"] = "A>>>B"
    err = _error(tmp_path, [_line(), bad])
    assert (err.line, err.field) == (2, "games[1].score") and "'A>>>B'" in err.message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"question_id": None}, "question_id"),
        ({"question_id": ["x"]}, "question_id"),
        ({"model": "gpt-4-0314"}, "model"),
        ({"judge": ""}, "judge"),
        ({"games": [{"score": "A>B"}]}, "games"),
        ({"games": ["A>B", "B>A"]}, "games[0]"),
    ],
)
def test_broken_lines(tmp_path, changes, field):
    err = _error(tmp_path, [_line(), _line(), _line(**changes)])
    assert (err.line, err.field) == (3, field)


# --- round trip -----------------------------------------------------------------------------


def test_export_then_parse_keeps_votes_orders_repeats_prompts_and_answers(tmp_path):
    records = list(parse("arena-hard", V01))
    path = tmp_path / "again.jsonl"
    with path.open("w") as f:
        export("arena-hard", records, f)
    again = list(parse("arena-hard", path))

    def judged(rs):
        return Counter(
            (r.match_id, r.winner, r.strength, r.presentation, r.repeat, r.judge, r.raw_text)
            for r in rs
            if isinstance(r, JudgmentRecord)
        )

    def texts(rs):
        return [replace(r, line=0) for r in rs if isinstance(r, PromptRecord | OutputRecord)]

    assert judged(again) == judged(records)
    assert texts(again) == texts(records)
