"""The vote path, end to end through the served ASGI application (config.asgi).

One suite for every voter: each test runs for an anonymous voter (signed cookie session)
and for a logged-in user (Django session), who take the same path. A browser-like
client keeps cookies and sends the CSRF token as the battle page does. Every refusal is
checked to write nothing: no judgment, no running count, no refit requested.
"""

import asyncio
import json
import secrets
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from arena.models import BoardState, Judgment, Match, MatchSlot, PairOutcomeCount, Voter
from arena.vocabulary import in_order
from tests.e2e.seed import CONTESTANTS, seed

# The vote's database work runs on a thread of its own: it must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

VOTERS = ("anonymous", "user")


class Browser:
    """Keeps cookies like a browser and sends the CSRF token like the battle page does."""

    def __init__(self):
        from config.asgi import application

        self.app = application
        self.cookies = {"csrftoken": secrets.token_hex(16)}  # 32 characters, like Django's

    def log_in(self, username: str) -> None:
        """A Django session of a logged-in user (as after the login form)."""
        user = get_user_model().objects.create_user(username, password=secrets.token_hex(8))
        client = Client()
        client.force_login(user)
        self.cookies["sessionid"] = client.cookies["sessionid"].value

    def post(self, path, body, csrf=True, origin="http://testserver", cookies=None):
        raw, headers = self.request(body, csrf, origin, cookies)
        return self.answer(*async_to_sync(self._call)(path, headers, raw))

    def request(self, body, csrf=True, origin="http://testserver", cookies=None):
        """The body and headers of a JSON post with this browser's cookies."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent_cookies = {**self.cookies, **(cookies or {})}
        headers = [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"cookie", "; ".join(f"{k}={v}" for k, v in sent_cookies.items()).encode()),
        ]
        if csrf:
            headers.append((b"x-csrftoken", self.cookies["csrftoken"].encode()))
        if origin:
            headers.append((b"origin", origin.encode()))
        return raw, headers

    def answer(self, status, response_headers, content):
        """The response, keeping the cookies it sets."""
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


@pytest.fixture(autouse=True)
def arena():
    seed()


def _voter(kind: str) -> Browser:
    browser = Browser()
    if kind == "user":
        browser.log_in(f"voter-{secrets.token_hex(4)}")
    return browser


@pytest.fixture(params=VOTERS)
def voter(request) -> Browser:
    """The voter of the test: an anonymous session, or a logged-in user."""
    return _voter(request.param)


def _battle(browser, **body):
    response = browser.post("/api/battles", body)
    assert response.status_code == 201, response.content
    return response.json()


def _vote_url(battle):
    return f"/api/battles/{battle['id']}/vote"


def _state():
    """Everything a vote writes: judgments, running counts, refit requests."""
    return (
        Judgment.objects.count(),
        sum(PairOutcomeCount.objects.values_list("count", flat=True)),
        sorted(BoardState.objects.values_list("scope", "requested_at")),
    )


def _refused(response, status, detail=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["detail"] if detail is None else detail in body["detail"]
    return body


# --- votes that count ----------------------------------------------------------------------


def test_a_pairwise_vote_is_stored_once_counted_and_reveals(voter, settings):
    settings.ARENA_REVEAL = "always"  # the reveal itself (the policies: below)
    battle = _battle(voter)
    judgments, counts, _ = _state()
    response = voter.post(_vote_url(battle), {"winner": "b", "idempotency_key": "vote-0001"})
    assert response.status_code == 200, response.content
    reveal = response.json()["reveal"]
    assert [r["slot"] for r in reveal] == [0, 1] and all(r["model"] in CONTESTANTS for r in reveal)
    assert response.json() == {
        "recorded": True,
        "battle": battle["id"],
        "reveal": reveal,
        "withheld": None,
        "permalink": f"/battles/{battle['id']}/",  # the battle's page, from the vote on
    }
    match = Match.objects.get(public_id=battle["id"])
    judgment = Judgment.objects.get(match=match)
    assert judgment.winner == "b" and judgment.presentation == in_order(2) == "0,1"
    assert judgment.kind == "pairwise" and judgment.status == "ok"
    assert Judgment.objects.filter(pk=judgment.pk, ranking__isnull=True).exists()  # SQL NULL
    assert judgment.voter_id == match.owner_id and judgment.idempotency_key == "vote-0001"
    assert judgment.shown_at == match.created_at <= judgment.voted_at
    assert _state()[:2] == (judgments + 1, counts + 1)
    cell = PairOutcomeCount.objects.get(
        prompt_set=match.prompt_set,
        category=match.category,
        contestant_a=match.slots.get(position=0).contestant,
        contestant_b=match.slots.get(position=1).contestant,
        winner="b",
        a_first=True,
        source="human",
    )
    assert cell.count >= 1
    # The refit of the set's human board was requested once the vote was committed.
    assert BoardState.objects.get(scope="set=e2e-arena|by=humans|cat=|style=0").requested_at
    # Django's middleware answered: the security headers of every response.
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_voter_is_the_one_the_battle_was_served_to(voter):
    battle = _battle(voter)
    vote = {"winner": "a", "idempotency_key": "vote-0002"}
    assert voter.post(_vote_url(battle), vote).status_code == 200
    judgment = Judgment.objects.get(match__public_id=battle["id"])
    kind = "user" if "sessionid" in voter.cookies else "session"
    assert judgment.voter.kind == kind
    if kind == "user":
        assert judgment.voter.label == f"user:{judgment.voter.user_id}"


@pytest.mark.parametrize(
    ("k", "body", "ranking"),
    [
        (3, {"best": 2}, [2, 2, 1]),
        (4, {"ranking": [2, 1, 2, 3]}, [2, 1, 2, 3]),
    ],
)
def test_a_k_wise_vote_takes_a_ranking_or_the_best(voter, k, body, ranking, settings):
    settings.ARENA_REVEAL = "always"
    battle = _battle(voter, k=k)
    assert len(battle["answers"]) == k
    counts = _state()[1]
    response = voter.post(_vote_url(battle), {**body, "idempotency_key": "vote-0003"})
    assert response.status_code == 200, response.content
    assert len(response.json()["reveal"]) == k
    judgment = Judgment.objects.get(match__public_id=battle["id"])
    assert judgment.ranking == ranking and judgment.kind == "ranking"
    assert judgment.presentation == in_order(k) and judgment.winner is None
    assert _state()[1] == counts  # rankings are not pairwise running counts


# --- the reveal policy (ARENA_REVEAL) ------------------------------------------------------


def _vote_and_reveal(browser, battle) -> dict:
    vote = {"winner": "a", "idempotency_key": secrets.token_hex(8)}
    response = browser.post(_vote_url(battle), vote)
    assert response.status_code == 200, response.content
    return response.json()


def _revealed(body) -> bool:
    if body["reveal"]:
        assert [r["slot"] for r in body["reveal"]] == [0, 1] and body["withheld"] is None
        return True
    assert body["withheld"]  # says why
    assert not any(name.encode() in json.dumps(body).encode() for name in CONTESTANTS)
    return False


def _fresh(battle) -> None:
    """Make a served battle one whose answers were written for it (a typed prompt's)."""
    Match.objects.filter(public_id=battle["id"]).update(source="arena-live")
    cache.clear()  # the battle's cached facts were read when it was served


def test_by_default_only_answers_written_for_the_battle_are_revealed(voter):
    stored, fresh = _battle(voter), _battle(voter)
    _fresh(fresh)
    body = _vote_and_reveal(voter, stored)
    assert not _revealed(body) and "stored answers" in body["withheld"]
    assert _revealed(_vote_and_reveal(voter, fresh))
    # Withheld or not, the vote counted.
    assert Judgment.objects.filter(match__public_id__in=[stored["id"], fresh["id"]]).count() == 2


def test_trusted_reveals_stored_answers_to_a_track_record_only(settings):
    settings.ARENA_REVEAL = "trusted"
    settings.ARENA_REVEAL_TRUST = 0.5
    newcomer, user = _voter("anonymous"), _voter("user")
    assert not _revealed(_vote_and_reveal(newcomer, _battle(newcomer)))
    assert _revealed(_vote_and_reveal(user, _battle(user)))  # logged in
    # A session voter whose trust reached the setting (trust is read when a battle is served).
    Voter.objects.filter(judgments__match__public_id__isnull=False, kind="session").update(
        trust=0.6
    )
    assert _revealed(_vote_and_reveal(newcomer, _battle(newcomer)))
    other = _voter("anonymous")  # a newcomer sees who wrote answers written for it
    battle = _battle(other)
    _fresh(battle)
    assert _revealed(_vote_and_reveal(other, battle))


@pytest.mark.parametrize(
    ("policy", "stored", "fresh"), [("always", True, True), ("never", False, False)]
)
def test_always_and_never(voter, settings, policy, stored, fresh):
    settings.ARENA_REVEAL = policy
    one, two = _battle(voter), _battle(voter)
    _fresh(two)
    assert _revealed(_vote_and_reveal(voter, one)) is stored
    assert _revealed(_vote_and_reveal(voter, two)) is fresh


def test_a_k_wise_battle_refuses_pairwise_ballots(voter):
    battle = _battle(voter, k=4)
    before = _state()
    _refused(voter.post(_vote_url(battle), {"winner": "a", "idempotency_key": "vote-0004"}), 400)
    bad_ranks = {"ranking": [2, 3, 4, 5], "idempotency_key": "vote-0004"}
    _refused(voter.post(_vote_url(battle), bad_ranks), 400)
    assert _state() == before


# --- refusals: each writes nothing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"winner": "left", "idempotency_key": "vote-0006"}, 400, "winner"),
        ({"ranking": [1, 2], "idempotency_key": "vote-0006"}, 400, "ranking"),
        ({"best": 2, "idempotency_key": "vote-0006"}, 400, "best"),
        ({"winner": "a", "best": 0, "idempotency_key": "vote-0006"}, 400, "vote"),
        ({"idempotency_key": "vote-0006"}, 400, "vote"),
        ({"winner": "a", "idempotency_key": "short"}, 400, "idempotency_key"),
        ({"winner": "a"}, 422, None),
        ({"winner": "a", "idempotency_key": "vote-0006", "extra": 1}, 422, None),
        ({"best": True, "idempotency_key": "vote-0006"}, 422, None),
        ({"winner": 1, "idempotency_key": "vote-0006"}, 422, None),
        (b"winner=a", 400, None),
    ],
)
def test_malformed_votes_get_a_clear_4xx(voter, body, status, field):
    battle = _battle(voter)
    before = _state()
    answer = _refused(voter.post(_vote_url(battle), body), status)
    if field is not None:
        assert answer["field"] == field
    assert _state() == before


