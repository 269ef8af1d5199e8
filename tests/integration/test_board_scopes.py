"""Leaderboard scopes: K-wise rankings, style control, evaluation runs, categories."""

import numpy as np
import pytest

from arena.boards import BoardScope, scope_counts, scope_style_votes
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.models import EvaluationRun, Judge, Match
from arena.ratings.style import style_leaderboard
from arena.services import refresh_leaderboard

pytestmark = pytest.mark.django_db

MODELS = ("plain", "fancy", "terse")


def _styled_set(n_prompts=60, seed=0):
    """'fancy' writes long bold answers and wins on style alone; 'plain' is better on substance."""
    rng = np.random.default_rng(seed)
    records = []
    texts = {
        "plain": "A careful, correct answer.",
        "fancy": "**Great** answer!\n\n# Title\n- point\n- point\n" + "word " * 80,
        "terse": "ok",
    }
    for p in range(n_prompts):
        records.append(
            PromptRecord(
                external_id=f"p{p}", text=f"question {p}", category="odd" if p % 2 else "even"
            )
        )
        for m in MODELS:
            records.append(OutputRecord(prompt_id=f"p{p}", contestant=m, text=texts[m]))
    for p in range(n_prompts):
        for i, (a, b) in enumerate([("plain", "fancy"), ("fancy", "terse"), ("plain", "terse")]):
            winner = "a" if rng.random() < (0.55 if a == "plain" and b == "fancy" else 0.8) else "b"
            records.append(
                JudgmentRecord(
                    match_id=f"v{p}-{i}",
                    contestants=(a, b),
                    winner=winner,
                    voter=f"voter{p % 7}",
                    prompt_id=f"p{p}",
                    category="odd" if p % 2 else "even",
                )
            )
    import_records(records, prompt_set="styled", source="test")


def test_style_votes_carry_both_answers_features():
    _styled_set()
    votes = scope_style_votes(BoardScope("styled", "humans"))
    assert len(votes.a) == 180 and votes.models == ("fancy", "plain", "terse")
    fancy = votes.models.index("fancy")
    rows = np.flatnonzero(votes.a == fancy)
    assert (
        (votes.style_a[rows, 1] == 1).all()
        and (votes.style_a[rows, 2] == 2).all()
        and (votes.style_a[rows, 3] == 1).all()
    )
    board = style_leaderboard(votes, bootstrap=50)
    assert board.method == "bt-style" and set(board.coefficients) == {
        "length",
        "headers",
        "lists",
        "bold",
    }


def test_a_style_controlled_snapshot_reports_coefficients():
    _styled_set()
    snapshot = refresh_leaderboard(BoardScope("styled", "humans", style_control=True), bootstrap=50)
    assert snapshot.method == "bt-style" and len(snapshot.rows) == 3
    assert set(snapshot.params["coefficients"]) == {"length", "headers", "lists", "bold"}


def test_style_control_without_stored_answers_says_why():
    import_records(
        [JudgmentRecord(match_id="x", contestants=("a1", "b1"), winner="a", voter="v", weight=5)],
        prompt_set="bare",
        source="test",
    )
    snapshot = refresh_leaderboard(BoardScope("bare", "humans", style_control=True), bootstrap=10)
    assert snapshot.rows == [] and "answers are stored" in snapshot.graph["warnings"][0]


def test_category_boards_only_count_their_category():
    _styled_set()
    assert scope_counts(BoardScope("styled", "humans", "odd")).total_votes == 90
    assert scope_counts(BoardScope("styled", "humans")).total_votes == 180


def test_k_wise_rankings_enter_human_boards_as_their_pairs():
    _styled_set(n_prompts=4)
    before = scope_counts(BoardScope("styled", "humans"))
    import_records(
        [
            JudgmentRecord(
                match_id="r1",
                contestants=("plain", "fancy", "terse"),
                kind="ranking",
                ranking=(1, 2, 2),
                voter="ranker",
                presentation=(0, 1, 2),
            )
        ],
        prompt_set="styled",
        source="test",
    )
    after = scope_counts(BoardScope("styled", "humans"))
    assert after.total_votes == before.total_votes + 3  # plain>fancy, plain>terse, fancy=terse
    assert after.units.n_units == before.units.n_units + 1  # one ranking, one bootstrap unit


def test_run_boards_only_read_that_runs_matches():
    _styled_set(n_prompts=4)
    judge = Judge.objects.create(name="j", model="j")
    run = EvaluationRun.objects.create(
        name="r", prompt_set_id=Match.objects.first().prompt_set_id, judge=judge
    )
    import_records(
        [
            JudgmentRecord(
                match_id=f"run{i}",
                contestants=("plain", "terse"),
                winner="a",
                judge="j",
                presentation=order,
            )
            for i in range(3)
            for order in ((0, 1), (1, 0))
        ],
        prompt_set="styled",
        source="run",
    )
    Match.objects.filter(external_id__startswith="run").update(run=run)
    counts = scope_counts(BoardScope("styled", f"run:{run.id}"))
    assert counts.total_votes == 6 and counts.units.n_units == 3
