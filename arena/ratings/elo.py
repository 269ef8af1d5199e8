"""Online Elo for a live feed, with FastChat's ``compute_online_elo`` semantics.

For each vote in order, with ``E_a = 1 / (1 + BASE^((R_b - R_a) / SCALE))`` and
``S_a`` = 1 (a wins), 0 (b wins) or 0.5 (tie, both bad)::

    R_a += K (S_a - E_a)        R_b -= K (S_a - E_a)

every model starting at ``INIT``. Defaults ``K = 4, SCALE = 400, BASE = 10,
INIT = 1000`` are Chatbot Arena's. Elo depends on the order of the votes and forgets
old ones; it suits a live ticker, while the leaderboard uses Bradley-Terry. The
update is sequential by nature: one tight loop over plain floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from arena.vocabulary import BOTH_BAD, TIE, A, B

from .bootstrap import percentile_interval
from .leaderboard import Leaderboard, ranked_rows

# Slot 0's score per winner: a tie or both-bad is half a win each way.
_SCORE = {A: 1.0, B: 0.0, TIE: 0.5, BOTH_BAD: 0.5}
DEFAULT_K = 4.0  # Chatbot Arena's
INIT = 1000.0  # every model's rating before its first vote


def online_elo(
    a: np.ndarray,
    b: np.ndarray,
    score_a: np.ndarray,
    n_models: int,
    *,
    k: float = 4.0,
    scale: float = 400.0,
    base: float = 10.0,
    init: float = 1000.0,
    start=None,
) -> np.ndarray:
    """Elo ratings after the votes ``(a[t], b[t], score_a[t])`` in order; shape (n,).

    ``start``: every model's rating after earlier votes, which these votes continue; the
    result is then bit for bit the replay of the earlier votes and these ones in order.
    """
    ratings = [float(init)] * n_models if start is None else [float(r) for r in start]
    alpha = math.log(base) / scale
    exp = math.exp
    for i, j, s in zip(
        np.asarray(a).tolist(), np.asarray(b).tolist(), np.asarray(score_a).tolist(), strict=True
    ):
        ri, rj = ratings[i], ratings[j]
        delta = k * (s - 1.0 / (1.0 + exp(alpha * (rj - ri))))
        ratings[i] = ri + delta
        ratings[j] = rj - delta
    return np.array(ratings)


def bootstrap_elo(a, b, score_a, n_models, n_replicas=100, seed=0, **elo_kw) -> np.ndarray:
    """FastChat's bootstrap for Elo: replay ``N`` votes drawn with replacement, in random
    order, ``n_replicas`` times (vectorised across replicas). Shape (B, n)."""
    k = elo_kw.get("k", 4.0)
    alpha = math.log(elo_kw.get("base", 10.0)) / elo_kw.get("scale", 400.0)
    rng = np.random.default_rng(seed)
    a, b, score_a = np.asarray(a), np.asarray(b), np.asarray(score_a, float)
    picks = rng.integers(0, a.size, size=(a.size, n_replicas))
    ratings = np.full((n_replicas, n_models), float(elo_kw.get("init", 1000.0)))
    rows = np.arange(n_replicas)
    for t in range(a.size):  # one step of every replica at once
        i, j = a[picks[t]], b[picks[t]]
        delta = k * (
            score_a[picks[t]] - 1.0 / (1.0 + np.exp(alpha * (ratings[rows, j] - ratings[rows, i])))
        )
        ratings[rows, i] += delta
        ratings[rows, j] -= delta
    return ratings


def votes_from_records(records: Iterable):
    """``(models, a, b, score_a)`` from pairwise judgment records, in record order.

    Raises ValueError for aggregated records (``weight > 1``): Elo needs the votes one
    by one, in the order they were cast.
    """
    names: dict[str, int] = {}
    a, b, score = [], [], []
    for rec in records:
        if getattr(rec, "kind", None) != "pairwise" or rec.winner is None:
            continue
        if rec.weight != 1:
            raise ValueError(
                f"weight: line {rec.line}: Elo needs individual votes in time order; "
                "this file holds aggregated counts"
            )
        a.append(names.setdefault(rec.contestants[0], len(names)))
        b.append(names.setdefault(rec.contestants[1], len(names)))
        score.append(_SCORE[rec.winner])
    return tuple(names), np.array(a, np.intp), np.array(b, np.intp), np.array(score)


def elo_leaderboard(
    records: Iterable, *, k: float = DEFAULT_K, bootstrap: int = 0, seed=0, ci=0.95
):
    """Online Elo leaderboard (optionally with FastChat-style bootstrap intervals)."""
    return elo_from_votes(*votes_from_records(records), k=k, bootstrap=bootstrap, seed=seed, ci=ci)


def elo_from_votes(
    models,
    a,
    b,
    score,
    *,
    k: float = DEFAULT_K,
    bootstrap: int = 0,
    seed=0,
    ci=0.95,
    start=None,
    start_votes=None,
) -> Leaderboard:
    """Online Elo leaderboard of the votes ``(a[t], b[t], score[t])`` in the order cast.

    ``start`` and ``start_votes``: ratings and votes by model name after earlier votes,
    which these votes continue (:func:`online_elo`; a model not in them starts afresh);
    not with ``bootstrap``, whose replicas replay every vote.
    """
    n = len(models)
    a, b = np.asarray(a, np.intp), np.asarray(b, np.intp)
    if bootstrap and start:
        raise ValueError("a bootstrap replays every vote: it cannot continue earlier ratings")
    start, start_votes = start or {}, start_votes or {}
    initial = [start.get(m, INIT) for m in models]
    ratings = online_elo(a, b, score, n, k=k, init=INIT, start=initial)
    votes = np.bincount(a, minlength=n) + np.bincount(b, minlength=n)
    votes += np.array([start_votes.get(m, 0) for m in models], votes.dtype)
    lower = upper = None
    if bootstrap:
        lower, upper = percentile_interval(bootstrap_elo(a, b, score, n, bootstrap, seed, k=k), ci)
    return Leaderboard(
        method="elo",
        rows=ranked_rows(models, ratings, votes, lower=lower, upper=upper),
        n_votes=float(votes.sum() / 2),
        n_replicas=bootstrap,
        seed=seed if bootstrap else None,
        coefficients={"k": float(k)},
        notes=("online Elo depends on vote order; the Bradley-Terry leaderboard does not",),
    )
