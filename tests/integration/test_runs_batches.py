"""Judge calls in batches (judges.tasks.judge_batch): two real worker processes share one
judge's limits, every call is paid once and accounted for, the run page hears progress;
a duplicated or retried batch never pays twice, a reply paid but not stored is stored by
the next attempt, and failures keep their reasons.

The worker-process test needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL; CI sets both);
the others run on any database.
"""

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.cache import caches
from django.db import OperationalError
from django.db.models import Sum
from redis.exceptions import ConnectionError as RedisUnavailable

from arena.errors import SERVICE_DOWN
from arena.models import Judgment
from judges import judging
from judges.clients.fake_server import FakeLLMServer
from judges.clients.simulation import Faults
from judges.runs import create_run, start_run
from judges.runs.orchestrate import ensure_matches
from judges.runs.replay import replay
from tests.integration.runs_world import (
    JUDGE,
    close_pooled_connections,
    fast_settings,
    judge_requests,
    make_world,
    scenario,
    wait_until_finished,
)

ROOT = Path(__file__).resolve().parents[2]
PG_AND_REDIS = os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get(
    "REDIS_URL"
)


def _price(tokens_in: int, tokens_out: int) -> Decimal:
    """The world's judge prices: 0.001 per 1k prompt tokens, 0.002 per 1k completion tokens."""
    return Decimal(tokens_in) * Decimal("0.000001") + Decimal(tokens_out) * Decimal("0.000002")


@pytest.fixture
def started(db, settings, django_capture_on_commit_callbacks):
    """A started all-pairs run of 4 stored-answer contestants on 3 prompts (36 calls), its
    first batch's matches created; no worker runs: the test calls the batch itself."""
    fast_settings(settings)
    with FakeLLMServer(scenario(4)) as server:
        prompt_set, contestants, judge = make_world(server.base_url, n_models=4, n_prompts=3)
        with django_capture_on_commit_callbacks(execute=False):
            run = start_run(create_run(prompt_set=prompt_set, judge=judge, contestants=contestants))
        yield server, run


def _items(run) -> list[tuple]:
    from judges.runs.orchestrate import _outputs_for

    run.refresh_from_db()
    state = replay(run)
    outputs, missing = _outputs_for(run, state.calls)
    if missing:  # contestants with endpoints: generate their answers first
        for prompt_id, contestant_id in missing:
            judging.generate_output(prompt_id, contestant_id, run.id)
        outputs, _ = _outputs_for(run, state.calls)
    return ensure_matches(run, state.round_index, state.calls, outputs)


def test_a_duplicated_batch_pays_nothing_more(started):
    server, run = started
    items = _items(run)
    first = judging.judge_batch(items)
    paid = judge_requests(server)["requests"]
    again = judging.judge_batch(items)

    assert paid == len(items) and {o.status for o in first.outcomes.values()} == {"ok"}
    assert {o.status for o in again.outcomes.values()} == {"exists"}
    assert judge_requests(server)["requests"] == paid
    run.refresh_from_db()
    assert run.calls_made == len(items) == Judgment.objects.filter(match__run=run).count()


def test_replies_paid_but_not_stored_are_stored_by_the_next_attempt(started, monkeypatch):
    """The database is gone after the judge answered (the task's write fails for good):
    the retried batch stores the stashed replies without calling the judge again."""
    server, run = started
    items = _items(run)
    real_write = judging._write_chunk

    def database_down(run, rows):
        raise OperationalError("the database went away")

    monkeypatch.setattr(judging, "_with_write_retries", lambda write, attempts=12: write())
    monkeypatch.setattr(judging, "_write_chunk", database_down)
    with pytest.raises(OperationalError):
        judging.judge_batch(items)
    paid = judge_requests(server)["requests"]
    assert 0 < paid <= len(items) and not Judgment.objects.filter(match__run=run).exists()

    monkeypatch.setattr(judging, "_write_chunk", real_write)
    outcome = judging.judge_batch(items)
    stats = judge_requests(server)
    assert stats["requests"] == len(items)  # what the first attempt paid was not paid again
    assert all(o.status == "ok" for o in outcome.outcomes.values())
    run.refresh_from_db()
    judged = Judgment.objects.filter(match__run=run)
    assert judged.count() == run.calls_made == len(items)
    assert run.cost == judged.aggregate(c=Sum("cost"))["c"]
    assert run.cost == _price(stats["prompt_tokens"], stats["completion_tokens"])


def test_a_batch_pays_nothing_before_the_stash_can_be_read_and_stores_without_it(
    started, monkeypatch
):
    """Redis restarting. Before the calls the stash of paid replies cannot be read: the
    batch pays nothing and raises the outage for its task to retry. After them it cannot
    be written (nor cleared): the replies are stored all the same, none failed."""
    server, run = started
    items = _items(run)
    cache = caches["default"]

    def refused(*args, **kwargs):
        raise RedisUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as down:
        down.setattr(cache, "get_many", refused)
        with pytest.raises(SERVICE_DOWN):
            judging.judge_batch(items)
    assert judge_requests(server)["requests"] == 0

    monkeypatch.setattr(cache, "set_many", refused)
    monkeypatch.setattr(cache, "delete_many", refused)
    outcome = judging.judge_batch(items)
    assert {o.status for o in outcome.outcomes.values()} == {"ok"}
    assert judge_requests(server)["requests"] == len(items)
    run.refresh_from_db()
    assert run.calls_made == len(items) and run.calls_failed == 0


