"""The one Bradley-Terry fit every design ends with, and its Laplace covariance.

Designs keep a wins matrix ``wins[i, j]`` = (possibly fractional) wins of model ``i``
over model ``j``; a tie adds ½ to both cells (the Chatbot Arena convention). Every
ranking in this package comes from :func:`fit_scores` on that matrix, so switching the
solver is a change to this file only (it calls :func:`arena.ratings.fit_bt`; the unit
tests check it against ``choix.opt_pairwise``).
"""

from __future__ import annotations

import numpy as np

from arena.ratings import FIRST, PairwiseCounts
from arena.ratings.bt import build_design, fit_design

PRIOR = 0.1
"""Gaussian prior precision on the strengths, ``s ~ N(0, 1/PRIOR)`` (sd ≈ 3.2 logits).

Sparse designs (a bracket, the first rounds of Swiss or adaptive) often leave a model
unbeaten or winless, where the plain MLE does not exist (Zermelo 1929). A weak prior
keeps every fit finite; against the 100+ comparisons per model of a finished design it
is negligible. ``choix``'s ``alpha`` is ``PRIOR / 2``.
"""


def fit_scores(
    n_models: int, wins: np.ndarray, prior: float = PRIOR, start: np.ndarray | None = None
) -> np.ndarray:
    """MAP Bradley-Terry strengths from a wins matrix.

    Maximises ``Σ_ij wins[i, j] · log σ(s_i - s_j) - prior/2 · ||s||²`` with
    ``σ(z) = 1 / (1 + e^{-z})``, i.e. ``P(i beats j) = σ(s_i - s_j)``.

    Parameters
    ----------
    n_models : int
    wins : ndarray, shape (n_models, n_models)
        ``wins[i, j]``: wins of ``i`` over ``j`` (ties count ½ each way); diagonal ignored.
    prior : float
        Gaussian prior precision (``choix``'s ``alpha`` is ``prior / 2``); 0 = plain MLE,
        which exists only if the "beats" graph is strongly connected.
    start : ndarray, shape (n_models,), optional
        Warm start (the previous fit of a board that has gained a few votes): Newton
        then needs a step or two instead of five or more.

    Returns
    -------
    ndarray, shape (n_models,)
        Strengths in natural-log (logit) units.
    """
    wins = np.asarray(wins, dtype=np.float64)
    if wins.shape != (n_models, n_models):
        raise ValueError(f"wins: expected shape ({n_models}, {n_models}), got {wins.shape}")
    if np.any(wins < 0) or not np.all(np.isfinite(wins)):
        raise ValueError("wins: must be finite and non-negative")
    winner, loser = np.nonzero(~np.eye(n_models, dtype=bool) & (wins > 0))
    if winner.size == 0:
        return np.zeros(n_models)
    counts = PairwiseCounts.from_cells(
        [str(i) for i in range(n_models)],
        winner,
        loser,
        np.full(winner.size, FIRST),
        wins[winner, loser],
    )
    # arena.ratings.fit_bt, split open for the warm start
    design = build_design(counts, prior=prior)
    stats = design.row_stats(counts.weight)
    return fit_design(design, stats, counts.models, tol=1e-8, theta0=start).scores


def laplace_covariance(scores: np.ndarray, games: np.ndarray, prior: float = PRIOR) -> np.ndarray:
    """Covariance of the strengths under the Laplace (Gaussian) approximation.

    The inverse of the negative log-posterior's Hessian,
    ``Σ = (L + prior·I)⁻¹`` with ``L`` the graph Laplacian of edge weights
    ``games_ij · p_ij (1 - p_ij)``, ``p_ij = σ(s_i - s_j)`` (the Fisher information of
    BT comparisons). Without a prior only contrasts are identified and the
    Moore-Penrose inverse is returned (the sum-to-zero gauge).

    Parameters
    ----------
    scores : ndarray, shape (n,)
    games : ndarray, shape (n, n)
        Comparisons per pair, symmetric (``wins + wins.T``).
    prior : float

    Returns
    -------
    ndarray, shape (n, n)
    """
    scores = np.asarray(scores, dtype=np.float64)
    p = _sigmoid(scores[:, None] - scores[None, :])
    w = np.asarray(games, dtype=np.float64) * p * (1.0 - p)
    np.fill_diagonal(w, 0.0)
    H = np.diag(w.sum(axis=1)) - w
    if prior > 0:
        return np.linalg.inv(H + prior * np.eye(scores.size))
    return np.linalg.pinv(H, hermitian=True)


def difference_variance(cov: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``Var(s_i - s_j) = Σ_ii + Σ_jj - 2 Σ_ij`` for each pair ``(first[k], second[k])``."""
    d = np.diagonal(cov)
    return d[first] + d[second] - 2.0 * cov[first, second]


def _sigmoid(z) -> np.ndarray:
    """``σ(z) = 1 / (1 + e^{-z})`` as ``(1 + tanh(z/2)) / 2`` (no overflow)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))
