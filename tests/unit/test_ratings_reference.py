"""Acceptance: the published Chatbot Arena counts (1.67M battles, 129 models).

The reference table is the exact BT-MLE of the same file (ties and both-bad = half a
win, scale 400/ln 10, mixtral-8x7b-instruct-v0.1 = 1114) with 1000-replica multinomial
bootstrap intervals; see /work/shared/datasets/README.md.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from arena.ratings import PairwiseCounts, bootstrap_bt, fit_bt, leaderboard, to_rating

ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)
DATA = Path(__file__).resolve().parents[2] / "arena" / "fixtures" / "datasets" / "chatbot_arena"


def load_counts() -> PairwiseCounts:
    raw = json.loads((DATA / "chatbotarena_20240814_agg.json").read_text())
    return PairwiseCounts.from_table(raw["models"], raw["X"], raw["Y"])


def load_reference() -> dict:
    lines = (DATA / "bt_20240814_reference_table.txt").read_text().splitlines()
    assert lines[1] == "rank_ub|model|rating|-ci|+ci|votes"
    table = {}
    for line in lines[2:]:
        rank, model, rating, minus, plus, votes = line.split("|")
        table[model] = (int(rank), float(rating), float(minus), float(plus), int(votes))
    return table


@pytest.fixture(scope="module")
def arena():
    counts = load_counts()
    fit = fit_bt(counts)
    boot = bootstrap_bt(counts, 1000, seed=0, anchor=ANCHOR, fit=fit)
    return counts, fit, boot, load_reference()


def test_counts_file_is_the_documented_one(arena):
    counts, _, _, ref = arena
    assert counts.n_models == 129 and counts.total_votes == 1_670_250
    votes = counts.votes_per_model()
    assert {m: int(v) for m, v in zip(counts.models, votes, strict=True)} == {
        m: r[4] for m, r in ref.items()
    }


def test_ratings_match_reference_table(arena):
    counts, fit, _, ref = arena
    assert fit.converged
    ratings = to_rating(fit.scores, counts.models, ANCHOR)
    diff = np.array([ratings[i] - ref[m][1] for i, m in enumerate(counts.models)])
    assert np.abs(diff).max() < 0.01  # the table is rounded to 0.01; acceptance asks for 1.0


def test_interval_ends_match_reference_within_bootstrap_noise(arena):
    counts, fit, boot, ref = arena
    ratings = to_rating(fit.scores, counts.models, ANCHOR)
    minus = np.array([ratings[i] - boot.lower[i] - ref[m][2] for i, m in enumerate(counts.models)])
    plus = np.array([boot.upper[i] - ratings[i] - ref[m][3] for i, m in enumerate(counts.models)])
    assert np.abs(minus).max() < 3.0 and np.abs(plus).max() < 3.0
    assert np.abs(minus).mean() < 0.6 and np.abs(plus).mean() < 0.6
    k = counts.models.index(ANCHOR[0])
    assert boot.lower[k] == boot.upper[k] == ANCHOR[1]  # anchored in every replica


def test_rank_ub_of_top_20_matches_reference(arena):
    counts, fit, boot, ref = arena
    top = np.argsort(-fit.scores)[:20]
    ours = np.array([boot.rank_ub[i] for i in top])
    theirs = np.array([ref[counts.models[i]][0] for i in top])
    assert np.abs(ours - theirs).max() <= 1  # bootstrap noise moves a bound by one place
    assert (ours == theirs).sum() >= 14


def test_leaderboard_facade_on_the_arena(arena):
    counts, _, _, ref = arena
    board = leaderboard(counts, bootstrap=200, seed=1, anchor=ANCHOR)
    assert board.graph.connected and board.graph.mle_exists and not board.notes
    assert board.rows[0].model == "chatgpt-4o-latest"
    assert board.row("llama-13b").rating == pytest.approx(ref["llama-13b"][1], abs=0.01)
    row = board.to_rows()[0]
    assert set(row) >= {"model", "rating", "ci_lower", "ci_upper", "rank_ub", "votes"}
