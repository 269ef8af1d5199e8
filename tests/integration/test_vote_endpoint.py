"""The lean ASGI vote front (arena.vote_endpoint), through the real ASGI stack.

A browser-like client speaks ASGI to ``VoteEndpoint(django_asgi_app)`` with real cookies
and a real CSRF token; a spy on the inner Django app tells which requests the front
answered itself and which it handed to Django. Every answer must be the one the
django-ninja view gives (tests/integration/test_battles.py), and no refused vote may
change the counts.
"""

import asyncio
import json
import secrets
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from asgiref.sync import async_to_sync

from arena.models import Judgment, Match, PairOutcomeCount
from arena.vote_endpoint import VoteEndpoint
from tests.e2e.seed import CONTESTANTS, seed

pytestmark = pytest.mark.django_db(transaction=True)


class SpyApp:
    """The Django ASGI app, counting the requests that reach it."""

    def __init__(self):
        from django.core.asgi import get_asgi_application

        self.app = get_asgi_application()
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send):
        self.paths.append(scope["path"])
        await self.app(scope, receive, send)


class Browser:
    """Keeps cookies like a browser and sends the CSRF token like the battle page does."""

    def __init__(self, app):
        self.app = app
        self.cookies = {"csrftoken": secrets.token_hex(16)}  # 32 characters, like Django's

    def post(self, path, body, csrf=True, origin="http://testserver", extra_cookies=None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        cookies = {**self.cookies, **(extra_cookies or {})}
        headers = [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()),
        ]
        if csrf:
            headers.append((b"x-csrftoken", self.cookies["csrftoken"].encode()))
        if origin:
            headers.append((b"origin", origin.encode()))
        status, response_headers, content = async_to_sync(self._call)(path, headers, raw)
        for name, value in response_headers:
            if name.lower() == b"set-cookie":
                for morsel in SimpleCookie(value.decode()).values():
                    self.cookies[morsel.key] = morsel.value
        return Answer(
            status, {k.decode().lower(): v.decode() for k, v in response_headers}, content
        )

    async def _call(self, path, headers, body):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        chunks = [body[:5], body[5:]]  # a body in two messages, as a server may deliver it
        sent = []

        async def receive():
            if chunks:
                chunk = chunks.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
            await asyncio.Event().wait()  # the client stays connected until it has its answer

        async def send(message):
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], start["headers"], content


class Answer:
    def __init__(self, status, headers, content):
        self.status_code, self.headers, self.content = status, headers, content

    def json(self):
        return json.loads(self.content)


@pytest.fixture
def spy():
    seed()
    return SpyApp()


@pytest.fixture
def front(spy):
    return VoteEndpoint(spy)


def _battle(browser, **body):
    response = browser.post("/api/battles", body)
    assert response.status_code == 201, response.content
    return response.json()


def _vote_url(battle):
    return f"/api/battles/{battle['id']}/vote"


def _state():
    return sum(PairOutcomeCount.objects.values_list("count", flat=True)), Judgment.objects.count()


def test_a_plain_vote_is_answered_by_the_front_and_stored_once(front, spy):
    browser = Browser(front)
    battle = _battle(browser)
    counts, judgments = _state()
    response = browser.post(_vote_url(battle), {"winner": "b", "idempotency_key": "front-0001"})
    assert response.status_code == 200, response.content
    assert spy.paths == ["/api/battles"]  # the vote never reached Django
    reveal = response.json()["reveal"]
    assert [r["slot"] for r in reveal] == [0, 1] and all(r["model"] in CONTESTANTS for r in reveal)
    assert response.json() == {"recorded": True, "battle": battle["id"], "reveal": reveal}
    judgment = Judgment.objects.get(match__public_id=battle["id"])
    assert judgment.winner == "b" and judgment.presentation == "0,1"
    assert Judgment.objects.filter(pk=judgment.pk, ranking__isnull=True).exists()  # SQL NULL
    assert judgment.voter.label == Match.objects.get(public_id=battle["id"]).owner.label
    assert judgment.shown_at <= judgment.voted_at and judgment.status == "ok"
    assert _state() == (counts + 1, judgments + 1)
    cell = PairOutcomeCount.objects.get(
        prompt_set=judgment.match.prompt_set,
        category=judgment.match.category,
        contestant_a=judgment.match.slots.get(position=0).contestant,
        contestant_b=judgment.match.slots.get(position=1).contestant,
        winner="b",
        a_first=True,
        source="human",
    )
    assert cell.count >= 1
    # The same security headers as Django's middleware gives its responses.
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_double_submits_and_replays_get_409_and_change_nothing(front):
    browser = Browser(front)
    battle = _battle(browser)
    assert (
        browser.post(
            _vote_url(battle), {"winner": "a", "idempotency_key": "front-0002"}
        ).status_code
        == 200
    )
    after = _state()
    again = browser.post(_vote_url(battle), {"winner": "a", "idempotency_key": "front-0002"})
    assert again.status_code == 409 and "already recorded" in again.json()["detail"]
    replay = browser.post(_vote_url(battle), {"winner": "b", "idempotency_key": "front-0003"})
    assert replay.status_code == 409 and "already voted" in replay.json()["detail"]
    assert _state() == after


