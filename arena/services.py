"""Use cases of the arena: the only place that writes (actions), and what they announce.

Views, API endpoints, consumers and tasks call these; they never write to the ORM
themselves.
"""

from __future__ import annotations

import hashlib
import logging
import time
from contextlib import suppress
from datetime import timedelta
from typing import Literal, get_args

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from arena.boards import BoardScope, has_public_human_votes
from arena.enqueue import enqueue_on_commit
from arena.errors import NOT_FOUND, SERVICE_DOWN, Refusal
from arena.events import broadcast_board
from arena.fitting import FittedBoard, fit_scope
from arena.models import BoardState, Judgment, LeaderboardSnapshot, PromptSet
from arena.ratings.scale import parse_anchor

log = logging.getLogger(__name__)

# A claim older than this is considered abandoned (a worker died mid-fit).
CLAIM_TIMEOUT = timedelta(minutes=5)


def latest_snapshot(
    scope: BoardScope, refresh_if_missing: bool = True
) -> LeaderboardSnapshot | None:
    """The newest snapshot of a board, for a read: a read never fits nor stores a board.

    ``scope`` must come from :meth:`BoardScope.validated` (a board that can exist). With
    no snapshot yet, returns None and (``refresh_if_missing``) asks for the board through
    the throttled refit (:func:`request_refit`): the only write is the board's
    ``BoardState`` (from then on votes keep the board fresh), at most once per refit
    interval however many readers ask; the worker fits it and pushes it to open pages.
    """
    snapshot = LeaderboardSnapshot.objects.latest_of(scope.key)
    if snapshot is None and refresh_if_missing:
        request_refit([scope.key])
    return snapshot


# The standings a leaderboard endpoint answers: Bradley-Terry (the snapshot's own rows) or
# one of the options fitted beside it (LeaderboardSnapshot.options).
BoardMethod = Literal["bt", "elo", "swiss", "winrate", "anchored", "judge-effects", "soft", "pl"]
BOARD_METHODS: tuple[str, ...] = get_args(BoardMethod)


def board_json(scope: BoardScope, snapshot, method: str = "bt") -> dict:
    """The board as JSON; a board not fitted yet is empty and ``pending``.

    ``method`` other than the board's own ("bt", or "pl" for a board of K-wise rankings)
    answers the option stored with the snapshot; a snapshot without it (a
    style-controlled board) is a 404 naming ``method``.
    """
    if snapshot is None:
        return {
            "scope": scope.key,
            "method": "" if method == "bt" else method,
            "created_at": None,
            "n_votes": 0,
            "n_models": 0,
            "rows": [],
            "graph": {},
            "pending": True,
        }
    board = {
        "scope": snapshot.scope,
        "method": snapshot.method,
        "options": sorted(snapshot.options),
        "created_at": snapshot.created_at.isoformat(),
        "n_votes": snapshot.n_votes,
        "n_models": snapshot.n_models,
        "rows": snapshot.rows,
        "graph": snapshot.graph,
        "pending": False,
    }
    # "bt" is the board's own fit, or its option on a Plackett-Luce board (K-wise rankings)
    own = method == snapshot.method or (method == "bt" and "bt" not in snapshot.options)
    if not own:
        option = _option_of(snapshot, method)
        board.update(
            method=method,
            value=option["value"],
            rows=option["rows"],
            coefficients=option.get("coefficients") or {},
            graph={
                **snapshot.graph,
                "warnings": [*snapshot.graph.get("warnings", []), *option["notes"]],
            },
        )
    return board


def _option_of(snapshot, method: str) -> dict:
    option = snapshot.options.get(method)
    if option is None:
        if snapshot.scope.endswith("|style=1"):
            why = "only Bradley-Terry on a style-controlled board"
        elif method == "winrate":
            why = "win rates need a baseline, one model in every comparison"
        elif method == "anchored":
            why = "human-anchored standings need a run's board and human labels on its matches"
        elif method == "soft" and "|crit=" not in snapshot.scope:
            why = "soft outcomes need LLM verdicts with probabilities (a judge with logprobs)"
        elif method == "pl":
            why = "Plackett-Luce fits a board of K-wise rankings only"
        else:
            why = "not fitted on this board"
        raise Refusal(
            f"no {method} standings on this board ({why})", field="method", status=NOT_FOUND
        )
    return option


def refresh_leaderboard(
    scope: BoardScope, bootstrap: int | None = None, seed: int = 0
) -> LeaderboardSnapshot:
    """Fit the scope's leaderboard from aggregated counts and store it as a new snapshot."""
    return _store(scope, *_fit(scope, bootstrap, seed))


