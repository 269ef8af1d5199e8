"""Run pages: public reading, staff-only buttons and actions, the run websocket."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from arena.models import EvaluationRun
from config.asgi import application
from judges.events import broadcast_progress
from judges.runs import create_run
from tests.integration.runs_world import (
    make_world,
    release_thread_connections,
)


@pytest.fixture
def run(db):
    prompt_set, contestants, judge = make_world("http://127.0.0.1:9/v1", n_models=3, n_prompts=2)
    return create_run(prompt_set=prompt_set, judge=judge, contestants=contestants, name="nightly")


@pytest.fixture
def member(db):
    return get_user_model().objects.create_user("member", password="x")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staff", password="x", is_staff=True)


def test_it_lists_runs_for_everyone(client, run):
    page = client.get("/runs/")
    assert page.status_code == 200
    assert b"nightly" in page.content and f"/runs/{run.pk}/".encode() in page.content
    assert b"/start/" not in page.content


def test_the_list_offers_start_to_staff_only(client, run, member, staff):
    client.force_login(member)
    assert b"/start/" not in client.get("/runs/").content
    client.force_login(staff)
    assert f"/runs/{run.pk}/start/".encode() in client.get("/runs/").content


def test_the_run_page_shows_progress_without_buttons_for_visitors(client, run):
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="run-progress"' in html and 'id="calls-made"' in html
    assert f'data-run="{run.pk}"' in html and "judges/run.js" in html
    assert "cancel-button" not in html and "start-button" not in html


@pytest.mark.parametrize("who", ["member", "staff"])
def test_buttons_are_for_staff(client, run, who, request):
    client.force_login(request.getfixturevalue(who))
    html = client.get(f"/runs/{run.pk}/").content.decode()
    assert ("cancel-button" in html) == (who == "staff")
    assert ("start-button" in html) == (who == "staff")


def test_an_unknown_run_is_404(client, db):
    assert client.get("/runs/999/").status_code == 404


@pytest.mark.parametrize("action", ["start", "cancel", "resume"])
def test_actions_send_visitors_to_the_login(client, run, action):
    response = client.post(f"/runs/{run.pk}/{action}/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    run.refresh_from_db()
    assert run.status == "pending"


@pytest.mark.parametrize("action", ["start", "cancel", "resume"])
def test_actions_are_forbidden_to_non_staff(client, run, member, action):
    client.force_login(member)
    assert client.post(f"/runs/{run.pk}/{action}/").status_code == 403
    run.refresh_from_db()
    assert run.status == "pending"


def test_actions_need_post(client, run, staff):
    client.force_login(staff)
    assert client.get(f"/runs/{run.pk}/cancel/").status_code == 405


def test_staff_can_start_and_cancel(client, run, staff, django_capture_on_commit_callbacks):
    client.force_login(staff)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/runs/{run.pk}/start/")
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.status == "running" and run.planned_calls == 3 * 2 and len(callbacks) == 2
    client.post(f"/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == "cancelled"
    again = client.post(f"/runs/{run.pk}/cancel/", follow=True)
    assert b"nothing to cancel" in again.content


def test_an_unknown_action_is_404(client, run, staff):
    client.force_login(staff)
    assert client.post(f"/runs/{run.pk}/explode/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_run_socket_hears_progress():
    prompt_set, contestants, judge = make_world("http://127.0.0.1:9/v1", n_models=3, n_prompts=2)
    run = create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)

    async def scenario():
        ws = WebsocketCommunicator(
            application, f"/ws/runs/{run.pk}/", headers=[(b"origin", b"http://127.0.0.1")]
        )
        connected, _ = await ws.connect()
        assert connected
        hello = await ws.receive_json_from(timeout=5)
        from asgiref.sync import sync_to_async

        await sync_to_async(EvaluationRun.objects.filter(pk=run.pk).update)(calls_made=4)
        run.calls_made = 4
        await sync_to_async(broadcast_progress)(run)
        message = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        await release_thread_connections()
        return hello, message

    hello, message = asyncio.run(scenario())

    assert hello["type"] == "subscribed" and hello["scope"].endswith(
        f"by=run:{run.pk}|cat=|style=0"
    )
    assert message["type"] == "run.progress" and message["calls_made"] == 4
    assert message["run_id"] == run.pk and message["status"] == "pending"


@pytest.mark.django_db(transaction=True)
def test_the_socket_refuses_unknown_runs():
    async def scenario():
        ws = WebsocketCommunicator(
            application, "/ws/runs/424242/", headers=[(b"origin", b"http://127.0.0.1")]
        )
        connected, _ = await ws.connect()
        await release_thread_connections()
        return connected

    connected = asyncio.run(scenario())

    assert connected is False
