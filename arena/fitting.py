"""Bridge between the database aggregation (PairCells) and the pure rating engine."""

from __future__ import annotations

import numpy as np

from arena.ratings.bootstrap import bootstrap_bt
from arena.ratings.bt import fit_bt
from arena.ratings.counts import BOTH_BAD, FIRST, SECOND, TIE, PairwiseCounts
from arena.ratings.scale import to_rating

# Slot-relative winner code (arena.boards.WINNER_CODES) -> outcome relative to the order shown.
_WHEN_A_FIRST = np.array([FIRST, SECOND, TIE, BOTH_BAD])
_WHEN_B_FIRST = np.array([SECOND, FIRST, TIE, BOTH_BAD])


def pairwise_counts(cells) -> PairwiseCounts:
    """PairCells (slot terms) -> PairwiseCounts (presentation terms)."""
    first = np.where(cells.a_first, cells.a, cells.b)
    second = np.where(cells.a_first, cells.b, cells.a)
    outcome = np.where(cells.a_first, _WHEN_A_FIRST[cells.winner], _WHEN_B_FIRST[cells.winner])
    return PairwiseCounts.from_cells(
        cells.models, first, second, outcome, cells.count.astype(np.float64)
    )


def fit_pair_cells(cells, bootstrap: int = 1000, seed: int = 0) -> dict:
    """Fit a BT leaderboard; returns {"method", "rows", "graph"} ready to store as a snapshot."""
    if not cells.models:
        return {"method": "bt", "rows": [], "graph": {"warnings": []}}
    counts = pairwise_counts(cells)
    fit = fit_bt(counts)
    ratings = to_rating(fit.scores, counts.models)
    votes = counts.votes_per_model()
    wins = _win_fraction(counts)
    if bootstrap:
        boot = bootstrap_bt(counts, n_replicas=bootstrap, seed=seed, fit=fit)
        lower, upper, rank_ub = boot.lower, boot.upper, boot.rank_ub
    else:
        lower = upper = [None] * len(ratings)
        rank_ub = 1 + np.argsort(np.argsort(-ratings))
    rows = [
        {
            "model": model,
            "rating": round(float(ratings[i]), 2),
            "ci_lower": None if lower[i] is None else round(float(lower[i]), 2),
            "ci_upper": None if upper[i] is None else round(float(upper[i]), 2),
            "rank_ub": int(rank_ub[i]),
            "votes": int(round(votes[i])),
            "win_rate": round(float(wins[i]), 4),
        }
        for i, model in enumerate(counts.models)
    ]
    rows.sort(key=lambda r: (r["rank_ub"], -r["rating"]))
    return {
        "method": "bt",
        "rows": rows,
        "graph": {"warnings": [] if fit.converged else ["the fit did not converge"]},
    }


def _win_fraction(counts: PairwiseCounts) -> np.ndarray:
    """Share of a model's votes it won, ties and both-bad counting half."""
    n = counts.n_models
    score_first = np.select([counts.outcome == FIRST, counts.outcome == SECOND], [1.0, 0.0], 0.5)
    won = np.bincount(counts.first, counts.votes * score_first, n) + np.bincount(
        counts.second, counts.votes * (1 - score_first), n
    )
    total = np.bincount(counts.first, counts.votes, n) + np.bincount(counts.second, counts.votes, n)
    return np.divide(won, total, out=np.full(n, np.nan), where=total > 0)