def test_someone_elses_unknown_and_expired_battles(front, spy):
    browser, other = Browser(front), Browser(front)
    battle = _battle(browser)
    _battle(other)
    before = _state()
    vote = {"winner": "a", "idempotency_key": "front-0004"}
    assert other.post(_vote_url(battle), vote).status_code == 403
    unknown = {"id": "00000000-0000-0000-0000-000000000000"}
    assert browser.post(_vote_url(unknown), vote).status_code == 404
    Match.objects.filter(public_id=battle["id"]).update(
        created_at=Match.objects.get(public_id=battle["id"]).created_at - timedelta(hours=2)
    )
    expired = browser.post(_vote_url(battle), vote)
    assert expired.status_code == 410 and "expired" in expired.json()["detail"]
    assert not any(path.endswith("/vote") for path in spy.paths)
    assert _state() == before


@pytest.mark.parametrize(
    ("body", "status", "answered_by"),
    [
        ({"winner": "left", "idempotency_key": "front-0006"}, 400, "front"),
        ({"ranking": [1, 2], "idempotency_key": "front-0006"}, 400, "front"),
        ({"best": 2, "idempotency_key": "front-0006"}, 400, "front"),
        ({"winner": "a", "best": 0, "idempotency_key": "front-0006"}, 400, "front"),
        ({"idempotency_key": "front-0006"}, 400, "front"),
        ({"winner": "a", "idempotency_key": "short"}, 400, "front"),
        ({"winner": "a"}, 422, "django"),
        ({"winner": "a", "idempotency_key": "front-0006", "extra": 1}, 422, "django"),
        ({"best": True, "idempotency_key": "front-0006"}, 422, "django"),
        ({"winner": 1, "idempotency_key": "front-0006"}, 422, "django"),
        (b"winner=a", 400, "django"),
        (b'{"winner": "a", "idempotency_key": "front-0006"' + b" " * 20000 + b"}", 200, "django"),
    ],
)
def test_malformed_votes_get_the_views_answer(front, spy, body, status, answered_by):
    browser = Browser(front)
    battle = _battle(browser)
    before = _state()
    response = browser.post(_vote_url(battle), body)
    assert response.status_code == status, response.content
    assert bool(response.json().get("detail")) == (status != 200)
    assert any(path.endswith("/vote") for path in spy.paths) == (answered_by == "django")
    if status != 200:  # the oversized body is well-formed: Django stores it
        assert _state() == before


def test_what_the_front_does_not_vouch_for_goes_to_django(front, spy):
    browser = Browser(front)
    battle = _battle(browser)
    before = _state()
    vote = {"winner": "a", "idempotency_key": "front-0007"}
    no_token = browser.post(_vote_url(battle), vote, csrf=False)
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
    foreign = browser.post(_vote_url(battle), vote, origin="http://evil.example")
    assert foreign.status_code == 403 and "CSRF" in foreign.json()["detail"]
    stranger = Browser(front)  # no voter cookie at all
    assert stranger.post(_vote_url(battle), vote).status_code == 403
    forged = browser.post(_vote_url(battle), vote, extra_cookies={"arena_voter": "forged:abc"})
    assert forged.status_code == 403
    assert _state() == before
    assert sum(path.endswith("/vote") for path in spy.paths) == 4
    # A Django session may be a logged-in user: Django's auth answers (here: an anonymous
    # session, so the voter cookie decides and the vote counts).
    logged = browser.post(_vote_url(battle), vote, extra_cookies={"sessionid": "none"})
    assert logged.status_code == 200 and sum(path.endswith("/vote") for path in spy.paths) == 5


def test_the_front_applies_the_vote_rate_limits(front, settings):
    settings.ARENA_VOTE_RATE_SESSION = "2/60"
    browser = Browser(front)
    statuses = [
        browser.post(
            _vote_url(_battle(browser)), {"winner": "a", "idempotency_key": f"front-r{i:04}"}
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert Judgment.objects.filter(match__origin="arena").count() == 2


def test_a_k_wise_vote_through_the_front(front, spy):
    browser = Browser(front)
    battle = _battle(browser, k=3)
    response = browser.post(_vote_url(battle), {"best": 2, "idempotency_key": "front-0008"})
    assert response.status_code == 200 and len(response.json()["reveal"]) == 3
    assert Judgment.objects.get(match__public_id=battle["id"]).ranking == [2, 2, 1]
    assert not any(path.endswith("/vote") for path in spy.paths)
