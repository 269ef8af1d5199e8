"""Agreement: accuracy on gold labels, raw agreement, Cohen's and Fleiss' kappa.

Labels are integers. For pairwise verdicts use the codes of :mod:`judges.audit_metrics.verdicts`
in **answer terms**; the kappas work on any integer labels (scores 1-10, categories).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from .estimate import LEVEL, N_BOOT, Estimate, bootstrap_estimate, patterns, proportion
from .verdicts import BOTH_BAD, MISSING, TIE, as_verdicts

# -- accuracy and raw agreement ----------------------------------------------------------


def accuracy(verdicts, gold, level: float = LEVEL) -> Estimate:
    """Share of items where the verdict equals the gold label (Wilson interval).

    Items whose verdict or gold label is MISSING are left out; an INVALID verdict is
    kept and counts as wrong (a judge that cannot answer is not right).

    Parameters
    ----------
    verdicts, gold : array_like of int, shape (n,)
        Answer-terms verdicts and gold labels (A, B, or TIE where ties are gold).
    """
    v = as_verdicts(verdicts, "verdicts")
    g = as_verdicts(gold, "gold")
    keep = (v != MISSING) & (g != MISSING)
    return proportion(int(np.sum(v[keep] == g[keep])), int(keep.sum()), level)


def raw_agreement(a, b, ties: bool = True, level: float = LEVEL) -> Estimate:
    """Share of items two raters give the same verdict (Wilson interval).

    Both-bad counts as a tie (FastChat's MT-Bench agreement: ``"tie"`` and
    ``"tie (bothbad)"`` agree). With ``ties=False`` the items where *either* rater says
    tie are left out ("w/o tie" in the MT-Bench paper), so the figure is agreement on
    which answer is better when both raters pick one. MISSING items are left out.
    """
    x = as_verdicts(a, "a")
    y = as_verdicts(b, "b")
    x = np.where(x == BOTH_BAD, TIE, x)
    y = np.where(y == BOTH_BAD, TIE, y)
    keep = (x != MISSING) & (y != MISSING)
    if not ties:
        keep &= (x != TIE) & (y != TIE)
    return proportion(int(np.sum(x[keep] == y[keep])), int(keep.sum()), level)


# -- Cohen's kappa -----------------------------------------------------------------------


def _disagreement_weights(k: int, weights: str | None) -> np.ndarray:
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(np.float64)
    if weights == "linear":
        return np.abs(i - j).astype(np.float64)
    if weights == "quadratic":
        return ((i - j) ** 2).astype(np.float64)
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def _kappa_statistic(ia: np.ndarray, ib: np.ndarray, k: int, weights: str | None):
    """Vectorised Cohen's kappa of pattern weights ``w (r, P)``; patterns are (ia, ib)."""
    d = _disagreement_weights(k, weights)
    ea = np.eye(k)[ia]  # (P, k)
    eb = np.eye(k)[ib]
    d_obs = d[ia, ib]  # disagreement of each pattern

    def kappa(w: np.ndarray) -> np.ndarray:
        n = w.sum(axis=1)
        rows = w @ ea  # (r, k) marginal of rater a
        cols = w @ eb
        observed = (w @ d_obs) / n
        expected = np.einsum("ri,ij,rj->r", rows, d, cols) / n**2
        return 1.0 - observed / expected

    return kappa


def cohen_kappa(
    a,
    b,
    weights: str | None = None,
    rng=None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    missing: int | None = MISSING,
) -> Estimate:
    """Cohen's kappa between two raters, with a bootstrap interval over items.

    ``κ = 1 - Σ_ij d_ij o_ij / Σ_ij d_ij e_ij`` where ``o`` is the observed confusion
    table (shares), ``e_ij = o_i· o_·j`` the table expected by chance from the raters'
    marginals, and ``d`` the disagreement weights: ``d_ij = [i ≠ j]`` (unweighted, so
    ``κ = (p_o - p_e) / (1 - p_e)``), ``|i - j|`` (linear) or ``(i - j)²`` (quadratic),
    with ``i, j`` the positions of the labels in their sorted union (as scikit-learn's
    ``cohen_kappa_score``).

    Parameters
    ----------
    a, b : array_like of int, shape (n,)
    weights : {None, "linear", "quadratic"}
    missing : int or None
        Items where either rater has this label are left out.
    """
    x = np.asarray(a)
    y = np.asarray(b)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"a and b must be 1-d of one length, got {x.shape} and {y.shape}")
    if missing is not None:
        keep = (x != missing) & (y != missing)
        x, y = x[keep], y[keep]
    labels, idx = np.unique(np.concatenate([x, y]), return_inverse=True)
    (ia, ib), counts = patterns(idx[: x.size], idx[x.size :])
    statistic = _kappa_statistic(
        ia.astype(np.intp), ib.astype(np.intp), max(len(labels), 1), weights
    )
    return bootstrap_estimate(statistic, counts, rng, n_boot, level)


