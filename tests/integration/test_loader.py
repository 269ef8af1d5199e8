"""The loader: atomic per file, idempotent, constraint-checked."""

import pytest
from django.db import IntegrityError, transaction

from arena.importers.loader import import_records
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord
from arena.models import (
    Contestant,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    Output,
    PairOutcomeCount,
    Prompt,
    Voter,
)

pytestmark = pytest.mark.django_db


def _records():
    return [
        PromptRecord(external_id="p1", text="What is 2+2?", category="math", line=1),
        OutputRecord(prompt_id="p1", contestant="model-x", text="4", line=2),
        OutputRecord(prompt_id="p1", contestant="model-y", text="**Four**, because 2+2=4.", line=3),
        JudgmentRecord(
            match_id="m1",
            contestants=("model-x", "model-y"),
            winner="a",
            voter="alice",
            prompt_id="p1",
            line=4,
        ),
        JudgmentRecord(
            match_id="m1",
            contestants=("model-x", "model-y"),
            winner="b",
            voter="bob",
            prompt_id="p1",
            line=5,
        ),
        JudgmentRecord(
            match_id="m1",
            contestants=("model-x", "model-y"),
            winner="a",
            strength=2,
            judge="gpt-judge",
            presentation=(0, 1),
            prompt_id="p1",
            line=6,
        ),
        JudgmentRecord(
            match_id="m1",
            contestants=("model-x", "model-y"),
            winner="tie",
            judge="gpt-judge",
            presentation=(1, 0),
            prompt_id="p1",
            line=7,
        ),
        JudgmentRecord(
            match_id="agg",
            contestants=("model-x", "model-y"),
            winner="bothbad",
            voter="crowd",
            weight=250,
            line=8,
        ),
        JudgmentRecord(
            match_id="m2",
            contestants=("model-x", "model-y"),
            winner=None,
            judge="gpt-judge",
            raw_text="I cannot decide",
            line=9,
        ),
    ]


def test_it_stores_prompts_outputs_matches_and_judgments():
    report = import_records(_records(), prompt_set="unit", source="jsonl")
    assert (report.prompts, report.outputs, report.matches, report.judgments) == (1, 2, 3, 6)
    assert report.votes == 1 + 1 + 1 + 1 + 250 + 1
    m1 = Match.objects.get(external_id="m1")
    assert m1.category == "" and m1.prompt.text == "What is 2+2?"
    slots = list(m1.slots.order_by("position").values_list("contestant__name", "output__text"))
    assert slots == [("model-x", "4"), ("model-y", "**Four**, because 2+2=4.")]
    assert Output.objects.get(text__startswith="**Four").bold_count == 1
    judge = Judge.objects.get(name="gpt-judge")
    assert set(
        Judgment.objects.filter(judge=judge, match=m1).values_list(
            "presentation", "winner", "strength"
        )
    ) == {("0,1", "a", 2), ("1,0", "tie", 1)}
    failed = Judgment.objects.get(match__external_id="m2")
    assert (
        failed.status == Judgment.Status.PARSE_FAILED
        and failed.winner is None
        and failed.raw_text == "I cannot decide"
    )
    assert Judgment.objects.get(match__external_id="agg").weight == 250
    assert Voter.objects.filter(kind=Voter.Kind.IMPORTED).count() == 3


def test_it_stores_nothing_twice():
    import_records(_records(), prompt_set="unit", source="jsonl")
    counts = [
        M.objects.count()
        for M in (Prompt, Output, Match, MatchSlot, Judgment, Contestant, Voter, Judge)
    ]
    again = import_records(_records(), prompt_set="unit", source="jsonl")
    assert (again.prompts, again.outputs, again.matches, again.judgments) == (0, 0, 0, 0)
    assert again.skipped == len(_records())
    assert [
        M.objects.count()
        for M in (Prompt, Output, Match, MatchSlot, Judgment, Contestant, Voter, Judge)
    ] == counts


def test_it_rolls_back_the_whole_file_on_a_bad_record():
    records = _records() + [OutputRecord(prompt_id="nope", contestant="model-x", text="?", line=10)]
    with pytest.raises(ImportRowError) as exc:
        import_records(records, prompt_set="unit", source="jsonl", path="broken.jsonl")
    assert (exc.value.line, exc.value.field) == (10, "prompt_id")
    assert str(exc.value).startswith("broken.jsonl:10: prompt_id:")
    assert (
        not Prompt.objects.exists()
        and not Judgment.objects.exists()
        and not Contestant.objects.exists()
    )


def test_it_refuses_a_match_id_reused_with_other_contestants():
    import_records(_records(), prompt_set="unit", source="jsonl")
    clash = [
        JudgmentRecord(
            match_id="m1", contestants=("model-y", "model-x"), winner="a", voter="carol", line=3
        )
    ]
    with pytest.raises(ImportRowError, match="contestants"):
        import_records(clash, prompt_set="unit", source="jsonl")
    assert not Judgment.objects.filter(voter__label="carol").exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"winner": "left"},
        {"strength": 3},
        {"weight": 0},
        {"preference": 2.5},
        {"winner": None},  # status ok without a winner
    ],
)
def test_the_database_rejects_invalid_verdicts(fields):
    import_records(_records(), prompt_set="unit", source="jsonl")
    match = Match.objects.get(external_id="m1")
    voter = Voter.objects.create(label="dave", kind=Voter.Kind.IMPORTED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(match=match, voter=voter, **{"winner": "a", **fields})


def test_a_judgment_needs_exactly_one_judge_or_voter():
    import_records(_records(), prompt_set="unit", source="jsonl")
    match = Match.objects.get(external_id="m1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(match=match, winner="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            match=match, winner="a", voter=Voter.objects.first(), judge=Judge.objects.first()
        )


def test_the_same_llm_judgment_cannot_be_stored_twice():
    import_records(_records(), prompt_set="unit", source="jsonl")
    j = Judgment.objects.filter(judge__isnull=False, match__external_id="m1").first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            match=j.match, judge=j.judge, presentation=j.presentation, repeat=j.repeat, winner="b"
        )


def test_many_running_count_cells_are_bumped_at_once():
    # 9,000 cells (72,000 values: past PostgreSQL's 65,535 parameters of a statement with
    # server-side binding) go in statements of BUMP_ROWS cells, new cells and one that
    # exists alike.
    import_records(
        [JudgmentRecord("m1", ("x", "y"), winner="a", voter="v")], prompt_set="s", source="t"
    )
    cell = PairOutcomeCount.objects.get()
    base = (cell.prompt_set_id, "human", "", cell.contestant_a_id, cell.contestant_b_id)
    cells = [(*base[:2], f"c{i}", *base[3:], "a", True, 2) for i in range(9000)]
    cells.append((*base[:2], "", *base[3:], cell.winner, cell.a_first, 5))
    PairOutcomeCount.objects.bump_many(sorted(cells))
    assert PairOutcomeCount.objects.count() == 9001
    assert sum(PairOutcomeCount.objects.values_list("count", flat=True)) == 18000 + 1 + 5
