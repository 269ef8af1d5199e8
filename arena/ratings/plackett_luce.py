"""Plackett-Luce for K-wise votes (rankings with ties), and live openskill ratings.

Model
-----
A strict ranking ``i_1 ≻ i_2 ≻ … ≻ i_K`` has probability
``Π_k exp(s_{i_k}) / Σ_{l ≥ k} exp(s_{i_l})`` (Luce 1959, Plackett 1975): the voter
picks the best of what is left, again and again.

Ties. A tied group is scored by the *average of the log-likelihoods of its possible
orders* (every order of the tied models equally weighted). For a group ``G`` of
``t`` models followed by the set ``R`` of models ranked below it, averaging over the
``t!`` orders gives one choice event ``(i chosen from S ∪ R)`` for every non-empty
``S ⊆ G`` and ``i ∈ S``, with weight ``1 / (C(t, |S|) · |S|)``. This is the K-wise
version of Chatbot Arena's "a tie is half a win each way": for ``K = 2`` a tie gives
``½ log σ(s_a - s_b) + ½ log σ(s_b - s_a)``, so Plackett-Luce on pairs *is* the
half-tie Bradley-Terry model. (The marginal "some order happened" model would
instead make a two-way tie carry no information at all.)

Fitting
-------
The log-likelihood is ``Σ_i L_i s_i - Σ_A C_A log Σ_{j ∈ A} exp(s_j)`` where the
choice sets ``A`` and the totals ``L``, ``C`` are linear in the ranking counts — the
aggregated sufficient statistics. Newton's method on them (Hessian
``Σ_A C_A (diag p_A - p_A p_Aᵀ)``, ``p_A`` the softmax over ``A``) converges in a few
steps; the bootstrap reuses the batched chord solver of :mod:`arena.ratings.bootstrap`.

Live ratings
------------
:class:`LiveRatings` keeps openskill's Plackett-Luce ``(μ, σ)`` per model, updated vote
by vote, for matchmaking (uncertainty-aware pairing) and a live feed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.sparse as sp

from .bootstrap import (
    FALLBACK_PRIOR,
    chord_solve,
    multinomial_replicas,
    percentile_interval,
)
from .counts import FIRST, SECOND, TIE, PairwiseCounts
from .graph import check_graph
from .leaderboard import Leaderboard, ranked_rows
from .scale import Anchor, to_rating


@dataclass(frozen=True, eq=False)
class Rankings:
    """Aggregated rankings.

    Attributes
    ----------
    models : tuple of str
    items : ndarray of int, shape (V, K)
        Models in each distinct ranking, best first, ``-1`` padding.
    ranks : ndarray of int, shape (V, K)
        Rank of each entry (1 = best; equal ranks tie), 0 for padding.
    weight : ndarray of int64, shape (V,)
        How many votes gave this ranking.
    """

    models: tuple[str, ...]
    items: np.ndarray
    ranks: np.ndarray
    weight: np.ndarray

    @classmethod
    def from_lists(cls, models: Sequence[str], rankings: Iterable, weights=None) -> Rankings:
        """From ``[(item indices, ranks), ...]`` (ranks: 1 = best, equal = tie)."""
        rows = [(list(items), list(ranks)) for items, ranks in rankings]
        k = max((len(i) for i, _ in rows), default=2)
        items = np.full((len(rows), k), -1, np.int64)
        ranks = np.zeros((len(rows), k), np.int64)
        for v, (it, rk) in enumerate(rows):
            items[v, : len(it)] = it
            ranks[v, : len(rk)] = rk
        w = np.ones(len(rows), np.int64) if weights is None else np.asarray(weights, np.int64)
        return _canonical(tuple(models), items, ranks, w)

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_votes(self) -> int:
        return int(self.weight.sum())

    def pairwise(self) -> PairwiseCounts:
        """Every pair inside each ranking as a pairwise vote (for graph checks, BT)."""
        first, second, outcome, weight = [], [], [], []
        k = self.items.shape[1]
        for a, b in combinations(range(k), 2):
            ok = (self.items[:, a] >= 0) & (self.items[:, b] >= 0)
            ra, rb = self.ranks[ok, a], self.ranks[ok, b]
            first.append(self.items[ok, a])
            second.append(self.items[ok, b])
            outcome.append(np.where(ra < rb, FIRST, np.where(rb < ra, SECOND, TIE)))
            weight.append(self.weight[ok])
        cat = np.concatenate
        return PairwiseCounts.from_cells(
            self.models, cat(first), cat(second), cat(outcome), cat(weight).astype(float)
        )


def _canonical(models, items, ranks, weight) -> Rankings:
    """Sort each ranking best first (ties by model index) and merge identical ones."""
    key_rank = np.where(items >= 0, ranks, np.iinfo(np.int64).max)
    order = np.lexsort((items, key_rank), axis=1)
    items = np.take_along_axis(items, order, axis=1)
    ranks = np.take_along_axis(ranks, order, axis=1)
    # dense ranks 1..m so that equal tie patterns compare equal
    valid = items >= 0
    step = np.diff(ranks, axis=1, prepend=ranks[:, :1]) != 0
    ranks = np.where(valid, 1 + np.cumsum(step & valid, axis=1), 0)
    uniq, inv = np.unique(np.hstack([items, ranks]), axis=0, return_inverse=True)
    k = items.shape[1]
    w = np.bincount(inv.ravel(), weight, uniq.shape[0]).astype(np.int64)
    return Rankings(models, uniq[:, :k], uniq[:, k:], w)


def rankings_from_records(records: Iterable) -> Rankings:
    """K-wise (and pairwise) judgments as rankings; ``weight = w`` counts ``w`` votes."""
    names: dict[str, int] = {}
    rows, weights = [], []
    for rec in records:
        kind = getattr(rec, "kind", None)
        if kind == "ranking" and rec.ranking is not None:
            ranks = list(rec.ranking)
        elif kind == "pairwise" and rec.winner is not None:
            ranks = {"a": [1, 2], "b": [2, 1]}.get(rec.winner, [1, 1])
        else:
            continue
        idx = [names.setdefault(c, len(names)) for c in rec.contestants]
        rows.append((idx, ranks))
        weights.append(int(rec.weight))
    return Rankings.from_lists(tuple(names), rows, weights)


# -- choice events ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ChoiceDesign:
    """Choice sets and the linear maps from ranking counts to sufficient statistics.

    Attributes
    ----------
    set_items : ndarray of int, shape (S, K)
        Models in each distinct choice set, ``-1`` padding.
    chosen : sparse (V, n)
        ``chosen[v, i]``: weight with which ranking ``v`` picks model ``i``.
    offered : sparse (V, S)
        ``offered[v, A]``: weight with which ranking ``v`` makes a choice from set ``A``.
    """

    n_models: int
    set_items: np.ndarray
    chosen: sp.csr_matrix
    offered: sp.csr_matrix
    prior: float = 0.0


def _pattern_events(sizes: tuple[int, ...]):
    """Events ``(chosen position, set positions, weight)`` for a tie pattern.

    Positions index the ranking sorted best first; ``sizes`` are the tied group sizes.
    """
    events = []
    start = 0
    total = sum(sizes)
    for t in sizes:
        group = range(start, start + t)
        rest = tuple(range(start + t, total))
        for size in range(1, t + 1):
            coef = 1.0 / (math.comb(t, size) * size)
            for subset in combinations(group, size):
                if size + len(rest) < 2:
                    continue  # choosing the only model left carries no information
                for i in subset:
                    events.append((i, subset + rest, coef))
        start += t
    return events


def choice_design(rankings: Rankings, prior: float = 0.0) -> ChoiceDesign:
    """Expand rankings into choice events, grouped by tie pattern (vectorised per pattern)."""
    items, ranks = rankings.items, rankings.ranks
    v_count, k = items.shape
    valid = items >= 0
    # tie pattern per ranking: run lengths of equal dense ranks
    patterns: dict[tuple[int, ...], list[int]] = {}
    lengths = valid.sum(axis=1)
    for v in range(v_count):
        r = ranks[v, : lengths[v]]
        sizes = tuple(np.diff(np.flatnonzero(np.r_[True, r[1:] != r[:-1], True])))
        patterns.setdefault(sizes, []).append(v)
    ev_rank, ev_item, ev_set, ev_coef = [], [], [], []
    for sizes, members in patterns.items():
        members = np.asarray(members)
        for pos, set_pos, coef in _pattern_events(sizes):
            sets = np.full((members.size, k), -1, np.int64)
            sets[:, : len(set_pos)] = np.sort(items[np.ix_(members, set_pos)], axis=1)
            ev_rank.append(members)
            ev_item.append(items[members, pos])
            ev_set.append(sets)
            ev_coef.append(np.full(members.size, coef))
    if not ev_rank:
        empty = sp.csr_matrix((v_count, 0))
        return ChoiceDesign(
            rankings.n_models,
            np.zeros((0, k), np.int64),
            sp.csr_matrix((v_count, rankings.n_models)),
            empty,
            prior,
        )
    ev_rank, ev_item = np.concatenate(ev_rank), np.concatenate(ev_item)
    ev_coef = np.concatenate(ev_coef)
    set_items, set_id = np.unique(np.concatenate(ev_set), axis=0, return_inverse=True)
    set_id = set_id.ravel()
    n = rankings.n_models
    chosen = sp.csr_matrix((ev_coef, (ev_rank, ev_item)), shape=(v_count, n))
    offered = sp.csr_matrix((ev_coef, (ev_rank, set_id)), shape=(v_count, set_items.shape[0]))
    return ChoiceDesign(n, set_items, chosen, offered, prior)


# -- likelihood ----------------------------------------------------------------------


def _softmax_sets(s: np.ndarray, set_items: np.ndarray) -> np.ndarray:
    """Softmax of ``s`` (shape (n,) or (n, B)) within each set: shape (S, K[, B])."""
    mask = set_items >= 0
    vals = s[np.where(mask, set_items, 0)]
    if vals.ndim == 3:
        mask = mask[:, :, None]
    vals = np.where(mask, vals, -np.inf)
    vals = vals - vals.max(axis=1, keepdims=True)
    e = np.exp(vals)
    return e / e.sum(axis=1, keepdims=True)


def pl_objective(s, design: ChoiceDesign, chosen_total, set_total) -> float:
    """``-ℓ(s) + prior/2 ||s||²`` with ``ℓ = L·s - Σ_A C_A log Σ_{A} e^s``."""
    mask = design.set_items >= 0
    vals = np.where(mask, s[np.where(mask, design.set_items, 0)], -np.inf)
    lse = np.logaddexp.reduce(vals, axis=1)
    return float(-(chosen_total @ s) + set_total @ lse + 0.5 * design.prior * s @ s)


def pl_gradient(s, design: ChoiceDesign, chosen_total, set_total) -> np.ndarray:
    """Gradient of :func:`pl_objective`: ``-L + Σ_A C_A p_A + prior · s``."""
    p = _softmax_sets(s, design.set_items)
    mask = design.set_items >= 0
    g = np.bincount(design.set_items[mask], (set_total[:, None] * p)[mask], design.n_models)
    return g - chosen_total + design.prior * s


def pl_hessian(s, design: ChoiceDesign, set_total) -> np.ndarray:
    """Hessian ``Σ_A C_A (diag p_A - p_A p_Aᵀ) + prior · I``."""
    n = design.n_models
    items = design.set_items
    mask = items >= 0
    p = _softmax_sets(s, items)
    H = np.diag(np.bincount(items[mask], (set_total[:, None] * p)[mask], n))
    outer = set_total[:, None, None] * p[:, :, None] * p[:, None, :]
    pair_mask = mask[:, :, None] & mask[:, None, :]
    idx = (items[:, :, None] * n + items[:, None, :])[pair_mask]
    H -= np.bincount(idx, outer[pair_mask], n * n).reshape(n, n)
    return H + design.prior * np.eye(n)


@dataclass(frozen=True, eq=False)
class PLFit:
    models: tuple[str, ...]
    scores: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool
    hessian: np.ndarray
    design: ChoiceDesign


def fit_pl(
    rankings: Rankings, *, prior: float = 0.0, tol: float = 1e-10, max_iter: int = 100
) -> PLFit:
    """Plackett-Luce MLE (MAP with ``prior``) of ``rankings`` by Newton's method.

    Returns strengths ``s`` with mean zero (without a prior); on the same scale as
    Bradley-Terry, so :func:`arena.ratings.scale.to_rating` applies.
    """
    design = choice_design(rankings, prior)
    L = design.chosen.T @ rankings.weight.astype(float)
    C = design.offered.T @ rankings.weight.astype(float)
    return _newton(design, L, C, rankings.models, tol, max_iter)


def _newton(design, L, C, models, tol, max_iter) -> PLFit:
    n = design.n_models
    s = np.zeros(n)
    f = pl_objective(s, design, L, C)
    converged, it = False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported after the loop
        g = pl_gradient(s, design, L, C)
        H = _augment(pl_hessian(s, design, C), design.prior)
        step = -np.linalg.lstsq(H, g, rcond=None)[0]
        t = 1.0
        while True:
            cand = s + t * step
            f_new = pl_objective(cand, design, L, C)
            if f_new <= f + 1e-4 * t * (g @ step) + 1e-12 * abs(f) or t < 1e-8:
                break
            t *= 0.5
        s, f = cand, f_new
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    if design.prior == 0.0:
        s = s - s.mean()
    return PLFit(
        models=tuple(models),
        scores=s,
        log_likelihood=-pl_objective(s, design, L, C) + 0.5 * design.prior * s @ s,
        n_iter=it,
        converged=converged,
        hessian=_augment(pl_hessian(s, design, C), design.prior),
        design=design,
    )


def _augment(H: np.ndarray, prior: float) -> np.ndarray:
    if prior == 0.0:
        H = H + 1.0 / H.shape[0]  # fixes the free shift; steps keep Σ s = 0
    return H


def bootstrap_pl(
    rankings: Rankings,
    fit: PLFit,
    n_replicas: int = 1000,
    seed: int | np.random.Generator | None = 0,
    *,
    tol: float = 1e-8,
) -> tuple[np.ndarray, int]:
    """Bootstrap strengths (shape (B, n)), resampling whole votes; and #regularised."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    design = fit.design
    draws = multinomial_replicas(rankings.weight, n_replicas, rng).astype(float)  # (V, B)
    L = design.chosen.T @ draws  # (n, B)
    C = design.offered.T @ draws  # (S, B)
    items = design.set_items
    mask = items >= 0
    flat = np.flatnonzero(mask.ravel())
    scatter = sp.csr_matrix(
        (np.ones(flat.size), (items.ravel()[flat], flat)), shape=(design.n_models, items.size)
    )
    data = {"L": L, "C": C}

    def gradient(s):
        p = _softmax_sets(s, items) * data["C"][:, None, :]
        g = scatter @ p.reshape(items.size, -1)
        return g - data["L"] + design.prior * s

    def shrink(keep):
        data["L"], data["C"] = data["L"][:, keep], data["C"][:, keep]

    x0 = np.repeat(fit.scores[:, None], n_replicas, axis=1)
    s, ok = chord_solve(x0, np.linalg.inv(fit.hessian), gradient, shrink, tol=tol)
    bad = np.flatnonzero(~ok)
    for b in bad:  # no MLE in this resample: refit with a small prior
        regular = ChoiceDesign(
            design.n_models, items, design.chosen, design.offered, max(design.prior, FALLBACK_PRIOR)
        )
        s[:, b] = _newton(regular, L[:, b], C[:, b], fit.models, 1e-10, 100).scores
    return s.T, int(bad.size)


