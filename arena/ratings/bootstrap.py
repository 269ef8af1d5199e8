"""Bootstrap confidence intervals for pairwise ratings, all replicas solved at once.

Resampling
----------
The bootstrap resamples whole *units* (one vote, both orders of one LLM comparison,
one K-wise vote). Identical units are stored once with a multiplicity ``m_u``
(``N = Σ m_u`` units in all), so a replica is a draw ``X ~ Multinomial(N, m / N)``
over unit types — exactly the law of resampling the N units with replacement.

The multinomial draw is made by Poissonisation, which is exact: draw independent
``X_u ~ Poisson(c · m_u)``; given their total ``T``, ``X`` is ``Multinomial(T, m / N)``.
If ``T < N`` add an independent ``Multinomial(N - T, m / N)`` (``N - T`` categorical
draws); if ``T > N`` remove ``T - N`` of the drawn units uniformly without
replacement. Either way the result is ``Multinomial(N, m / N)``. With
``c = 1 - 2/√N`` the total rarely overshoots and the top-up is ~2√N alias-table
draws, so a replica costs one Poisson variate per unit type — about 3× cheaper
than numpy's conditional binomials at Chatbot Arena scale.

Solving
-------
Every replica is a small perturbation of the full data, so each is solved from the
full-data MLE ``θ̂`` by the chord (simplified Newton) iteration
``θ ← θ - H⁻¹ ∇f_b(θ)`` with the one full-data Hessian ``H`` of
:func:`arena.ratings.bt.fit_bt`, Anderson-accelerated. All replicas of a block advance
together: per iteration one gather, one sigmoid and one sparse product over a
(rows × replicas) array. On Chatbot Arena the plain iteration contracts by ~0.12 per
step; with acceleration ``tol = 1e-8`` takes about 7 gradient evaluations. Without a
prior, a replica whose "beats" graph is not strongly connected has no MLE (a model
without a win in that resample runs to -∞); such replicas are detected exactly
(:func:`arena.ratings.graph.strongly_connected_columns`), solved with
:data:`FALLBACK_PRIOR` and counted in ``n_regularised``.

Intervals
---------
Percentile intervals of the replica ratings (anchored per replica);
``Rank(UB) = 1 + #{j : lower_j > upper_i}``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .bt import BTFit, PairDesign, fit_bt, fit_design, split_params
from .counts import PairwiseCounts, Units, _dedupe_units
from .graph import strongly_connected_columns
from .scale import Anchor, to_rating

FALLBACK_PRIOR = 0.1  # N(0, 10): ~550 rating points of prior sd, only for degenerate replicas
BLOCK = 125  # replicas drawn and solved together (fixed: the draws depend on it)


# -- resampling --------------------------------------------------------------------------


def multinomial_replicas(
    multiplicity: np.ndarray, n_replicas: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_replicas`` exact draws of ``Multinomial(N, m / N)``, ``N = Σ m``.

    Parameters
    ----------
    multiplicity : ndarray of int, shape (U,)
    n_replicas : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (U, n_replicas)
        One column per replica (unit-major, the layout the statistics product wants).
    """
    return MultinomialSampler(multiplicity).draw(n_replicas, rng)


