"""Scheduled evaluation runs: a run with a crontab is a template; beat starts copies of it.

The schedule is a django-celery-beat ``PeriodicTask`` with a ``CrontabSchedule`` (editable
in the admin, as is the template run's ``cron`` field) whose task,
``judges.tasks.start_scheduled_run``, clones the template and starts the clone.
"""

from __future__ import annotations

import logging

from celery.schedules import crontab
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from arena.errors import Refusal
from arena.models import EvaluationRun
from judges.runs.create import start_run

# The beat entry's task, named (judges/tasks.py; nothing imports that module).
START_SCHEDULED_RUN = "judges.tasks.start_scheduled_run"

log = logging.getLogger(__name__)


def schedule_run(template: EvaluationRun, cron: str) -> EvaluationRun:
    """Make ``template`` a schedule: a beat entry that starts a copy of it on ``cron``.

    ``cron`` is "minute hour day-of-month month day-of-week" (e.g. ``0 3 * * *``); empty
    removes the schedule. The entry (django-celery-beat) is editable in the admin.
    """
    cron = " ".join(cron.split())
    name = schedule_name(template)
    with transaction.atomic():
        if not cron:
            PeriodicTask.objects.filter(name=name).delete()
            EvaluationRun.objects.filter(pk=template.pk).update(cron="")
            template.cron = ""
            return template
        minute, hour, day_of_month, month_of_year, day_of_week = _cron_fields(cron)
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": START_SCHEDULED_RUN,
                "crontab": schedule,
                "interval": None,
                "args": f"[{template.pk}]",
                "enabled": True,
                "description": f"Starts a copy of evaluation run {template.pk} ({template.name}).",
            },
        )
        EvaluationRun.objects.filter(pk=template.pk).update(cron=cron)
        template.cron = cron
    return template


def schedule_name(template: EvaluationRun) -> str:
    return f"judges: scheduled run {template.pk}"


def _cron_fields(cron: str) -> tuple[str, str, str, str, str]:
    parts = cron.split()
    if len(parts) != 5:
        raise Refusal(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {cron!r}",
            field="cron",
        )
    minute, hour, day_of_month, month_of_year, day_of_week = parts
    try:
        crontab(minute, hour, day_of_week, day_of_month, month_of_year)
    except (ValueError, IndexError) as exc:
        raise Refusal(f"{cron!r}: {exc}", field="cron") from None
    return minute, hour, day_of_month, month_of_year, day_of_week


def clone_run(template: EvaluationRun) -> EvaluationRun:
    """A pending copy of a schedule template (same judge, design, contestants and seed)."""
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            name=f"{template.name} · {timezone.now():%Y-%m-%d %H:%M}",
            prompt_set=template.prompt_set,
            judge=template.judge,
            design=template.design,
            design_params=template.design_params,
            max_prompts=template.max_prompts,
            budget_calls=template.budget_calls,
            repeats=template.repeats,
            tag=template.tag,
            seed=template.seed,
            template=template,
            # a jury's weights are read from the audit again when the copy starts
            jury={k: v for k, v in template.jury.items() if k not in ("weights", "records")},
        )
        run.contestants.set(template.contestants.all())
        run.jurors.set(template.jurors.all())
    return run


def start_scheduled_run(template_id: int) -> int | None:
    """Beat: copy the template and start the copy. Returns the new run's id."""
    template = EvaluationRun.objects.filter(pk=template_id).first()
    if template is None:
        return None
    with transaction.atomic():
        run = clone_run(template)
        try:
            start_run(run)
        except Refusal as exc:
            EvaluationRun.objects.filter(pk=run.pk).update(
                status=EvaluationRun.Status.FAILED, error=str(exc), finished_at=timezone.now()
            )
            log.error("scheduled run %s could not start: %s", run.pk, exc)
    return run.pk
