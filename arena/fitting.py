"""Bridge between the database aggregation and the pure rating engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from arena.anchoring import anchored_option
from arena.boards import (
    SLOT_ZERO_SCORE,
    BoardScope,
    VotesInOrder,
    model_names,
    one_snapshot,
    scope_counts,
    scope_judge_verdicts,
    scope_rankings,
    scope_soft_counts,
    scope_style_votes,
    scope_verdict_records,
    scope_vote_tally,
    scope_votes_in_order,
)
from arena.ratings.elo import DEFAULT_K, elo_from_votes
from arena.ratings.judge_effects import judge_effects_leaderboard
from arena.ratings.leaderboard import leaderboard
from arena.ratings.plackett_luce import pl_leaderboard
from arena.ratings.style import style_leaderboard
from arena.ratings.swiss import DEFAULT_TOURNAMENTS, swiss_board
from arena.ratings.winrate import infer_baseline, winrate_leaderboard

# The board options fitted beside the board's own fit (``FittedBoard.options``): beside
# Bradley-Terry, or beside Plackett-Luce on a board of K-wise rankings only (then "bt").
OPTION_METHODS = ("elo", "swiss", "winrate", "anchored", "judge-effects", "soft", "bt")
PAIRS_OF_RANKINGS = "Bradley-Terry on the pairs each K-wise ranking orders (ties half)"


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
    elo_state: dict | None = None,
    swiss_tournaments: int = DEFAULT_TOURNAMENTS,
) -> FittedBoard:
    """Fit the scope's Bradley-Terry board (style-controlled if asked; Plackett-Luce when
    the scope holds K-wise rankings only, :func:`arena.boards.scope_rankings`, with
    Bradley-Terry on the pairs they order as the option ``bt``) and, without style
    control, its options: the online Elo (K-factor ``elo_k``, the votes replayed in the
    order cast, continuing ``elo_state``, the last board's: :func:`board_elo`) and the
    Swiss standings (``swiss_tournaments`` simulated tournaments), and on a run's board
    with human labels the human-anchored standings (:func:`arena.anchoring.anchored_option`),
    and where LLM verdicts carry verdict probabilities the soft-outcome standings
    (:func:`arena.boards.scope_soft_counts`, TrustJudge)."""
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
        rankings = scope_rankings(scope)
        if rankings is not None:  # K-wise rankings only: Plackett-Luce, BT as the option
            pairs = {**board, "notes": [*board["notes"], PAIRS_OF_RANKINGS]}
            board = pl_leaderboard(
                rankings, bootstrap=bootstrap, seed=seed, anchor=_usable(anchor, rankings.models)
            ).as_dict()
        if not scope.criterion:  # a criterion's board: BT only (the options read overall verdicts)
            options = {
                "elo": board_elo(scope, elo_k, elo_state),
                "swiss": _option(swiss_board(counts, tournaments=swiss_tournaments, seed=seed)),
            }
            winrate = board_winrate(scope, counts)
            if winrate is not None:
                options["winrate"] = winrate
            anchored = anchored_option(scope, _usable(anchor, counts.models))
            if anchored is not None:  # a run's board with human labels (arena.anchoring)
                options["anchored"] = anchored
            if scope.llm_only:
                options["judge-effects"] = board_judge_effects(scope)
            soft = scope_soft_counts(scope)
            if soft is not None:  # TrustJudge: the judges' verdict probabilities as soft outcomes
                soft_board = leaderboard(
                    soft, bootstrap=bootstrap, seed=seed, anchor=_usable(anchor, soft.models)
                ).as_dict()
                options["soft"] = _option({**soft_board, "method": "soft", "value": "rating"})
        if rankings is not None:
            options["bt"] = _option(pairs)
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


AGGREGATED = (
    "online Elo needs the votes one by one, in the order cast; this board holds aggregated counts"
)
_MASK64 = (1 << 64) - 1


def board_elo(scope: BoardScope, k: float, state: dict | None = None) -> dict:
    """The online Elo option of a board, with its ``state`` for the next refit.

    The Elo is the replay of the board's votes in the order cast, but a refit replays only
    the votes cast since ``state`` (the last board's: ratings and votes per model, the
    votes replayed, their :func:`arena.boards.vote_fingerprint`, the highest judgment id
    and the last vote's place in the order), continuing its ratings: one query of the new
    votes (a primary-key range) and one GROUP BY of O(models²) running counts that checks
    that the votes replayed are still the board's (:func:`_continues`). When they are not
    (a voter's votes moved between the public and the flagged counts, a vote deleted, one
    committed late with an earlier place in the order, another K), it replays every vote.
    Either way the ratings are bit for bit those of a full replay in order. A board of
    aggregated counts has no order to replay: no rows, a note, no state. A jury run's board
    replays the jury's verdicts, one per call, each where its last juror verdict was
    written (a late juror's verdict moves its call: a full replay), read in one query
    whatever the jurors (:func:`arena.boards.scope_votes_in_order`).
    """
    state = state if state and state.get("k") == k else None
    with one_snapshot():  # a vote cast meanwhile: in the new votes and the tally, or neither
        votes = scope_votes_in_order(scope, after_id=state["max_id"] if state else 0)
        if state is not None and not _continues(scope, state, votes):
            state, votes = None, scope_votes_in_order(scope)
    if (votes.weights != 1).any():
        board = elo_from_votes((), [], [], [], k=k).as_dict()
        return _option({**board, "notes": [AGGREGATED]})
    contestants = dict(state["contestants"]) if state else {}
    ids = {i: name for name, i in contestants.items()}
    new = set(np.concatenate([votes.contestant_a, votes.contestant_b]).tolist()) - set(ids)
    if new:
        ids.update(model_names(new))
        contestants = {name: i for i, name in ids.items()}
    models = sorted(contestants)  # as a full replay orders them
    ids_in_order = np.array([contestants[m] for m in models], np.int64)
    by_id = np.argsort(ids_in_order)
    a, b = (
        by_id[np.searchsorted(ids_in_order[by_id], slot)]
        for slot in (votes.contestant_a, votes.contestant_b)
    )
    board = elo_from_votes(
        models,
        a,
        b,
        SLOT_ZERO_SCORE[votes.winner],
        k=k,
        start=state["ratings"] if state else None,
        start_votes=state["votes"] if state else None,
    ).as_dict()
    option = _option(board)
    option["state"] = _next_state(state, votes, k, contestants, board["rows"])
    return option


def _continues(scope: BoardScope, state: dict, votes: VotesInOrder) -> bool:
    """Whether ``votes`` (those above the state's highest id) come after the votes the
    state replayed, and those are still exactly the board's: the board's running counts
    hold as many votes, with the same fingerprint, as the state's and the new ones."""
    if len(votes) and state["last"]:  # (a state of no votes has no last one)
        last_at, last_id = state["last"]
        if (votes.created_at[0], int(votes.ids[0])) <= (datetime.fromisoformat(last_at), last_id):
            return False  # a new vote sorts before one replayed: the order changed
    total, fingerprint = scope_vote_tally(scope)
    before = (total - int(votes.weights.sum()), (fingerprint - votes.fingerprint) & _MASK64)
    return before == (state["n_votes"], int(state["fingerprint"], 16))


def _next_state(state, votes: VotesInOrder, k: float, contestants: dict, rows) -> dict:
    """The Elo state after ``votes``: what the next refit continues from."""
    n_votes = state["n_votes"] if state else 0
    fingerprint = int(state["fingerprint"], 16) if state else 0
    max_id = state["max_id"] if state else 0
    last = state["last"] if state else None
    if len(votes):
        n_votes += int(votes.weights.sum())
        fingerprint = (fingerprint + votes.fingerprint) & _MASK64
        max_id = max(max_id, int(votes.ids.max()))
        last = [votes.created_at[-1].isoformat(), int(votes.ids[-1])]
    return {
        "k": k,
        "n_votes": n_votes,
        "fingerprint": f"{fingerprint:016x}",
        "max_id": max_id,
        "last": last,
        "contestants": contestants,
        "ratings": {row["model"]: row["rating"] for row in rows},
        "votes": {row["model"]: int(row["votes"]) for row in rows},
    }


def board_winrate(scope: BoardScope, counts) -> dict | None:
    """AlpacaEval's standings of a baseline board (AlpacaEval, Arena-Hard, an anchor run:
    one model, the baseline, in every comparison), else None: each model's win rate
    against the baseline with its standard error and, when every answer against it is a
    stored text, AlpacaEval 2.0's length-controlled win rate and its standard error
    (``arena.ratings.winrate.winrate_leaderboard``, as ``--method winrate`` in the CLI).

    It reads every verdict of the board (:func:`arena.boards.scope_verdict_records`) and
    fits the instruction difficulties jointly, so it costs O(verdicts), and seconds for a
    board of many models; only baseline boards pay it, and these are imported or run
    boards, not the live human ones. On a jury run's board each record is the jury's
    verdict on a call, as its Bradley-Terry board counts it.
    """
    try:
        baseline = infer_baseline(counts)
    except ValueError:  # no model in every comparison: not a baseline board
        return None
    try:
        board = winrate_leaderboard(scope_verdict_records(scope), baseline).as_dict()
    except ValueError as exc:  # e.g. length control finds a model with no scored verdict
        return _option(
            {
                "method": "winrate",
                "value": "win_rate",
                "rows": [],
                "n_votes": 0,
                "coefficients": {},
                "notes": [str(exc)],
            }
        )
    board["coefficients"] = {"baseline": baseline}  # per-model GLM weights: the CLI's
    return _option(board)


def board_judge_effects(scope: BoardScope) -> dict:
    """The judge-effects standings of an LLM board (:mod:`arena.ratings.judge_effects`):
    one fit of the models with a first-slot and a tie term per judge, the judges' figures
    in ``coefficients``. One query of the board's verdicts and an O(cells) fit."""
    v = scope_judge_verdicts(scope)
    if v is None:
        return _option(judge_effects_leaderboard([], [], [], [], [], []).as_dict())
    board = judge_effects_leaderboard(
        v.models, v.judge_names, v.judge, v.first, v.second, v.outcome
    )
    return _option(board.as_dict())


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
