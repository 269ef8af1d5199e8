"""Use cases of the arena: the only place that writes (actions), and what they announce.

Views, API endpoints, consumers and tasks call these; they never write to the ORM
themselves.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from arena.boards import BoardScope
from arena.events import broadcast_board
from arena.fitting import fit_scope
from arena.models import BoardState, LeaderboardSnapshot, PromptSet
from arena.ratings.scale import parse_anchor


def latest_snapshot(
    scope: BoardScope, refresh_if_missing: bool = True
) -> LeaderboardSnapshot | None:
    snapshot = (
        LeaderboardSnapshot.objects.filter(scope=scope.key).order_by("-created_at", "-id").first()
    )
    if snapshot is None and refresh_if_missing:
        snapshot = refresh_leaderboard(scope)
        # Someone is looking at this board: from now on votes keep it fresh.
        BoardState.objects.get_or_create(
            scope=scope.key,
            defaults={"requested_at": snapshot.created_at, "fitted_up_to": snapshot.created_at},
        )
    return snapshot


def refresh_leaderboard(
    scope: BoardScope, bootstrap: int | None = None, seed: int = 0
) -> LeaderboardSnapshot:
    """Fit the scope's leaderboard from aggregated counts and store it as a new snapshot."""
    started = time.perf_counter()
    rounds = settings.ARENA_BOOTSTRAP_ROUNDS if bootstrap is None else bootstrap
    prompt_set = PromptSet.objects.filter(slug=scope.prompt_set).first()
    anchor = (
        parse_anchor(prompt_set.rating_anchor) if prompt_set and prompt_set.rating_anchor else None
    )
    board = fit_scope(scope, bootstrap=rounds, seed=seed, anchor=anchor)
    snapshot = LeaderboardSnapshot.objects.create(
        scope=scope.key,
        prompt_set=prompt_set,
        method=board["method"],
        rows=board["rows"],
        n_votes=round(board["n_votes"] or 0),
        n_models=len(board["rows"]),
        graph=board["graph"],
        params={
            "bootstrap": rounds,
            "seed": seed,
            "ties": "half",
            "scale": f"400/ln10, {board['anchor'][0]} = {board['anchor'][1]:g}"
            if board.get("anchor")
            else "400/ln10, mean 1000",
            "coefficients": board.get("coefficients", {}),
            "coefficient_ci": board.get("coefficient_ci", {}),
            "prior": board.get("prior", 0),
        },
        fit_seconds=time.perf_counter() - started,
    )
    return snapshot


def default_scopes(prompt_set: PromptSet) -> list[BoardScope]:
    """The boards worth keeping fresh for a prompt set: humans, LLM judges, everything."""
    from arena.models import Judgment

    has = Judgment.objects.filter(
        match__prompt_set=prompt_set, match__slots__contestant__kind="model"
    )

    scopes = []
    if has.filter(voter__isnull=False).exists():
        scopes.append(BoardScope(prompt_set.slug, "humans"))
    if has.filter(judge__isnull=False).exists():
        scopes.append(BoardScope(prompt_set.slug, "judges"))
    return scopes


def refresh_prompt_set(
    prompt_set: PromptSet, bootstrap: int | None = None
) -> list[LeaderboardSnapshot]:
    return [refresh_leaderboard(scope, bootstrap=bootstrap) for scope in default_scopes(prompt_set)]


log = logging.getLogger(__name__)

# A claim older than this is considered abandoned (a worker died mid-fit).
CLAIM_TIMEOUT = timedelta(minutes=5)


def request_refit(scope_keys: list[str]) -> None:
    """Once the surrounding transaction commits, mark the scopes dirty and queue one refit each.

    Leading-edge throttle: the first vote of a quiet scope sets a short-lived "refit
    pending" flag in the shared cache, stamps ``BoardState.requested_at`` and queues a
    refit at once (or when ``ARENA_REFIT_MIN_INTERVAL_SECONDS`` have passed since the
    scope's last fit); later votes while the flag stands do nothing at all, since the
    queued refit will read their counts. The refit clears the flag before it reads, so a
    vote that lands during a fit queues the next one. An idle board is pushed one fit
    after the vote; a busy one at most once per interval.
    """
    transaction.on_commit(lambda: _mark_dirty(scope_keys))


