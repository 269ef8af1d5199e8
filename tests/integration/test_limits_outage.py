"""The endpoint limits never fail open: with their Redis stopped, every path that sends model
calls (a single call, a judge batch, an answer for a run, rubric drafts, a live battle's
answer) waits for the store and then refuses, and sends nothing; when Redis comes back
within the wait, the call goes out under its limits.

A private ``redis-server`` (tests/integration/private_redis.py) holds the limits and is
stopped by the test; the machine's Redis is never touched.
"""

import asyncio
import threading
import time

import pytest

from arena.generation import contestant_config, stream_answer
from arena.models import Judgment, Output, Prompt
from judges import judging
from judges.clients.fake_server import FakeLLMServer
from judges.rubric_drafts import draft_rubrics
from judges.runs import create_run, start_run
from llm import claims as claims_module
from llm import limits
from llm import openai_compat as oc
from llm.claims import RedisClaims
from llm.errors import LLMRetriesExhausted, LLMTransientError
from tests.integration.private_redis import Redis
from tests.integration.runs_world import fast_settings, make_world, scenario
from tests.integration.test_runs_batches import _items

WAIT = 1.0  # seconds a call waits for the stopped store (60 in production)
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def redis(tmp_path, monkeypatch):
    """A private Redis holding the endpoint limits (started; the test stops it)."""
    server = Redis(tmp_path, appendonly="no")
    server.start()
    limits.use_store(limits.RedisStore(server.url))
    monkeypatch.setattr(oc, "LIMITS_STORE_WAIT_SECONDS", WAIT)
    yield server
    server.stop()
    limits.use_store(None)
    claims_module.use_claims(None)


@pytest.fixture
def world(db, settings, redis, django_capture_on_commit_callbacks):
    """A started run whose first batch's answers exist (generated while Redis was up), a
    judge with per-minute limits, the fake server; then Redis stops."""
    fast_settings(settings)
    with FakeLLMServer(scenario(4)) as server:
        prompt_set, contestants, judge = make_world(
            server.base_url, n_models=4, n_prompts=2, requests_per_minute=1000
        )
        with django_capture_on_commit_callbacks(execute=False):
            run = start_run(create_run(prompt_set=prompt_set, judge=judge, contestants=contestants))
        items = _items(run)
        redis.stop()
        before = _requests(server)
        yield server, run, items, before


def _requests(server) -> int:
    return sum(model["requests"] for model in server.stats()["models"].values())


def _timed(call):
    started = time.monotonic()
    try:
        return call(), time.monotonic() - started
    except Exception as error:  # noqa: BLE001 - the test looks at what was raised
        return error, time.monotonic() - started


def test_a_single_call_waits_for_the_store_then_refuses_unsent(world):
    server, run, _, before = world
    error, waited = _timed(lambda: oc.complete_sync(judging.judge_config(run.judge), HELLO))
    assert isinstance(error, LLMRetriesExhausted) and error.kind == oc.LIMITS_DOWN, error
    assert error.attempts == 1  # the outage was waited out once, not once per retry
    assert WAIT <= waited < WAIT + 5
    assert _requests(server) == before


def test_a_judge_batch_sends_nothing_and_comes_back_for_its_task_to_retry(world):
    server, run, items, before = world
    early = judging.judge_batch(items, final_attempt=False)
    assert sorted(early.retry) == sorted(items) and not early.outcomes
    assert early.last_error.kind == oc.LIMITS_DOWN
    final = judging.judge_batch(items, final_attempt=True)
    assert {o.status for o in final.outcomes.values()} == {"failed"}
    reasons = set(Judgment.objects.filter(match__run=run).values_list("error", flat=True))
    assert all("limits' store is unreachable" in reason for reason in reasons)
    assert _requests(server) == before


def test_a_judge_batch_with_its_claims_on_the_stopped_redis_pays_nothing(world, redis):
    """Redis down for all (limits, claims): the batch cannot claim its calls, raises the
    outage before paying anything, and its task retries later (judges.tasks)."""
    from arena.errors import SERVICE_DOWN

    server, _, items, before = world
    claims_module.use_claims(RedisClaims(redis.url))
    with pytest.raises(SERVICE_DOWN):
        judging.judge_batch(items)
    assert _requests(server) == before


def test_an_answer_for_a_run_is_not_generated_without_its_limits(world):
    server, run, _, before = world
    prompt = Prompt.objects.create(
        prompt_set=run.prompt_set, external_id="new", text="Explain how tides work."
    )
    contestant = run.contestants.first()
    with pytest.raises(LLMTransientError) as raised:  # the task retries it later
        judging.generate_output(prompt.id, contestant.id, run.id, final_attempt=False)
    assert raised.value.kind == oc.LIMITS_DOWN
    assert judging.generate_output(prompt.id, contestant.id, run.id) == "failed"
    assert not Output.objects.filter(prompt=prompt, contestant=contestant).exists()
    assert _requests(server) == before


def test_rubric_drafts_fail_with_the_reason_and_send_nothing(world):
    server, run, _, before = world
    outcome = draft_rubrics(run.prompt_set.slug, run.judge_id)
    assert outcome.failed and not outcome.drafted
    assert all("limits' store is unreachable" in why for why in outcome.failed.values())
    assert _requests(server) == before


def test_a_live_answer_reports_an_error_and_sends_nothing(world):
    server, run, _, before = world

    config = contestant_config(run.contestants.first())

    async def events():
        found = [event async for event in stream_answer(config, "Tell me about tides.")]
        await oc.aclose_clients()
        return found

    found, waited = _timed(lambda: asyncio.run(events()))
    assert [list(event) for event in found] == [["error"]]
    assert waited >= WAIT
    assert _requests(server) == before


def test_a_call_waiting_for_the_store_goes_out_under_its_limits_when_redis_is_back(
    world, redis, monkeypatch
):
    server, run, _, before = world
    monkeypatch.setattr(oc, "LIMITS_STORE_WAIT_SECONDS", 30.0)
    restart = threading.Timer(1.0, redis.start)
    restart.start()
    reply, waited = _timed(lambda: oc.complete_sync(judging.judge_config(run.judge), HELLO))
    restart.join()
    assert reply.text and waited >= 1.0
    assert _requests(server) == before + 1
    # the request was counted in the store's minute (the judge's requests_per_minute)
    import redis as redis_client

    logged = [
        key
        for key in redis_client.Redis.from_url(redis.url).keys("llm:limits:*:log")
        if redis_client.Redis.from_url(redis.url).zcard(key) == 1
    ]
    assert len(logged) == 1
