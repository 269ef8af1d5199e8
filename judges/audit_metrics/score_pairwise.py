"""Score-vs-pairwise inconsistency (TrustJudge, arXiv:2509.21117).

A judge that grades answers one at a time (single-answer scores) and also compares them
in pairs should not contradict itself: when A scores higher than B, the pairwise
verdict should prefer A. TrustJudge's *score-comparison inconsistency* (their
``ConflictCalculator``) compares the relation implied by the scores, with a tolerance,
to the pairwise relation:

- expected: ``A`` if ``s_A - s_B >= tol`` (and ``> 0``), ``B`` if ``s_B - s_A >= tol``
  (and ``> 0``), else ``TIE``;
- observed: the pair's verdict (for both orders, see :func:`~.verdicts.combine_orders`:
  A or B only when both orders agree, otherwise TIE);
- conflict: expected != observed.

The stricter *reversal* rate counts only a decisive verdict for the lower-scored answer,
among pairs with a decisive verdict whose scores differ (by at least the tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimate import LEVEL, Estimate, proportion
from .verdicts import BOTH_BAD, INVALID, MISSING, TIE, A, B, as_verdicts


@dataclass(frozen=True)
class ScorePairwise:
    """Score-comparison inconsistency of a judge.

    Attributes
    ----------
    conflict : Estimate
        TrustJudge's conflict share over pairs with a valid verdict and both scores.
    reversal : Estimate
        Share of decisive verdicts, on pairs whose scores differ (by at least the
        tolerance), that pick the lower-scored answer.
    """

    conflict: Estimate
    reversal: Estimate

    def as_dict(self) -> dict:
        return {"conflict": self.conflict.as_dict(), "reversal": self.reversal.as_dict()}


def expected_verdict(score_a, score_b, tolerance: float = 0.0) -> np.ndarray:
    """A, B or TIE from two single-answer scores; MISSING where a score is NaN."""
    sa = np.asarray(score_a, dtype=np.float64)
    sb = np.asarray(score_b, dtype=np.float64)
    diff = sa - sb
    out = np.where(diff > 0, A, np.where(diff < 0, B, TIE))
    out = np.where(np.abs(diff) < tolerance, TIE, out)
    return np.where(np.isnan(diff), MISSING, out)


def score_pairwise_inconsistency(
    score_a, score_b, verdicts, tolerance: float = 0.0, level: float = LEVEL
) -> ScorePairwise:
    """How often a judge's pairwise verdicts contradict its own single-answer scores.

    Parameters
    ----------
    score_a, score_b : array_like of float, shape (n,)
        The judge's single-answer scores of the two answers (NaN if missing).
    verdicts : array_like of int, shape (n,)
        The judge's answer-terms verdict on the pair (both-bad counts as a tie).
    tolerance : float
        Score gaps below this count as "equal" (TrustJudge's ``tolerance_gap``).

    Wilson intervals over pairs.
    """
    v = as_verdicts(verdicts)
    v = np.where(v == BOTH_BAD, TIE, v)
    expected = expected_verdict(score_a, score_b, tolerance)
    valid = (v != MISSING) & (v != INVALID) & (expected != MISSING)
    conflicts = int(np.sum(valid & (v != expected)))
    decisive = valid & ((v == A) | (v == B)) & ((expected == A) | (expected == B))
    reversals = int(np.sum(decisive & (v != expected)))
    return ScorePairwise(
        conflict=proportion(conflicts, int(valid.sum()), level),
        reversal=proportion(reversals, int(decisive.sum()), level),
    )
