"""Position bias: consistency under swapping, primacy vs recency, first-slot win rate.

All inputs are verdicts in **slot terms** (see :mod:`judges.audit_metrics.verdicts`): for each
pair, ``order1`` is the verdict when answer A was shown first, ``order2`` the verdict
when answer B was shown first. A judge free of position bias names the same *answer* in
both orders, i.e. ``order1 == swap(order2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimate import LEVEL, Estimate, proportion
from .verdicts import BOTH_BAD, FIRST, MISSING, SECOND, TIE, as_verdicts, swap


def _paired(order1, order2) -> tuple[np.ndarray, np.ndarray]:
    o1 = as_verdicts(order1, "order1")
    o2 = as_verdicts(order2, "order2")
    if o1.shape != o2.shape or o1.ndim != 1:
        raise ValueError(
            f"order1 and order2 must be 1-d of one length, got {o1.shape} and {o2.shape}"
        )
    keep = (o1 != MISSING) & (o2 != MISSING)
    return o1[keep], o2[keep]


def consistent_pairs(order1, order2) -> np.ndarray:
    """Per pair: True where both orders name the same answer (``order1 == swap(order2)``).

    Ties, both-bad and INVALID are compared as they are, so INVALID in both orders counts
    as "the same verdict" (LLMBar's convention; it matters for their PaLM2 figure).
    """
    o1 = as_verdicts(order1, "order1")
    return o1 == swap(as_verdicts(order2, "order2"))


def position_consistency(order1, order2, level: float = LEVEL) -> Estimate:
    """Share of pairs judged the same in both presentation orders (Wilson interval).

    ``consistency = #{order1 == swap(order2)} / n`` over the ``n`` pairs judged in both
    orders (pairs with a MISSING verdict in either order are left out).

    Parameters
    ----------
    order1, order2 : array_like of int, shape (n,)
        Slot-terms verdicts with answer A shown first, and with answer B shown first.
    """
    o1, o2 = _paired(order1, order2)
    return proportion(int(np.sum(consistent_pairs(o1, o2))), o1.size, level)


@dataclass(frozen=True)
class PositionPreference:
    """Which slot an inconsistent judge favours.

    Attributes
    ----------
    primacy : Estimate
        Share of inconsistent pairs where the first-shown answer won in both orders.
    recency : Estimate
        Share of inconsistent pairs where the second-shown answer won in both orders.
    n_inconsistent : int
        Pairs whose verdicts differ between orders. The rest of them (``1 - primacy -
        recency``) involve a tie or an unparsable reply in one order.
    n_pairs : int
    """

    primacy: Estimate
    recency: Estimate
    n_inconsistent: int
    n_pairs: int

    @property
    def favoured_slot(self) -> str:
        """``"first"``, ``"second"`` or ``"none"`` (neither share's interval beats the other)."""
        if self.primacy.low > self.recency.high:
            return "first"
        if self.recency.low > self.primacy.high:
            return "second"
        return "none"

    def as_dict(self) -> dict:
        return {
            "primacy": self.primacy.as_dict(),
            "recency": self.recency.as_dict(),
            "n_inconsistent": self.n_inconsistent,
            "n_pairs": self.n_pairs,
        }


def position_preference(order1, order2, level: float = LEVEL) -> PositionPreference:
    """Primacy vs recency among the pairs a judge decides differently in the two orders.

    ``primacy = #{order1 = FIRST and order2 = FIRST} / #inconsistent`` (the judge picked
    whichever answer was shown first, both times); ``recency`` likewise with SECOND.
    Wilson intervals.
    """
    o1, o2 = _paired(order1, order2)
    inconsistent = ~consistent_pairs(o1, o2)
    m = int(inconsistent.sum())
    first = int(np.sum(inconsistent & (o1 == FIRST) & (o2 == FIRST)))
    second = int(np.sum(inconsistent & (o1 == SECOND) & (o2 == SECOND)))
    return PositionPreference(
        primacy=proportion(first, m, level),
        recency=proportion(second, m, level),
        n_inconsistent=m,
        n_pairs=int(o1.size),
    )


@dataclass(frozen=True)
class FirstSlotTest:
    """First-slot win rate under randomised order, with an exact binomial test.

    Attributes
    ----------
    win_rate : Estimate
        ``n_first / (n_first + n_second)`` with a Clopper-Pearson interval.
    p_value : float
        Two-sided exact binomial test of ``win_rate = 0.5`` (``scipy.stats.binomtest``).
    n_first, n_second, n_ties : int
        Decisive verdicts for each slot, and ties/both-bad (left out of the rate).
    flagged : bool
        ``p_value < alpha``: the judge has a position bias.
    """

    win_rate: Estimate
    p_value: float
    n_first: int
    n_second: int
    n_ties: int
    flagged: bool

    def as_dict(self) -> dict:
        return {
            "win_rate": self.win_rate.as_dict(),
            "p_value": self.p_value,
            "n_first": self.n_first,
            "n_second": self.n_second,
            "n_ties": self.n_ties,
            "flagged": self.flagged,
        }


def first_slot_win_rate(slot_verdicts, level: float = LEVEL, alpha: float = 0.05) -> FirstSlotTest:
    """How often the first-shown answer wins, when which answer is shown first is random.

    Under randomised order a judge without position bias picks slot 0 in half of its
    decisive verdicts, whatever the answers' quality, so ``H0: P(FIRST | decisive) =
    1/2`` and ``k = #FIRST ~ Binomial(#FIRST + #SECOND, 1/2)``. Ties and both-bad are
    counted but left out; INVALID and MISSING are ignored.

    Parameters
    ----------
    slot_verdicts : array_like of int, shape (n,)
        One slot-terms verdict per judged comparison.
    alpha : float
        Significance level for ``flagged``.
    """
    v = as_verdicts(slot_verdicts, "slot_verdicts")
    k = int(np.sum(v == FIRST))
    n = k + int(np.sum(v == SECOND))
    ties = int(np.sum((v == TIE) | (v == BOTH_BAD)))
    if n == 0:
        return FirstSlotTest(proportion(0, 0, level, "exact"), np.nan, 0, 0, ties, False)
    from scipy import stats  # (half a second to import: not at every process's start)

    p = float(stats.binomtest(k, n, 0.5).pvalue)
    return FirstSlotTest(proportion(k, n, level, "exact"), p, k, n - k, ties, p < alpha)
