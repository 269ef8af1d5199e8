"""A run's life outside its steps: failing, cancelling, resuming, watching, reading.

Also the perturbation runs' wait for their baseline: a perturbation run judges its
baseline's comparisons again, so it steps only once the baseline is done, and fails with it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.errors import CONFLICT, Refusal
from arena.models import EvaluationRun, Judgment
from judges.events import broadcast_progress
from judges.runs.create import start_run
from judges.runs.dispatch import enqueue_step

RUNNING = EvaluationRun.Status.RUNNING


def fail_run(run: EvaluationRun, error: str) -> None:
    """Mark a running run failed with its error, and step the perturbation runs waiting for it."""
    with transaction.atomic():
        EvaluationRun.objects.filter(pk=run.pk, status=RUNNING).update(
            status=EvaluationRun.Status.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        step_perturbations(run)
    run.refresh_from_db()
    broadcast_progress(run)


# --- perturbation runs waiting for their baseline -------------------------------------------


def wait_for_baseline(run: EvaluationRun) -> str:
    """'' once the baseline is done; else look again later (or fail with the baseline)."""
    status = (
        EvaluationRun.objects.filter(pk=run.baseline_id).values_list("status", flat=True).first()
    )
    if status == EvaluationRun.Status.DONE:
        return ""
    if status in (RUNNING, EvaluationRun.Status.PENDING):
        return "waiting for the baseline"  # the baseline's end steps it (step_perturbations)
    fail_run(run, f"its baseline run {run.baseline_id} is {status or 'gone'}")
    return "failed"


def step_perturbations(baseline: EvaluationRun) -> None:
    """A baseline ended: step the perturbation runs waiting for it (the watchdog also does)."""
    waiting = EvaluationRun.objects.filter(baseline=baseline, status=RUNNING)
    for run_id in waiting.values_list("id", flat=True):
        enqueue_step(run_id)


# --- cancel, resume, watch -------------------------------------------------------------------


def cancel_run(run: EvaluationRun) -> EvaluationRun:
    """Stop a pending or running run; its queued tasks find it cancelled and exit."""
    with transaction.atomic():
        changed = EvaluationRun.objects.filter(
            pk=run.pk, status__in=[EvaluationRun.Status.PENDING, RUNNING]
        ).update(status=EvaluationRun.Status.CANCELLED, finished_at=timezone.now())
        run.refresh_from_db()
        if not changed:
            raise Refusal(
                f"run {run.pk} is {run.status}; nothing to cancel", field="status", status=CONFLICT
            )
        transaction.on_commit(lambda: broadcast_progress(run))
        step_perturbations(run)
    return run


def resume_run(run: EvaluationRun) -> EvaluationRun:
    """Restart a cancelled, failed or stuck run where it stopped (a pending one is started)."""
    if run.status == EvaluationRun.Status.PENDING:
        return start_run(run)
    with transaction.atomic():
        changed = EvaluationRun.objects.filter(
            pk=run.pk,
            status__in=[EvaluationRun.Status.CANCELLED, EvaluationRun.Status.FAILED, RUNNING],
        ).update(status=RUNNING, finished_at=None, error="")
        run.refresh_from_db()
        if not changed:
            raise Refusal(
                f"run {run.pk} is {run.status}; nothing to resume", field="status", status=CONFLICT
            )
        if not run.contestant_ids:
            raise Refusal(f"run {run.pk} was never started", field="status", status=CONFLICT)
        enqueue_step(run.id, redispatch=True)
        transaction.on_commit(lambda: broadcast_progress(run))
    return run


def stalled(run: EvaluationRun) -> bool:
    """No step handed out yet, or a batch with no new verdict for ARENA_RUN_STALL_SECONDS."""
    if not run.step or run.step_at is None:
        return True
    window = timedelta(seconds=settings.ARENA_RUN_STALL_SECONDS)
    since = timezone.now() - window
    if run.step_at > since:
        return False
    return not Judgment.objects.filter(match__run=run, created_at__gte=since).exists()


def watch_runs() -> list[int]:
    """Beat task: step runs that were never stepped or whose batch stalled; returns their ids."""
    nudged = []
    for run in EvaluationRun.objects.filter(status=RUNNING).select_related("judge", "prompt_set"):
        if stalled(run) and (run.step or _older_than(run.started_at, 30)):
            enqueue_step(run.id, redispatch=True)
            nudged.append(run.id)
    return nudged


def _older_than(moment, seconds: float) -> bool:
    return moment is None or moment < timezone.now() - timedelta(seconds=seconds)


def resume_interrupted_runs() -> list[int]:
    """At start-up of an embedded server: runs left running lost their queued tasks; hand them out again."""
    ids = list(EvaluationRun.objects.filter(status=RUNNING).values_list("id", flat=True))
    with transaction.atomic():
        for run_id in ids:
            enqueue_step(run_id, redispatch=True)
    return ids


# --- reading -----------------------------------------------------------------------------------


def progress(run: EvaluationRun) -> float:
    """Share of the planned calls stored (adaptive designs plan an upper bound)."""
    if run.status == EvaluationRun.Status.DONE:
        return 1.0
    return min(1.0, run.calls_made / run.planned_calls) if run.planned_calls else 0.0


def wait_for(run: EvaluationRun, timeout: float, poll: float = 0.5) -> EvaluationRun:
    """Block until the run leaves pending/running or ``timeout`` seconds pass (command, tests)."""
    deadline = time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if run.status not in (EvaluationRun.Status.PENDING, RUNNING) or time.monotonic() > deadline:
            return run
        time.sleep(poll)
