"""The battle API: serve, vote, reveal; and every way a vote can be wrong."""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.test import Client

from arena.battles import Standing, draw_group
from arena.models import Judgment, Match, PairOutcomeCount
from tests.e2e.seed import CONTESTANTS, seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def arena():
    seed()


def _post(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def _battle(client, **body):
    response = _post(client, "/api/battles", body)
    assert response.status_code == 201, response.content
    return response.json()


def _counts():
    return sum(PairOutcomeCount.objects.values_list("count", flat=True))


def test_it_serves_a_battle_without_identities(client, arena):
    battle = _battle(client)
    assert battle["k"] == 2 and [a["slot"] for a in battle["answers"]] == [0, 1]
    assert all(a["text"] for a in battle["answers"]) and battle["prompt"]
    raw = json.dumps(battle)
    assert not any(name in raw for name in CONTESTANTS)
    match = Match.objects.get(public_id=battle["id"])
    assert match.owner is not None and match.origin == "arena" and 0 < match.pair_probability <= 1


def test_a_vote_is_stored_once_and_reveals_the_contestants(client, arena):
    battle = _battle(client)
    before = _counts()
    response = _post(
        client,
        f"/api/battles/{battle['id']}/vote",
        {"winner": "b", "idempotency_key": "key-000001"},
    )
    assert response.status_code == 200
    reveal = response.json()["reveal"]
    assert [r["slot"] for r in reveal] == [0, 1] and all(r["model"] in CONTESTANTS for r in reveal)
    judgment = Judgment.objects.get(match__public_id=battle["id"])
    assert judgment.winner == "b" and judgment.presentation == "0,1"
    assert judgment.shown_at <= judgment.voted_at
    assert _counts() == before + 1


def test_a_double_submit_is_refused_and_changes_nothing(client, arena):
    battle = _battle(client)
    url = f"/api/battles/{battle['id']}/vote"
    assert _post(client, url, {"winner": "a", "idempotency_key": "key-000002"}).status_code == 200
    after_first = (_counts(), Judgment.objects.count())
    again = _post(client, url, {"winner": "a", "idempotency_key": "key-000002"})
    assert again.status_code == 409 and "already recorded" in again.json()["detail"]
    replay = _post(client, url, {"winner": "b", "idempotency_key": "key-000003"})
    assert replay.status_code == 409 and "already voted" in replay.json()["detail"]
    assert (_counts(), Judgment.objects.count()) == after_first


def test_nobody_votes_on_someone_elses_battle(client, arena):
    battle = _battle(client)
    other = Client()
    _battle(other)  # the other browser has a voter session of its own
    response = _post(
        other, f"/api/battles/{battle['id']}/vote", {"winner": "a", "idempotency_key": "key-000004"}
    )
    assert response.status_code == 403
    anonymous = _post(
        Client(),
        f"/api/battles/{battle['id']}/vote",
        {"winner": "a", "idempotency_key": "key-000005"},
    )
    assert anonymous.status_code == 403
    assert not Judgment.objects.filter(match__public_id=battle["id"]).exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"winner": "left", "idempotency_key": "key-000006"}, 400),
        ({"ranking": [1, 2], "idempotency_key": "key-000006"}, 400),
        ({"best": 2, "idempotency_key": "key-000006"}, 400),
        ({"winner": "a", "best": 0, "idempotency_key": "key-000006"}, 400),
        ({"idempotency_key": "key-000006"}, 400),
        ({"winner": "a", "idempotency_key": "short"}, 400),
        ({"winner": "a"}, 422),
        ({"winner": "a", "idempotency_key": "key-000006", "extra": 1}, 422),
        ({"best": True, "idempotency_key": "key-000006"}, 422),
        ({"winner": 1, "idempotency_key": "key-000006"}, 422),
    ],
)
def test_malformed_votes_get_a_clear_4xx(client, arena, body, status):
    battle = _battle(client)
    before = (_counts(), Judgment.objects.count())
    response = _post(client, f"/api/battles/{battle['id']}/vote", body)
    assert response.status_code == status
    assert response.json()["detail"]
    assert (_counts(), Judgment.objects.count()) == before


def test_unknown_and_expired_battles(client, arena, settings):
    battle = _battle(client)
    assert (
        _post(
            client,
            "/api/battles/00000000-0000-0000-0000-000000000000/vote",
            {"winner": "a", "idempotency_key": "key-000007"},
        ).status_code
        == 404
    )
    assert client.post(
        "/api/battles/not-a-uuid/vote", "{}", content_type="application/json"
    ).status_code in (404, 422)
    Match.objects.filter(public_id=battle["id"]).update(
        created_at=Match.objects.get(public_id=battle["id"]).created_at - timedelta(hours=2)
    )
    response = _post(
        client,
        f"/api/battles/{battle['id']}/vote",
        {"winner": "a", "idempotency_key": "key-000008"},
    )
    assert (
        response.status_code == 410
        and not Judgment.objects.filter(match__public_id=battle["id"]).exists()
    )


