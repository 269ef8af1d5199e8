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


def test_bootstrap_matches_textbook_resampling_on_the_arena(arena):
    """The fast bootstrap against the textbook one on the same counts.

    Reference: every replica drawn by numpy's own ``Generator.multinomial(N, m / N)`` over
    the unit types (the plain definition of resampling the 1.67M battles), solved by the
    chord iteration that predates the Poisson tables and the batched Newton. Two
    independent 1000-replica bootstraps differ only by Monte-Carlo noise: the sd of a
    2.5% or 97.5% percentile is ~0.085 bootstrap sd (σ), so each interval end must agree
    within 0.5 σ (~6 Monte-Carlo sds of the difference) and on average within 0.2 σ; the
    bootstrap sds agree within 15% (their own noise is ~3%); the point ratings are the
    fit's, untouched.
    """
    from arena.ratings.bootstrap import replica_stats, solve_replicas, unit_stats

    counts, fit, boot, _ = arena
    merged = unit_stats(counts.unit_types(), fit.design)
    rng = np.random.default_rng(20240814)
    n_units = int(merged.multiplicity.sum())
    draws = rng.multinomial(n_units, merged.multiplicity / n_units, size=1000).T  # (U, B)

    class Textbook:  # replica_stats' sampler interface
        def draw(self, n_replicas, rng):
            return draws

    stats = replica_stats(merged, fit.design, 1000, rng, Textbook())
    theta, ok = solve_replicas(fit, stats)
    assert ok.all()
    reference = to_rating(theta[: counts.n_models].T, counts.models, ANCHOR)
    lower, upper = np.percentile(reference, [2.5, 97.5], axis=0)
    sd = reference.std(axis=0)
    free = sd > 0  # the anchor has no spread
    for ours, theirs in ((boot.lower, lower), (boot.upper, upper)):
        z = np.abs(ours - theirs)[free] / sd[free]
        assert z.max() < 0.5 and z.mean() < 0.2
    ratio = boot.ratings.std(axis=0)[free] / sd[free]
    assert np.abs(ratio - 1).max() < 0.15 and abs(ratio.mean() - 1) < 0.03
    np.testing.assert_allclose(
        boot.ratings.mean(axis=0)[free], reference.mean(axis=0)[free], atol=0.25 * sd[free].max()
    )
    board = leaderboard(counts, bootstrap=0, anchor=ANCHOR)
    ratings = to_rating(fit.scores, counts.models, ANCHOR)
    for i, m in enumerate(counts.models):
        assert board.row(m).rating == ratings[i]
