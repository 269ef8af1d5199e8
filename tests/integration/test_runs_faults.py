"""Faulty judges: every call is retried or stored as failed with its reason; no run hangs."""

import pytest
from django.db.models import Count

from arena.models import Judgment
from judges.clients.fake_server import FakeLLMServer
from judges.clients.simulation import Faults
from judges.runs import create_run, start_run
from tests.integration.runs_world import (
    fast_settings,
    judge_requests,
    make_world,
    scenario,
    wait_until_finished,
)

FAULTY = Faults(
    rate_500=0.10,
    rate_timeout=0.05,
    rate_garbage=0.05,
    rate_429=0.05,
    retry_after_s=0.05,
    timeout_s=1.0,
)


@pytest.mark.django_db(transaction=True)
def test_a_run_through_500s_timeouts_garbage_and_429s_records_every_call(settings, celery_worker):
    fast_settings(settings)
    with FakeLLMServer(scenario(6, judge_faults=FAULTY)) as server:
        prompt_set, contestants, judge = make_world(
            server.base_url, n_models=6, n_prompts=3, both_orders=True, timeout_s=0.3, max_retries=3
        )
        run = create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
        start_run(run)
        run = wait_until_finished(run, 90)
        stats = judge_requests(server)

    assert run.status == "done", run.error
    judgments = Judgment.objects.filter(match__run=run)
    assert judgments.count() == run.planned_calls == 15 * 3 * 2 == run.calls_made
    by_status = dict(judgments.values_list("status").annotate(n=Count("id")))
    # Every reply the server sent was stored once: verdicts OK, garbage as a parse failure.
    assert stats["ok"] == by_status.get("ok", 0) + by_status.get("parse_failed", 0)
    assert stats["garbage"] == by_status["parse_failed"] > 0
    assert stats["server_errors"] > 0 and stats["timeouts"] > 0 and stats["rate_limited"] > 0
    assert run.calls_failed == by_status.get("parse_failed", 0) + by_status.get("failed", 0)
    for j in judgments.exclude(status="ok"):
        assert j.error and j.winner is None
        if j.status == "parse_failed":
            assert j.raw_text  # the reply is kept for the audit
    # Faults cost requests, never judgments: retries happened inside the calls.
    assert (
        stats["requests"]
        == stats["ok"] + stats["server_errors"] + stats["timeouts"] + stats["rate_limited"]
    )


@pytest.mark.django_db(transaction=True)
def test_a_judge_that_is_down_fails_every_call_with_its_reason_and_the_run_finishes(
    settings, celery_worker
):
    fast_settings(settings)
    settings.ARENA_JUDGE_TASK_RETRIES = 1
    with FakeLLMServer(scenario(4)) as server:
        prompt_set, contestants, judge = make_world(
            server.base_url, n_models=4, n_prompts=2, judge_model="judge-down", max_retries=1
        )
        run = create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
        start_run(run)
        run = wait_until_finished(run, 60)
        stats = judge_requests(server, "judge-down")

    assert run.status == "done", run.error
    assert run.calls_made == run.calls_failed == run.planned_calls == 6 * 2
    # (max_retries + 1) requests per attempt, (ARENA_JUDGE_TASK_RETRIES + 1) attempts per call.
    assert stats["requests"] == run.planned_calls * 2 * 2
    for j in Judgment.objects.filter(match__run=run):
        assert (
            j.status == "failed" and "HTTP 500" in j.error and "gave up after 2 attempts" in j.error
        )


@pytest.mark.django_db(transaction=True)
def test_a_contestant_that_cannot_answer_fails_its_calls_not_the_run(settings, celery_worker):
    from arena.models import Contestant

    fast_settings(settings)
    with FakeLLMServer(scenario(4)) as server:
        prompt_set, contestants, judge = make_world(server.base_url, n_models=4, n_prompts=2)
        Contestant.objects.filter(name="cand-03").update(api_model="no-such-model")
        run = create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
        start_run(run)
        run = wait_until_finished(run, 60)

    assert run.status == "done", run.error
    failed = Judgment.objects.filter(match__run=run, status="failed")
    assert failed.count() == 3 * 2  # cand-03's three pairs on two prompts
    assert all("no answer from cand-03" in j.error and "404" in j.error for j in failed)
    assert Judgment.objects.filter(match__run=run, status="ok").count() == 3 * 2
