"""Kill a Celery worker process in the middle of a run and start another: the run completes,
no judgment is stored twice, and the judge is paid at most for the calls in flight at the kill.

Needs a real broker and database shared by processes: runs against PostgreSQL and Redis when
DATABASE_URL and REDIS_URL are set (CI: ``bash .ci/run``), skipped otherwise.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db.models import Count

from arena.models import Judgment
from judges.clients.fake_server import FakeLLMServer
from judges.runs import create_run, start_run
from tests.integration.runs_world import (
    close_pooled_connections,
    fast_settings,
    judge_requests,
    make_world,
    scenario,
    wait_until_finished,
)

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY = 3  # seconds before a dead worker's unacked tasks go back to the queue

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (
            os.environ.get("DATABASE_URL", "").startswith("postgres")
            and os.environ.get("REDIS_URL")
        ),
        reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) shared with a worker process; "
        "CI sets both (bash .ci/run)",
    ),
]


def _database_url_of_test_db() -> str:
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def _start_worker(queue: str, name: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_of_test_db(),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY),
        "ARENA_JUDGE_CLAIM_SECONDS": str(VISIBILITY),  # the dead worker's claims on its calls
        "ARENA_JUDGE_RETRY_BASE_DELAY": "0.01",
        "ARENA_JUDGE_TASK_BACKOFF_SECONDS": "0.05",
        "ARENA_RUN_REFIT_SECONDS": "2",
        "ARENA_BOOTSTRAP_ROUNDS": "100",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "test-only-not-secret"),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "2",
        "--pool", "prefork", "-n", f"{name}@{queue}", "-l", "INFO",
        "--without-mingle", "--without-gossip", "--without-heartbeat",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL takes the pool children too
    )


def _kill(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)


@pytest.mark.django_db(transaction=True)
def test_killing_a_worker_mid_run_loses_nothing_and_pays_only_for_calls_in_flight(
    settings, tmp_path
):
    from config.celery import app

    fast_settings(settings)
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    old_queue, app.conf.task_default_queue = app.conf.task_default_queue, queue
    log = tmp_path / "worker.log"
    workers = []
    try:
        with FakeLLMServer(scenario(8, latency_ms=20)) as server:
            prompt_set, contestants, judge = make_world(server.base_url, n_models=8, n_prompts=6)
            run = create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
            workers.append(_start_worker(queue, "first", log))
            start_run(run)
            deadline = time.monotonic() + 90
            while run.calls_made < run.planned_calls // 3:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
                run.refresh_from_db()

            _kill(workers[0])
            requested_at_kill = judge_requests(server)["requests"]
            stored_at_kill = Judgment.objects.filter(match__run=run).count()
            in_flight = requested_at_kill - stored_at_kill
            assert 0 <= in_flight <= 2  # concurrency 2: at most two calls were under way

            time.sleep(VISIBILITY + 1)  # the dead worker's unacked tasks become visible again
            workers.append(_start_worker(queue, "second", log))
            run = wait_until_finished(run, 120)
            requested = judge_requests(server)["requests"]
    finally:
        for worker in workers:
            _kill(worker)
        app.conf.task_default_queue = old_queue
        close_pooled_connections()

    assert run.status == "done", run.error + log.read_text()[-3000:]
    judgments = Judgment.objects.filter(match__run=run)
    assert judgments.count() == run.planned_calls == run.calls_made
    duplicates = (
        judgments.values("match", "presentation", "repeat").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    print(f"planned {run.planned_calls}, requested {requested}, in flight at the kill {in_flight}")
    assert run.planned_calls <= requested <= run.planned_calls + in_flight