def pl_leaderboard(
    rankings: Rankings,
    bootstrap: int = 1000,
    seed: int | None = 0,
    anchor: Anchor | None = None,
    *,
    prior: float = 0.0,
    ci: float = 0.95,
) -> Leaderboard:
    """Plackett-Luce leaderboard with bootstrap intervals and Rank(UB)."""
    pairs = rankings.pairwise()
    graph = check_graph(pairs)
    notes = graph.messages()
    if not graph.mle_exists and prior == 0.0 and rankings.n_models > 1:
        prior = FALLBACK_PRIOR
        notes.append(f"no maximum-likelihood fit exists; using a N(0, {1 / prior:g}) prior")
    fit = fit_pl(rankings, prior=prior)
    ratings = to_rating(fit.scores, rankings.models, anchor)
    lower = upper = None
    if bootstrap:
        samples, bad = bootstrap_pl(rankings, fit, bootstrap, seed)
        lower, upper = percentile_interval(to_rating(samples, rankings.models, anchor), ci)
        if bad:
            notes.append(f"{bad} bootstrap replicas needed a prior")
    rows = ranked_rows(
        rankings.models,
        ratings,
        pairs.votes_per_model(),
        lower=lower,
        upper=upper,
        component=graph.component,
    )
    return Leaderboard(
        method="pl",
        rows=rows,
        graph=graph,
        n_votes=rankings.n_votes,
        n_replicas=bootstrap,
        seed=seed if bootstrap else None,
        anchor=anchor,
        prior=prior,
        notes=tuple(notes),
    )


