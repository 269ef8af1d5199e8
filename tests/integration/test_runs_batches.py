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
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.cache import caches
from django.db import OperationalError, connections
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
from tests.integration.private_redis import wait
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


def _start_worker(
    queue: str, name: str, log: Path, *, concurrency: int = 3, level: str = "WARNING", **extra_env
) -> subprocess.Popen:
    env = {
        **os.environ,
        **extra_env,
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
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue,
        "-c", str(concurrency), "--pool", "threads", "-n", f"{name}@{queue}", "-l", level,
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


# --- one batch run twice at once (a task handed out again while it runs) --------------------------
@contextmanager
def _no_worker_reads():
    """Tasks queued meanwhile (the run's first step) go to a queue no worker reads, emptied
    after: the test runs the batch itself."""
    from config.celery import app

    old, app.conf.task_default_queue = app.conf.task_default_queue, f"nobody-{uuid.uuid4().hex[:8]}"
    try:
        yield
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(app.conf.task_default_queue)
        app.conf.task_default_queue = old


def _committed_items(server, n_prompts: int, **judge_fields):
    """A started all-pairs run of 4 contestants (its rows committed) and its first batch."""
    with _no_worker_reads():
        prompt_set, contestants, judge = make_world(
            server.base_url, n_models=4, n_prompts=n_prompts, **judge_fields
        )
        run = start_run(create_run(prompt_set=prompt_set, judge=judge, contestants=contestants))
        return run, _items(run)


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_run_twice_at_once_pays_each_call_once(settings):
    """The second execution finds every call claimed by the first: it waits for them and
    reads what the first stored, paying for nothing."""
    fast_settings(settings)
    outcomes = {}

    def attempt(name, items):
        try:
            outcomes[name] = judging.judge_batch(items)
        finally:
            connections.close_all()

    with FakeLLMServer(scenario(4, latency_ms=150)) as server:
        run, items = _committed_items(server, n_prompts=2, max_concurrency=2)
        first = threading.Thread(target=attempt, args=("first", items))
        first.start()
        wait(lambda: judge_requests(server)["requests"] >= 1, 20, "the first execution's calls")
        stored_when_second_started = Judgment.objects.filter(match__run=run).count()
        second = threading.Thread(target=attempt, args=("second", items))
        second.start()
        first.join(60)
        second.join(60)
        stats = judge_requests(server)
        close_pooled_connections()

    assert stored_when_second_started < len(items)  # the two executions overlapped
    assert stats["requests"] == len(items)  # each call paid once
    assert {o.status for o in outcomes["first"].outcomes.values()} == {"ok"}
    assert {o.status for o in outcomes["second"].outcomes.values()} == {"exists"}
    assert set(outcomes["second"].outcomes) == set(outcomes["first"].outcomes) == set(items)
    run.refresh_from_db()
    judged = Judgment.objects.filter(match__run=run)
    assert judged.count() == run.calls_made == len(items)
    assert run.cost == _price(stats["prompt_tokens"], stats["completion_tokens"])


@pytest.mark.slow
@pytest.mark.skipif(
    not PG_AND_REDIS,
    reason="needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) shared with worker "
    "processes; CI sets both (bash .ci/run)",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("holder", ["finishes", "dies"])
def test_a_batch_handed_out_again_past_the_visibility_timeout_pays_each_call_once(
    settings, tmp_path, holder
):
    """A batch outlives the broker's visibility timeout, so Redis hands it to a second worker
    while the first still works on it. The second waits for the calls the first holds: when
    the first finishes, nothing is paid twice; when it dies, its claims expire and the second
    makes its calls, paying again only for those the first had in flight."""
    from config.celery import app

    fast_settings(settings)
    queue = f"twice-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "workers.log"
    env = {
        "CELERY_VISIBILITY_TIMEOUT": "2",
        "ARENA_JUDGE_CLAIM_SECONDS": "3",
        "LOG_LEVEL_CHATTY": "INFO",  # the worker logs each task received and succeeded
    }
    workers = []

    def count(word: str) -> int:
        return log.read_text().count(f"judges.tasks.judge_batch[{task.id}] {word}")

    try:
        # 18 calls, one at a time, 1.6 s each: the batch lasts about 30 s, longer than the
        # visibility timeout and than a second worker takes to start
        with FakeLLMServer(scenario(4, judge_faults=Faults(latency_ms=1600))) as server:
            run, items = _committed_items(server, n_prompts=3, max_concurrency=1)
            workers.append(_start_worker(queue, "one", log, concurrency=1, level="INFO", **env))
            task = app.send_task("judges.tasks.judge_batch", args=[items], queue=queue)
            wait(lambda: count("received") == 1, 60, "the first worker to take the batch")
            time.sleep(2)  # the second worker, once up, finds the batch unacked past the timeout
            workers.append(_start_worker(queue, "two", log, concurrency=1, level="INFO", **env))
            wait(lambda: count("received") == 2, 60, "the batch handed to the second worker")
            assert count("succeeded") == 0  # while the first still works on it
            if holder == "dies":
                paid_at_kill = judge_requests(server)["requests"]
                stored_at_kill = Judgment.objects.filter(match__run=run).count()
                workers[0].kill()
                workers[0].wait(10)
            stored = Judgment.objects.filter(match__run=run)
            wait(lambda: stored.count() == len(items), 120, "every call stored")
            wait(lambda: count("succeeded") >= (2 if holder == "finishes" else 1), 60, "the end")
            stats = judge_requests(server)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait(10)
        close_pooled_connections()

    assert count("received") == 2, log.read_text()[-3000:]
    run.refresh_from_db()
    assert run.calls_made == len(items) == stored.count()
    if holder == "finishes":
        assert stats["requests"] == len(items)  # each call paid once
        assert run.cost == _price(stats["prompt_tokens"], stats["completion_tokens"])
    else:  # paid again: at most the calls the dead worker had sent but not stored
        print(
            f"{len(items)} calls, requested {stats['requests']}, at the kill {paid_at_kill} paid, {stored_at_kill} stored"
        )
        assert len(items) <= stats["requests"] <= len(items) + paid_at_kill - stored_at_kill


@pytest.mark.django_db(transaction=True)
def test_an_answer_generated_twice_at_once_is_paid_once(settings):
    """Two executions of one answer's task at once: the second waits for the first's claim
    and finds the answer stored."""
    from arena.models import Contestant, Output, Prompt, PromptSet

    fast_settings(settings)
    outcomes = {}

    def attempt(name, prompt_id, contestant_id):
        try:
            outcomes[name] = judging.generate_output(prompt_id, contestant_id)
        finally:
            connections.close_all()

    with FakeLLMServer(scenario(2, latency_ms=600)) as server:
        make_world(server.base_url, n_models=2, n_prompts=1)
        prompt = Prompt.objects.get(prompt_set=PromptSet.objects.get(slug="evals"))
        contestant = Contestant.objects.get(name="cand-00")
        threads = [
            threading.Thread(target=attempt, args=(name, prompt.pk, contestant.pk))
            for name in ("first", "second")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        requests = server.stats()["models"]["cand-00"]["requests"]
        close_pooled_connections()

    assert sorted(outcomes.values()) == ["exists", "generated"]
    assert requests == 1
    assert Output.objects.filter(prompt=prompt, contestant=contestant).count() == 1