def _mark_dirty(scope_keys: list[str]) -> None:
    for key in scope_keys:
        _queue_refit(key, stamp=True)


def _queue_refit(scope_key: str, stamp: bool) -> None:
    """Queue one refit of the scope unless one is pending: at once when the board is idle,
    else one interval after the last fit began. ``stamp`` records the new request."""
    from arena.tasks import refit_leaderboard

    interval = settings.ARENA_REFIT_MIN_INTERVAL_SECONDS
    if not cache.add(_pending_flag(scope_key), 1, timeout=interval + 60):
        return
    if stamp:
        now = timezone.now()
        if not BoardState.objects.filter(scope=scope_key).update(requested_at=now):
            BoardState.objects.get_or_create(scope=scope_key, defaults={"requested_at": now})
    wait = cache.get(_last_fit(scope_key), 0.0) + interval - time.time()
    # No countdown at all when the board is idle: an ETA task waits on the worker's timer.
    refit_leaderboard.apply_async(args=[scope_key], countdown=wait if wait > 0.01 else None)


def _pending_flag(scope_key: str) -> str:
    return "arena:refit-pending:" + hashlib.sha1(scope_key.encode()).hexdigest()


def _last_fit(scope_key: str) -> str:
    return "arena:last-fit:" + hashlib.sha1(scope_key.encode()).hexdigest()


def refit_if_dirty(scope_key: str) -> LeaderboardSnapshot | None:
    """Claim a dirty scope (one-row conditional update), refit it, push the new board."""
    now = timezone.now()
    claimed = BoardState.objects.filter(
        Q(fitted_up_to__isnull=True) | Q(fitted_up_to__lt=F("requested_at")),
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_TIMEOUT),
        scope=scope_key,
    ).update(claimed_at=now)
    if claimed != 1:
        if BoardState.objects.filter(scope=scope_key, claimed_at__isnull=False).exists():
            # Another fit is running and may have read the counts before the votes that
            # queued this refit: keep their flag and come back when it should be done.
            from arena.tasks import refit_leaderboard

            refit_leaderboard.apply_async(
                args=[scope_key], countdown=settings.ARENA_REFIT_MIN_INTERVAL_SECONDS
            )
        else:  # nothing to fit
            cache.delete(_pending_flag(scope_key))
        return None
    # Stamped before the flag is cleared: a vote that finds no flag finds this stamp, and
    # queues the next refit one interval after it rather than at once.
    cache.set(_last_fit(scope_key), time.time(), timeout=3600)
    # Cleared before the counts are read: a vote that still saw the flag is in them.
    cache.delete(_pending_flag(scope_key))
    state = BoardState.objects.get(scope=scope_key)
    fitted_up_to = state.requested_at
    started = time.perf_counter()
    try:
        snapshot = refresh_leaderboard(BoardScope.from_key(scope_key))
    finally:
        BoardState.objects.filter(scope=scope_key).update(claimed_at=None)
    BoardState.objects.filter(scope=scope_key).update(fitted_up_to=fitted_up_to)
    broadcast_board(scope_key, snapshot.id, snapshot.n_votes)
    log.info(
        "refit %s: %d votes, fit %.0f ms, pushed after %.0f ms",
        scope_key,
        snapshot.n_votes,
        snapshot.fit_seconds * 1000,
        (time.perf_counter() - started) * 1000,
    )
    # Votes that arrived while fitting have queued their refit (or found one queued); this
    # one more is for a flag lost otherwise (the cache evicted it, or it expired).
    if BoardState.objects.filter(scope=scope_key, requested_at__gt=fitted_up_to).exists():
        _queue_refit(scope_key, stamp=False)
    return snapshot
