"""What a request and a task do while PostgreSQL or Redis is unreachable, in one process.

The cache (Redis in the full stack) down: a vote is still stored and counted (the rate
limits fail open, the battle's facts are read from the database, the refit request is
dropped); the channel layer down: a push is dropped, the fit stands. The database down:
the API answers a 503 that says so, with Retry-After. A chord whose member failed still
runs its callback (a run's next step). tests/integration/test_scale_out.py does the same
to real processes on PostgreSQL and Redis.
"""

import threading

import pytest
from celery import shared_task
from django.core.cache import caches
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisUnavailable

from arena import events
from arena.enqueue import chord_on_commit
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import EvaluationRun, Judge, Judgment, PairOutcomeCount, PromptSet
from tests.e2e.seed import seed
from tests.factories import post_json

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def arena():
    seed()


def _battle(client) -> str:
    response = post_json(client, "/api/battles", {"prompt_set": "e2e-arena"})
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def redis_down(monkeypatch):
    """Every cache call fails as Django's RedisCache does when Redis refuses connections."""
    cache = caches["default"]

    def refused(*args, **kwargs):
        raise RedisUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for method in ("get", "set", "add", "incr", "delete", "get_many", "delete_many"):
        monkeypatch.setattr(cache, method, refused)


def test_a_vote_is_stored_and_counted_while_the_cache_is_down(arena, client, request):
    battle = _battle(client)  # served (its facts cached) before the outage
    request.getfixturevalue("redis_down")
    counted = sum(PairOutcomeCount.objects.values_list("count", flat=True))
    response = post_json(
        client, f"/api/battles/{battle}/vote", {"winner": "a", "idempotency_key": "outage-1"}
    )
    assert response.status_code == 200, response.content
    assert Judgment.objects.filter(idempotency_key="outage-1").count() == 1
    assert sum(PairOutcomeCount.objects.values_list("count", flat=True)) == counted + 1
    again = post_json(
        client, f"/api/battles/{battle}/vote", {"winner": "a", "idempotency_key": "outage-1"}
    )
    assert again.status_code == 409 and "already recorded" in again.json()["detail"]


def test_the_api_answers_503_when_the_database_is_unreachable(arena, client, monkeypatch):
    battle = _battle(client)

    def dropped(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("arena.api.cast_vote", dropped)
    response = post_json(
        client, f"/api/battles/{battle}/vote", {"winner": "a", "idempotency_key": "outage-2"}
    )
    assert response.status_code == 503
    assert response.json() == {
        "detail": "the database is unavailable for a moment; retry",
        "field": None,
    }
    assert response["Retry-After"] == "2"


def test_serving_a_battle_without_redis_is_a_503_not_a_500(arena, client, redis_down):
    response = post_json(client, "/api/battles", {"prompt_set": "e2e-arena"})
    assert response.status_code in (201, 503), response.content
    if response.status_code == 503:
        assert response.json()["detail"] == "Redis is unavailable for a moment; retry"


def test_a_push_is_dropped_when_the_channel_layer_is_down(monkeypatch, caplog):
    class DownLayer:
        async def group_send(self, group, message):
            raise RedisUnavailable("Connection closed by server.")

    monkeypatch.setattr(events, "get_channel_layer", lambda: DownLayer())
    events.broadcast_board("set=x|by=humans|cat=|style=0", 1, 10)  # no exception
    assert "push to board." in caplog.text


CALLED = threading.Event()


@shared_task(name="tests.outages.fails")
def _fails():
    raise RuntimeError("a member whose result could not be stored")


@shared_task(name="tests.outages.succeeds")
def _succeeds():
    return "ok"


@shared_task(name="tests.outages.next_step")
def _next_step(tag):
    CALLED.set()


def test_a_chord_whose_member_failed_still_runs_its_callback(celery_worker):
    CALLED.clear()
    chord_on_commit(
        [("tests.outages.fails", ()), ("tests.outages.succeeds", ())],
        ("tests.outages.next_step", ("after",), {}),
    )
    assert CALLED.wait(30), "the chord's callback never ran"


def test_a_judges_progress_is_best_effort_while_the_cache_is_down(redis_down, caplog):
    # judges.judging announces a stored chunk through the cache (progress, provisional
    # board); with Redis down it logs and the batch goes on (its verdicts are stored).
    from judges.judging import _announce  # the judge side of the same outage

    import_records(
        [JudgmentRecord("m1", ("x", "y"), winner="a", judge="j")], prompt_set="out", source="t"
    )
    run = EvaluationRun.objects.create(
        name="outage", prompt_set=PromptSet.objects.get(slug="out"), judge=Judge.objects.get()
    )
    _announce(run, board_changed=True)
    assert "progress not announced, the cache is down" in caplog.text
