"""Tasks are queued by name (arena.enqueue): every name the use cases queue is registered."""

from arena import services
from config.celery import app
from judges import campaigns, schedules
from judges.runs import dispatch


def test_every_queued_task_name_is_a_registered_task():
    app.loader.import_default_modules()  # Celery's autodiscovery of arena/ and judges/ tasks
    queued = [
        services.REFIT_TASK,
        dispatch.RUN_STEP,
        dispatch.JUDGE_BATCH,
        "judges.tasks.judge_call",  # messages queued before batches
        dispatch.GENERATE_OUTPUT,
        dispatch.WATCH_RUNS,
        schedules.START_SCHEDULED_RUN,
        campaigns.HAND_OUT,
        campaigns.EXPIRE,
    ]
    assert [name for name in queued if name not in app.tasks] == []


def test_every_task_on_the_beat_schedule_is_a_registered_task(settings):
    app.loader.import_default_modules()
    scheduled = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    assert "arena.tasks.sweep_dirty_boards" in scheduled
    assert [name for name in scheduled if name not in app.tasks] == []
