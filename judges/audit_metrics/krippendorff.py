"""Krippendorff's alpha for nominal, ordinal, interval and ratio data.

Written from Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability",
University of Pennsylvania, https://repository.upenn.edu/asc_papers/43.

Reliability data are ``m_u`` values (of up to ``n_coders`` coders) for each unit ``u``;
only units with ``m_u >= 2`` values are *pairable*. With ``n_uc`` the number of values
``c`` in unit ``u``, the coincidence matrix and its marginals are::

    o_ck = Σ_u n_uc (n_uk - [c = k]) / (m_u - 1),   n_c = Σ_k o_ck,   n = Σ_c n_c

and, with a squared difference ``δ²_ck`` for the level of measurement::

    α = 1 - D_o / D_e = 1 - (n - 1) · Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck

    nominal   δ²_ck = [c ≠ k]
    ordinal   δ²_ck = (Σ_{g = c..k} n_g  -  (n_c + n_k) / 2)²     (ranks of the values)
    interval  δ²_ck = (c - k)²
    ratio     δ²_ck = ((c - k) / (c + k))²

The interval is a bootstrap over units (pairable units resampled with replacement),
not Krippendorff's own resampling of pairable values.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .estimate import LEVEL, N_BOOT, Estimate, bootstrap_estimate, patterns

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def value_counts(data, missing=np.nan) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, how many coders gave each value.

    Parameters
    ----------
    data : array_like, shape (n_units, n_coders)
        One row per unit (item), one column per coder; ``missing`` (NaN by default)
        where a coder gave no value. Note the orientation: Krippendorff prints
        coders as rows.

    Returns
    -------
    counts : ndarray of int, shape (n_units, n_values)
    values : ndarray of float, shape (n_values,)
        The sorted distinct values.
    """
    d = np.asarray(data, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"data must be (units, coders), got shape {d.shape}")
    present = ~np.isnan(d) if np.isnan(missing) else (d != missing) & ~np.isnan(d)
    values, idx = np.unique(d[present], return_inverse=True)
    counts = np.zeros((d.shape[0], len(values)), dtype=np.int64)
    np.add.at(counts, (np.nonzero(present)[0], idx), 1)
    return counts, values


def _fixed_delta(values: np.ndarray, level: str) -> np.ndarray | None:
    """``δ²`` for the levels whose differences do not depend on the data's marginals."""
    c, k = np.meshgrid(values, values, indexing="ij")
    if level == "nominal":
        return (c != k).astype(np.float64)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        if np.any(values < 0):
            raise ValueError("ratio data must be non-negative")
        s = c + k
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(s > 0, ((c - k) / s) ** 2, 0.0)
    if level == "ordinal":
        return None
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def _ordinal_delta(n_c: np.ndarray) -> np.ndarray:
    """Ordinal ``δ²`` for marginals ``n_c`` of shape ``(r, V)``; returns ``(r, V, V)``."""
    cum = np.cumsum(n_c, axis=1)
    # For c <= k: Σ_{g=c..k} n_g = cum_k - cum_c + n_c
    between = cum[:, None, :] - cum[:, :, None] + n_c[:, :, None]
    between = np.maximum(between, np.swapaxes(between, 1, 2))  # symmetric: use c <= k
    return (between - (n_c[:, :, None] + n_c[:, None, :]) / 2) ** 2


def _alpha_statistic(unit_counts: np.ndarray, values: np.ndarray, level: str):
    """Vectorised alpha of pattern weights ``w (r, P)`` over pairable unit patterns."""
    n_uc = unit_counts.astype(np.float64)
    per_pair = 1.0 / (n_uc.sum(axis=1) - 1)  # 1 / (m_u - 1)
    delta = _fixed_delta(values, level)

    def alpha(w: np.ndarray) -> np.ndarray:
        wu = w * per_pair  # (r, P)
        o = np.einsum("rp,pc,pk->rck", wu, n_uc, n_uc)
        diag = wu @ n_uc  # the unit's own value is not paired with itself
        idx = np.arange(n_uc.shape[1])
        o[:, idx, idx] -= diag
        n_c = o.sum(axis=2)
        n = n_c.sum(axis=1)
        d = _ordinal_delta(n_c) if delta is None else delta[None]
        observed = (o * d).sum(axis=(1, 2))
        expected = np.einsum("rc,rck,rk->r", n_c, d, n_c)
        return 1.0 - (n - 1) * observed / expected

    return alpha


def krippendorff_alpha(
    data,
    level: Level = "nominal",
    rng=None,
    n_boot: int = N_BOOT,
    ci_level: float = LEVEL,
    missing=np.nan,
) -> Estimate:
    """Krippendorff's alpha of reliability data, with a bootstrap interval over units.

    See the module docstring for the formulas.

    Parameters
    ----------
    data : array_like, shape (n_units, n_coders)
        Values (category codes or numbers); ``missing`` (NaN by default) where a coder
        gave none. For verdict codes pass ``missing=-1`` (MISSING).
    level : {"nominal", "ordinal", "interval", "ratio"}
    rng, n_boot, ci_level
        Bootstrap settings (``n_boot=0``: point estimate only).

    Returns
    -------
    Estimate
        ``n`` is the number of pairable units. ``value`` is NaN when there is no
        variation at all (every value identical: ``D_e = 0``).
    """
    unit_counts, values = value_counts(data, missing)
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    pairable = unit_counts.sum(axis=1) >= 2
    (rows,), counts = patterns(unit_counts[pairable])
    statistic = _alpha_statistic(rows, values, level)
    return bootstrap_estimate(statistic, counts, rng, n_boot, ci_level)
