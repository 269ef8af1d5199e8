"""Queue Celery tasks by name once the surrounding transaction commits (Zulip's rule).

By name, so that the code that queues a task never imports the module that defines it
(no services <-> tasks cycle), and on commit, so that a task never runs before the rows
it reads exist. Outside a transaction the task is queued at once.
"""

from __future__ import annotations

from celery import chord, current_app, signature
from django.db import transaction


def enqueue_on_commit(task: str, *args, countdown: float | None = None, **kwargs) -> None:
    """Queue ``task`` (its registered name, e.g. "arena.tasks.refit_leaderboard") after commit."""
    transaction.on_commit(
        lambda: current_app.send_task(task, args=args, kwargs=kwargs, countdown=countdown)
    )


def chord_on_commit(header: list[tuple[str, tuple]], callback: tuple[str, tuple, dict]) -> None:
    """Queue a chord after commit: ``header`` as (task name, args) pairs, then ``callback``
    (task name, args, kwargs) once they have all finished.

    The callback is also the chord's error callback: it runs when a member failed too (a
    member whose result could not be stored while Redis restarted fails the chord), so it
    must be idempotent, as a run's next step is."""
    name, args, kwargs = callback
    signatures = [signature(task, args=task_args, immutable=True) for task, task_args in header]
    done = signature(name, args=args, kwargs=kwargs, immutable=True)
    done.link_error(signature(name, args=args, kwargs=kwargs, immutable=True))
    transaction.on_commit(lambda: chord(signatures)(done))
