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
``c = 1 - 2/√N`` the total rarely overshoots and the top-up is ~2√N categorical draws,
so a replica costs one Poisson variate per unit type, drawn by table inversion
(:class:`PoissonTable`, ~2.5× cheaper than numpy's own Poisson sampler).

Solving
-------
Every replica is a small perturbation of the full data, so each is solved from the
full-data MLE ``θ̂`` by the chord (simplified Newton) iteration
``θ ← θ - H⁻¹ ∇f_b(θ)`` with the one full-data Hessian ``H`` of
:func:`arena.ratings.bt.fit_bt`, Anderson-accelerated. All replicas of a block advance
together: per iteration one gather, one sigmoid and one sparse product over a
(rows × replicas) array. On Chatbot Arena the plain iteration contracts by ~0.12 per
step; with acceleration ``tol = 1e-8`` takes about 7 gradient evaluations. A small board
(at most :data:`NEWTON_PARAMS` parameters) instead gives every replica its own damped
Newton solve, batched (:func:`newton_replicas`): far from the full data (a handful of
votes) one shared Hessian stalls. Without a prior, a replica whose "beats" graph is not
strongly connected has no MLE (a model without a win in that resample runs to -∞); such
replicas are detected exactly (:func:`arena.ratings.graph.strongly_connected_columns`),
solved with :data:`FALLBACK_PRIOR` and counted in ``n_regularised``.

Intervals
---------
Percentile intervals of the replica ratings (anchored per replica);
``Rank(UB) = 1 + #{j : lower_j > upper_i}``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from copy import copy
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln

from .blas import one_blas_thread
from .bt import BTFit, PairDesign, _row_terms, fit_bt, fit_design, split_params
from .counts import PairwiseCounts, Units, _dedupe_units
from .graph import strongly_connected_columns
from .scale import Anchor, to_rating

FALLBACK_PRIOR = 0.1  # N(0, 10): ~550 rating points of prior sd, only for degenerate replicas
BLOCK = 125  # replicas drawn together (fixed: the draws depend on it)
SMALL_BOARD = 200_000  # rows x replicas up to which all blocks are solved in one batch


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
    by integer inversion of the cumulative multiplicities with a guide table (exact in
    integers, O(1) expected per draw).
    """

    def __init__(self, multiplicity: np.ndarray):
        self.m = np.asarray(multiplicity, np.int64)
        self.total = int(self.m.sum())
        self.shrink = 1.0 - min(0.5, 2.0 / np.sqrt(max(self.total, 1)))
        self.cum = np.cumsum(self.m)
        buckets = 4 * max(self.m.size, 1)
        edges = -((-np.arange(buckets + 1) * self.total) // buckets)  # ceil(b N / K)
        self.guide = np.searchsorted(self.cum, edges, side="right")  # first u: cum > edge
        self.guide = np.minimum(self.guide, self.m.size - 1)
        self.poisson = PoissonTable(self.m * self.shrink)

    def draw(self, n_replicas: int, rng: np.random.Generator) -> np.ndarray:
        draws = self.poisson.draw(n_replicas, rng)
        return self._condition(draws, rng)

    def categorical(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` independent unit types drawn with probabilities ``m / N``.

        A uniform integer ``r`` in ``[0, N)`` picks ``min{u : r < cum_u}``. Its bucket
        ``⌊r K / N⌋`` (``K`` = number of unit types) brackets the answer between two
        guide entries; a step or two, or a bisection between them, finds it.
        """
        r = rng.integers(0, self.total, k)
        bucket = r * (self.guide.size - 1) // self.total
        lo, hi = self.guide[bucket], self.guide[bucket + 1]
        step = r >= self.cum[lo]
        lo = lo + step
        while True:  # bisect: the answer lies in [lo, hi]
            open_ = np.flatnonzero(lo < hi)
            if open_.size == 0:
                return lo
            mid = (lo[open_] + hi[open_]) // 2
            up = r[open_] >= self.cum[mid]
            lo[open_[up]] = mid[up] + 1
            hi[open_[~up]] = mid[~up]

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


TAIL = 9.0  # Poisson tables span mean ± (TAIL·sd + 10): the mass left out is < 1e-18


class PoissonTable:
    """Independent ``Poisson(λ_u)`` variates by inversion of tabulated distributions.

    Each distinct mean gets its CDF on ``[λ - 9√λ - 10, λ + 9√λ + 10]`` (the pmf
    normalised there: the mass outside is below 1e-18) and a guide table (Chen & Asau
    1974): a uniform ``U`` falls in one of ``K`` equal buckets, the bucket names the
    smallest value whose CDF exceeds its left end, and one step (a bisection in the rare
    tail bucket) finds ``min{x : U < F(x)}``: ``Poisson(λ)`` exactly, up to the
    floating-point pmf (``exp`` of a difference of terms ~λ log λ: ~1e-11 relative for
    λ ~ 1e4, ~1e-7 for 1e7 votes in one cell, like numpy's own sampler) and the running
    sum's rounding (< 1e-12). A variate costs one uniform and two table reads, ~2.5×
    less than numpy's rejection sampler; Chatbot Arena's ~1,000 distinct means take ~9 MB
    of tables.
    """

    CHUNK = 1 << 16  # variates per vectorised pass (in cache)

    def __init__(self, means: np.ndarray):
        means = np.asarray(means, np.float64)
        lams, unit_seg = np.unique(means, return_inverse=True)
        sd = np.sqrt(lams)
        lo = np.maximum(0, np.floor(lams - TAIL * sd - 10)).astype(np.int64)
        hi = np.ceil(lams + TAIL * sd + 10).astype(np.int64)
        size = hi - lo + 1
        off = np.r_[0, np.cumsum(size)]
        seg = np.repeat(np.arange(lams.size), size)
        x = (np.arange(off[-1]) - off[seg] + lo[seg]).astype(np.float64)
        log_lam = np.log(np.where(lams > 0, lams, 1.0))[seg]
        pmf = np.where(lams[seg] > 0, np.exp(x * log_lam - lams[seg] - gammaln(x + 1.0)), x == 0)
        # Normalised per distribution: for a large mean the log-pmf's terms are ~λ log λ
        # and their rounding would otherwise shift the total by ~1e-7 (into the last value)
        pmf /= np.repeat(np.add.reduceat(pmf, off[:-1]), size)
        # Per-distribution CDFs from one running sum (each distribution adds 1, so the
        # rounding error stays below ~1e-12 for thousands of distributions)
        running = np.cumsum(pmf)
        last = off[1:] - 1
        cdf = running - np.repeat(np.r_[0.0, running[last[:-1]]], size)
        cdf[last] = 1.0  # the upper tail folded into the last value
        # Guide: bucket b of K = size starts at #{x : F(x) ≤ b/K}, counted from the
        # bucket each F(x) first fits under (rounded up a hair: a start may be one low,
        # never high, so the search below stays exact).
        buckets = size
        goff = np.r_[0, np.cumsum(buckets + 1)]
        first_bucket = np.ceil(cdf * buckets[seg] * (1.0 + 2.0**-46)).astype(np.int64)
        slot = goff[seg] + np.minimum(first_bucket, buckets[seg])
        count = np.cumsum(np.bincount(slot, minlength=goff[-1]))
        before = np.r_[0, count[goff[1:-1] - 1]]  # counted in earlier segments
        guide_seg = np.repeat(np.arange(lams.size), buckets + 1)
        guide = off[guide_seg] + count - before[guide_seg]
        self.seg_last = last[unit_seg]
        self.cdf, self.guide = cdf, guide
        self.buckets = buckets[unit_seg].astype(np.float64)  # per unit
        self.guide_start = goff[:-1][unit_seg]
        self.value_shift = (off[:-1] - lo)[unit_seg]  # table index - value

    def draw(self, n_replicas: int, rng: np.random.Generator) -> np.ndarray:
        """Variates of shape (U, n_replicas), int64 (unit-major)."""
        n_units = self.buckets.size
        out = np.empty((n_units, n_replicas), np.int64)
        rows = max(1, self.CHUNK // max(n_replicas, 1))
        cdf = self.cdf
        for r0 in range(0, n_units, rows):
            r1 = min(n_units, r0 + rows)
            uc = rng.random((r1 - r0, n_replicas))  # the same stream as one big draw
            bucket = np.multiply(uc, self.buckets[r0:r1, None]).astype(np.intp)
            bucket += self.guide_start[r0:r1, None]
            at = np.take(self.guide, bucket)
            flat_u, flat_at = uc.reshape(-1), at.reshape(-1)
            rest = np.flatnonzero(flat_u >= np.take(cdf, flat_at))  # ~1/5: a value ends here
            if rest.size:
                step = flat_at[rest] + 1
                flat_at[rest] = step
                rest = rest[flat_u[rest] >= cdf[step]]
            if rest.size:  # the rest (tail buckets): bisect up to the end of the table
                lo, hi = flat_at[rest] + 1, self.seg_last[r0 + rest // n_replicas]
                u_rest = flat_u[rest]
                while True:
                    open_ = lo < hi
                    if not open_.any():
                        break
                    mid = (lo + hi) // 2
                    up = open_ & (u_rest >= cdf[mid])
                    lo = np.where(up, mid + 1, lo)
                    hi = np.where(open_ & ~up, mid, hi)
                flat_at[rest] = lo
            np.subtract(at, self.value_shift[r0:r1, None], out=out[r0:r1])
        return out


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


# -- batched Newton -------------------------------------------------------------------------

NEWTON_PARAMS = 40  # up to this many parameters every replica gets its own Newton solve
DENSE_ENTRIES = 1 << 16  # a design this small is multiplied dense
NEWTON_ENTRIES = 1 << 22  # Hessian entries (B · p²) solved in one stacked call


def newton_replicas(
    design: PairDesign,
    stats: np.ndarray,
    theta0: np.ndarray,
    *,
    tol: float = 1e-8,
    max_iter: int = 100,
    problem: _StackedProblem | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Damped Newton on every replica at once, each with its own Hessian.

    The method of :func:`arena.ratings.bt.fit_design` (Newton step on the augmented
    Hessian, backtracking to the Armijo condition), run on a stack of ``B`` problems:
    one ``(B, p, p)`` Hessian built by one sparse product, one stacked
    ``numpy.linalg.solve``, and a line search whose step halves only in the columns
    that need it. Chord iterations with one shared Hessian stall on replicas far from
    the full data (tiny boards, regularised replicas); this does not.

    Parameters
    ----------
    design : PairDesign
    stats : ndarray, shape (k, R, B)
    theta0 : ndarray, shape (p, B)
        Starts (the full-data estimate).

    Returns
    -------
    theta : ndarray, shape (p, B)
    converged : ndarray of bool, shape (B,)
    """
    problem = _StackedProblem(design) if problem is None else problem.with_design(design)
    n_cols = stats.shape[2]
    width = max(16, NEWTON_ENTRIES // design.n_params**2)  # bound the Hessian stack
    if n_cols <= width:
        return _newton_stack(problem, stats, theta0, tol, max_iter)
    parts = [
        _newton_stack(
            problem,
            np.ascontiguousarray(stats[:, :, c : c + width]),
            theta0[:, c : c + width],
            tol,
            max_iter,
        )
        for c in range(0, n_cols, width)
    ]
    return np.concatenate([t for t, _ in parts], axis=1), np.concatenate([c for _, c in parts])


def _newton_stack(problem, stats, theta0, tol, max_iter):
    """Newton iterations on one stack. The full step is evaluated with derivatives (near
    the answer it is always taken, so one evaluation per iteration); columns that must
    backtrack search on the objective alone, then get their derivatives."""
    design = problem.design
    n_cols = stats.shape[2]
    theta = np.array(theta0, np.float64)
    converged = np.zeros(n_cols, bool)
    active = np.arange(n_cols)
    rows_stats = stats.transpose(1, 0, 2)  # (R, k, B): what _row_terms indexes
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        f, grad, hess = problem.evaluate(theta, rows_stats, derivatives=True)
        for _ in range(max_iter):
            st = rows_stats[:, :, active]
            x = theta[:, active]
            try:
                step = -np.linalg.solve(hess, grad.T[:, :, None])[:, :, 0].T
            except np.linalg.LinAlgError:
                step = -np.stack(
                    [
                        np.linalg.lstsq(h, g, rcond=None)[0]
                        for h, g in zip(hess, grad.T, strict=True)
                    ]
                ).T
            slope = np.einsum("pb,pb->b", grad, step)
            candidate = x + step
            f_new, grad_new, hess_new = problem.evaluate(candidate, st, derivatives=True)
            armijo = f_new <= f + 1e-4 * slope + 1e-12 * np.abs(f)
            back = np.flatnonzero(~armijo)
            if back.size:  # backtracking, per column, on the objective alone
                t = np.ones(back.size)
                searching = np.ones(back.size, bool)
                for _ in range(60):
                    t[searching] *= 0.5
                    cols = back[searching]
                    candidate[:, cols] = x[:, cols] + t[searching] * step[:, cols]
                    f_new[cols] = problem.evaluate(candidate[:, cols], st[:, :, cols])[0]
                    ok = f_new[cols] <= f[cols] + 1e-4 * t[searching] * slope[
                        cols
                    ] + 1e-12 * np.abs(f[cols])
                    ok |= t[searching] < 1e-8
                    searching[np.flatnonzero(searching)[ok]] = False
                    if not searching.any():
                        break
                _, grad_new[:, back], hess_new[back] = problem.evaluate(
                    candidate[:, back], st[:, :, back], derivatives=True
                )
            theta[:, active] = candidate
            size = np.max(np.abs(step), axis=0)
            # Done when the step is below tol, or when a small step no longer lowers the
            # objective at all: an ill-conditioned replica (strengths ~15 apart, weights
            # from 3 to 1e7 votes) can stall at ~1e-7 on rounding, as far as float goes.
            done = (size < tol) | ((f_new >= f) & (size < np.sqrt(tol)))
            converged[active[done]] = True
            keep = ~done
            active = active[keep]
            if active.size == 0:
                break
            f, grad, hess = f_new[keep], grad_new[:, keep], hess_new[keep]
    n = design.n_models
    if design.prior == 0.0 and n:
        theta[:n] -= theta[:n].mean(axis=0)
    return theta, converged & np.all(np.isfinite(theta), axis=0)


class _StackedProblem:
    """Objective, gradient and Hessian of one design for a stack of replicas."""

    def __init__(self, design: PairDesign):
        self.design = design
        n, m = design.n_models, design.n_extra
        self.q = q = n + m  # parameters of the linear predictor z = X (s, η)
        self.extra = design.extra_columns() if m else None
        X = design.incidence()
        if m:
            X = sp.hstack([X, sp.csr_matrix(self.extra)], format="csr")
        self.X = X.tocsr()
        self.X_t = self.X.T.tocsr()
        dense = design.n_rows * q * q <= DENSE_ENTRIES  # small: dense products, no overhead
        # row r of X contributes h_r x_r x_rᵀ: one sparse (q², R) map from h to the Hessian,
        # every pair of non-zeros of a row (rows may differ in length: covariates)
        X, n_rows = self.X, design.n_rows
        per_row = np.diff(X.indptr)
        row_of = np.repeat(np.arange(n_rows), per_row)
        pairs = per_row[row_of]  # entry i pairs with every entry of its row
        left = np.repeat(np.arange(X.nnz), pairs)
        right = np.repeat(X.indptr[row_of], pairs) + (
            np.arange(left.size) - np.repeat(np.cumsum(pairs) - pairs, pairs)
        )
        self.outer_t = sp.csr_matrix(
            (
                X.data[left] * X.data[right],
                (X.indices[left] * q + X.indices[right], row_of[left]),
            ),
            shape=(q * q, n_rows),
        )
        if dense:
            self.X, self.X_t = self.X.toarray(), self.X_t.toarray()
            self.outer_t = self.outer_t.toarray()
        self._set_prior(design)

    def with_design(self, design: PairDesign) -> _StackedProblem:
        """This problem for ``design``: the same rows, another prior (shares the matrices)."""
        if design is self.design:
            return self
        other = copy(self)
        other._set_prior(design)
        return other

    def _set_prior(self, design: PairDesign) -> None:
        self.design = design
        n, q = design.n_models, self.q
        diag = np.zeros(design.n_params)
        diag[:n] = design.prior
        diag[n:q] = design.extra_prior()
        self.diag = diag

    def evaluate(self, theta, stats, derivatives=False):
        """Objective per column (B,), and with ``derivatives`` gradient (p, B) and
        augmented Hessian (B, p, p). ``stats`` has shape (R, k, B)."""
        design, q = self.design, self.q
        n = design.n_models
        _, eta, tau = split_params(theta, design)
        z = self.X @ theta[:q]
        if design.ties == "half":  # ℓ = W z - T log(1 + e^z): one exp, one log1p
            wins, total = stats[:, 0], stats[:, 1]
            e = np.exp(-np.abs(z))
            softplus = np.maximum(z, 0.0) + np.log1p(e)
            loglik = wins * z - total * softplus
            if derivatives:
                p = np.where(z >= 0, 1.0, e) / (1.0 + e)  # σ(z)
                l_z, l_tau, h_zz, h_zt, h_tt = (
                    wins - total * p,
                    None,
                    total * p * (1 - p),
                    None,
                    None,
                )
        else:
            loglik, l_z, l_tau, h_zz, h_zt, h_tt = _row_terms(z, tau, stats, design.ties)
        f = -loglik.sum(axis=0) + 0.5 * np.einsum("p,pb->b", self.diag, theta**2)
        if not derivatives:
            return f, None, None
        p, b = design.n_params, theta.shape[1]
        grad = np.empty((p, b))
        grad[:q] = -(self.X_t @ l_z) + self.diag[:q, None] * theta[:q]
        hess = np.zeros((b, p, p))
        hess[:, :q, :q] = (self.outer_t @ h_zz).T.reshape(b, q, q)
        hess[:, np.arange(p), np.arange(p)] += self.diag
        if design.prior == 0.0 and n:
            hess[:, :n, :n] += 1.0 / n
        if tau is not None:
            grad[q] = -l_tau.sum(axis=0)
            cross = (self.X_t @ h_zt).T  # (B, q)
            hess[:, :q, q] = hess[:, q, :q] = cross
            hess[:, q, q] = h_tt.sum(axis=0)
        return f, grad, hess


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
    starts = list(range(0, n_replicas, BLOCK))
    children = rng.spawn(len(starts))

    def block_stats(k: int):
        size = min(BLOCK, n_replicas - starts[k])
        return replica_stats(merged, fit.design, size, children[k], sampler, to_stats)

    def run_block(k: int):
        return solver.solve(block_stats(k))

    with one_blas_thread():
        solver = _ReplicaSolver(fit, tol)
        if fit.design.n_rows * n_replicas <= SMALL_BOARD:  # one solve: per-call costs dominate
            stats = np.concatenate([block_stats(k) for k in range(len(starts))], axis=2)
            blocks = [solver.solve(stats)]
        elif threads > 1 and len(starts) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
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
        design = fit.design
        small = design.n_params <= NEWTON_PARAMS  # solved by Newton: no shared inverse
        self.h_inv = None if small else np.linalg.inv(fit.hessian)
        self.check = design.prior == 0.0 and not _robust(design, fit.stats)
        self._regular = None
        self._problem = None

    def problem(self) -> _StackedProblem:
        if self._problem is None:  # built at most once (benign race between threads)
            self._problem = _StackedProblem(self.fit.design)
        return self._problem

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
        newton = fit.design.n_params <= NEWTON_PARAMS  # small: a Hessian per replica
        if (~bad).any():
            part = np.ascontiguousarray(stats[:, :, ~bad]) if bad.any() else stats
            if newton:
                x0 = np.repeat(fit.params[:, None], part.shape[2], axis=1)
                theta[:, ~bad], ok = newton_replicas(
                    fit.design, part, x0, tol=self.tol, problem=self.problem()
                )
            else:
                theta[:, ~bad], ok = solve_replicas(fit, part, tol=self.tol, h_inv=self.h_inv)
            retry = np.flatnonzero(~bad)[~ok]
            bad[retry] = True
        if bad.any():
            regular = self.regular_fit()
            cols = np.flatnonzero(bad)
            part = np.ascontiguousarray(stats[:, :, cols])
            x0 = np.repeat(regular.params[:, None], cols.size, axis=1)
            if newton:
                theta[:, cols], _ = newton_replicas(
                    regular.design, part, x0, tol=self.tol, problem=self.problem()
                )
            else:
                theta[:, cols], ok = solve_replicas(regular, part, tol=self.tol)
                if not ok.all():  # chord stalls far from the full data: Newton, batched
                    theta[:, cols[~ok]], _ = newton_replicas(
                        regular.design,
                        np.ascontiguousarray(part[:, :, ~ok]),
                        x0[:, ~ok],
                        tol=self.tol,
                    )
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