# -- live ratings (openskill) ------------------------------------------------------------


class LiveRatings:
    """Openskill Plackett-Luce ``(μ, σ)`` per model, updated one vote at a time.

    ``μ`` is the skill estimate and ``σ`` its uncertainty (openskill's defaults: 25 and
    25/3); ``ordinal = μ - 3σ`` is a conservative score. Matchmaking can prefer pairs
    with large ``σ`` or close ``μ``.
    """

    def __init__(self, model=None):
        from openskill.models import PlackettLuce

        self.model = model or PlackettLuce()
        self._ratings: dict[str, object] = {}

    def rating(self, name: str):
        if name not in self._ratings:
            self._ratings[name] = self.model.rating(name=name)
        return self._ratings[name]

    def update(self, contestants: Sequence[str], ranks: Sequence[int]) -> None:
        """Record one vote: ``ranks[k]`` is the rank of ``contestants[k]`` (1 = best)."""
        teams = [[self.rating(c)] for c in contestants]
        new = self.model.rate(teams, ranks=list(ranks))
        for c, team in zip(contestants, new, strict=True):
            self._ratings[c] = team[0]

    def update_records(self, records: Iterable) -> None:
        """Feed pairwise and K-wise judgment records in order."""
        for rec in records:
            if rec.kind == "ranking" and rec.ranking is not None:
                self.update(rec.contestants, rec.ranking)
            elif rec.kind == "pairwise" and rec.winner is not None:
                self.update(rec.contestants, {"a": [1, 2], "b": [2, 1]}.get(rec.winner, [1, 1]))

    def table(self) -> dict[str, tuple[float, float]]:
        """``{model: (μ, σ)}``."""
        return {name: (r.mu, r.sigma) for name, r in self._ratings.items()}