def _fit(scope: BoardScope, bootstrap: int | None, seed: int):
    """The scope's fitted board, its prompt set, the fit's parameters and its duration (s)."""
    started = time.perf_counter()
    rounds = settings.ARENA_BOOTSTRAP_ROUNDS if bootstrap is None else bootstrap
    prompt_set = PromptSet.objects.filter(slug=scope.prompt_set).first()
    anchor = (
        parse_anchor(prompt_set.rating_anchor) if prompt_set and prompt_set.rating_anchor else None
    )
    last = LeaderboardSnapshot.objects.latest_of(scope.key)
    board = fit_scope(
        scope,
        bootstrap=rounds,
        seed=seed,
        anchor=anchor,
        elo_k=settings.ARENA_ELO_K,
        elo_state=last.options.get("elo", {}).get("state") if last else None,
        swiss_tournaments=settings.ARENA_SWISS_TOURNAMENTS,
    )
    params = {
        "bootstrap": rounds,
        "seed": seed,
        "ties": "half",
        "scale": f"400/ln10, {board.anchor[0]} = {board.anchor[1]:g}"
        if board.anchor
        else "400/ln10, mean 1000",
        "coefficients": board.coefficients,
        "coefficient_ci": board.coefficient_ci,
        "prior": board.prior,
    }
    return board, prompt_set, params, time.perf_counter() - started


def _store(
    scope: BoardScope, board: FittedBoard, prompt_set, params: dict, fit_seconds: float
) -> LeaderboardSnapshot:
    return LeaderboardSnapshot.objects.create(
        scope=scope.key,
        prompt_set=prompt_set,
        method=board.method,
        rows=board.rows,
        n_votes=round(board.n_votes or 0),
        n_models=len(board.rows),
        graph=board.graph,
        params=params,
        options=board.options,
        fit_seconds=fit_seconds,
    )


def default_scopes(prompt_set: PromptSet) -> list[BoardScope]:
    """The boards worth keeping fresh for a prompt set: humans, LLM judges, everything."""
    has = Judgment.objects.filter(
        match__prompt_set=prompt_set, match__slots__contestant__kind="model"
    )

    scopes = []
    if has_public_human_votes(prompt_set.slug):  # not annotators' labels alone
        scopes.append(BoardScope(prompt_set.slug, "humans"))
    if has.filter(judge__isnull=False).exists():
        scopes.append(BoardScope(prompt_set.slug, "judges"))
    return scopes


def refresh_prompt_set(
    prompt_set: PromptSet, bootstrap: int | None = None
) -> list[LeaderboardSnapshot]:
    return [refresh_leaderboard(scope, bootstrap=bootstrap) for scope in default_scopes(prompt_set)]


def request_refit(scope_keys: list[str]) -> None:
    """Once the surrounding transaction commits, mark the scopes dirty and queue one refit each.

    Leading-edge throttle: the first vote of a quiet scope sets a short-lived "refit
    pending" flag in the shared cache, stamps ``BoardState.requested_at`` and queues a
    refit at once (or when ``ARENA_REFIT_MIN_INTERVAL_SECONDS`` have passed since the
    scope's last fit); later votes while the flag stands do nothing at all, since the
    queued refit will read their counts. The refit clears the flag before it reads, so a
    vote that lands during a fit queues the next one. An idle board is pushed one fit
    after the vote; a busy one at most once per interval.

    Best-effort: while Redis (the throttle's cache, the broker) is unreachable the request
    is logged and dropped, never the committed write that asked for it; the next vote
    after the outage asks again, and its refit reads every count.
    """
    transaction.on_commit(lambda: _mark_dirty(scope_keys))


def _mark_dirty(scope_keys: list[str]) -> None:
    for key in scope_keys:
        try:
            _queue_refit(key, stamp=True)
        except SERVICE_DOWN as exc:
            log.warning("refit of %s not requested, Redis is unreachable: %s", key, exc)


def _queue_refit(scope_key: str, stamp: bool) -> None:
    """Queue one refit of the scope unless one is pending: at once when the board is idle,
    else one interval after the last fit began. ``stamp`` records the new request."""
    interval = settings.ARENA_REFIT_MIN_INTERVAL_SECONDS
    if not cache.add(_pending_flag(scope_key), 1, timeout=interval + 60):
        return
    if stamp:
        now = timezone.now()
        if not BoardState.objects.filter(scope=scope_key).update(requested_at=now):
            BoardState.objects.get_or_create(scope=scope_key, defaults={"requested_at": now})
    wait = cache.get(_last_fit(scope_key), 0.0) + interval - time.time()
    # No countdown at all when the board is idle: an ETA task waits on the worker's timer.
    enqueue_on_commit(REFIT_TASK, scope_key, countdown=wait if wait > 0.01 else None)


# The throttle's task (arena/tasks.py), queued by name: this module never imports it.
REFIT_TASK = "arena.tasks.refit_leaderboard"


def _pending_flag(scope_key: str) -> str:
    return "arena:refit-pending:" + hashlib.sha1(scope_key.encode()).hexdigest()


def _last_fit(scope_key: str) -> str:
    return "arena:last-fit:" + hashlib.sha1(scope_key.encode()).hexdigest()


