"""Typed prompts answered live by contestants' endpoints (the fake OpenAI-compatible server)."""

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from arena.models import Contestant, Judgment, Match, Output, PromptSet
from judges.clients.fake_server import FakeLLMServer
from tests.e2e.seed import seed
from tests.factories import post_json

pytestmark = pytest.mark.django_db(transaction=True)
LIVE = ("alpha", "beta", "gamma")


@pytest.fixture
def fake_llm():
    with FakeLLMServer("test") as server:
        yield server


@pytest.fixture
def live_arena(fake_llm):
    seed()
    for name in LIVE:
        Contestant.objects.create(
            name=name,
            base_url=fake_llm.base_url,
            api_model=name,
            generation_params={"max_tokens": 200},
        )
    return PromptSet.objects.get(slug="e2e-arena")


def _stream(client: Client, battle_id: str) -> list[dict]:
    async def read():
        ac = AsyncClient()
        ac.cookies = client.cookies
        response = await ac.get(f"/battle/{battle_id}/stream")
        assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
        chunks = [chunk async for chunk in response.streaming_content]
        return b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks).decode()

    body = async_to_sync(read)()
    return [
        json.loads(line[len("data: ") :]) for line in body.splitlines() if line.startswith("data: ")
    ]


def test_a_typed_prompt_is_answered_live_and_then_voted_on(live_arena):
    client = Client()
    response = post_json(
        client, "/api/battles", {"prompt_text": "Explain photosynthesis briefly.", "k": 2}
    )
    assert response.status_code == 201
    battle = response.json()
    assert battle["streaming"] and [a["text"] for a in battle["answers"]] == ["", ""]
    # Voting before the answers exist is refused.
    early = post_json(
        client,
        f"/api/battles/{battle['id']}/vote",
        {"winner": "a", "idempotency_key": "early-0001"},
    )
    assert early.status_code == 409
    events = _stream(client, battle["id"])
    raw = json.dumps(events)
    assert not any(name in raw for name in LIVE)  # nothing names a model before the vote
    texts = {
        slot: "".join(e.get("delta", "") for e in events if e.get("slot") == slot)
        for slot in (0, 1)
    }
    assert all(texts.values()) and events[-1] == {"end": True}
    assert sum(1 for e in events if e.get("done")) == 2
    match = Match.objects.get(public_id=battle["id"])
    assert [s.output.text for s in match.slots.order_by("position")] == [texts[0], texts[1]]
    assert Output.objects.filter(meta__live=True).count() == 2
    vote = post_json(
        client,
        f"/api/battles/{battle['id']}/vote",
        {"winner": "b", "idempotency_key": "late-00001"},
    )
    assert vote.status_code == 200 and {r["model"] for r in vote.json()["reveal"]} <= set(LIVE)
    # A second read of the stream replays the stored answers, it does not call the models again.
    again = _stream(client, battle["id"])
    assert "".join(e.get("delta", "") for e in again if e.get("slot") == 0) == texts[0]


def test_k_wise_live_battle(live_arena):
    client = Client()
    battle = post_json(client, "/api/battles", {"prompt_text": "Name a color.", "k": 3}).json()
    events = _stream(client, battle["id"])
    assert sum(1 for e in events if e.get("done")) == 3
    assert (
        post_json(
            client,
            f"/api/battles/{battle['id']}/vote",
            {"best": 1, "idempotency_key": "kwise-0001"},
        ).status_code
        == 200
    )
    assert Judgment.objects.get(match__public_id=battle["id"]).ranking == [2, 1, 2]


def test_a_failing_endpoint_reports_an_error_without_naming_the_model(live_arena, fake_llm):
    Contestant.objects.filter(name__in=LIVE).update(is_active=False)
    Contestant.objects.create(
        name="fault-500",
        base_url=fake_llm.base_url,
        api_model="fault-500",
        generation_params={"max_retries": 0},
    )
    Contestant.objects.create(name="beta-2", base_url=fake_llm.base_url, api_model="beta")
    client = Client()
    battle = post_json(client, "/api/battles", {"prompt_text": "Hello?", "k": 2}).json()
    events = _stream(client, battle["id"])
    errors = [e for e in events if "error" in e]
    assert len(errors) == 1 and "fault" not in json.dumps(events)
    assert (
        post_json(
            client,
            f"/api/battles/{battle['id']}/vote",
            {"winner": "a", "idempotency_key": "fail-00001"},
        ).status_code
        == 409
    )


def test_bad_typed_prompts(live_arena):
    client = Client()
    assert post_json(client, "/api/battles", {"prompt_text": "   "}).status_code == 400
    assert post_json(client, "/api/battles", {"prompt_text": "x" * 4001}).status_code == 400
    assert (
        post_json(client, "/api/battles", {"prompt_text": "hi", "k": 4}).status_code == 503
    )  # only 3 can answer live


def test_only_the_owner_can_read_the_stream(live_arena):
    owner = Client()
    battle = post_json(owner, "/api/battles", {"prompt_text": "Secret question", "k": 2}).json()
    other = Client()
    post_json(other, "/api/battles", {})
    response = other.get(f"/battle/{battle['id']}/stream")
    assert response.status_code == 403
