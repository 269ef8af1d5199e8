"""Celery tasks of the arena. Thin: ids in, one service call.

Queued by name (:mod:`arena.enqueue`): no module imports this one.
"""

from celery import shared_task

from arena import services
from arena.trust import service as trust


@shared_task(acks_late=True, ignore_result=True)
def refit_leaderboard(scope_key: str) -> int | None:
    """Refit a scope if it is dirty and nobody else is fitting it; returns the snapshot id."""
    snapshot = services.refit_if_dirty(scope_key)
    return snapshot.id if snapshot else None


@shared_task(acks_late=True, ignore_result=True)
def score_voters() -> dict:
    """The trust pass (beat: every ARENA_TRUST_INTERVAL_SECONDS): flag, unflag, move counts."""
    done = trust.score_voters()
    return {
        "flagged": len(done.flagged),
        "unflagged": len(done.unflagged),
        "moved": done.moved_votes,
    }
