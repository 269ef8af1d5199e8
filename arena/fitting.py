"""Bridge between the database aggregation and the pure rating engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from arena.boards import BoardScope, scope_counts, scope_style_votes, scope_votes_in_order
from arena.ratings.elo import DEFAULT_K, elo_from_votes
from arena.ratings.leaderboard import leaderboard
from arena.ratings.style import style_leaderboard
from arena.ratings.swiss import DEFAULT_TOURNAMENTS, swiss_board

# The board options fitted beside Bradley-Terry (``FittedBoard.options``).
OPTION_METHODS = ("elo", "swiss")


@dataclass(frozen=True)
class FittedBoard:
    """A scope's fitted leaderboard, JSON-ready: what a ``LeaderboardSnapshot`` stores.

    ``graph`` is the comparison graph's summary with the fit's notes as ``warnings``;
    ``anchor`` the (model, rating) the scale is pinned to, if any; ``coefficients`` and
    ``coefficient_ci`` the style-control coefficients (empty without style control).
    ``options`` the other standings of the same votes, by method (:data:`OPTION_METHODS`:
    the online Elo and the Swiss standings), each ``{method, value, rows, n_votes,
    coefficients, notes}`` with rows like ``rows`` (``value`` names what their ``rating``
    holds); empty on a style-controlled board.
    """

    method: str
    rows: list[dict]
    graph: dict
    notes: list[str]
    n_votes: float = 0.0
    anchor: tuple[str, float] | None = None
    coefficients: dict = field(default_factory=dict)
    coefficient_ci: dict = field(default_factory=dict)
    prior: float = 0.0
    options: dict = field(default_factory=dict)


def fit_scope(
    scope: BoardScope,
    bootstrap: int = 1000,
    seed: int = 0,
    anchor: tuple[str, float] | None = None,
    *,
    elo_k: float = DEFAULT_K,
    swiss_tournaments: int = DEFAULT_TOURNAMENTS,
) -> FittedBoard:
    """Fit the scope's Bradley-Terry board (style-controlled if asked) and, without style
    control, its options: the online Elo (K-factor ``elo_k``, the votes replayed in the
    order cast) and the Swiss standings (``swiss_tournaments`` simulated tournaments)."""
    options = {}
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
        options = {
            "elo": _elo(scope, elo_k),
            "swiss": _option(swiss_board(counts, tournaments=swiss_tournaments, seed=seed)),
        }
    notes = list(board["notes"])
    return FittedBoard(
        method=board["method"],
        rows=board["rows"],
        graph={**(board["graph"] or {}), "warnings": notes},
        notes=notes,
        n_votes=board["n_votes"] or 0.0,
        anchor=tuple(board["anchor"]) if board.get("anchor") else None,
        coefficients=board.get("coefficients") or {},
        coefficient_ci=board.get("coefficient_ci") or {},
        prior=board.get("prior", 0.0),
        options=options,
    )


def _elo(scope: BoardScope, k: float) -> dict:
    """The online Elo option; without rows, and a note, on a board of aggregated counts."""
    try:
        votes = scope_votes_in_order(scope)
    except ValueError as exc:
        board = elo_from_votes((), [], [], [], k=k).as_dict()
        return _option({**board, "notes": [str(exc)]})
    return _option(elo_from_votes(*votes, k=k).as_dict())


def _option(board: dict) -> dict:
    """A board option as stored: its rows with the value under ``rating``."""
    value = board["value"]
    rows = [
        {**row, "rating": row.pop(value)} if value != "rating" else row for row in board["rows"]
    ]
    keep = ("method", "value", "n_votes", "coefficients", "notes")
    return {**{k: board[k] for k in keep}, "rows": rows}


def _usable(anchor, models):
    """The anchor if its model is on this board (a category or judge board may lack it)."""
    return anchor if anchor and anchor[0] in models else None


def _empty(method: str, notes: list[str]) -> FittedBoard:
    return FittedBoard(method=method, rows=[], graph={"warnings": notes}, notes=notes)
