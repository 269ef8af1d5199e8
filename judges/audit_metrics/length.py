"""Length bias: does the longer answer win more often with the judge than with humans?

Two views:

- :func:`longer_wins` counts, among decisive verdicts on pairs of unequal length, how
  often the longer answer won, for the judge and for humans on the same pairs.
- :func:`length_coefficient` fits ``P(A wins | decisive) = σ(β₀ + β₁ log(len_A / len_B))``
  and reports ``β₁``: a judge that only looks at quality has ``β₁`` close to the
  humans' ``β₁`` on the same pairs. In slot terms ``β₀`` is the first-slot preference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .estimate import (
    LEVEL,
    N_BOOT,
    Estimate,
    bootstrap_estimate,
    bootstrap_estimates,
    patterns,
    proportion,
)
from .estimate import ratio_statistic as _ratio
from .verdicts import FIRST, SECOND, as_verdicts

_NEWTON_STEPS = 50


def _lengths(len_a, len_b) -> tuple[np.ndarray, np.ndarray]:
    la = np.asarray(len_a, dtype=np.float64)
    lb = np.asarray(len_b, dtype=np.float64)
    if la.shape != lb.shape:
        raise ValueError(f"len_a and len_b differ in shape: {la.shape} vs {lb.shape}")
    return la, lb


def longer_won(verdicts, len_a, len_b) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: (longer answer won, counted) as floats 1/0.

    A pair counts when the verdict is decisive (A or B, answer terms) and the lengths
    differ.
    """
    v = as_verdicts(verdicts)
    la, lb = _lengths(len_a, len_b)
    counted = ((v == FIRST) | (v == SECOND)) & (la != lb)
    won = counted & ((v == FIRST) == (la > lb))
    return won.astype(np.float64), counted.astype(np.float64)


@dataclass(frozen=True)
class LengthBias:
    """P(longer answer wins) for a judge and for humans on the same pairs.

    Attributes
    ----------
    judge, human : Estimate
        Wilson intervals; each over its own decisive, unequal-length pairs.
    difference : Estimate
        ``judge - human``, bootstrap over pairs (paired: both raters resampled together).
        Positive means the judge favours length more than people do.
    """

    judge: Estimate
    human: Estimate
    difference: Estimate

    def as_dict(self) -> dict:
        return {k: getattr(self, k).as_dict() for k in ("judge", "human", "difference")}


def longer_wins(
    judge,
    human,
    len_a,
    len_b,
    rng=None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
) -> LengthBias:
    """How often the longer answer wins, judge vs humans, on the same pairs.

    ``P(longer wins) = #{decisive, unequal lengths, longer answer chosen} / #{decisive,
    unequal lengths}`` for each rater; ``difference = P_judge - P_human``.

    Parameters
    ----------
    judge, human : array_like of int, shape (n,)
        Answer-terms verdicts on the same pairs (one human verdict per pair, e.g. the
        majority; MISSING where a pair has none).
    len_a, len_b : array_like, shape (n,)
        Lengths of the two answers (tokens or characters, the same unit for both).
    """
    jw, jn = longer_won(judge, len_a, len_b)
    hw, hn = longer_won(human, len_a, len_b)
    (pjw, pjn, phw, phn), counts = patterns(jw, jn, hw, hn)
    j = _ratio(pjw, pjn)
    h = _ratio(phw, phn)
    both = (pjn > 0) | (phn > 0)
    diff = bootstrap_estimate(lambda w: j(w) - h(w), counts * both, rng, n_boot, level)
    return LengthBias(
        judge=proportion(int(jw.sum()), int(jn.sum()), level),
        human=proportion(int(hw.sum()), int(hn.sum()), level),
        difference=diff,
    )


@dataclass(frozen=True)
class LengthCoefficient:
    """Logistic regression of the verdict on the log length ratio.

    Attributes
    ----------
    slope : Estimate
        ``β₁``: the log-odds of A winning rise by ``β₁`` per unit of
        ``log(len_A / len_B)`` (``β₁ · ln 2`` when A is twice as long).
    intercept : Estimate
        ``β₀``: log-odds of A winning between equally long answers.
    """

    slope: Estimate
    intercept: Estimate

    def as_dict(self) -> dict:
        return {"slope": self.slope.as_dict(), "intercept": self.intercept.as_dict()}


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted logistic regression ``y ~ σ(β₀ + β₁ x)`` for many weight rows at once.

    Newton's method on each row's log-likelihood ``Σ_p w_p (y_p η_p - log(1 + e^η_p))``
    with the 2 x 2 Hessians inverted in closed form.

    Parameters
    ----------
    x, y : ndarray, shape (P,)
    w : ndarray, shape (r, P)
        Non-negative weights (pattern counts).

    Returns
    -------
    ndarray, shape (r, 2)
        ``(β₀, β₁)`` per row; NaN where the fit does not converge (separation, or no
        variation in ``x`` or ``y``).
    """
    beta = np.zeros((w.shape[0], 2))
    converged = np.zeros(w.shape[0], dtype=bool)
    for _ in range(_NEWTON_STEPS):
        p = expit(beta[:, :1] + beta[:, 1:] * x)
        resid = w * (y - p)
        g0, g1 = resid.sum(axis=1), resid @ x
        h = w * p * (1 - p)
        h00, h01, h11 = h.sum(axis=1), h @ x, h @ (x * x)
        det = h00 * h11 - h01 * h01
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det], axis=1)
        step[~np.isfinite(step)] = np.nan
        beta += step
        converged = np.all(np.abs(step) < 1e-9, axis=1)
        if np.all(converged | np.isnan(step).any(axis=1)):
            break
    beta[~converged] = np.nan
    return beta


def length_coefficient(
    verdicts,
    len_a,
    len_b,
    rng=None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
) -> LengthCoefficient:
    """Logistic length coefficient, with a bootstrap interval over pairs.

    Fits ``P(A wins) = σ(β₀ + β₁ log(len_A / len_B))`` by maximum likelihood on the
    decisive verdicts (ties, INVALID and MISSING left out).

    Parameters
    ----------
    verdicts : array_like of int, shape (n,)
        Answer-terms verdicts (or slot terms with lengths in slot order, which makes
        ``β₀`` the position effect).
    len_a, len_b : array_like, shape (n,)
        Positive lengths.
    """
    v = as_verdicts(verdicts)
    la, lb = _lengths(len_a, len_b)
    keep = (v == FIRST) | (v == SECOND)
    if np.any(la[keep] <= 0) or np.any(lb[keep] <= 0):
        raise ValueError("lengths must be positive")
    x = np.log(la[keep] / lb[keep])
    y = (v[keep] == FIRST).astype(np.float64)
    (px, py), counts = patterns(x, y)

    intercept, slope = bootstrap_estimates(
        lambda w: fit_logistic(px, py, w), counts, rng, n_boot, level
    )
    return LengthCoefficient(slope=slope, intercept=intercept)
