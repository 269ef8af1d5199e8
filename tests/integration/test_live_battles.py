"""Typed prompts answered live by contestants' endpoints (the fake OpenAI-compatible server)."""

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import AsyncClient, Client

from arena.importers.exporter import iter_records
from arena.live_answers import GENERATION_LEASE_SECONDS
from arena.models import Contestant, EvaluationRun, Judgment, Match, Output, Prompt, PromptSet
from judges.clients.fake_server import FakeLLMServer
from judges.runs.create import _choose_prompts
from tests.e2e.seed import seed
from tests.factories import post_json, staff_user

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


def _streams(client: Client, battle_id: str, readers: int) -> list[list[dict]]:
    """``readers`` concurrent reads of one battle's stream (one event loop, interleaved)."""

    async def read_one():
        ac = AsyncClient()
        ac.cookies = client.cookies
        response = await ac.get(f"/battle/{battle_id}/stream")
        assert response.status_code == 200
        chunks = [chunk async for chunk in response.streaming_content]
        body = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks).decode()
        return [
            json.loads(line[len("data: ") :])
            for line in body.splitlines()
            if line.startswith("data: ")
        ]

    async def read_all():
        return await asyncio.gather(*(read_one() for _ in range(readers)))

    return async_to_sync(read_all)()


def _texts(events: list[dict], k: int) -> dict[int, str]:
    texts = {slot: "" for slot in range(k)}
    for event in events:
        if event.get("reset"):
            texts[event["slot"]] = ""
        texts[event.get("slot", -1)] = texts.get(event.get("slot", -1), "") + event.get("delta", "")
    return {slot: texts[slot] for slot in range(k)}


@pytest.mark.parametrize("model", ["beta", "slow"])
def test_four_readers_of_one_stream_make_two_upstream_calls(live_arena, fake_llm, model):
    """Each answer is generated once, however many readers: 4 concurrent readers of one
    battle cost 2 upstream calls, and every reader sees the stored answers, the ones voted on
    ("slow": the upstream answers after 50 ms, so the readers overlap the generation)."""
    Contestant.objects.filter(name__in=LIVE).update(is_active=False)
    for name in ("live-1", "live-2"):
        Contestant.objects.create(name=name, base_url=fake_llm.base_url, api_model=model)
    client = Client()
    battle = post_json(client, "/api/battles", {"prompt_text": "Why is the sky blue?"}).json()
    fake_llm.reset_stats()
    reads = _streams(client, battle["id"], readers=4)
    assert fake_llm.stats()["total"]["requests"] == 2
    match = Match.objects.get(public_id=battle["id"])
    stored = {s.position: s.output.text for s in match.slots.select_related("output")}
    assert all(stored.values())
    for events in reads:
        assert events[-1] == {"end": True}
        assert sum(1 for e in events if e.get("done")) == 2 and not any(
            "error" in e for e in events
        )
        assert _texts(events, 2) == stored
    assert Output.objects.filter(meta__live=True).count() == 2
    # Later readers replay the stored answers: no further upstream call.
    assert _texts(_streams(client, battle["id"], readers=2)[0], 2) == stored
    assert fake_llm.stats()["total"]["requests"] == 2


def test_streams_are_rate_limited(live_arena, fake_llm, settings):
    settings.ARENA_STREAM_RATE_SESSION = "2/60"
    client = Client()
    battle = post_json(client, "/api/battles", {"prompt_text": "Count to three."}).json()
    fake_llm.reset_stats()
    _stream(client, battle["id"])
    _stream(client, battle["id"])
    refused = client.get(f"/battle/{battle['id']}/stream")
    assert refused.status_code == 429 and "retry in" in refused.json()["detail"]
    assert 0 < int(refused["Retry-After"]) <= 61
    assert fake_llm.stats()["total"]["requests"] == 2  # the refused read generated nothing
    other = Client()  # another session is not refused by this one's limit...
    post_json(other, "/api/battles", {"prompt_text": "Hi"})
    settings.ARENA_STREAM_RATE_IP = "3/60"  # ...but the address's limit holds for everyone
    assert other.get(f"/battle/{battle['id']}/stream").status_code == 429


SECRET = "My social security number is 078-05-1120; what can someone do with it?"