def test_calls_that_exhaust_their_retries_come_back_for_the_task_to_retry(
    settings, db, django_capture_on_commit_callbacks
):
    fast_settings(settings)
    with FakeLLMServer(scenario(4, judge_faults=Faults(rate_500=1.0))) as server:
        prompt_set, contestants, judge = make_world(server.base_url, n_models=4, n_prompts=2)
        with django_capture_on_commit_callbacks(execute=False):
            run = start_run(create_run(prompt_set=prompt_set, judge=judge, contestants=contestants))
        items = _items(run)
        early = judging.judge_batch(items, final_attempt=False)
        assert sorted(early.retry) == sorted(items) and not early.outcomes
        assert "HTTP 500" in early.last_error.message
        final = judging.judge_batch(early.retry, final_attempt=True)
    reasons = set(Judgment.objects.filter(match__run=run).values_list("status", "error"))
    assert {o.status for o in final.outcomes.values()} == {"failed"}
    assert len(reasons) == 1 and "HTTP 500" in next(iter(reasons))[1]
    assert "gave up after 3 attempts" in next(iter(reasons))[1]
    run.refresh_from_db()
    assert run.calls_failed == run.calls_made == len(items) and run.cost == 0


# --- real worker processes on PostgreSQL + Redis ---------------------------------------------------
def _database_url_of_test_db() -> str:
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def _start_worker(queue: str, name: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_of_test_db(),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "ARENA_JUDGE_RETRY_BASE_DELAY": "0.01",
        "ARENA_JUDGE_TASK_BACKOFF_SECONDS": "0.05",
        "ARENA_JUDGE_BATCH_CALLS": "6",
        "ARENA_RUN_REFIT_SECONDS": "2",
        "ARENA_BOOTSTRAP_ROUNDS": "100",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "test-only-not-secret"),
    }
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "3",
        "--pool", "threads", "-n", f"{name}@{queue}", "-l", "WARNING",
        "--without-mingle", "--without-gossip", "--without-heartbeat",
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT
    )


class ProgressListener:
    """Collects the run's progress messages from the channel layer (Redis) in a thread."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.messages: list[dict] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    async def _listen(self):
        from channels.layers import get_channel_layer

        from judges.events import run_group

        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(run_group(self.run_id), channel)
        self._ready.set()
        while not self._stop.is_set():
            try:
                self.messages.append(await asyncio.wait_for(layer.receive(channel), 0.5))
            except TimeoutError:
                continue
        await layer.group_discard(run_group(self.run_id), channel)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


@pytest.mark.slow
@pytest.mark.skipif(
    not PG_AND_REDIS,
    reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) shared with worker "
    "processes; CI sets both (bash .ci/run)",
)
@pytest.mark.django_db(transaction=True)
def test_two_worker_processes_keep_one_judge_limit_and_account_for_every_call(settings, tmp_path):
    from config.celery import app

    fast_settings(settings)
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    old_queue, app.conf.task_default_queue = app.conf.task_default_queue, queue
    log = tmp_path / "workers.log"
    workers = []
    try:
        with FakeLLMServer(scenario(6, latency_ms=40)) as server:
            prompt_set, contestants, judge = make_world(
                server.base_url, n_models=6, n_prompts=5, max_concurrency=4
            )
            run = create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
            workers = [_start_worker(queue, name, log) for name in ("one", "two")]
            with ProgressListener(run.pk) as listener:
                start_run(run)
                run = wait_until_finished(run, 120)
            stats = judge_requests(server)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(20)
        app.conf.task_default_queue = old_queue
        close_pooled_connections()

    assert run.status == "done", run.error + log.read_text()[-3000:]
    judged = Judgment.objects.filter(match__run=run)
    # the two processes together never had more than 4 calls in flight
    assert stats["max_in_flight"] <= 4, stats
    assert stats["requests"] == run.planned_calls == run.calls_made == judged.count()
    assert set(judged.values_list("status", flat=True)) == {"ok"}
    # every call paid once and counted once: the run's cost is the judgments' and the server's
    assert run.cost == judged.aggregate(c=Sum("cost"))["c"]
    assert run.cost == _price(stats["prompt_tokens"], stats["completion_tokens"])
    # the run page heard the counters grow, up to the end
    made = [m["calls_made"] for m in listener.messages if m.get("type") == "run.progress"]
    assert made and made == sorted(made) and made[-1] == run.planned_calls
    assert listener.messages[-1]["status"] == "done"
    assert JUDGE in server.stats()["models"]