def test_a_large_well_formed_body_is_a_vote(voter):
    battle = _battle(voter)
    body = b'{"winner": "a", "idempotency_key": "vote-0007"' + b" " * 20000 + b"}"
    assert voter.post(_vote_url(battle), body).status_code == 200


def test_double_submits_and_replays_get_409_and_change_nothing(voter):
    battle = _battle(voter)
    url = _vote_url(battle)
    assert voter.post(url, {"winner": "a", "idempotency_key": "vote-0008"}).status_code == 200
    after = _state()
    again = voter.post(url, {"winner": "a", "idempotency_key": "vote-0008"})
    _refused(again, 409, "already recorded")
    replay = voter.post(url, {"winner": "b", "idempotency_key": "vote-0009"})
    _refused(replay, 409, "already voted")
    # The same key on another battle is the duplicate submission, not a new vote.
    other = _battle(voter)
    reused = voter.post(_vote_url(other), {"winner": "b", "idempotency_key": "vote-0008"})
    _refused(reused, 409, "already recorded")
    assert _state()[:2] == after[:2]
    assert not Judgment.objects.filter(match__public_id=other["id"]).exists()


@pytest.mark.parametrize("other_kind", VOTERS)
def test_nobody_votes_on_someone_elses_battle(voter, other_kind):
    battle = _battle(voter)
    other = _voter(other_kind)
    _battle(other)  # the other browser has a voter of its own
    before = _state()
    vote = {"winner": "a", "idempotency_key": "vote-0010"}
    _refused(other.post(_vote_url(battle), vote), 403, "someone else")
    stranger = Browser()  # no voter cookie, no session at all
    _refused(stranger.post(_vote_url(battle), vote), 403, "no voter session")
    if "sessionid" not in voter.cookies:  # a user votes as the user, whatever the cookie
        forged = voter.post(_vote_url(battle), vote, cookies={"arena_voter": "forged:abc"})
        _refused(forged, 403)
    assert _state() == before


