"""Celery tasks of the arena. Thin: ids in, one service call.

Queued by name (:mod:`arena.enqueue`): no module imports this one. A refit that met a
database error (PostgreSQL dropped the connection, restarted) is tried again a few times
with backoff: the refit is idempotent, and the dropped one gave its claim back or lets it
expire (``arena.services.CLAIM_TIMEOUT``).
"""

from celery import shared_task
from django.db import DatabaseError

from arena import services
from arena.trust import service as trust


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    max_retries=5,
    retry_backoff=0.5,
    retry_backoff_max=10,
)
def refit_leaderboard(scope_key: str) -> int | None:
    """Refit a scope if it is dirty and nobody else is fitting it; returns the snapshot id."""
    snapshot = services.refit_if_dirty(scope_key)
    return snapshot.id if snapshot else None


@shared_task(acks_late=True, ignore_result=True)
def sweep_dirty_boards() -> int:
    """Beat (every ARENA_REFIT_SWEEP_SECONDS): queue the refits whose task was lost."""
    return len(services.sweep_dirty_boards())


@shared_task(acks_late=True, ignore_result=True)
def score_voters() -> dict:
    """The trust pass (beat: every ARENA_TRUST_INTERVAL_SECONDS): flag, unflag, move counts."""
    done = trust.score_voters()
    return {
        "flagged": len(done.flagged),
        "unflagged": len(done.unflagged),
        "moved": done.moved_votes,
    }
