"""Celery tasks of the arena. Thin: ids in, one service call.

Queued by name (:mod:`arena.enqueue`): no module imports this one.
"""

from celery import shared_task

from arena import services


@shared_task(acks_late=True, ignore_result=True)
def refit_leaderboard(scope_key: str) -> int | None:
    """Refit a scope if it is dirty and nobody else is fitting it; returns the snapshot id."""
    snapshot = services.refit_if_dirty(scope_key)
    return snapshot.id if snapshot else None
