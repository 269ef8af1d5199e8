"""Bridge between the database aggregation and the pure rating engine."""

from __future__ import annotations

from arena.boards import BoardScope, scope_counts, scope_style_votes
from arena.ratings.leaderboard import leaderboard
from arena.ratings.style import style_leaderboard


def fit_scope(
    scope: BoardScope, bootstrap: int = 1000, seed: int = 0, anchor: tuple[str, float] | None = None
) -> dict:
    """Fit the scope's Bradley-Terry board (style-controlled if asked); JSON-ready dict.

    Keys: method, rows, graph (with "warnings"), notes, n_votes, coefficients, ...
    """
    if scope.style_control:
        try:
            votes = scope_style_votes(scope)
        except ValueError as exc:
            return _empty("bt-style", [str(exc)])
        board = style_leaderboard(
            votes, bootstrap=bootstrap, seed=seed, anchor=_usable(anchor, votes.models)
        ).as_dict()
    else:
        counts = scope_counts(scope)
        if counts.n_models == 0:
            return _empty("bt", [])
        board = leaderboard(
            counts, bootstrap=bootstrap, seed=seed, anchor=_usable(anchor, counts.models)
        ).as_dict()
    board["graph"]["warnings"] = board["notes"]
    return board


def _usable(anchor, models):
    """The anchor if its model is on this board (a category or judge board may lack it)."""
    return anchor if anchor and anchor[0] in models else None


def _empty(method: str, notes: list[str]) -> dict:
    return {
        "method": method,
        "rows": [],
        "graph": {"warnings": notes},
        "notes": notes,
        "n_votes": 0,
        "coefficients": {},
        "coefficient_ci": {},
    }