def refit_if_dirty(scope_key: str) -> LeaderboardSnapshot | None:
    """The throttle's task: refit a dirty scope that nobody is fitting, push the new board."""
    snapshot = refit(scope_key)
    if snapshot is None:
        if BoardState.objects.filter(scope=scope_key, claimed_at__isnull=False).exists():
            # Another fit is running and may have read the counts before the votes that
            # queued this refit: keep their flag and come back when it should be done.
            enqueue_on_commit(
                REFIT_TASK, scope_key, countdown=settings.ARENA_REFIT_MIN_INTERVAL_SECONDS
            )
        else:  # nothing to fit
            cache.delete(_pending_flag(scope_key))
        return None
    # Votes that arrived while fitting have queued their refit (or found one queued); this
    # one more is for a flag lost otherwise (the cache evicted it, or it expired).
    if BoardState.objects.filter(scope=scope_key, requested_at__gt=F("fitted_up_to")).exists():
        _queue_refit(scope_key, stamp=False)
    return snapshot


def sweep_dirty_boards(now=None) -> list[str]:
    """Queue a refit of every board asked for and not fitted since, whose request is older
    than ``ARENA_REFIT_SWEEP_SECONDS`` and that nobody is fitting: the refits whose task
    was lost (asked for by a process with an in-memory broker, such as ``arena_import`` run
    beside an embedded-worker server; a broker that lost its queue). Beat runs it every
    ``ARENA_REFIT_SWEEP_SECONDS``; a board whose refit is merely queued is refitted once
    and found clean by the second task. Returns the scope keys."""
    now = now or timezone.now()
    waited = now - timedelta(seconds=settings.ARENA_REFIT_SWEEP_SECONDS)
    keys = list(
        BoardState.objects.filter(
            Q(fitted_up_to__isnull=True) | Q(requested_at__gt=F("fitted_up_to")),
            Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT),
            requested_at__lt=waited,
        ).values_list("scope", flat=True)
    )
    for key in keys:
        enqueue_on_commit(REFIT_TASK, key)
    return keys


def _give_back_claim(scope_key: str, claimed_at) -> None:
    """A fit failed: give its claim back, on a fresh connection when the error broke this
    one (PostgreSQL dropped it); if even that fails the claim expires (CLAIM_TIMEOUT)."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()
    try:
        BoardState.objects.filter(scope=scope_key, claimed_at=claimed_at).update(claimed_at=None)
    except DatabaseError as exc:
        log.warning("claim of %s left to expire: %s", scope_key, exc)


def refit(scope_key: str, *, final: bool = False) -> LeaderboardSnapshot | None:
    """THE refit of a board: claim it, fit it from the counts, store the snapshot, push it.

    Every refit goes through here: the throttle's task (:func:`refit_if_dirty`, a dirty
    board that nobody is fitting) and a run's final board (``final``: fitted even if
    clean, and the claim taken over from a provisional fit still running, whose older
    board is then dropped instead of being stored after the final one).

    The claim is a one-row conditional update of the scope's ``BoardState``; a fit stores
    its snapshot only if it still holds the claim. Returns None when it took no claim or
    lost it.
    """
    now = timezone.now()
    claimable = Q(scope=scope_key)
    if final:
        BoardState.objects.get_or_create(scope=scope_key, defaults={"requested_at": now})
    else:
        claimable &= Q(fitted_up_to__isnull=True) | Q(fitted_up_to__lt=F("requested_at"))
        claimable &= Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT)
    if BoardState.objects.filter(claimable).update(claimed_at=now) != 1:
        return None
    scope = BoardScope.from_key(scope_key)
    started = time.perf_counter()
    try:
        with suppress(*SERVICE_DOWN):  # the throttle's marks; the fit goes on without Redis
            # Stamped before the flag is cleared: a vote that finds no flag finds this
            # stamp, and queues the next refit one interval after it rather than at once.
            cache.set(_last_fit(scope_key), time.time(), timeout=3600)
            # Cleared before the counts are read: a vote that still saw the flag is in them.
            cache.delete(_pending_flag(scope_key))
        fitted_up_to = BoardState.objects.values_list("requested_at", flat=True).get(
            scope=scope_key
        )
        fitted = _fit(scope, None, 0)
    except BaseException:
        _give_back_claim(scope_key, now)
        raise
    with transaction.atomic():
        released = BoardState.objects.filter(scope=scope_key, claimed_at=now).update(
            claimed_at=None, fitted_up_to=fitted_up_to
        )
        if not released:  # a final fit took the board over: its board is the one to keep
            log.info("refit %s dropped: the board was taken over", scope_key)
            return None
        snapshot = _store(scope, *fitted)
    broadcast_board(scope_key, snapshot.id, snapshot.n_votes)
    log.info(
        "refit %s: %d votes, fit %.0f ms, pushed after %.0f ms",
        scope_key,
        snapshot.n_votes,
        snapshot.fit_seconds * 1000,
        (time.perf_counter() - started) * 1000,
    )
    return snapshot
