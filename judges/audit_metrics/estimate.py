"""Point estimates with 95% intervals, and the item bootstrap every metric shares.

Proportions get a closed-form interval (Wilson score, or Clopper-Pearson where an exact
binomial test is reported next to it). Everything else is bootstrapped over *items*
(a pair, a prompt, a unit of reliability data): an item keeps all of its verdicts
together, so dependence inside an item is respected.

The bootstrap aggregates before it resamples (as FastChat's ``compute_bootstrap_bt``
does): items that look the same to a statistic are one *pattern* with a count, and
resampling ``n`` items with replacement is exactly a multinomial draw of ``n`` over the
patterns with probabilities ``count / n``. A statistic therefore sees a weight matrix
``(replicas, patterns)`` and never one row per item, and the cost depends on the number
of distinct patterns (a 5 x 5 confusion table has at most 25), not on the vote count.
Intervals are the 2.5 and 97.5 percentiles of the replicas (percentile bootstrap).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtri  # norm.ppf

LEVEL = 0.95
N_BOOT = 1000
# Upper bound on replicas x patterns held at once (float64): ~32 MB.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Estimate:
    """An estimate with its interval.

    Attributes
    ----------
    value : float
        The point estimate (NaN when undefined, e.g. no eligible items).
    low, high : float
        Interval ends at ``level`` (NaN when not computable).
    n : int
        Number of items the estimate is based on.
    method : str
        How the interval was obtained: ``"wilson"``, ``"exact"`` (Clopper-Pearson) or
        ``"bootstrap"``.
    level : float
        Coverage of the interval.
    """

    value: float
    low: float
    high: float
    n: int
    method: str
    level: float = LEVEL

    def excludes(self, x: float) -> bool:
        """True if ``x`` lies outside the interval."""
        return bool(x < self.low or x > self.high)

    def as_dict(self) -> dict:
        return asdict(self)


def as_rng(rng) -> np.random.Generator:
    """A ``Generator`` from a Generator, a seed, or None (seed 0: audits are reproducible)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _z(level: float) -> float:
    return float(ndtri(0.5 + level / 2))


def wilson_interval(k, n, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for ``k`` successes out of ``n`` (vectorised).

    ``(k + z²/2) / (n + z²)  ±  z / (n + z²) · sqrt(k (n - k) / n + z² / 4)``; NaN where
    ``n = 0``.
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = _z(level)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (k + z * z / 2) / (n + z * z)
        half = z / (n + z * z) * np.sqrt(k * (n - k) / n + z * z / 4)
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def proportion(k: int, n: int, level: float = LEVEL, method: str = "wilson") -> Estimate:
    """``k / n`` with a Wilson (default) or exact Clopper-Pearson interval."""
    k, n = int(k), int(n)
    if n == 0:
        return Estimate(np.nan, np.nan, np.nan, 0, method, level)
    if method == "wilson":
        low, high = wilson_interval(k, n, level)
        return Estimate(k / n, float(low), float(high), n, method, level)
    if method == "exact":
        from scipy import stats  # (half a second to import: not at every process's start)

        ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
        return Estimate(k / n, float(ci.low), float(ci.high), n, method, level)
    raise ValueError(f"method must be 'wilson' or 'exact', got {method!r}")


def patterns(*columns) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct item patterns and how many items share each.

    Parameters
    ----------
    *columns : array_like, shape (n,) or (n, d)
        Per-item data; row ``i`` of every column together is item ``i``'s pattern.

    Returns
    -------
    uniques : tuple of ndarray
        The columns restricted to one row per distinct pattern, shapes ``(P, ...)``.
    counts : ndarray of int, shape (P,)
    """
    cols = [np.asarray(c) for c in columns]
    n = len(cols[0])
    if n == 0:
        return tuple(cols), np.zeros(0, dtype=np.int64)
    flat = [c.reshape(n, -1).astype(np.float64) for c in cols]
    stacked = np.concatenate(flat, axis=1)
    _, first, counts = np.unique(stacked, axis=0, return_index=True, return_counts=True)
    return tuple(c[first] for c in cols), counts


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    counts,
    rng=None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and percentile interval of a statistic of item patterns.

    Parameters
    ----------
    statistic : callable
        Maps pattern weights ``w`` of shape ``(r, P)`` (how many times each pattern is
        in a sample of items) to ``r`` values, or to ``(r, q)`` for ``q`` quantities
        bootstrapped together. It must be vectorised over rows.
    counts : array_like of int, shape (P,)
        Items per pattern in the observed data.
    rng : Generator, int or None
    n_boot : int
        Bootstrap replicas (0: no interval).

    Returns
    -------
    value, low, high : ndarray, shape () or (q,)
        ``statistic(counts)`` and the ``(1 - level) / 2`` and ``(1 + level) / 2``
        quantiles over replicas (replicas where the statistic is undefined are ignored).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.asarray(statistic(counts[None, :].astype(np.float64)), dtype=np.float64)[0]
    nan = np.full(value.shape, np.nan)
    if n == 0:
        return nan, nan, nan
    if n_boot <= 0:
        return value, nan, nan
    gen = as_rng(rng)
    p = counts / n
    chunk = max(1, _CHUNK_CELLS // max(1, len(counts)))
    reps = []
    for start in range(0, n_boot, chunk):
        w = gen.multinomial(n, p, size=min(chunk, n_boot - start)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps.append(np.asarray(statistic(w), dtype=np.float64))
    samples = np.concatenate(reps)
    samples[~np.isfinite(samples)] = np.nan
    tail = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN
        low, high = np.nanquantile(samples, [tail, 1 - tail], axis=0)
    return value, low, high


def bootstrap_estimate(statistic, counts, rng=None, n_boot=N_BOOT, level=LEVEL) -> Estimate:
    """:func:`bootstrap` of one quantity as an :class:`Estimate` (``n`` = items)."""
    value, low, high = bootstrap(statistic, counts, rng, n_boot, level)
    return Estimate(float(value), float(low), float(high), int(np.sum(counts)), "bootstrap", level)


def bootstrap_estimates(statistic, counts, rng=None, n_boot=N_BOOT, level=LEVEL) -> list[Estimate]:
    """:func:`bootstrap` of ``q`` quantities at once (statistic returns ``(r, q)``)."""
    value, low, high = bootstrap(statistic, counts, rng, n_boot, level)
    n = int(np.sum(counts))
    return [
        Estimate(float(v), float(lo), float(hi), n, "bootstrap", level)
        for v, lo, hi in zip(
            np.atleast_1d(value), np.atleast_1d(low), np.atleast_1d(high), strict=True
        )
    ]


def weighted_mean_statistic(values) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic for :func:`bootstrap`: the item-weighted mean of per-pattern values."""
    values = np.asarray(values, dtype=np.float64)
    return lambda w: (w @ values) / w.sum(axis=1)


def ratio_statistic(numerator, denominator) -> Callable[[np.ndarray], np.ndarray]:
    """Statistic for :func:`bootstrap`: ``Σ w·num / Σ w·den`` (a ratio estimator)."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    return lambda w: (w @ num) / (w @ den)
