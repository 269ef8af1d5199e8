"""Plackett-Luce with ties, its bootstrap, and live openskill ratings."""

import math

import choix
import numpy as np
import pytest
from openskill.models import PlackettLuce
from scipy.optimize import check_grad

from arena.importers.records import JudgmentRecord
from arena.ratings.plackett_luce import (
    LiveRatings,
    Rankings,
    _pattern_events,
    choice_design,
    fit_pl,
    pl_gradient,
    pl_hessian,
    pl_leaderboard,
    pl_objective,
    rankings_from_records,
)

MODELS = [f"m{i}" for i in range(6)]


def strict_rankings(seed=0, votes=400, k=4):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=6)
    data = []
    for _ in range(votes):  # Gumbel trick: argsort of s + Gumbel noise is a PL draw
        items = rng.choice(6, k, replace=False)
        order = items[np.argsort(-(s[items] + rng.gumbel(size=k)))]
        data.append(tuple(order))
    return s, data


def test_strict_rankings_match_choix():
    _, data = strict_rankings()
    rankings = Rankings.from_lists(MODELS, [(list(r), [1, 2, 3, 4]) for r in data])
    fit = fit_pl(rankings)
    ref = choix.ilsr_rankings(6, data, tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(fit.scores, ref - ref.mean(), atol=1e-7)
    assert fit.converged


def test_tie_events_average_the_orders():
    # One group of 2 tied on top of one model: orders (a b c) and (b a c), each 1/2.
    # log-lik = 1/2[s_a - log(e^a+e^b+e^c) + s_b - log(e^b+e^c)]
    #         + 1/2[s_b - log(e^a+e^b+e^c) + s_a - log(e^a+e^c)]
    events = _pattern_events((2, 1))
    as_set = sorted((i, tuple(sorted(S)), round(c, 12)) for i, S, c in events)
    assert as_set == [(0, (0, 1, 2), 0.5), (0, (0, 2), 0.5), (1, (0, 1, 2), 0.5), (1, (1, 2), 0.5)]
    s = np.array([0.3, -0.2, 0.5])
    rankings = Rankings.from_lists(["a", "b", "c"], [([0, 1, 2], [1, 1, 2])])
    design = choice_design(rankings)
    L = design.chosen.T @ rankings.weight.astype(float)
    C = design.offered.T @ rankings.weight.astype(float)
    ea, eb, ec = np.exp(s)
    expected = 0.5 * (s[0] - np.log(ea + eb + ec) + s[1] - np.log(eb + ec)) + 0.5 * (
        s[1] - np.log(ea + eb + ec) + s[0] - np.log(ea + ec)
    )
    assert -pl_objective(s, design, L, C) == pytest.approx(expected, abs=1e-12)


def test_three_way_tie_weights_sum_like_orders():
    events = _pattern_events((3,))
    # every model is chosen first with weight 1/3 from the full set (3! orders / 3)
    first = [c for i, S, c in events if len(S) == 3]
    assert sum(first) == pytest.approx(1.0)
    pairs = [c for i, S, c in events if len(S) == 2]
    assert sum(pairs) == pytest.approx(1.0) and len(pairs) == 6
    assert math.isclose(sum(c for *_, c in events), 2.0)  # two informative choices per order


def test_gradient_and_hessian():
    _, data = strict_rankings(1, votes=60)
    rows = [(list(r), [1, 1, 2, 3]) for r in data[:30]] + [
        (list(r), [1, 2, 2, 2]) for r in data[30:]
    ]
    rankings = Rankings.from_lists(MODELS, rows)
    design = choice_design(rankings, prior=0.1)
    L = design.chosen.T @ rankings.weight.astype(float)
    C = design.offered.T @ rankings.weight.astype(float)
    s = np.random.default_rng(0).normal(size=6)
    assert check_grad(pl_objective, pl_gradient, s, design, L, C) < 1e-5
    eps = 1e-6
    numeric = np.array(
        [
            (pl_gradient(s + eps * e, design, L, C) - pl_gradient(s - eps * e, design, L, C))
            / (2 * eps)
            for e in np.eye(6)
        ]
    )
    np.testing.assert_allclose(pl_hessian(s, design, C), numeric, atol=1e-6)


def test_identical_rankings_are_aggregated():
    rankings = Rankings.from_lists(
        ["a", "b", "c"],
        [
            ([0, 1, 2], [1, 2, 3]),
            ([2, 0, 1], [3, 1, 2]),
            ([1, 0, 2], [1, 1, 3]),
            ([0, 1, 2], [1, 1, 3]),
        ],
    )
    assert rankings.items.shape[0] == 2
    assert sorted(rankings.weight.tolist()) == [2, 2]


def test_leaderboard_with_bootstrap_and_records():
    _, data = strict_rankings(2, votes=500)
    records = [
        JudgmentRecord(f"m{k}", tuple(MODELS[i] for i in r), kind="ranking", ranking=(1, 2, 3, 4))
        for k, r in enumerate(data)
    ]
    rankings = rankings_from_records(records)
    board = pl_leaderboard(rankings, bootstrap=300, seed=0)
    assert len(board.rows) == 6 and board.n_replicas == 300
    for row in board.rows:
        assert row.ci_lower < row.rating < row.ci_upper
    assert board.rows[0].rank_ub == 1


def test_live_ratings_follow_openskill():
    live = LiveRatings()
    live.update(["a", "b", "c"], [1, 2, 2])
    live.update(["c", "a"], [1, 2])
    model = PlackettLuce()
    a, b, c = model.rating(name="a"), model.rating(name="b"), model.rating(name="c")
    (a,), (b,), (c,) = model.rate([[a], [b], [c]], ranks=[1, 2, 2])
    (c,), (a,) = model.rate([[c], [a]], ranks=[1, 2])
    table = live.table()
    assert table["a"] == pytest.approx((a.mu, a.sigma))
    assert table["c"] == pytest.approx((c.mu, c.sigma))
    assert table["b"][1] < 25 / 3  # uncertainty shrinks with a vote
