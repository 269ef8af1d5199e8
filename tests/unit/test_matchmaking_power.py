"""Power analysis for anchor designs, against statsmodels and a Monte Carlo test."""

import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower

from arena.matchmaking import detectable_difference, prompts_needed, score_variance


def test_score_variance_enumerates_win_tie_loss():
    for p, t in [(0.5, 0.0), (0.6, 0.2), (0.3, 0.1)]:
        values, probs = np.array([1.0, 0.5, 0.0]), np.array([p - t / 2, t, 1 - p - t / 2])
        mean = probs @ values
        assert mean == pytest.approx(p)
        assert score_variance(p, t) == pytest.approx(probs @ (values - mean) ** 2)
    assert score_variance(0.5) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="P\\(win\\), P\\(loss\\) >= 0"):
        score_variance(0.95, 0.2)


@pytest.mark.parametrize(
    ("delta", "p_bar", "alpha", "power"),
    [(0.1, 0.5, 0.05, 0.8), (0.05, 0.5, 0.05, 0.9), (0.2, 0.3, 0.01, 0.8)],
)
def test_unpaired_prompts_match_statsmodels_two_sample_z_test(delta, p_bar, alpha, power):
    var = score_variance(p_bar + delta / 2) + score_variance(p_bar - delta / 2)
    effect = delta / math.sqrt(var / 2)  # Cohen's d with the average variance
    n = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=power, ratio=1.0)
    assert prompts_needed(delta, alpha, power, win_rate=p_bar) == math.ceil(n)


def test_the_classic_example_and_its_inverse():
    assert prompts_needed(0.1) == 389  # (1.96 + 0.8416)^2 * (0.2475 + 0.2475) / 0.01
    delta = detectable_difference(389)
    assert delta <= 0.1
    assert prompts_needed(delta) == 389
    assert detectable_difference(1000) < detectable_difference(500) < delta


def test_ties_and_pairing_reduce_the_prompts_needed():
    plain = prompts_needed(0.1)
    assert prompts_needed(0.1, tie_rate=0.3) < plain
    assert prompts_needed(0.1, correlation=0.5) == pytest.approx(plain / 2, abs=1)


def test_the_test_has_the_promised_power_by_simulation():
    """Simulate both models against the anchor on n prompts; a two-sided z test of the
    mean score difference must reject in about 80 % of runs (and in 5 % under H0)."""
    rng = np.random.default_rng(0)
    delta, tie = 0.12, 0.2
    n = prompts_needed(delta, tie_rate=tie)
    runs = 4000

    def scores(p):
        u = rng.random((runs, n))
        return np.where(u < p - tie / 2, 1.0, np.where(u < p + tie / 2, 0.5, 0.0))

    def reject(a, b):
        diff = a.mean(axis=1) - b.mean(axis=1)
        se = np.sqrt((a.var(axis=1, ddof=1) + b.var(axis=1, ddof=1)) / n)
        return np.abs(diff / se) > norm.ppf(0.975)

    power = reject(scores(0.5 + delta / 2), scores(0.5 - delta / 2)).mean()
    size = reject(scores(0.5), scores(0.5)).mean()
    assert power == pytest.approx(0.8, abs=0.025)
    assert size == pytest.approx(0.05, abs=0.015)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_bad_differences_are_refused(bad):
    with pytest.raises(ValueError, match="win_rate_difference"):
        prompts_needed(bad)