def pairwise_kappas(ratings, rng=None, n_boot: int = N_BOOT, level: float = LEVEL) -> dict:
    """Cohen's kappa for every pair of raters (columns), keyed ``(i, j)`` with ``i < j``."""
    r = np.asarray(ratings)
    return {
        (i, j): cohen_kappa(r[:, i], r[:, j], rng=rng, n_boot=n_boot, level=level)
        for i, j in combinations(range(r.shape[1]), 2)
    }


# -- several raters ----------------------------------------------------------------------


def category_table(ratings, missing: int | None = MISSING) -> tuple[np.ndarray, np.ndarray]:
    """Per item, how many raters chose each category.

    Parameters
    ----------
    ratings : array_like of int, shape (n_items, n_raters)

    Returns
    -------
    table : ndarray of int, shape (n_items, n_categories)
    categories : ndarray, shape (n_categories,)
        The sorted distinct labels (``missing`` excluded).
    """
    r = np.asarray(ratings)
    if r.ndim != 2:
        raise ValueError(f"ratings must be (items, raters), got shape {r.shape}")
    present = np.ones(r.shape, dtype=bool) if missing is None else r != missing
    categories, idx = np.unique(r[present], return_inverse=True)
    table = np.zeros((r.shape[0], len(categories)), dtype=np.int64)
    rows = np.nonzero(present)[0]
    np.add.at(table, (rows, idx), 1)
    return table, categories


def human_majority(ratings, missing: int = MISSING) -> np.ndarray:
    """Each item's majority label: the label more than half of its raters gave.

    With three annotators that is "at least 2 of 3 agree". An item without a strict
    majority (all three differ; a 1-1 split when one label is missing) gets ``missing``,
    so it drops out of accuracy and kappa against the majority.

    Parameters
    ----------
    ratings : array_like of int, shape (n_items, n_raters)
    """
    table, categories = category_table(ratings, missing)
    out = np.full(len(table), missing, dtype=np.int64)
    if table.shape[1] == 0:
        return out
    top = table.argmax(axis=1)
    wins = 2 * table[np.arange(len(table)), top] > table.sum(axis=1)
    out[wins] = categories[top[wins]]
    return out


def fleiss_kappa_table(table, rng=None, n_boot: int = N_BOOT, level: float = LEVEL) -> Estimate:
    """Fleiss' kappa from a category table, with a bootstrap interval over items.

    With ``N`` items, ``m`` ratings per item and ``n_ij`` raters putting item ``i`` in
    category ``j``::

        p_j  = Σ_i n_ij / (N m)
        P_i  = (Σ_j n_ij² - m) / (m (m - 1))
        κ    = (mean_i P_i - Σ_j p_j²) / (1 - Σ_j p_j²)

    Parameters
    ----------
    table : array_like of int, shape (n_items, n_categories)
        Every row must sum to the same ``m >= 2`` (use Krippendorff's alpha for
        missing ratings).
    """
    t = np.asarray(table, dtype=np.int64)
    m = t.sum(axis=1)
    if t.size == 0:
        return Estimate(np.nan, np.nan, np.nan, 0, "bootstrap", level)
    if np.any(m != m[0]) or m[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    m = float(m[0])
    (rows,), counts = patterns(t)
    rows = rows.astype(np.float64)
    agreement = ((rows**2).sum(axis=1) - m) / (m * (m - 1))  # P_i per pattern

    def kappa(w: np.ndarray) -> np.ndarray:
        n = w.sum(axis=1)
        p = (w @ rows) / (n * m)[:, None]
        pe = (p**2).sum(axis=1)
        return ((w @ agreement) / n - pe) / (1 - pe)

    return bootstrap_estimate(kappa, counts, rng, n_boot, level)


def fleiss_kappa(ratings, rng=None, n_boot: int = N_BOOT, level: float = LEVEL) -> Estimate:
    """Fleiss' kappa of an ``(n_items, n_raters)`` label matrix (no missing labels).

    Raters need not be the same people across items (Fleiss 1971); use it for agreement
    among several judges or among human annotators. See :func:`fleiss_kappa_table`.
    """
    r = np.asarray(ratings)
    if np.any(r == MISSING):
        raise ValueError(
            "Fleiss' kappa needs every rating; use krippendorff_alpha for missing ones"
        )
    table, _ = category_table(r, missing=None)
    return fleiss_kappa_table(table, rng, n_boot, level)