def test_a_body_that_is_not_json(client, arena):
    battle = _battle(client)
    response = client.post(
        f"/api/battles/{battle['id']}/vote", "winner=a", content_type="application/json"
    )
    assert (
        400 <= response.status_code < 500
        and not Judgment.objects.filter(match__public_id=battle["id"]).exists()
    )


def test_votes_are_rate_limited_per_session(client, arena, settings):
    settings.ARENA_VOTE_RATE_SESSION = "2/60"
    statuses = []
    for i in range(3):
        battle = _battle(client)
        statuses.append(
            _post(
                client,
                f"/api/battles/{battle['id']}/vote",
                {"winner": "a", "idempotency_key": f"key-rate-{i}"},
            ).status_code
        )
    assert statuses == [200, 200, 429]
    assert Judgment.objects.filter(match__origin="arena").count() == 2


def test_battles_are_rate_limited_per_ip(client, arena, settings):
    settings.ARENA_BATTLE_RATE_IP = "2/60"
    assert [_post(Client(), "/api/battles", {}).status_code for _ in range(3)] == [201, 201, 429]


def test_posts_need_the_csrf_token():
    seed()
    strict = Client(enforce_csrf_checks=True)
    page = strict.get("/battle/")
    token = page.cookies["csrftoken"].value
    assert _post(strict, "/api/battles", {}).status_code == 403
    response = strict.post(
        "/api/battles", "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_a_k_wise_battle_takes_a_ranking_or_the_best(client, arena):
    battle = _battle(client, k=4)
    assert len(battle["answers"]) == 4
    assert (
        _post(
            client,
            f"/api/battles/{battle['id']}/vote",
            {"winner": "a", "idempotency_key": "key-000009"},
        ).status_code
        == 400
    )
    assert (
        _post(
            client,
            f"/api/battles/{battle['id']}/vote",
            {"ranking": [2, 3, 4, 5], "idempotency_key": "key-000009"},
        ).status_code
        == 400
    )
    response = _post(
        client,
        f"/api/battles/{battle['id']}/vote",
        {"ranking": [2, 1, 2, 3], "idempotency_key": "key-000009"},
    )
    assert response.status_code == 200 and len(response.json()["reveal"]) == 4
    assert Judgment.objects.get(match__public_id=battle["id"]).ranking == [2, 1, 2, 3]
    battle = _battle(client, k=3)
    assert (
        _post(
            client,
            f"/api/battles/{battle['id']}/vote",
            {"best": 2, "idempotency_key": "key-000010"},
        ).status_code
        == 200
    )
    assert Judgment.objects.get(match__public_id=battle["id"]).ranking == [2, 2, 1]


def test_bad_battle_requests(client, arena):
    assert _post(client, "/api/battles", {"k": 7}).status_code == 400
    assert _post(client, "/api/battles", {"prompt_set": "nope"}).status_code == 404


def test_draw_probabilities_are_exact():
    rng = np.random.default_rng(1)
    ids = np.array([10, 11, 12, 13])
    pairs = np.array([[10, 11], [10, 12], [11, 12], [12, 13]])
    known = Standing(votes={10: 0, 11: 1000, 12: 1000, 13: 1000}, strength={}, variance={})
    draws = {}
    for _ in range(4000):
        group, p = draw_group(ids, pairs, 2, known, "boost-new", rng)
        draws.setdefault(tuple(group), [0, p])[0] += 1
    # boost 3 for contestant 10: weights 3, 3, 1, 1 over the four pairs
    expected = {(10, 11): 3 / 8, (10, 12): 3 / 8, (11, 12): 1 / 8, (12, 13): 1 / 8}
    for pair, (n, p) in draws.items():
        assert p == pytest.approx(expected[pair])
        assert abs(n / 4000 - p) < 4 * np.sqrt(p * (1 - p) / 4000)
    group, p = draw_group(ids, None, 3, known, "uniform", rng)
    assert len(set(group)) == 3 and p == pytest.approx(1 / 4)


def test_info_gain_prefers_close_uncertain_pairs():
    ids = np.array([1, 2, 3])
    pairs = np.array([[1, 2], [1, 3], [2, 3]])
    # 1 and 2 are close and uncertain; 3 is far below both and well known.
    known = Standing(
        votes={1: 50, 2: 50, 3: 5000},
        strength={1: 0.0, 2: 0.1, 3: -4.0},
        variance={1: 1.0, 2: 1.0, 3: 0.01},
    )
    rng = np.random.default_rng(0)
    draws = [tuple(draw_group(ids, pairs, 2, known, "info-gain", rng)[0]) for _ in range(600)]
    assert draws.count((1, 2)) > 300
    assert draws.count((1, 3)) > 0  # the floor keeps every pair possible


def test_an_unknown_policy_is_refused(client, arena, settings):
    settings.ARENA_MATCHMAKING_POLICY = "telepathy"
    response = _post(client, "/api/battles", {})
    assert response.status_code == 400 and response.json()["field"] == "policy"
