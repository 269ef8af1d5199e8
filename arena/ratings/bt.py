"""Bradley-Terry maximum likelihood on aggregated counts, by Newton's method.

Model
-----
Each model ``i`` has a strength ``s_i``. For a comparison with model ``i`` shown
first and ``j`` second, ``z = s_i - s_j + γ`` where ``γ`` is an optional position term
(the first-shown advantage, 0 unless ``position=True``).

- ``ties="half"`` (Chatbot Arena): ``P(first wins) = σ(z)``; a tie counts as half a
  win each way, i.e. a row with first-wins weight ``W`` out of ``T`` contributes
  ``W log σ(z) + (T - W) log σ(-z)``.
- ``ties="davidson"`` (Davidson 1970): with ``ν = exp(τ)``,
  ``P(first) = e^{z/2} / Z``, ``P(second) = e^{-z/2} / Z``, ``P(tie) = ν / Z``,
  ``Z = e^{z/2} + e^{-z/2} + ν``.

"Both bad" votes count as ties (``bothbad="tie"``, Chatbot Arena) or are dropped.
An optional Gaussian prior ``s ~ N(0, 1/prior)`` adds ``prior/2 · ||s||²`` to the
negative log-likelihood (the MAP estimate; ``choix``'s ``alpha`` is ``prior / 2``).

Solver
------
The negative log-likelihood is convex; its Hessian is a weighted graph Laplacian
(``n × n``, tiny even for hundreds of models). Newton's method with a backtracking
line search converges quadratically; strengths are identified only up to a shift, so
without a prior the Hessian is augmented with ``e eᵀ / n`` (``e`` = ones on the
strengths), which leaves every step with ``Σ s = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp

from .blas import one_blas_thread
from .counts import BOTH_BAD, FIRST, SECOND, TIE, PairwiseCounts
from .graph import strongly_connected_columns

Ties = Literal["half", "davidson"]
BothBad = Literal["tie", "drop"]


# -- design: cells -> likelihood rows -------------------------------------------------


@dataclass(frozen=True, eq=False)
class PairDesign:
    """Likelihood rows of a pairwise model and how count cells map onto them.

    Attributes
    ----------
    n_models : int
    first, second : ndarray of intp, shape (R,)
        Row ``r`` is about ``z_r = s[first[r]] - s[second[r]] + E_r · η``. Without a
        position term or covariates rows are unordered pairs (``first < second``).
    ties : {"half", "davidson"}
    position : bool
        ``E`` starts with a column of ones whose coefficient is ``γ``.
    prior : float
        Gaussian prior precision on the strengths ``s``.
    cell_row : ndarray of intp, shape (C,)
        Row of each count cell, ``-1`` for dropped cells.
    cell_stat : ndarray, shape (C, k)
        Statistics one unit of cell weight adds to its row: ``(wins_first, total)`` for
        ``ties="half"``, ``(first, second, tie)`` for Davidson.
    covariates : ndarray, shape (R, q), optional
        Per-row covariates (style control), coefficients ``β`` after ``γ`` in ``η``.
    covariate_prior : float
        Gaussian prior precision on ``β``.

    The parameter vector is ``θ = (s_1..s_n, γ?, β_1..β_q, log ν?)``.
    """

    n_models: int
    first: np.ndarray
    second: np.ndarray
    ties: str
    position: bool
    prior: float
    cell_row: np.ndarray
    cell_stat: np.ndarray
    covariates: np.ndarray | None = None
    covariate_prior: float = 0.0

    @property
    def n_rows(self) -> int:
        return self.first.size

    @property
    def n_stats(self) -> int:
        return self.cell_stat.shape[1]

    @property
    def n_extra(self) -> int:
        """Columns of ``E``: the position term and the covariates."""
        q = 0 if self.covariates is None else self.covariates.shape[1]
        return int(self.position) + q

    @property
    def n_params(self) -> int:
        return self.n_models + self.n_extra + int(self.ties == "davidson")

    def extra_columns(self) -> np.ndarray:
        """``E``, shape (R, n_extra)."""
        cols = [np.ones((self.n_rows, 1))] if self.position else []
        if self.covariates is not None:
            cols.append(self.covariates)
        return np.hstack(cols) if cols else np.zeros((self.n_rows, 0))

    def extra_prior(self) -> np.ndarray:
        """Prior precision of each entry of ``η`` (none on ``γ``)."""
        q = self.n_extra - int(self.position)
        return np.concatenate([np.zeros(int(self.position)), np.full(q, self.covariate_prior)])

    def incidence(self) -> sp.csr_matrix:
        """Sparse (R, n) matrix with +1 at ``first`` and -1 at ``second``."""
        r = np.arange(self.n_rows)
        data = np.r_[np.ones(self.n_rows), -np.ones(self.n_rows)]
        return sp.csr_matrix(
            (data, (np.r_[r, r], np.r_[self.first, self.second])),
            shape=(self.n_rows, self.n_models),
        )

    def stats_matrix(self) -> sp.csr_matrix:
        """Sparse (C, R·k) map from cell weights to flattened row statistics."""
        keep = self.cell_row >= 0
        c = np.flatnonzero(keep)
        k = self.n_stats
        rows = np.repeat(c, k)
        cols = (self.cell_row[keep][:, None] * k + np.arange(k)).ravel()
        data = self.cell_stat[keep].ravel()
        return sp.csr_matrix((data, (rows, cols)), shape=(self.cell_row.size, self.n_rows * k))

    def row_stats(self, cell_weight: np.ndarray) -> np.ndarray:
        """Aggregate cell weights (shape (C,)) into row statistics, shape (R, k)."""
        keep = self.cell_row >= 0
        out = np.zeros((self.n_rows, self.n_stats))
        np.add.at(out, self.cell_row[keep], self.cell_stat[keep] * cell_weight[keep, None])
        return out

    def with_prior(self, prior: float) -> PairDesign:
        return replace(self, prior=float(prior))


_HALF_STATS = {  # outcome relative to the row's orientation -> (wins_first, total)
    FIRST: (1.0, 1.0),
    SECOND: (0.0, 1.0),
    TIE: (0.5, 1.0),
    BOTH_BAD: (0.5, 1.0),
}
_DAVIDSON_STATS = {  # -> (first, second, tie)
    FIRST: (1.0, 0.0, 0.0),
    SECOND: (0.0, 1.0, 0.0),
    TIE: (0.0, 0.0, 1.0),
    BOTH_BAD: (0.0, 0.0, 1.0),
}


def build_design(
    counts: PairwiseCounts,
    *,
    ties: Ties = "half",
    bothbad: BothBad = "tie",
    position: bool = False,
    prior: float = 0.0,
) -> PairDesign:
    """Map the count cells of ``counts`` onto the likelihood rows of the chosen model."""
    if ties not in ("half", "davidson"):
        raise ValueError(f"ties: expected 'half' or 'davidson', got {ties!r}")
    if bothbad not in ("tie", "drop"):
        raise ValueError(f"bothbad: expected 'tie' or 'drop', got {bothbad!r}")
    if prior < 0:
        raise ValueError("prior: must be >= 0")
    n = counts.n_models
    first, second, outcome = counts.first, counts.second, counts.outcome.astype(np.intp)
    if not position:  # unordered rows: orient every cell as (min, max), flipping wins
        swap = first > second
        first, second = np.where(swap, second, first), np.where(swap, first, second)
        flip = np.array([SECOND, FIRST, TIE, BOTH_BAD])
        outcome = np.where(swap, flip[outcome], outcome)
    table = _HALF_STATS if ties == "half" else _DAVIDSON_STATS
    stat_of = np.array([table[o] for o in range(4)])
    dropped = (outcome == BOTH_BAD) if bothbad == "drop" else np.zeros(outcome.size, bool)
    dropped |= counts.weight <= 0
    key = first * n + second
    uniq, row = np.unique(key[~dropped], return_inverse=True)
    cell_row = np.full(key.size, -1, np.intp)
    cell_row[~dropped] = row
    return PairDesign(
        n_models=n,
        first=(uniq // n).astype(np.intp),
        second=(uniq % n).astype(np.intp),
        ties=ties,
        position=bool(position),
        prior=float(prior),
        cell_row=cell_row,
        cell_stat=stat_of[outcome],
    )


# -- likelihood ------------------------------------------------------------------------


def split_params(theta: np.ndarray, design: PairDesign):
    """``(s, η, τ)`` views of a parameter array of shape (p,) or (p, B); τ is None for BT."""
    n, m = design.n_models, design.n_extra
    tau = theta[n + m] if design.ties == "davidson" else None
    return theta[:n], theta[n : n + m], tau


def _predictor(theta: np.ndarray, design: PairDesign) -> np.ndarray:
    s, eta, _ = split_params(theta, design)
    z = s[design.first] - s[design.second]
    if design.n_extra:
        z = z + design.extra_columns() @ eta
    return z


def _row_terms(z, tau, stats, ties):
    """Per-row log-likelihood, dℓ/dz, dℓ/dτ and the negated second derivatives.

    Returns ``(loglik, l_z, l_tau, h_zz, h_ztau, h_tautau)``; the τ terms are None for
    ``ties="half"``.
    """
    if ties == "half":
        wins, total = stats[:, 0], stats[:, 1]
        p = 0.5 * (1.0 + np.tanh(0.5 * z))  # σ(z), overflow-free
        loglik = -(wins * np.logaddexp(0.0, -z) + (total - wins) * np.logaddexp(0.0, z))
        return loglik, wins - total * p, None, total * p * (1.0 - p), None, None
    a, b, t = stats[:, 0], stats[:, 1], stats[:, 2]
    n = a + b + t
    half = 0.5 * z
    log_z = np.logaddexp(np.logaddexp(half, -half), tau)
    qa, qb, qt = np.exp(half - log_z), np.exp(-half - log_z), np.exp(tau - log_z)
    loglik = a * half - b * half + t * tau - n * log_z
    l_z = 0.5 * (a - b) - 0.5 * n * (qa - qb)
    l_tau = t - n * qt
    h_zz = n * (0.25 * (qa + qb) - 0.25 * (qa - qb) ** 2)
    h_ztau = -0.5 * n * qt * (qa - qb)
    h_tautau = n * qt * (1.0 - qt)
    return loglik, l_z, l_tau, h_zz, h_ztau, h_tautau


def _penalty(theta: np.ndarray, design: PairDesign) -> float:
    s, eta, _ = split_params(theta, design)
    return 0.5 * (design.prior * float(s @ s) + float(design.extra_prior() @ eta**2))


def log_likelihood(theta: np.ndarray, design: PairDesign, stats: np.ndarray) -> float:
    """ℓ(θ), the log-likelihood without the prior."""
    _, _, tau = split_params(theta, design)
    return float(_row_terms(_predictor(theta, design), tau, stats, design.ties)[0].sum())


def objective(theta: np.ndarray, design: PairDesign, stats: np.ndarray) -> float:
    """Penalised negative log-likelihood ``-ℓ(θ) + prior/2 · ||s||² + Σ prior_β/2 · β²``."""
    return -log_likelihood(theta, design, stats) + _penalty(theta, design)


def gradient(theta: np.ndarray, design: PairDesign, stats: np.ndarray) -> np.ndarray:
    """Gradient of :func:`objective`, shape (p,)."""
    s, eta, tau = split_params(theta, design)
    _, l_z, l_tau, *_ = _row_terms(_predictor(theta, design), tau, stats, design.ties)
    n, m = design.n_models, design.n_extra
    g = np.empty(design.n_params)
    g[:n] = np.bincount(design.second, l_z, n) - np.bincount(design.first, l_z, n)
    g[:n] += design.prior * s
    g[n : n + m] = -(design.extra_columns().T @ l_z) + design.extra_prior() * eta
    if tau is not None:
        g[n + m] = -l_tau.sum()
    return g


def hessian(theta: np.ndarray, design: PairDesign, stats: np.ndarray) -> np.ndarray:
    """Hessian of :func:`objective`, shape (p, p) (singular without a prior on ``s``).

    With ``z = X θ`` (``X = [incidence, E]``) the BT block is ``Xᵀ diag(h_zz) X``;
    Davidson adds the ``τ`` row ``Xᵀ h_zτ`` and corner ``Σ h_ττ``.
    """
    _, _, tau = split_params(theta, design)
    _, _, _, h_zz, h_zt, h_tt = _row_terms(_predictor(theta, design), tau, stats, design.ties)
    n, m = design.n_models, design.n_extra
    first, second = design.first, design.second
    E = design.extra_columns()
    H = np.zeros((design.n_params, design.n_params))
    cells = np.concatenate(
        [first * (n + 1), second * (n + 1), first * n + second, second * n + first]
    )
    weights = np.concatenate([h_zz, h_zz, -h_zz, -h_zz])
    H[:n, :n] = np.bincount(cells, weights, n * n).reshape(n, n)
    H[:n, :n] += design.prior * np.eye(n)

    def inc_t(v):  # incidence.T @ v, v of shape (R,) or (R, q)
        if v.ndim == 1:
            return np.bincount(first, v, n) - np.bincount(second, v, n)
        return np.stack([inc_t(col) for col in v.T], axis=1)

    if m:
        H[:n, n : n + m] = inc_t(h_zz[:, None] * E)
        H[n : n + m, :n] = H[:n, n : n + m].T
        H[n : n + m, n : n + m] = E.T @ (h_zz[:, None] * E) + np.diag(design.extra_prior())
    if tau is not None:
        k = n + m
        H[:n, k] = H[k, :n] = inc_t(h_zt)
        H[n:k, k] = H[k, n:k] = E.T @ h_zt
        H[k, k] = h_tt.sum()
    return H


def augmented_hessian(theta, design, stats) -> np.ndarray:
    """Hessian plus ``e eᵀ / n`` on the strengths when there is no prior (see module doc)."""
    H = hessian(theta, design, stats)
    n = design.n_models
    if design.prior == 0.0 and n:
        H[:n, :n] += 1.0 / n
    return H


# -- fitting -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BTFit:
    """A fitted pairwise model.

    Attributes
    ----------
    models : tuple of str
    scores : ndarray, shape (n,)
        Natural-log strengths ``s`` (mean zero without a prior).
    position : float or None
        ``γ``, the log-odds advantage of the first-shown answer (``position=True``).
    coefficients : ndarray, shape (q,)
        Covariate coefficients ``β`` (style control); empty without covariates.
    tie_log_nu : float or None
        ``log ν`` of the Davidson tie model.
    log_likelihood : float
    n_iter : int
    converged : bool
        False if Newton did not settle, or if no maximum-likelihood estimate exists (the
        strengths diverge: see :func:`arena.ratings.graph.check_graph`).
    mle_exists : bool
        The "beats" graph is strongly connected (always True with a prior).
    hessian : ndarray, shape (p, p)
        Augmented Hessian at the optimum (the bootstrap's preconditioner).
    design : PairDesign
    stats : ndarray, shape (R, k)
    """

    models: tuple[str, ...]
    scores: np.ndarray
    position: float | None
    coefficients: np.ndarray
    tie_log_nu: float | None
    log_likelihood: float
    n_iter: int
    converged: bool
    mle_exists: bool
    hessian: np.ndarray
    design: PairDesign
    stats: np.ndarray
    params: np.ndarray


def fit_bt(
    counts: PairwiseCounts,
    *,
    ties: Ties = "half",
    bothbad: BothBad = "tie",
    position: bool = False,
    prior: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> BTFit:
    """Maximum-likelihood (or MAP) Bradley-Terry strengths of ``counts``.

    Parameters
    ----------
    counts : PairwiseCounts
    ties : {"half", "davidson"}
    bothbad : {"tie", "drop"}
    position : bool
        Fit a first-shown advantage ``γ`` (needs data whose presentation order varies).
    prior : float
        Gaussian prior precision on the strengths (0 = plain MLE).
    tol : float
        Stop when the largest Newton step is below ``tol`` (natural-log units).

    Returns
    -------
    BTFit

    Notes
    -----
    Without a prior the MLE exists only if the "beats" graph is strongly connected
    (Zermelo 1929; Ford 1957); :func:`arena.ratings.graph.check_graph` tells, and the
    leaderboard adds a small prior when it is not. Here such a fit is returned with
    ``mle_exists=False, converged=False`` (Newton stops where the gradient vanishes
    numerically, an arbitrary point on the way to infinity).
    """
    design = build_design(counts, ties=ties, bothbad=bothbad, position=position, prior=prior)
    stats = design.row_stats(counts.weight)
    return fit_design(design, stats, counts.models, tol=tol, max_iter=max_iter)


def fit_design(design, stats, models, *, tol=1e-10, max_iter=100, theta0=None) -> BTFit:
    """Newton's method with backtracking on :func:`objective` (see :func:`fit_bt`)."""
    with one_blas_thread():
        return _newton(design, stats, models, tol=tol, max_iter=max_iter, theta0=theta0)


def _newton(design, stats, models, *, tol, max_iter, theta0) -> BTFit:
    theta = np.zeros(design.n_params) if theta0 is None else np.array(theta0, float)
    if design.ties == "davidson":
        _check_davidson(stats)
        if theta0 is None:
            theta[-1] = _initial_tau(stats)
    f = objective(theta, design, stats)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported after the loop
        g = gradient(theta, design, stats)
        step = -_solve(augmented_hessian(theta, design, stats), g)
        t = 1.0
        while True:  # backtracking: Newton alone is not globally convergent
            candidate = theta + t * step
            f_new = objective(candidate, design, stats)
            # Armijo, with slack for rounding: near the optimum f changes by less than
            # its own rounding error and a strict test would stall on a correct step
            if f_new <= f + 1e-4 * t * (g @ step) + 1e-12 * abs(f) or t < 1e-8:
                break
            t *= 0.5
        theta, f = candidate, f_new
        if np.max(np.abs(step)) < tol:  # the full Newton step: nothing left to gain
            converged = True
            break
    n = design.n_models
    exists = design.prior > 0.0 or _mle_exists(design, stats)
    if design.prior == 0.0 and n:  # the likelihood ignores a common shift: report mean 0
        theta[:n] -= theta[:n].mean()
    s, eta, tau = split_params(theta, design)
    return BTFit(
        models=tuple(models),
        scores=s.copy(),
        position=float(eta[0]) if design.position else None,
        coefficients=eta[int(design.position) :].copy(),
        tie_log_nu=float(tau) if tau is not None else None,
        log_likelihood=log_likelihood(theta, design, stats),
        n_iter=it,
        converged=converged and exists and bool(np.all(np.isfinite(theta))),
        mle_exists=exists,
        hessian=augmented_hessian(theta, design, stats),
        design=design,
        stats=stats,
        params=theta,
    )


def _mle_exists(design: PairDesign, stats: np.ndarray) -> bool:
    if design.ties == "half":
        first, second = stats[:, 0] > 0, stats[:, 1] - stats[:, 0] > 0
    else:
        first, second = stats[:, 0] + stats[:, 2] > 0, stats[:, 1] + stats[:, 2] > 0
    return bool(
        strongly_connected_columns(
            design.n_models, design.first, design.second, first[:, None], second[:, None]
        )[0]
    )


def _solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(H, g)
    except np.linalg.LinAlgError:  # a disconnected graph without a prior
        return np.linalg.lstsq(H, g, rcond=None)[0]


def _initial_tau(stats: np.ndarray) -> float:
    """log ν from the overall tie share: equal strengths give P(tie) = ν / (2 + ν)."""
    a, b, t = stats.sum(axis=0)
    share = t / (a + b + t)
    return float(np.log(2.0 * share / (1.0 - share)))


def _check_davidson(stats: np.ndarray) -> None:
    """Davidson's ν has no finite MLE without ties (ν → 0) or without decisive votes."""
    if stats[:, 2].sum() > 0 and stats[:, :2].sum() > 0:
        return
    raise ValueError("ties: the Davidson model needs both ties and decisive votes in the data")


def win_probability(fit: BTFit, i: int, j: int) -> float:
    """P(model i beats model j) under ``fit``, position-neutral, ties counted half."""
    z = fit.scores[i] - fit.scores[j]
    return float(0.5 * (1.0 + np.tanh(0.5 * z)))