def test_unknown_and_expired_battles(voter):
    battle = _battle(voter)
    before = _state()
    vote = {"winner": "a", "idempotency_key": "vote-0011"}
    _refused(voter.post(_vote_url({"id": "00000000-0000-0000-0000-000000000000"}), vote), 404)
    assert voter.post("/api/battles/not-a-uuid/vote", vote).status_code in (404, 422)
    Match.objects.filter(public_id=battle["id"]).update(
        created_at=Match.objects.get(public_id=battle["id"]).created_at - timedelta(hours=2)
    )
    cache.clear()  # its facts were cached when it was served; the test ages it behind them
    _refused(voter.post(_vote_url(battle), vote), 410, "expired")
    assert _state() == before


def test_a_battle_whose_answers_are_still_streaming_takes_no_vote(voter):
    battle = _battle(voter)
    MatchSlot.objects.filter(match__public_id=battle["id"], position=1).update(output=None)
    cache.clear()  # as above: an answer taken back behind the cached facts
    before = _state()
    vote = {"winner": "a", "idempotency_key": "vote-0012"}
    _refused(voter.post(_vote_url(battle), vote), 409, "still being written")
    assert _state() == before


def test_posts_need_the_csrf_token(voter):
    battle = _battle(voter)
    before = _state()
    vote = {"winner": "a", "idempotency_key": "vote-0013"}
    _refused(voter.post(_vote_url(battle), vote, csrf=False), 403, "CSRF")
    _refused(voter.post(_vote_url(battle), vote, origin="http://evil.example"), 403, "CSRF")
    assert _state() == before
    assert voter.post(_vote_url(battle), vote).status_code == 200


