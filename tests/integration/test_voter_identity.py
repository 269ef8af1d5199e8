"""What a voter identity costs: no Voter row before a request is valid, client addresses
behind trusted proxies, limits per address, network and new identity, the voter gate."""

import pytest
from django.test import Client, RequestFactory

from arena.gate import solve
from arena.models import Contestant, Match, Prompt, Voter
from arena.voters import client_address, ip_hash, network_hash
from tests.e2e.seed import seed
from tests.factories import post_json, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def arena():
    seed()


def _rows() -> tuple[int, int, int]:
    return Voter.objects.count(), Match.objects.count(), Prompt.objects.count()


def _refused(client, body, status, **headers):
    before = _rows()
    response = post_json(client, "/api/battles", body, **headers)
    assert response.status_code == status, response.content
    assert _rows() == before, f"a refused request ({status}) wrote a row"
    return response


# --- no Voter row before a request is valid ------------------------------------------------


def test_refused_battle_requests_write_no_voter_and_no_match(arena, settings):
    _refused(Client(), {"k": 7}, 400)
    _refused(Client(), {"prompt_set": "nope"}, 404)
    _refused(Client(), {"prompt_text": "   "}, 400)
    _refused(Client(), {"prompt_text": "x" * 4001}, 400)
    _refused(Client(), {"prompt_text": "a\x00b"}, 400)
    _refused(Client(), {"prompt_text": "\ud800"}, 400)
    _refused(Client(), {"prompt_text": "Answer live, please"}, 503)  # no live contestant
    settings.ARENA_MATCHMAKING_POLICY = "telepathy"
    _refused(Client(), {}, 400)


def test_a_refused_csrf_check_writes_nothing(arena):
    _refused(Client(enforce_csrf_checks=True), {}, 403)


def test_a_set_without_answers_refuses_with_503_and_writes_nothing(arena):
    Contestant.objects.update(is_active=False)
    _refused(Client(), {}, 503)


def test_a_rate_limited_request_writes_nothing(arena, settings, one_rate_window):
    settings.ARENA_BATTLE_RATE_IP = "1/60"
    assert post_json(Client(), "/api/battles", {}).status_code == 201
    response = _refused(Client(), {}, 429)
    assert response.json()["detail"].startswith("too many battles")
    assert 0 < int(response["Retry-After"]) <= 61


