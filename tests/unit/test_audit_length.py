"""Length bias: P(longer wins) judge vs humans, and the logistic length coefficient."""

import numpy as np
import pytest
import statsmodels.api as sm

from judges.audit_metrics import (
    INVALID,
    MISSING,
    TIE,
    A,
    B,
    length_coefficient,
    longer_wins,
)
from judges.audit_metrics.length import fit_logistic


def simulate(n, rng, judge_length_weight):
    """Pairs with random lengths; humans ignore length, the judge weighs it."""
    len_a = rng.integers(50, 800, n)
    len_b = rng.integers(50, 800, n)
    quality = rng.normal(size=n)  # > 0: A is better
    x = np.log(len_a / len_b)
    human = np.where(rng.random(n) < 1 / (1 + np.exp(-2 * quality)), A, B)
    judge = np.where(
        rng.random(n) < 1 / (1 + np.exp(-(2 * quality + judge_length_weight * x))), A, B
    )
    return judge, human, len_a, len_b


def test_longer_wins_by_hand():
    judge = np.array([A, A, B, TIE, A, B, INVALID])
    human = np.array([B, A, B, A, MISSING, A, A])
    len_a = np.array([10, 5, 7, 9, 9, 3, 4])
    len_b = np.array([5, 10, 7, 1, 1, 8, 1])
    bias = longer_wins(judge, human, len_a, len_b, n_boot=100, rng=0)
    # judge: decisive & unequal lengths = items 0, 1, 4, 5 -> longer won in 0, 4, 5.
    assert (bias.judge.n, bias.judge.value) == (4, 0.75)
    # human: items 0, 1, 3, 5, 6 -> longer won in 3, 6.
    assert (bias.human.n, bias.human.value) == (5, 0.4)
    assert bias.difference.value == pytest.approx(0.75 - 0.4)


def test_a_length_biased_judge_is_caught_and_a_fair_one_is_not():
    rng = np.random.default_rng(3)
    judge, human, la, lb = simulate(1500, rng, judge_length_weight=1.5)
    bias = longer_wins(judge, human, la, lb, rng=1)
    assert bias.difference.low > 0
    coef = length_coefficient(judge, la, lb, rng=2)
    assert coef.slope.low > 0.3
    fair_judge, human, la, lb = simulate(1500, rng, judge_length_weight=0.0)
    fair = longer_wins(fair_judge, human, la, lb, rng=1)
    assert fair.difference.low < 0 < fair.difference.high
    assert length_coefficient(human, la, lb, rng=2).slope.excludes(0) is False


def test_logistic_coefficient_matches_statsmodels():
    rng = np.random.default_rng(4)
    judge, _, la, lb = simulate(600, rng, judge_length_weight=0.8)
    judge[:40] = TIE  # left out of the fit
    coef = length_coefficient(judge, la, lb, rng=0)
    keep = judge != TIE
    x = np.log(la[keep] / lb[keep])
    y = (judge[keep] == A).astype(float)
    fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    assert coef.intercept.value == pytest.approx(fit.params[0], abs=1e-7)
    assert coef.slope.value == pytest.approx(fit.params[1], abs=1e-7)
    # The bootstrap interval is close to the Wald interval for a sample this size.
    wald_low, wald_high = fit.conf_int()[1]
    assert coef.slope.low == pytest.approx(wald_low, abs=0.15)
    assert coef.slope.high == pytest.approx(wald_high, abs=0.15)
    assert coef.slope.n == int(keep.sum())


def test_separation_gives_nan_instead_of_a_huge_number():
    x = np.array([-1.0, -0.5, 0.5, 1.0])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    beta = fit_logistic(x, y, np.ones((1, 4)))
    assert np.all(np.isnan(beta))


def test_lengths_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        length_coefficient(np.array([A, B]), np.array([0, 3]), np.array([2, 3]))