def test_votes_are_rate_limited_per_session(voter, settings):
    settings.ARENA_VOTE_RATE_SESSION = "2/60"
    battles = [_battle(voter) for _ in range(3)]
    statuses = [
        voter.post(_vote_url(b), {"winner": "a", "idempotency_key": f"vote-r{i:04}"}).status_code
        for i, b in enumerate(battles)
    ]
    assert statuses == [200, 200, 429]
    assert Judgment.objects.filter(match__origin="arena").count() == 2
    assert not Judgment.objects.filter(match__public_id=battles[2]["id"]).exists()


def test_votes_are_rate_limited_per_address(settings):
    settings.ARENA_VOTE_RATE_IP = "2/60"
    voters = [_voter(kind) for kind in ("anonymous", "user", "anonymous")]
    battles = [_battle(v) for v in voters]
    statuses = [
        v.post(_vote_url(b), {"winner": "a", "idempotency_key": f"vote-i{i:04}"}).status_code
        for i, (v, b) in enumerate(zip(voters, battles, strict=True))
    ]
    assert statuses == [200, 200, 429]
    assert Judgment.objects.filter(match__origin="arena").count() == 2


def test_one_process_has_many_votes_in_flight(monkeypatch):
    """Two votes posted at once to one application, on one event loop as a server runs it,
    are stored at the same time, each on a thread of its own (config.http runs each
    request's sync part on a thread of the event loop's pool): a barrier that both must reach inside ``store_vote``
    would time out if the votes queued on one thread per process."""
    import threading

    from arena import votes

    first, second = _voter("anonymous"), _voter("user")
    battles = [(first, _battle(first)), (second, _battle(second))]
    both_inside = threading.Barrier(2, timeout=10)
    store = votes.store_vote

    def store_when_both_are_in(battle, ballot):
        both_inside.wait()
        store(battle, ballot)

    monkeypatch.setattr(votes, "store_vote", store_when_both_are_in)

    async def post_both():
        calls = []
        for browser, battle in battles:
            raw, headers = browser.request({"winner": "a", "idempotency_key": secrets.token_hex(8)})
            calls.append(browser._call(_vote_url(battle), headers, raw))
        return await asyncio.gather(*calls)

    answers = []
    # A plain thread running its own event loop: no outer sync thread that Django's sync
    # code could borrow (as under uvicorn).
    server = threading.Thread(target=lambda: answers.extend(asyncio.run(post_both())))
    server.start()
    server.join(30)
    assert [status for status, _, _ in answers] == [200, 200]
    assert Judgment.objects.filter(voter__isnull=False, match__origin="arena").count() == 2


def test_every_middleware_of_the_site_applies_to_a_vote(voter):
    """No vote path around the middleware: the security and clickjacking middleware's
    headers are on a vote's answer as on any page."""
    battle = _battle(voter)
    response = voter.post(_vote_url(battle), {"winner": "a", "idempotency_key": "vote-0099"})
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "same-origin" in response.headers["referrer-policy"]