def test_a_valid_request_makes_its_voter_with_the_address_hashes(arena):
    client = Client()
    response = post_json(client, "/api/battles", {}, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 201
    voter = Match.objects.get(public_id=response.json()["id"]).owner
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.7")
    assert voter.ip_hash == ip_hash(request) and voter.network_hash == network_hash(request)
    # The cookie names that voter from now on: no second row.
    assert post_json(client, "/api/battles", {}, REMOTE_ADDR="203.0.113.7").status_code == 201
    assert Voter.objects.filter(kind=Voter.Kind.SESSION).count() == 1


# --- dropping the cookie does not mint unlimited voters ------------------------------------


def test_new_identities_are_limited_per_address(arena, settings):
    settings.ARENA_NEW_VOTER_RATE_IP = "5/3600,8/86400"
    statuses = [post_json(Client(), "/api/battles", {}).status_code for _ in range(7)]
    assert statuses == [201] * 5 + [429] * 2
    assert Voter.objects.filter(kind=Voter.Kind.SESSION).count() == 5
    refused = post_json(Client(), "/api/battles", {})
    assert "keep your cookie" in refused.json()["detail"]
    assert int(refused["Retry-After"]) > 60  # the hour window, not the minute
    # A voter that keeps its cookie is not a new identity: it goes on.
    keeper = Client()
    settings.ARENA_NEW_VOTER_RATE_IP = "0/1"
    assert post_json(keeper, "/api/battles", {}).status_code == 201
    settings.ARENA_NEW_VOTER_RATE_IP = "1/3600"
    assert [post_json(keeper, "/api/battles", {}).status_code for _ in range(3)] == [201] * 3


def test_new_identities_are_limited_per_network(arena, settings):
    settings.ARENA_NEW_VOTER_RATE_NET = "4/3600"
    statuses = [
        post_json(Client(), "/api/battles", {}, REMOTE_ADDR=f"198.51.100.{i}").status_code
        for i in range(1, 7)
    ]
    assert statuses == [201] * 4 + [429] * 2
    # Another /24 has its own budget.
    assert post_json(Client(), "/api/battles", {}, REMOTE_ADDR="198.51.101.1").status_code == 201


def test_battles_are_limited_per_network_and_per_day(arena, settings):
    settings.ARENA_BATTLE_RATE_NET = "3/60"
    statuses = [
        post_json(Client(), "/api/battles", {}, REMOTE_ADDR=f"2001:db8:1:2::{i}").status_code
        for i in range(1, 5)
    ]
    assert statuses == [201, 201, 201, 429]  # one /64
    settings.ARENA_BATTLE_RATE_NET = "0/1"
    settings.ARENA_BATTLE_RATE_SESSION = "100/60,2/86400"
    client = Client()  # its first battle is served before it has a session to count on
    statuses = [post_json(client, "/api/battles", {}).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]


# --- the client's address -----------------------------------------------------------------


def _request(remote, forwarded=None):
    headers = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(settings):
    settings.ARENA_TRUSTED_PROXIES = ""
    assert client_address(_request("127.0.0.1", "203.0.113.9")) == "127.0.0.1"
    settings.ARENA_TRUSTED_PROXIES = "10.0.0.1"
    assert client_address(_request("127.0.0.1", "203.0.113.9")) == "127.0.0.1"


def test_behind_a_trusted_proxy_the_client_is_the_rightmost_untrusted_hop(settings):
    settings.ARENA_TRUSTED_PROXIES = "127.0.0.1, 10.0.0.0/8"
    assert client_address(_request("127.0.0.1", "203.0.113.9")) == "203.0.113.9"
    # The client wrote the left part itself: only what our proxies appended counts.
    assert client_address(_request("127.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.2.3")) == (
        "203.0.113.9"
    )
    assert client_address(_request("10.0.0.5", "::ffff:203.0.113.9")) == "203.0.113.9"
    assert client_address(_request("127.0.0.1", "not-an-address")) == "127.0.0.1"
    assert client_address(_request("127.0.0.1", "10.0.0.2, 10.0.0.3")) == "127.0.0.1"
    assert client_address(_request("127.0.0.1")) == "127.0.0.1"


def test_honest_voters_behind_a_trusted_proxy_get_their_own_identities(arena, settings):
    """The rigging bench's honest voters: one proxy, many forwarded addresses."""
    settings.ARENA_TRUSTED_PROXIES = "127.0.0.1"
    settings.ARENA_NEW_VOTER_RATE_IP = "1/3600"
    statuses = [
        post_json(Client(), "/api/battles", {}, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code
        for i in range(1, 11)
    ]
    assert statuses == [201] * 10
    sessions = Voter.objects.filter(kind=Voter.Kind.SESSION)
    assert sessions.values("ip_hash").distinct().count() == 10
    # A spoofed header from a client that is not the proxy buys nothing.
    settings.ARENA_TRUSTED_PROXIES = ""
    spoofed = [
        post_json(Client(), "/api/battles", {}, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code
        for i in range(20, 23)
    ]
    assert spoofed == [201, 429, 429]


def test_network_hashes_group_by_24_and_64():
    same = [network_hash(_request(a)) for a in ("203.0.113.1", "203.0.113.254")]
    assert same[0] == same[1] != network_hash(_request("203.0.114.1"))
    six = [network_hash(_request(a)) for a in ("2001:db8::1", "2001:db8::ffff:1")]
    assert six[0] == six[1] != network_hash(_request("2001:db8:0:1::1"))
    assert ip_hash(_request("203.0.113.1")) != ip_hash(_request("203.0.113.254"))


def test_a_bad_trusted_proxy_setting_names_the_entry(settings):
    settings.ARENA_TRUSTED_PROXIES = "127.0.0.1, proxy.example"
    with pytest.raises(ValueError, match="proxy.example"):
        client_address(_request("127.0.0.1", "203.0.113.9"))


# --- the voter gate -----------------------------------------------------------------------


def test_login_gate_refuses_anonymous_voters(arena, settings):
    settings.ARENA_VOTER_GATE = "login"
    response = _refused(Client(), {}, 403)
    assert "logged-in users only" in response.json()["detail"]
    member = Client()
    member.force_login(staff_user("member"))
    battle = post_json(member, "/api/battles", {})
    assert battle.status_code == 201
    voter = Match.objects.get(public_id=battle.json()["id"]).owner
    assert voter.kind == Voter.Kind.USER
    vote = post_json(
        member,
        f"/api/battles/{battle.json()['id']}/vote",
        {"winner": "a", "idempotency_key": "member-0001"},
    )
    assert vote.status_code == 200


def test_pow_gate_takes_one_solved_challenge_per_new_session(arena, settings):
    settings.ARENA_VOTER_GATE = "pow"
    settings.ARENA_POW_BITS = 8
    settings.ARENA_NEW_VOTER_RATE_IP = "1/3600"  # a request without a proof is not counted
    client = Client()
    assert _refused(client, {}, 403).json()["field"] == "pow_nonce"  # no proof
    challenge = client.get("/api/battles/challenge").json()
    assert challenge["bits"] == 8
    body = {"pow_challenge": challenge["challenge"]}
    _refused(client, {**body, "pow_nonce": "x" * 65}, 400)
    _refused(client, {**body, "pow_challenge": challenge["challenge"] + "x", "pow_nonce": "1"}, 403)
    nonce = solve(challenge["challenge"], 8)
    assert post_json(client, "/api/battles", {**body, "pow_nonce": nonce}).status_code == 201
    # The session paid once: its next battles need no proof.
    assert post_json(client, "/api/battles", {}).status_code == 201
    # A challenge mints one voter: replayed from a fresh cookie it is refused.
    response = _refused(Client(), {**body, "pow_nonce": nonce}, 403)
    assert "used already" in response.json()["detail"]
    assert Voter.objects.filter(kind=Voter.Kind.SESSION).count() == 1


def test_pow_refuses_a_nonce_that_does_not_solve_the_challenge(arena, settings):
    settings.ARENA_VOTER_GATE = "pow"
    settings.ARENA_POW_BITS = 12
    challenge = Client().get("/api/battles/challenge").json()["challenge"]
    nonce = int(solve(challenge, 12))
    # The nonces before the first solution do not solve it.
    bad = str(max(nonce - 1, 0)) if nonce else "not-a-solution-" * 2
    response = _refused(Client(), {"pow_challenge": challenge, "pow_nonce": bad}, 403)
    assert "does not solve" in response.json()["detail"]
