"""What a run queues: its next step, a batch's chord of judge calls or answers, the watchdog.

Tasks are queued by their registered names (:mod:`arena.enqueue`) once the surrounding
transaction commits, so that no use case imports :mod:`judges.tasks` (which imports them).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from arena.enqueue import chord_on_commit, enqueue_on_commit

log = logging.getLogger(__name__)

RUN_STEP = "judges.tasks.run_step"
JUDGE_BATCH = "judges.tasks.judge_batch"
GENERATE_OUTPUT = "judges.tasks.generate_output"
WATCH_RUNS = "judges.tasks.watch_runs"
WATCHDOG = "judges: watch evaluation runs"


def enqueue_step(run_id: int, countdown: float | None = None, **options) -> None:
    """Queue ``run_step(run_id, **options)`` once the surrounding transaction commits."""
    enqueue_on_commit(RUN_STEP, run_id, countdown=countdown, **options)


def dispatch_generation(run_id: int, round_index: int, missing) -> None:
    """A chord generating the batch's missing answers, then the run's next step."""
    header = [
        (GENERATE_OUTPUT, (prompt_id, contestant_id, run_id))
        for prompt_id, contestant_id in missing
    ]
    chord_on_commit(
        header,
        (RUN_STEP, (run_id,), {"round_index": round_index, "after_generation": True}),
    )


def dispatch_judging(run_id: int, round_index: int, pending, groups=None) -> None:
    """A chord of the batch's judge calls, ``(match id, presentation, repeat)`` each, in
    tasks of ``ARENA_JUDGE_BATCH_CALLS`` calls (each sends its calls at once), then the
    next step. ``groups`` (a key per call, e.g. the answer a pointwise judge grades) keeps
    the calls of one key in one task (a task may then hold more calls than the size)."""
    size = max(1, settings.ARENA_JUDGE_BATCH_CALLS)
    header = [(JUDGE_BATCH, (task,)) for task in _tasks(pending, groups, size)]
    log.info(
        "run %s round %s: %d judge calls handed out in %d tasks",
        run_id,
        round_index,
        len(pending),
        len(header),
    )
    chord_on_commit(header, (RUN_STEP, (run_id,), {"round_index": round_index}))


def _tasks(pending, groups, size: int) -> list[list[list]]:
    """The calls in tasks of about ``size``: in order, or whole groups packed in key order."""
    pending = [list(item) for item in pending]
    if groups is None:
        return [pending[i : i + size] for i in range(0, len(pending), size)]
    by_key: dict = {}
    for key, item in zip(groups, pending, strict=True):
        by_key.setdefault(key, []).append(item)
    tasks: list[list[list]] = [[]]
    for calls in by_key.values():
        if tasks[-1] and len(tasks[-1]) + len(calls) > size:
            tasks.append([])
        tasks[-1].extend(calls)
    return [task for task in tasks if task]


def ensure_watchdog() -> None:
    """The beat entry that runs ``watch_runs`` every ``ARENA_RUN_WATCH_SECONDS`` (created
    once, editable in the admin)."""
    if PeriodicTask.objects.filter(name=WATCHDOG).exists():
        return
    every, _ = IntervalSchedule.objects.get_or_create(
        every=settings.ARENA_RUN_WATCH_SECONDS, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.get_or_create(
        name=WATCHDOG, defaults={"task": WATCH_RUNS, "interval": every}
    )
