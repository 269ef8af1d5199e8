"""A vote marks its boards dirty; a real Celery worker refits once and pushes over Channels."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.utils import timezone

from arena.boards import BoardScope
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import BoardState, LeaderboardSnapshot, Match
from arena.services import latest_snapshot, request_refit
from arena.votes import scopes_touched_by
from config.asgi import application
from tests.integration.runs_world import TaskTracker

REFIT_TASK = "arena.tasks.refit_leaderboard"


def _votes(n, winner="a", start=0):
    return [
        JudgmentRecord(
            match_id=f"m{start + i}",
            contestants=("alpha", "beta") if i % 2 else ("beta", "alpha"),
            winner=winner,
            voter=f"v{i}",
        )
        for i in range(n)
    ]


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.django_db(transaction=True)
def test_it_refits_once_for_a_burst_of_votes(celery_worker):
    import_records(_votes(20) + _votes(10, "tie", 100), prompt_set="live", source="test")
    scope = BoardScope("live", "humans")
    with TaskTracker((REFIT_TASK,)) as refits:
        for _ in range(5):
            with transaction.atomic():
                request_refit([scope.key])
        assert _wait_for(lambda: LeaderboardSnapshot.objects.filter(scope=scope.key).exists())

        def quiet():
            state = BoardState.objects.get(scope=scope.key)
            return state.fitted_up_to == state.requested_at and state.claimed_at is None

        assert _wait_for(quiet)
        assert refits.wait_settled()  # every refit queued has run: no fit is still to come
    # One fit, or two when the worker started fitting before the burst was over; never five.
    assert LeaderboardSnapshot.objects.filter(scope=scope.key).count() in (1, 2)
    snapshot = LeaderboardSnapshot.objects.filter(scope=scope.key).latest("created_at")
    assert snapshot.n_votes == 30 and {r["model"] for r in snapshot.rows} == {"alpha", "beta"}
    # The worker's one fit stored the board's options too: the online Elo of the 30 votes
    # in order, and the Swiss standings.
    assert snapshot.options["elo"]["n_votes"] == 30
    assert {r["model"] for r in snapshot.options["swiss"]["rows"]} == {"alpha", "beta"}


@pytest.mark.django_db(transaction=True)
def test_a_refit_that_finds_the_board_being_fitted_comes_back_later(celery_worker):

    import_records(_votes(6), prompt_set="live", source="test")
    scope = BoardScope("live", "humans")
    started = timezone.now()
    # A fit is running: it claimed the board and read the request stamp before the vote.
    BoardState.objects.create(scope=scope.key, requested_at=started, claimed_at=started)
    with TaskTracker((REFIT_TASK,)) as refits:
        with transaction.atomic():
            request_refit([scope.key])  # the vote: its refit finds the board claimed
        # The refit ran, found the board claimed, fitted nothing (and queued itself again).
        assert refits.wait(lambda t: (REFIT_TASK, None) in t.finished)
    assert not LeaderboardSnapshot.objects.filter(scope=scope.key).exists()
    # The running fit ends, fitted up to its own stamp only; the vote's refit must follow.
    BoardState.objects.filter(scope=scope.key).update(claimed_at=None, fitted_up_to=started)

    def fitted_the_vote():
        state = BoardState.objects.get(scope=scope.key)
        return state.fitted_up_to == state.requested_at > started and state.claimed_at is None

    assert _wait_for(fitted_the_vote, 10)
    assert LeaderboardSnapshot.objects.filter(scope=scope.key).count() == 1


@pytest.mark.django_db
def test_nothing_is_queued_when_the_transaction_rolls_back(django_capture_on_commit_callbacks):
    import_records(_votes(4), prompt_set="live", source="test")
    scope = BoardScope("live", "humans")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            request_refit([scope.key])
            raise RuntimeError("vote failed")
    assert callbacks == []  # the refit request went with the rolled-back vote
    assert not BoardState.objects.exists()
    assert not LeaderboardSnapshot.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_open_leaderboard_socket_hears_the_refit(celery_worker):
    import_records(_votes(6), prompt_set="live", source="test")
    scope = BoardScope("live", "humans")

    async def scenario():
        ws = WebsocketCommunicator(
            application, "/ws/leaderboard/", headers=[(b"origin", b"http://127.0.0.1")]
        )
        connected, _ = await ws.connect()
        assert connected
        await ws.send_json_to({"subscribe": scope.key})
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"

        def vote():
            with transaction.atomic():
                request_refit([scope.key])

        await sync_to_async(vote)()
        message = await ws.receive_json_from(timeout=20)
        await ws.disconnect()
        return message

    message = asyncio.run(scenario())
    snapshot = LeaderboardSnapshot.objects.get(scope=scope.key)
    assert message == {
        "type": "board.updated",
        "scope": scope.key,
        "snapshot_id": snapshot.id,
        "n_votes": 6,
    }


@pytest.mark.django_db(transaction=True)
def test_a_category_board_someone_opened_follows_new_votes(celery_worker):

    import_records(
        [
            JudgmentRecord(
                match_id="c1", contestants=("alpha", "beta"), winner="a", voter="v", category="code"
            )
        ],
        prompt_set="live",
        source="test",
    )
    code = BoardScope("live", "humans", "code")
    latest_snapshot(code)  # a page opened the category board
    match = Match.objects.get(external_id="c1")
    assert code.key in scopes_touched_by(match.prompt_set_id, "live", match.category)
    other = BoardScope("live", "humans", "math").key
    assert other not in scopes_touched_by(match.prompt_set_id, "live", match.category)


@pytest.mark.django_db(transaction=True)
def test_a_board_whose_refit_task_was_lost_is_refitted_by_the_sweep(celery_worker):
    """An import in another process (the command line beside a server with the embedded
    worker: an in-memory broker that ends with the command) marks the board dirty and
    its refit task is lost; the beat's sweep queues it once the request is old enough,
    and leaves alone boards that are clean or asked for just now."""
    from datetime import timedelta

    from arena.services import sweep_dirty_boards

    import_records(_votes(12), prompt_set="lost", source="test")
    scope = BoardScope("lost", "humans")
    asked = timezone.now() - timedelta(minutes=5)  # the lost request, long ago
    BoardState.objects.create(scope=scope.key, requested_at=asked)
    BoardState.objects.create(scope="set=lost|by=judges|cat=|style=0", requested_at=timezone.now())
    assert not LeaderboardSnapshot.objects.filter(scope=scope.key).exists()
    with TaskTracker((REFIT_TASK,)) as refits:
        assert sweep_dirty_boards() == [scope.key]  # not the board asked for just now
        assert _wait_for(lambda: LeaderboardSnapshot.objects.filter(scope=scope.key).exists())
        assert refits.wait_settled()
    assert LeaderboardSnapshot.objects.get(scope=scope.key).n_votes == 12
    assert sweep_dirty_boards() == []  # fitted: clean
