"""Juries (arena.ratings.jury) and the judge-effects fit (arena.ratings.judge_effects)."""

import numpy as np
import pytest

from arena.ratings.counts import FIRST, SECOND, TIE
from arena.ratings.judge_effects import fit_judge_effects, judge_effects_leaderboard
from arena.ratings.jury import (
    SLOT0,
    SLOT1,
    jury_verdicts,
    panel_agreement,
    panel_for,
    reliability_weights,
)
from arena.ratings.jury import (
    TIE as JURY_TIE,
)


def test_majority_counts_decisive_votes_and_ties_on_equal_votes():
    # call 0: a, a, b -> a; call 1: b, tie, tie -> b; call 2: a, b, tie -> tie; call 3: none
    call = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    juror = [0, 1, 2] * 3
    winner = [0, 0, 1, 1, 2, 3, 0, 1, 2]
    out = jury_verdicts(call, juror, winner, n_calls=4)
    assert out.winner.tolist() == [SLOT0, SLOT1, JURY_TIE, JURY_TIE]
    assert out.score.tolist() == [1.0, 0.0, 0.5, 0.5]
    assert out.jurors.tolist() == [3, 3, 3, 0]


def test_weighted_rule_lets_a_reliable_juror_outvote_two_weak_ones():
    call, juror, winner = [0, 0, 0], [0, 1, 2], [0, 1, 1]
    assert jury_verdicts(call, juror, winner).winner.tolist() == [SLOT1]
    heavy = jury_verdicts(call, juror, winner, rule="weighted", weights=[3.0, 1.0, 1.0])
    assert heavy.winner.tolist() == [SLOT0]
    with pytest.raises(ValueError):
        jury_verdicts(call, juror, winner, rule="weighted")
    with pytest.raises(ValueError):
        jury_verdicts(call, juror, winner, rule="loudest")


def test_mean_rule_averages_probabilities_and_falls_back_to_the_verdict():
    call, juror, winner = [0, 0, 0, 1, 1], [0, 1, 2, 0, 1], [1, 1, 0, 0, 1]
    # call 0 by verdicts alone: slot 1 (mean 1/3); the logprobs say slot 0 is nearly sure
    # for the two jurors who picked slot 1 by a hair.
    prob = [0.55, 0.6, np.nan, np.nan, np.nan]
    out = jury_verdicts(call, juror, winner, rule="mean", slot0_probability=prob)
    assert out.winner.tolist() == [SLOT0, JURY_TIE]
    plain = jury_verdicts(call, juror, winner, rule="mean")
    assert plain.winner.tolist() == [SLOT1, JURY_TIE]


def test_reliability_weights_shrink_toward_equal():
    assert reliability_weights([0, 0, 0], [0, 0, 0]).tolist() == [1.0, 1.0, 1.0]
    few = reliability_weights([9, 5, 5], [10, 10, 10])
    many = reliability_weights([900, 500, 500], [1000, 1000, 1000])
    assert few[0] > few[1] == pytest.approx(few[2])
    assert many[0] / many[1] > few[0] / few[1] > 1.0  # more evidence, less shrinkage
    assert few.mean() == pytest.approx(1.0) and many.mean() == pytest.approx(1.0)
    # a coin-flipping juror gets no say once its record is long
    assert many[1] < 0.05
    with pytest.raises(ValueError):
        reliability_weights([5], [3])


def test_panel_agreement_leaves_the_juror_out():
    # call 0: a a b; call 1: a a b; call 2: b b tie
    call = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    juror = [0, 1, 2] * 3
    winner = [0, 0, 1, 0, 0, 1, 1, 1, 2]
    agreed, compared = panel_agreement(call, juror, winner, 3)
    # juror 0 vs the rest: call 0 rest a-b = 0 (not compared), call 1 the same, call 2 rest b
    assert compared.tolist() == [1, 1, 2]
    assert agreed.tolist() == [1, 1, 0]


def test_panel_for_is_a_seeded_subset():
    first = panel_for(7, (0, 3, 1, 2), 5, 3)
    assert first.tolist() == panel_for(7, (0, 3, 1, 2), 5, 3).tolist()
    assert len(set(first.tolist())) == 3 and first.max() < 5
    assert panel_for(7, (0, 3), 3, None).tolist() == [0, 1, 2]
    drawn = {tuple(panel_for(7, (k,), 5, 2).tolist()) for k in range(200)}
    assert len(drawn) == 10  # every pair of 5 jurors comes up


def test_judge_effects_fit_recovers_planted_biases():
    rng = np.random.default_rng(3)
    n, calls = 8, 60_000
    theta = np.linspace(-1.2, 1.2, n)
    gamma = np.array([0.8, -0.6, 0.0])
    nu = np.array([-2.0, -0.5, -1.2])
    judge = rng.integers(0, 3, calls)
    first = rng.integers(0, n, calls)
    second = (first + rng.integers(1, n, calls)) % n
    u = np.stack(
        [
            theta[first] + gamma[judge],
            theta[second],
            nu[judge] + (theta[first] + gamma[judge] + theta[second]) / 2,
        ]
    )
    p = np.exp(u - u.max(axis=0))
    p /= p.sum(axis=0)
    cum = np.cumsum(p, axis=0)
    draw = rng.random(calls)
    outcome = np.where(draw < cum[0], FIRST, np.where(draw < cum[1], SECOND, TIE))
    fit = fit_judge_effects(n, 3, judge, first, second, outcome)
    assert fit.converged
    assert np.abs(fit.position - gamma).max() < 0.06
    assert np.abs(fit.tie - nu).max() < 0.08
    assert np.abs(fit.strength - (theta - theta.mean())).max() < 0.05
    board = judge_effects_leaderboard(
        [f"m{i}" for i in range(n)], ["j0", "j1", "j2"], judge, first, second, outcome
    )
    assert [r.model for r in board.rows] == [f"m{i}" for i in reversed(range(n))]
    assert board.coefficients["position:j0"] == pytest.approx(1 / (1 + np.exp(-0.8)), abs=0.015)
    assert board.coefficients["position:j1"] < 0.5 < board.coefficients["position:j0"]
