"""Celery tasks of evaluation runs. Thin: ids in, one use case each (:mod:`judges.runs`,
:mod:`judges.judging`, :mod:`judges.schedules`).

The use cases queue these by their registered names (``judges.tasks.run_step`` ...,
:mod:`judges.runs.dispatch`): nothing imports this module but Celery's autodiscovery.

Every task is ``acks_late`` (a killed worker's task is handed out again) and idempotent
(the use cases write on unique keys), and exits quietly when its run was cancelled or its
row is gone. Tasks are enqueued on commit by the use cases.

Judge calls travel in batches (``judge_batch``): one task sends a batch's calls at once
on one event loop, under the endpoint's limits shared by every worker (:mod:`llm.limits`).

Retries come in two layers. Inside one task the client retries transient errors (429,
5xx, timeouts, connection errors) ``judge.max_retries`` times with exponential backoff and
full jitter, honouring ``Retry-After``: that rides out short blips without giving the
worker slot away. When those are exhausted the endpoint is down for longer, so the task
itself is retried, with only those calls (``LLMTransientError`` only) ``ARENA_JUDGE_TASK_RETRIES`` times,
``ARENA_JUDGE_TASK_BACKOFF_SECONDS · 2^n`` later with jitter, freeing the worker meanwhile.
On the last attempt the failure is stored with its reason. So one judgment costs at most
``(max_retries + 1) · (ARENA_JUDGE_TASK_RETRIES + 1)`` requests, and a permanent error
(bad key, unknown model) costs one. A database error before the call (nothing paid yet),
or Redis unreachable before it (the stash of paid replies cannot be read, the calls cannot
be claimed: :mod:`llm.claims`), retries the task after a short pause, on its own budget of
``DB_RETRIES``. A batch handed out twice (past the broker's visibility timeout) waits for
the calls the other delivery holds instead of paying for them again.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError

from arena.errors import SERVICE_DOWN
from judges import campaigns, judging, schedules
from judges.runs import lifecycle, orchestrate
from llm.errors import LLMTransientError

log = logging.getLogger(__name__)

DB_RETRIES = 8


def judge_backoff(retries: int) -> float:
    """Seconds before judge-level task retry ``n`` (0-based): ``b · 2^n · (1/2 + U(0, 1/2))``."""
    return settings.ARENA_JUDGE_TASK_BACKOFF_SECONDS * 2.0**retries * (0.5 + random.random() / 2)


def db_backoff(retries: int) -> float:
    """Seconds before database-level task retry ``n``: ``min(5, 0.1 · 2^n) · (1/2 + U(0, 1/2))``."""
    return min(5.0, 0.1 * 2.0**retries) * (0.5 + random.random() / 2)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def run_step(self, run_id: int, round_index: int | None = None, **options) -> str:
    """Advance a run: replay its design, hand out the next batch, or fit it when done."""
    if "round" in options:  # a message queued before the keyword was renamed
        round_index = options.pop("round")
    try:
        return orchestrate.run_step(run_id, round_index, **options)
    except DatabaseError as exc:
        if self.request.retries >= DB_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=db_backoff(self.request.retries)) from None


@shared_task(bind=True, acks_late=True, max_retries=None)
def judge_batch(self, items: list, judge_retries: int = 0) -> str:
    """Judge a batch of calls, ``[match id, presentation, repeat]`` each, all at once.

    A chord member: it always returns. Calls whose in-call retries were exhausted are
    retried later as a smaller batch of their own (the rest is stored); a database error
    retries the batch (what is stored is skipped, what was paid is in the stash).
    """
    return _judge(self, items, judge_retries, lambda rest: (rest, judge_retries + 1))


@shared_task(bind=True, acks_late=True, max_retries=None)
def judge_call(self, match_id: int, presentation: str, repeat: int, judge_retries: int = 0) -> str:
    """One call: a batch of one (kept for messages queued before batches)."""
    return _judge(
        self,
        [(match_id, presentation, repeat)],
        judge_retries,
        lambda rest: (*rest[0], judge_retries + 1),
    )


def _judge(task, items, judge_retries: int, retry_args) -> str:
    final = judge_retries >= settings.ARENA_JUDGE_TASK_RETRIES
    try:
        outcome = judging.judge_batch(items, final_attempt=final)
    except (DatabaseError, InterfaceError, *SERVICE_DOWN) as exc:  # before paying: try later
        if task.request.retries - judge_retries < DB_RETRIES:
            raise task.retry(exc=exc, countdown=db_backoff(task.request.retries)) from None
        return _record_crash(items, exc)
    except Exception as exc:  # a bug must not leave the chord (and the run) waiting forever
        return _record_crash(items, exc)
    if outcome.retry:
        raise task.retry(
            exc=outcome.last_error,
            countdown=judge_backoff(judge_retries),
            args=retry_args(outcome.retry),
        )
    return outcome.summary()


def _record_crash(items, exc) -> str:
    log.exception("judge batch of %d calls (first %s) crashed", len(items), items[:1])
    return judging.record_internal_failure(items, f"{type(exc).__name__}: {exc}").summary()


@shared_task(bind=True, acks_late=True, max_retries=None)
def generate_output(
    self, prompt_id: int, contestant_id: int, run_id: int | None = None, judge_retries: int = 0
) -> str:
    """Make sure a contestant's answer to a prompt exists. A chord member: it always returns."""
    final = judge_retries >= settings.ARENA_JUDGE_TASK_RETRIES
    try:
        return judging.generate_output(prompt_id, contestant_id, run_id, final_attempt=final)
    except LLMTransientError as exc:
        raise self.retry(
            exc=exc,
            countdown=judge_backoff(judge_retries),
            args=(prompt_id, contestant_id, run_id, judge_retries + 1),
        ) from None
    except DatabaseError as exc:
        if self.request.retries - judge_retries < DB_RETRIES:
            raise self.retry(exc=exc, countdown=db_backoff(self.request.retries)) from None
        log.exception(
            "answer of contestant %s to prompt %s: database error", contestant_id, prompt_id
        )
        return "failed"
    except Exception:
        log.exception("answer of contestant %s to prompt %s crashed", contestant_id, prompt_id)
        return "failed"


@shared_task(acks_late=True, ignore_result=True)
def watch_runs() -> list[int]:
    """Beat, every minute: step runs that never started stepping or whose batch stalled."""
    return lifecycle.watch_runs()


@shared_task(acks_late=True, ignore_result=True)
def start_scheduled_run(template_id: int) -> int | None:
    """Beat, on a schedule template's crontab: start a copy of the template."""
    return schedules.start_scheduled_run(template_id)


# Annotation campaigns (judges.campaigns): database errors retry; both are idempotent.
@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    max_retries=5,
    retry_backoff=0.5,
    retry_backoff_max=10,
)
def hand_out_assignments(campaign_id: int) -> int:
    """Fill the campaign's annotators' queues (after an answer, an expiry, an opening)."""
    return campaigns.hand_out(campaign_id)


@shared_task(acks_late=True, ignore_result=True)
def expire_assignments() -> int:
    """Beat, every ARENA_CAMPAIGN_EXPIRY_SECONDS: overdue assignments go to someone else."""
    return campaigns.expire_overdue()
