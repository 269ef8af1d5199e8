"""Repeat stability and perturbation flip rates."""

from __future__ import annotations

import numpy as np

from .estimate import LEVEL, N_BOOT, Estimate, bootstrap_estimate, patterns, proportion
from .estimate import weighted_mean_statistic as _mean
from .verdicts import BOTH_BAD, MISSING, N_VERDICTS, TIE, as_verdicts


def verdict_counts(verdicts) -> np.ndarray:
    """Per item, how many times each verdict code occurs.

    Parameters
    ----------
    verdicts : array_like of int, shape (n_items, n_repeats)
        MISSING marks an absent repeat.

    Returns
    -------
    ndarray of int, shape (n_items, N_VERDICTS)
    """
    v = as_verdicts(verdicts)
    if v.ndim != 2:
        raise ValueError(f"verdicts must be (items, repeats), got shape {v.shape}")
    rows = np.repeat(np.arange(v.shape[0]), v.shape[1])
    flat = v.ravel()
    keep = flat != MISSING
    out = np.zeros((v.shape[0], N_VERDICTS), dtype=np.int64)
    np.add.at(out, (rows[keep], flat[keep]), 1)
    return out


def modal_share(verdicts) -> tuple[np.ndarray, np.ndarray]:
    """Per item: share of its repeats that gave the most common verdict, and repeat count.

    ``share_i = max_c n_ic / m_i`` with ``m_i`` the item's non-missing repeats
    (NaN where ``m_i = 0``). INVALID is a verdict like any other here: a judge that
    sometimes fails to answer is unstable.
    """
    counts = verdict_counts(verdicts)
    m = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = counts.max(axis=1) / m
    return np.where(m > 0, share, np.nan), m


def repeat_stability(verdicts, rng=None, n_boot: int = N_BOOT, level: float = LEVEL) -> Estimate:
    """Mean share of the modal verdict over ``n`` re-runs of the same comparison.

    ``stability = (1 / N) Σ_i max_c n_ic / m_i`` over the ``N`` items with at least two
    repeats; 1 means every re-run agrees, ``1 / (number of verdicts)`` is the floor.
    The interval is a bootstrap over items.

    Parameters
    ----------
    verdicts : array_like of int, shape (n_items, n_repeats)
        Verdicts of identical re-runs (same order, same prompt); MISSING pads items
        with fewer repeats.
    """
    share, m = modal_share(verdicts)
    keep = m >= 2
    (values,), counts = patterns(share[keep])
    return bootstrap_estimate(_mean(values), counts, rng, n_boot, level)


def flip_rate(before, after, level: float = LEVEL, ties_flip: bool = True) -> Estimate:
    """Share of comparisons whose verdict changes under a perturbation (Wilson interval).

    ``before`` and ``after`` are answer-terms verdicts of the same pairs without and with
    the perturbation (swapped order, padded loser, authority cue, ...). Pairs with a
    MISSING verdict on either side are left out.

    Parameters
    ----------
    ties_flip : bool
        True: any change counts (A -> tie too). False: only A <-> B reversals count,
        over the pairs decisive on both sides.
    """
    b = as_verdicts(before, "before")
    a = as_verdicts(after, "after")
    keep = (b != MISSING) & (a != MISSING)
    b, a = b[keep], a[keep]
    # Both-bad is a tie; re-labelling one as the other is not a flip.
    b = np.where(b == BOTH_BAD, TIE, b)
    a = np.where(a == BOTH_BAD, TIE, a)
    if not ties_flip:
        decisive = (b <= 1) & (a <= 1)
        b, a = b[decisive], a[decisive]
    return proportion(int(np.sum(a != b)), b.size, level)
