"""Verdict codes shared by every audit metric.

A pairwise verdict is a small non-negative integer, so arrays of verdicts can be
counted with ``np.bincount`` and compared element-wise. The first four are the winner
codes of :mod:`arena.vocabulary`; INVALID and MISSING are the audit's own:

========  =====  ==================================================================
code      value  meaning
========  =====  ==================================================================
FIRST     0      the answer shown first (slot 0, "left") wins
SECOND    1      the answer shown second (slot 1) wins
TIE       2      a tie
BOTH_BAD  3      both answers are bad (a kind of tie)
INVALID   4      the judge replied but no verdict could be parsed from the reply
MISSING   -1     no judgment at all (padding in matrices; always left out)
========  =====  ==================================================================

Slot terms and answer terms
---------------------------
Position metrics need verdicts in **slot terms** (which *position* won). Everything else
compares answers, so it wants **answer terms**: ``A`` (= 0) means the pair's first answer
wins whatever position it was shown in, ``B`` (= 1) the second. For a pair shown in its
own order (A first) both spellings agree; for the swapped order (B shown first) they
differ by :func:`swap`, which exchanges 0 and 1 and leaves every other code alone.
"""

from __future__ import annotations

import numpy as np

from arena.vocabulary import A_CODE, B_CODE, BOTH_BAD_CODE, TIE_CODE

# The winner codes of arena.vocabulary (which slot won), read here as positions.
FIRST = A_CODE
SECOND = B_CODE
TIE = TIE_CODE
BOTH_BAD = BOTH_BAD_CODE
INVALID = 4
MISSING = -1
N_VERDICTS = 5

A = FIRST  # answer terms: the pair's first answer wins
B = SECOND  # answer terms: the pair's second answer wins


def as_verdicts(verdicts, name: str = "verdicts") -> np.ndarray:
    """Validate an array of verdict codes and return it as ``int64``.

    Raises
    ------
    ValueError
        If a value is not one of ``MISSING, FIRST, SECOND, TIE, BOTH_BAD, INVALID``.
    """
    v = np.asarray(verdicts)
    if v.dtype.kind == "f":
        if not np.all(np.isfinite(v) & (v == np.round(v))):
            raise ValueError(f"{name}: verdict codes must be integers")
    elif v.dtype.kind not in "iub" and v.size:
        raise ValueError(f"{name}: verdict codes must be integers, got dtype {v.dtype}")
    v = v.astype(np.int64, copy=False)
    bad = (v < MISSING) | (v >= N_VERDICTS)
    if np.any(bad):
        raise ValueError(
            f"{name}: unknown verdict code {v[bad].flat[0]} (see judges.audit_metrics.verdicts)"
        )
    return v


def swap(verdicts) -> np.ndarray:
    """Exchange FIRST and SECOND (A and B); ties, invalid and missing are unchanged.

    Converts slot terms to answer terms for the swapped presentation order, and back.
    """
    v = as_verdicts(verdicts)
    out = v.copy()
    out[v == FIRST] = SECOND
    out[v == SECOND] = FIRST
    return out


def to_answer_terms(slot_verdicts, swapped) -> np.ndarray:
    """Slot-terms verdicts to answer terms, given whether each pair was shown swapped.

    Parameters
    ----------
    slot_verdicts : array_like of int, shape (n,)
    swapped : array_like of bool, shape (n,) or scalar
        True where answer B was shown first.
    """
    v = as_verdicts(slot_verdicts, "slot_verdicts")
    s = np.broadcast_to(np.asarray(swapped, dtype=bool), v.shape)
    return np.where(s, swap(v), v)


to_slot_terms = to_answer_terms  # the map is its own inverse


def is_decisive(verdicts) -> np.ndarray:
    """True where one answer wins (FIRST/SECOND, i.e. A/B)."""
    v = as_verdicts(verdicts)
    return (v == FIRST) | (v == SECOND)


def verdict_score(verdicts) -> np.ndarray:
    """Score of answer A: 1 for A, 0 for B, 0.5 for a tie or both-bad, NaN otherwise.

    This is Chatbot Arena's convention (a tie is half a win each way); INVALID and
    MISSING have no score.
    """
    v = as_verdicts(verdicts)
    table = np.array([1.0, 0.0, 0.5, 0.5, np.nan, np.nan])  # index -1 -> last (MISSING)
    return table[v]


def combine_orders(order1, order2) -> np.ndarray:
    """One answer-terms verdict per pair from its two presentation orders.

    ``order1``/``order2`` are slot-terms verdicts with A shown first / B shown first.
    The pair's verdict is A (or B) only when both orders name that answer; any other
    combination of valid verdicts is a TIE (TrustJudge's rule: an order-dependent
    verdict is no preference). INVALID in either order gives INVALID, MISSING in
    either gives MISSING.
    """
    o1 = as_verdicts(order1, "order1")
    o2 = swap(as_verdicts(order2, "order2"))
    out = np.where((o1 == o2) & ((o1 == A) | (o1 == B)), o1, TIE)
    out = np.where((o1 == INVALID) | (o2 == INVALID), INVALID, out)
    return np.where((o1 == MISSING) | (o2 == MISSING), MISSING, out)
