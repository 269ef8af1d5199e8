"""How many prompts an anchor evaluation needs to tell two models apart.

Against an anchor, each prompt gives model ``A`` a score ``X ∈ {1, ½, 0}`` (win, tie,
loss); its win rate is ``p = P(win) + t/2`` with ``t`` the tie rate, and

.. math:: \\operatorname{Var} X = P(\\text{win}) + t/4 - p^2 = p(1 - p) - t/4,

so ties shrink the variance. Two models whose win rates against the anchor are
``p_A = p̄ + Δ/2`` and ``p_B = p̄ - Δ/2`` are compared with a two-sided z test of
``H0: p_A = p_B`` on ``n`` prompts each. With correlation ``ρ`` between their
per-prompt scores (same prompts: the *paired* test; ``ρ = 0``: the unpooled two-sample
test of proportions) the variance of the mean difference is ``σ_D² / n`` with
``σ_D² = σ_A² + σ_B² - 2 ρ σ_A σ_B``, and the prompts needed are

.. math:: n = \\left\\lceil \\frac{(z_{1-α/2} + z_{1-β})^2\\, σ_D^2}{Δ^2} \\right\\rceil,

(Wald/normal approximation; ``1 - β`` is the power). Example: ``Δ = 0.1`` at
``p̄ = 0.5`` without ties needs 389 prompts unpaired; the usual Arena-Hard set of 500
resolves about ``Δ ≈ 0.088``.
"""

from __future__ import annotations

import math

from scipy.optimize import brentq
from scipy.stats import norm


def score_variance(win_rate: float, tie_rate: float = 0.0) -> float:
    """Variance of one prompt's score (1 / ½ / 0) at this win rate and tie rate."""
    wins = win_rate - tie_rate / 2.0
    losses = 1.0 - win_rate - tie_rate / 2.0
    if not 0.0 <= tie_rate <= 1.0 or wins < -1e-12 or losses < -1e-12:
        raise ValueError(
            f"win_rate {win_rate:.3g} with tie_rate {tie_rate:.3g}: needs P(win), P(loss) >= 0"
        )
    return max(win_rate * (1.0 - win_rate) - tie_rate / 4.0, 0.0)


def prompts_needed(
    win_rate_difference: float,
    alpha: float = 0.05,
    power: float = 0.8,
    tie_rate: float = 0.0,
    *,
    win_rate: float = 0.5,
    correlation: float = 0.0,
) -> int:
    """Prompts needed to detect a win-rate difference against an anchor (module doc).

    Parameters
    ----------
    win_rate_difference : float
        ``Δ = p_A - p_B`` in (0, 1).
    alpha : float
        Two-sided significance level.
    power : float
        ``1 - β``, the probability of detecting ``Δ``.
    tie_rate : float
        Share of ties (each half a win), the same for both models.
    win_rate : float
        ``p̄``, the mean of the two win rates (0.5 for a mid-ranked anchor: the
        mediocrity rule is what makes the variance, hence ``n``, largest per prompt but
        the comparisons most informative for *every* model).
    correlation : float
        ``ρ`` between the two models' per-prompt scores (0 = unpaired).

    Returns
    -------
    int
    """
    delta = float(win_rate_difference)
    if not 0.0 < delta < 1.0:
        raise ValueError("win_rate_difference: expected a value in (0, 1)")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha, power: expected probabilities in (0, 1)")
    if not -1.0 <= correlation <= 1.0:
        raise ValueError("correlation: expected a value in [-1, 1]")
    z = norm.ppf(1.0 - alpha / 2.0) + norm.ppf(power)
    return max(
        1,
        math.ceil(
            z * z * _difference_variance(delta, win_rate, tie_rate, correlation) / delta**2 - 1e-9
        ),
    )


def detectable_difference(
    n_prompts: int,
    alpha: float = 0.05,
    power: float = 0.8,
    tie_rate: float = 0.0,
    *,
    win_rate: float = 0.5,
    correlation: float = 0.0,
) -> float:
    """The smallest ``Δ`` that ``n_prompts`` detect (the inverse of :func:`prompts_needed`)."""
    if n_prompts < 1:
        raise ValueError("n_prompts: expected at least 1")
    z = norm.ppf(1.0 - alpha / 2.0) + norm.ppf(power)
    hi = 2.0 * min(win_rate - tie_rate / 2.0, 1.0 - win_rate - tie_rate / 2.0)

    def gap(delta: float) -> float:
        var = _difference_variance(delta, win_rate, tie_rate, correlation)
        return z * math.sqrt(var / n_prompts) - delta

    if gap(hi) > 0:
        return float("nan")  # not even the largest possible difference is detectable
    return float(brentq(gap, 1e-12, hi, xtol=1e-12))


def _difference_variance(delta: float, win_rate: float, tie_rate: float, rho: float) -> float:
    var_a = score_variance(win_rate + delta / 2.0, tie_rate)
    var_b = score_variance(win_rate - delta / 2.0, tie_rate)
    return var_a + var_b - 2.0 * rho * math.sqrt(var_a * var_b)
