"""Answers and prompts reach the pages as arena.rendering's HTML, and nothing else does;
numbers on the first render are written as the scripts write them after a push."""

import json
import re

import pytest
from django.core.cache import cache
from django.test import Client

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.models import Contestant, LeaderboardSnapshot, PromptSet
from arena.rendering import format_fixed, render_markdown
from arena.services import refresh_prompt_set
from judges.clients.fake_server import FakeLLMServer
from tests.factories import post_json
from tests.integration.test_live_battles import _stream

HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert('m')</script>"]
ANSWER = (
    "# Plan\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nprint('hi')\n```\n\n"
    "Math $x^2$ and <img src=x onerror=alert(1)> [x](javascript:alert(1))"
)
PROMPT = "Compare **two** things <script>alert(1)</script>"


def _hostile_arena():
    records = [PromptRecord(external_id="p1", text=PROMPT, category="general")]
    for name in HOSTILE:
        records.append(OutputRecord(prompt_id="p1", contestant=name, text=f"{ANSWER}\n\n{name}"))
    for i, winner in enumerate(["a", "b", "a"]):
        records.append(
            JudgmentRecord(
                match_id=f"h-{i}",
                contestants=tuple(HOSTILE),
                winner=winner,
                voter=f"v{i}",
                prompt_id="p1",
            )
        )
    import_records(records, prompt_set="hostile", source="test")
    PromptSet.objects.filter(slug="hostile").update(name="Hostile", is_public_arena=True)
    refresh_prompt_set(PromptSet.objects.get(slug="hostile"), bootstrap=20)


@pytest.mark.django_db
def test_a_battle_carries_each_text_as_sanitised_html_and_no_name(client):
    _hostile_arena()
    response = post_json(client, "/api/battles", {"prompt_set": "hostile"})
    assert response.status_code == 201, response.content
    battle = response.json()
    assert battle["prompt_html"] == render_markdown(PROMPT)
    assert "<strong>two</strong>" in battle["prompt_html"]
    assert "<script" not in battle["prompt_html"]
    for answer in battle["answers"]:
        assert answer["html"] == render_markdown(answer["text"])
        assert "<table>" in answer["html"] and 'class="tok-' in answer["html"]
        assert "<math" in answer["html"] and "<img" not in answer["html"]
        assert "&lt;img src=x onerror=alert(1)&gt;" in answer["html"]  # shown as text
        assert 'href="javascript' not in answer["html"]
    # Nothing but the texts: a model's name only where its own answer wrote it.
    assert all(answer.get("model") is None for answer in battle["answers"])


@pytest.mark.django_db(transaction=True)
def test_a_live_answer_ends_with_its_stored_text_rendered():
    cache.clear()
    with FakeLLMServer("test") as server:
        _hostile_arena()
        for name in ("alpha", "beta"):
            Contestant.objects.create(
                name=name, base_url=server.base_url, api_model=name, generation_params={}
            )
        client = Client()
        response = post_json(
            client,
            "/api/battles",
            {"prompt_set": "hostile", "prompt_text": "Say *hi* <img src=x onerror=alert(1)>"},
        )
        assert response.status_code == 201, response.content
        battle = response.json()
        assert battle["answers"][0]["html"] == "" and "<img" not in battle["prompt_html"]
        assert "<em>hi</em>" in battle["prompt_html"]
        events = _stream(client, battle["id"])
    done = [e for e in events if e.get("done")]
    assert len(done) == 2
    for event in done:
        text = "".join(e.get("delta", "") for e in events if e.get("slot") == event["slot"])
        assert text and event["html"] == render_markdown(text)
    assert not any(name in json.dumps(events) for name in ("alpha", "beta"))


def soften(scope_key: str, votes: list[float]) -> None:
    """Give the latest board of a scope fractional vote counts, as soft preferences
    (a fraction of a vote each) make them: ``BoardRow.votes`` is a float."""
    snapshot = LeaderboardSnapshot.objects.latest_of(scope_key)
    for row, value in zip(snapshot.rows, votes, strict=False):
        row["votes"] = value
    snapshot.save(update_fields=["rows"])


@pytest.mark.django_db
def test_the_first_render_writes_numbers_as_the_script_does(client):
    _hostile_arena()
    board = client.get("/api/leaderboard", {"set": "hostile", "by": "humans"}).json()
    page = client.get("/", {"set": "hostile", "by": "humans"}).content.decode()
    assert re.findall(r"<td>([0-9.]+)</td><td class=\"opt\">", page) == ["3", "3"]  # not 3.0
    assert f'<b id="n-votes">{board["n_votes"]}</b>' in page
    soften(board["scope"], [1262.95, 0.25])
    page = client.get("/", {"set": "hostile", "by": "humans"}).content.decode()
    assert re.findall(r"<td>([0-9.]+)</td><td class=\"opt\">", page) == ["1263", "0.3"]
    rows = client.get("/api/leaderboard", {"set": "hostile", "by": "humans"}).json()["rows"]
    for row in rows:  # rating, CI and win rate as toFixed writes them
        assert f"<td>{format_fixed(row['rating'], 1)}</td>" in page
        ci = f"{format_fixed(row['ci_lower'], 1)} – {format_fixed(row['ci_upper'], 1)}"
        assert f"<td>{ci}</td>" in page
        assert f'<td class="opt">{format_fixed(row["win_rate"], 3)}</td>' in page
    # Names are text in the table.
    assert "<img src=x onerror=alert(1)>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
