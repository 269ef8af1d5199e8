"""Bridge between the database aggregation and the pure rating engine."""

from __future__ import annotations

from arena.ratings.counts import PairwiseCounts
from arena.ratings.leaderboard import leaderboard


def fit_counts(counts: PairwiseCounts, bootstrap: int = 1000, seed: int = 0) -> dict:
    """Fit a BT leaderboard; returns the engine's JSON-ready dict (method, rows, graph, notes ...)."""
    if counts.n_models == 0:
        return {"method": "bt", "rows": [], "graph": {"warnings": []}, "notes": [], "n_votes": 0}
    board = leaderboard(counts, bootstrap=bootstrap, seed=seed).as_dict()
    board["graph"]["warnings"] = board["notes"]
    return board