class MultinomialSampler:
    """Exact ``Multinomial(N, m / N)`` columns by Poissonisation (see module doc).

    The Poisson means are ``m (1 - δ)`` with ``δ = 2 / √N``, so a column's total
    overshoots ``N`` only with probability ≈ Φ(-2) (those few lose their extra units
    uniformly); the shortfall, about ``2√N`` units, is topped up with categorical draws
    from an integer alias table (Walker 1977, Vose 1991: exact, O(1) per draw).
    """

    def __init__(self, multiplicity: np.ndarray):
        self.m = np.asarray(multiplicity, np.int64)
        self.total = int(self.m.sum())
        self.shrink = 1.0 - min(0.5, 2.0 / np.sqrt(max(self.total, 1)))
        self.threshold, self.alias = _alias_table(self.m)

    def draw(self, n_replicas: int, rng: np.random.Generator) -> np.ndarray:
        means = (self.m * self.shrink)[:, None]
        draws = rng.poisson(means, size=(self.m.size, n_replicas))
        return self._condition(draws, rng)

    def categorical(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` independent unit types drawn with probabilities ``m / N``."""
        bucket = rng.integers(0, self.m.size, k)
        stay = rng.integers(0, self.total, k) < self.threshold[bucket]
        return np.where(stay, bucket, self.alias[bucket])

    def _condition(self, draws, rng):
        """Turn Poisson columns into multinomial columns of exactly N units (exact)."""
        total, m = self.total, self.m
        deficit = total - draws.sum(axis=0)
        short = np.flatnonzero(deficit > 0)
        if short.size:  # add Multinomial(N - T, m / N)
            k = deficit[short]
            picks = self.categorical(int(k.sum()), rng)
            np.add.at(draws.reshape(-1), picks * draws.shape[1] + np.repeat(short, k), 1)
        over = np.flatnonzero(deficit < 0)
        if over.size:  # remove T - N of the drawn units, uniformly without replacement
            k = -deficit[over]
            cum = np.cumsum(draws[:, over], axis=0)  # (U, q): unit boundaries per replica
            positions = np.split(_distinct_positions(cum[-1], k, rng), np.cumsum(k)[:-1])
            for j, b in enumerate(over):
                units = np.searchsorted(cum[:, j], positions[j], side="right")
                draws[:, b] -= np.bincount(units, minlength=m.size)
        return draws


def _alias_table(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer alias table: pick bucket j uniformly, keep j if a uniform integer in
    [0, N) is below ``threshold[j]``, else take ``alias[j]``: P(u) = m_u / N exactly."""
    size, total = m.size, int(m.sum())
    scaled = (m * size).tolist()  # bucket capacity is N
    threshold = np.full(size, total, np.int64)
    alias = np.arange(size)
    small = [u for u in range(size) if scaled[u] < total]
    large = [u for u in range(size) if scaled[u] >= total]
    while small and large:
        lo, hi = small.pop(), large.pop()
        threshold[lo], alias[lo] = scaled[lo], hi
        scaled[hi] -= total - scaled[lo]
        (small if scaled[hi] < total else large).append(hi)
    return threshold, alias


def _distinct_positions(population, k, rng):
    """For each j, ``k[j]`` distinct uniform positions in ``[0, population[j])``, sorted.

    Draw with replacement, then redraw every repeated entry until none is left. Each
    step treats all positions alike, so the final set is a uniform ``k[j]``-subset.
    Rows are short next to their population (~1,300 of 1.67M): few repeats, few rounds.
    """
    rows = np.repeat(np.arange(k.size), k)
    bounds = np.repeat(population, k)
    positions = rng.integers(0, bounds)
    stride = int(population.max()) + 1
    while True:
        key = rows * stride + positions
        order = np.argsort(key)
        repeat = order[1:][key[order[1:]] == key[order[:-1]]]
        if repeat.size == 0:  # sorted by row, then position: fast searchsorted later
            return positions[order]
        positions[repeat] = rng.integers(0, bounds[repeat])


def unit_stats(units: Units, design: PairDesign) -> Units:
    """Unit types mapped to flattened row statistics (U', R·k), identical ones merged.

    A tie and a both-bad vote on the same pair are the same thing to a half-tie model,
    so merging shrinks the draw (Chatbot Arena: 13,621 cells -> 10,285 unit types).
    """
    to_stats = (units.members @ design.stats_matrix()).tocsr()
    return _dedupe_units(to_stats, units.multiplicity)


def replica_stats(
    merged: Units, design: PairDesign, n_replicas: int, rng, sampler=None, to_stats=None
) -> np.ndarray:
    """Row statistics of ``n_replicas`` bootstrap replicas, shape (k, R, B)."""
    sampler = sampler or MultinomialSampler(merged.multiplicity)
    to_stats = merged.members.T.tocsr() if to_stats is None else to_stats
    draws = sampler.draw(n_replicas, rng)
    flat = to_stats @ draws.astype(np.float64)  # (R·k, B)
    stats = flat.reshape(design.n_rows, design.n_stats, n_replicas)
    return np.ascontiguousarray(stats.transpose(1, 0, 2))


# -- batched chord solver ------------------------------------------------------------


def _sigmoid_inplace(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^{-z}), computed in place (overflow gives exactly 0)."""
    np.negative(z, out=z)
    with np.errstate(over="ignore"):
        np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)
    return z


def batched_gradient(
    theta: np.ndarray,
    design: PairDesign,
    stats: np.ndarray,
    inc_t: sp.csr_matrix,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient of the penalised negative log-likelihood for many replicas.

    Parameters
    ----------
    theta : ndarray, shape (p, B)
    stats : ndarray, shape (k, R, B)
        Row statistics, statistic-major so that each ``stats[j]`` is contiguous.
    inc_t : sparse (n, R)
        Transposed incidence matrix, ``design.incidence().T``.
    extra : ndarray, shape (R, m), optional
        ``design.extra_columns()`` (position term, covariates).

    Returns
    -------
    ndarray, shape (p, B)
    """
    n, m = design.n_models, design.n_extra
    s, eta, tau = split_params(theta, design)
    z = s[design.first]
    z -= s[design.second]
    if m:
        z += extra @ eta
    grad = np.empty_like(theta)
    if design.ties == "half":
        p = _sigmoid_inplace(z)
        np.multiply(stats[1], p, out=p)
        l_z = np.subtract(stats[0], p, out=p)  # W - T σ(z)
    else:
        a, b, t = stats
        half = 0.5 * z
        log_norm = np.logaddexp(np.logaddexp(half, -half), tau)
        qa, qb, qt = np.exp(half - log_norm), np.exp(-half - log_norm), np.exp(tau - log_norm)
        total = a + b + t
        l_z = 0.5 * (a - b) - 0.5 * total * (qa - qb)
        grad[n + m] = -(t - total * qt).sum(axis=0)
    grad[:n] = -(inc_t @ l_z)
    if design.prior:
        grad[:n] += design.prior * s
    if m:
        grad[n : n + m] = -(extra.T @ l_z) + design.extra_prior()[:, None] * eta
    return grad


def chord_solve(
    x0: np.ndarray,
    h_inv: np.ndarray,
    gradient,
    shrink=None,
    *,
    tol: float = 1e-8,
    max_iter: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``∇f_b(x_b) = 0`` for every column ``b`` by the accelerated chord iteration.

    The chord map is ``G(x) = x - H⁻¹ ∇f_b(x)`` with residual ``r = G(x) - x``.
    Anderson mixing with one previous iterate (Walker & Ni 2011),
    ``x⁺ = x + r - γ (Δx + Δr)``, ``γ = <Δr, r> / <Δr, Δr>`` per column, cuts the
    iterations by about a quarter. A column stops when ``max |r| < tol``.

    Parameters
    ----------
    x0 : ndarray, shape (p, B)
        Start (the full-data estimate in every column).
    h_inv : ndarray, shape (p, p)
        Inverse of the full-data Hessian.
    gradient : callable
        ``gradient(x)`` for the active columns, shape (p, b).
    shrink : callable, optional
        ``shrink(keep)`` is told which active columns stay (boolean mask) when some
        converge, so that ``gradient`` can drop their data.

    Returns
    -------
    x : ndarray, shape (p, B)
    converged : ndarray of bool, shape (B,)
    """
    n_col = x0.shape[1]
    out = x0.copy()
    converged = np.zeros(n_col, bool)
    active = np.arange(n_col)
    x = x0.copy()
    prev_x = prev_r = None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(max_iter):
            r = -(h_inv @ gradient(x))
            done = np.max(np.abs(r), axis=0) < tol
            out[:, active[done]] = (x + r)[:, done]
            converged[active[done]] = True
            if prev_x is None:
                step = r
            else:
                dx, dr = x - prev_x, r - prev_r
                gamma = np.einsum("pb,pb->b", dr, r) / np.einsum("pb,pb->b", dr, dr)
                step = r - np.where(np.isfinite(gamma), gamma, 0.0) * (dx + dr)
            prev_x, prev_r, x = x, r, x + step
            if done.all():
                break
            if done.any():  # shrink the working set to the columns still moving
                keep = ~done
                active, x, prev_x, prev_r = (
                    active[keep],
                    x[:, keep],
                    prev_x[:, keep],
                    prev_r[:, keep],
                )
                if shrink is not None:
                    shrink(keep)
        rest = ~converged[active]
        out[:, active[rest]] = x[:, rest]
    return out, converged & np.all(np.isfinite(out), axis=0)


def solve_replicas(
    fit: BTFit,
    stats: np.ndarray,
    *,
    tol: float = 1e-8,
    max_iter: int = 60,
    h_inv: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve pairwise replicas (row statistics ``stats``, shape (k, R, B)) from ``fit``.

    Returns ``(theta, converged)`` with ``theta`` of shape (p, B).
    """
    design = fit.design
    inc_t = design.incidence().T.tocsr()
    extra = design.extra_columns() if design.n_extra else None
    if h_inv is None:
        h_inv = np.linalg.inv(fit.hessian)
    data = {"stats": stats}

    def gradient(x):
        return batched_gradient(x, design, data["stats"], inc_t, extra)

    def shrink(keep):
        data["stats"] = np.ascontiguousarray(data["stats"][:, :, keep])

    x0 = np.repeat(fit.params[:, None], stats.shape[2], axis=1)
    return chord_solve(x0, h_inv, gradient, shrink, tol=tol, max_iter=max_iter)


# -- public entry point -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Bootstrap distribution of the ratings and its summaries.

    Attributes
    ----------
    ratings : ndarray, shape (B, n)
        Replica ratings on the rating scale (anchored per replica).
    lower, upper : ndarray, shape (n,)
        Percentile interval ends.
    rank_ub : ndarray of int, shape (n,)
        ``1 + #{j : lower_j > upper_i}``.
    params : ndarray, shape (B, p)
        Raw replica parameters (strengths, then γ / log ν when fitted).
    n_regularised : int
        Replicas without an MLE, refitted with :data:`FALLBACK_PRIOR`.
    """

    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rank_ub: np.ndarray
    params: np.ndarray
    n_regularised: int
    seed: int | None
    ci: float


def rank_upper_bound(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank(UB)_i = 1 + number of models whose lower bound exceeds ``upper_i``."""
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


def percentile_interval(samples: np.ndarray, ci: float = 0.95):
    """(lower, upper) percentiles of ``samples`` along axis 0 (linear interpolation)."""
    tail = 50.0 * (1.0 - ci)
    lo, hi = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    return lo, hi


def bootstrap_bt(
    counts: PairwiseCounts,
    n_replicas: int = 1000,
    seed: int | np.random.Generator | None = 0,
    *,
    ties: str = "half",
    bothbad: str = "tie",
    position: bool = False,
    prior: float = 0.0,
    anchor: Anchor | None = None,
    ci: float = 0.95,
    tol: float = 1e-8,
    fit: BTFit | None = None,
    threads: int = 2,
) -> BootstrapResult:
    """Bootstrap the Bradley-Terry ratings of ``counts``.

    Parameters
    ----------
    counts : PairwiseCounts
    n_replicas : int
    seed : int, Generator or None
        Seeds ``np.random.default_rng``. Replicas are drawn in fixed blocks of
        :data:`BLOCK`, each from its own child generator (``rng.spawn``), so the
        result depends on the seed only — not on ``threads`` or the machine.
    ties, bothbad, position, prior
        Model options, as in :func:`arena.ratings.bt.fit_bt`.
    anchor : (model, rating), optional
    ci : float
        Coverage of the percentile interval.
    tol : float
        Replica convergence (natural-log units; 1e-8 ≈ 2e-6 rating points).
    fit : BTFit, optional
        The full-data fit with the same options, if already computed (its design,
        prior and covariates are used).
    threads : int
        Blocks solved concurrently (numpy releases the GIL in the heavy loops).

    Returns
    -------
    BootstrapResult
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if fit is None:
        fit = fit_bt(counts, ties=ties, bothbad=bothbad, position=position, prior=prior)
    merged = unit_stats(counts.unit_types(), fit.design)
    sampler = MultinomialSampler(merged.multiplicity)
    to_stats = merged.members.T.tocsr()
    solver = _ReplicaSolver(fit, tol)
    starts = list(range(0, n_replicas, BLOCK))
    children = rng.spawn(len(starts))

    def run_block(k: int):
        size = min(BLOCK, n_replicas - starts[k])
        stats = replica_stats(merged, fit.design, size, children[k], sampler, to_stats)
        return solver.solve(stats)

    if threads > 1 and len(starts) > 1:
        with _single_threaded_blas(), ThreadPoolExecutor(max_workers=threads) as pool:
            blocks = list(pool.map(run_block, range(len(starts))))
    else:
        blocks = [run_block(k) for k in range(len(starts))]
    theta = np.concatenate([t for t, _ in blocks], axis=1)
    n = fit.design.n_models
    ratings = to_rating(theta[:n].T, counts.models, anchor)
    lower, upper = percentile_interval(ratings, ci)
    return BootstrapResult(
        ratings=ratings,
        lower=lower,
        upper=upper,
        rank_ub=rank_upper_bound(lower, upper),
        params=theta.T.copy(),
        n_regularised=sum(bad for _, bad in blocks),
        seed=seed if isinstance(seed, int) else None,
        ci=ci,
    )


def _single_threaded_blas():
    """One BLAS thread per worker: OpenBLAS threads fighting our own threads for the
    two cores cost ~30%. Uses threadpoolctl when installed, else changes nothing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


ROBUST_POINTS = 30.0  # a direction with this many points survives resampling (P < e^-30)


class _ReplicaSolver:
    """Solves blocks of replicas; replicas without an MLE get :data:`FALLBACK_PRIOR`.

    Without a prior, a replica's MLE exists iff its "beats" graph is strongly
    connected. When every link of the full-data graph is robust (both directions
    score at least :data:`ROBUST_POINTS`), no replica can break it in practice and the
    check is skipped; otherwise each block is checked exactly.
    """

    def __init__(self, fit: BTFit, tol: float):
        self.fit, self.tol = fit, tol
        self.h_inv = np.linalg.inv(fit.hessian)
        design = fit.design
        self.check = design.prior == 0.0 and not _robust(design, fit.stats)
        self._regular = None

    def regular_fit(self) -> BTFit:
        if self._regular is None:  # computed at most once (benign race between threads)
            design = self.fit.design.with_prior(max(self.fit.design.prior, FALLBACK_PRIOR))
            self._regular = fit_design(design, self.fit.stats, self.fit.models)
        return self._regular

    def solve(self, stats: np.ndarray) -> tuple[np.ndarray, int]:
        fit = self.fit
        bad = np.zeros(stats.shape[2], bool)
        if self.check:
            first, second = _scored(fit.design, stats)
            bad = ~strongly_connected_columns(
                fit.design.n_models, fit.design.first, fit.design.second, first, second
            )
        theta = np.empty((fit.design.n_params, stats.shape[2]))
        if (~bad).any():
            part = np.ascontiguousarray(stats[:, :, ~bad]) if bad.any() else stats
            theta[:, ~bad], ok = solve_replicas(fit, part, tol=self.tol, h_inv=self.h_inv)
            retry = np.flatnonzero(~bad)[~ok]
            bad[retry] = True
        if bad.any():
            regular = self.regular_fit()
            part = np.ascontiguousarray(stats[:, :, bad])
            theta[:, bad], ok = solve_replicas(regular, part, tol=self.tol)
            for j in np.flatnonzero(~ok):  # last resort: Newton on that replica alone
                b = np.flatnonzero(bad)[j]
                theta[:, b] = fit_design(regular.design, stats[:, :, b].T, fit.models).params
        return theta, int(bad.sum())


def _scored(design: PairDesign, stats: np.ndarray):
    """(first scored, second scored) per row and replica, shape (R, B) each."""
    if design.ties == "half":
        wins, total = stats[0], stats[1]
        return wins > 0, total - wins > 0
    a, b, t = stats
    return (a + t) > 0, (b + t) > 0


def _robust(design: PairDesign, stats: np.ndarray) -> bool:
    """Is the graph of links that score ≥ ROBUST_POINTS both ways strongly connected?"""
    if design.ties == "half":
        first_pts, second_pts = stats[:, 0], stats[:, 1] - stats[:, 0]
    else:
        first_pts, second_pts = stats[:, 0] + stats[:, 2] / 2, stats[:, 1] + stats[:, 2] / 2
    strong = (first_pts >= ROBUST_POINTS) & (second_pts >= ROBUST_POINTS)
    return bool(
        strongly_connected_columns(
            design.n_models, design.first, design.second, strong[:, None], strong[:, None]
        )[0]
    )