def test_a_typed_prompt_is_never_served_to_another_session(live_arena, settings):
    """A typed question is private to its author: never served to anyone else, across many
    battles, until staff promote it (admin action); the public prompt mix stays as it was."""
    settings.ARENA_BATTLE_RATE_SESSION = "0/1"
    author = Client()
    battle = post_json(author, "/api/battles", {"prompt_text": SECRET}).json()
    _stream(author, battle["id"])  # two live contestants' answers to it are stored now
    typed = Prompt.objects.get(text=SECRET)
    owner = Match.objects.get(public_id=battle["id"]).owner
    assert typed.visibility == Prompt.Visibility.PRIVATE and typed.author == owner
    assert Output.objects.filter(prompt=typed).count() == 2
    others = [Client() for _ in range(4)]
    served = [post_json(c, "/api/battles", {}).json() for c in others for _ in range(50)]
    served += [post_json(author, "/api/battles", {}).json() for _ in range(20)]
    assert all(SECRET not in json.dumps(b) for b in served)
    assert not Match.objects.filter(prompt=typed).exclude(public_id=battle["id"]).exists()
    # With only the live contestants active, nothing public is left to serve: a 503, not the
    # typed prompt.
    Contestant.objects.exclude(name__in=LIVE).update(is_active=False)
    cache.clear()
    assert post_json(others[0], "/api/battles", {}).status_code == 503
    # Staff review it and promote it: now battles may serve it.
    staff = Client()
    reviewer = staff_user()
    reviewer.user_permissions.add(Permission.objects.get(codename="change_prompt"))
    staff.force_login(reviewer)
    response = staff.post(
        "/admin/arena/prompt/",
        {"action": "promote", "_selected_action": [typed.pk]},
    )
    assert response.status_code == 302
    typed.refresh_from_db()
    assert typed.visibility == Prompt.Visibility.PUBLIC
    again = post_json(others[1], "/api/battles", {})
    assert again.status_code == 201 and again.json()["prompt"] == SECRET


def test_a_private_typed_prompt_is_neither_exported_nor_sent_to_a_run(live_arena, tmp_path):
    author = Client()
    battle = post_json(author, "/api/battles", {"prompt_text": SECRET}).json()
    _stream(author, battle["id"])
    vote = {"winner": "a", "idempotency_key": "typed-vote-1"}
    assert post_json(author, f"/api/battles/{battle['id']}/vote", vote).status_code == 200
    prompt_set = Match.objects.get(public_id=battle["id"]).prompt_set
    typed = Prompt.objects.get(text=SECRET)
    records = list(iter_records(prompt_set))
    assert records and SECRET not in repr(records)
    # Neither its answers nor the vote on its battle (both name the prompt).
    assert not any(getattr(r, "prompt_id", None) == typed.external_id for r in records)
    assert any(getattr(r, "prompt_id", None) for r in records)  # the public ones are there
    # The prompts a run would send to its endpoints (the run's first planning step).
    assert typed.pk not in _choose_prompts(
        EvaluationRun(prompt_set=prompt_set), list(Contestant.objects.filter(name__in=LIVE))
    )


def test_the_author_still_reads_and_votes_on_a_private_typed_prompt(live_arena):
    author = Client()
    battle = post_json(author, "/api/battles", {"prompt_text": SECRET}).json()
    assert battle["prompt"] == SECRET
    events = _stream(author, battle["id"])
    assert sum(1 for e in events if e.get("done")) == 2
    vote = post_json(
        author,
        f"/api/battles/{battle['id']}/vote",
        {"winner": "tie", "idempotency_key": "private-01"},
    )
    assert vote.status_code == 200


def test_a_reader_that_goes_away_hands_the_generation_over(live_arena, fake_llm):
    """The generating reader leaves mid-answer (its task is cancelled, as on a disconnect):
    its claim is released, and the next reader generates and stores the answers."""
    Contestant.objects.filter(name__in=LIVE).update(is_active=False)
    for name in ("live-1", "live-2"):
        Contestant.objects.create(name=name, base_url=fake_llm.base_url, api_model="slow")
    client = Client()
    battle = post_json(client, "/api/battles", {"prompt_text": "Tell me a story."}).json()

    async def abandon():
        ac = AsyncClient()
        ac.cookies = client.cookies
        response = await ac.get(f"/battle/{battle['id']}/stream")
        chunks = response.streaming_content.__aiter__()

        async def drain():
            async for _ in chunks:
                pass

        reading = asyncio.ensure_future(drain())
        await asyncio.sleep(0.02)  # claimed, the upstream answers after 50 ms
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading

    async_to_sync(abandon)()
    assert not Output.objects.filter(meta__live=True).exists()
    started = time.monotonic()
    events = _stream(client, battle["id"])
    # At once, not after the abandoned claim's lease (GENERATION_LEASE_SECONDS) ran out.
    assert time.monotonic() - started < GENERATION_LEASE_SECONDS / 3
    match = Match.objects.get(public_id=battle["id"])
    stored = {s.position: s.output.text for s in match.slots.select_related("output")}
    assert all(stored.values()) and _texts(events, 2) == stored
