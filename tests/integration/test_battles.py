"""The battle API: serving battles, and drawing their contestants (votes: test_votes.py)."""

import json

import numpy as np
import pytest
from django.test import Client

from arena.battles import Standing, draw_group
from arena.matchmaking import laplace_covariance, pair_weights
from arena.models import Match
from tests.e2e.seed import CONTESTANTS, seed
from tests.factories import post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def arena():
    seed()


def _battle(client, **body):
    response = post_json(client, "/api/battles", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_it_serves_a_battle_without_identities(client, arena):
    battle = _battle(client)
    assert battle["k"] == 2 and [a["slot"] for a in battle["answers"]] == [0, 1]
    assert all(a["text"] for a in battle["answers"]) and battle["prompt"]
    raw = json.dumps(battle)
    assert not any(name in raw for name in CONTESTANTS)
    match = Match.objects.get(public_id=battle["id"])
    assert match.owner is not None and match.origin == "arena" and 0 < match.pair_probability <= 1


def test_battles_are_rate_limited_per_ip(client, arena, settings, one_rate_window):
    settings.ARENA_BATTLE_RATE_IP = "2/60"
    assert [post_json(Client(), "/api/battles", {}).status_code for _ in range(3)] == [
        201,
        201,
        429,
    ]


def test_posts_need_the_csrf_token():
    seed()
    strict = Client(enforce_csrf_checks=True)
    page = strict.get("/battle/")
    token = page.cookies["csrftoken"].value
    assert post_json(strict, "/api/battles", {}).status_code == 403
    response = strict.post(
        "/api/battles", "{}", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_a_k_wise_battle_serves_k_answers(client, arena):
    for k in (3, 4):
        battle = _battle(client, k=k)
        assert battle["k"] == k and [a["slot"] for a in battle["answers"]] == list(range(k))
        assert Match.objects.get(public_id=battle["id"]).slots.count() == k


def test_bad_battle_requests(client, arena):
    assert post_json(client, "/api/battles", {"k": 7}).status_code == 400
    assert post_json(client, "/api/battles", {"prompt_set": "nope"}).status_code == 404


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
    response = post_json(client, "/api/battles", {})
    assert response.status_code == 400 and response.json()["field"] == "policy"


@pytest.mark.parametrize("policy", ["misorder", "thompson", "ucb"])
def test_adaptive_draws_are_exact_and_read_the_board(policy):
    """Issue 16: the default policy ("misorder"), Thompson and K-Sort's UCB, from a board's
    standing."""
    ids = np.array([10, 11, 12, 13])
    pairs = np.array([[10, 11], [10, 12], [11, 12], [12, 13]])
    known = Standing(
        votes={10: 300, 11: 500, 12: 400, 13: 200},
        strength={10: 1.0, 11: 0.9, 12: 0.0, 13: -1.0},
        variance={},
        pair_votes={(10, 11): 200, (10, 12): 100, (11, 12): 300, (12, 13): 200},
    )
    rng = np.random.default_rng(3)
    draws: dict[tuple, list] = {}
    for _ in range(3000):
        group, p = draw_group(ids, pairs, 2, known, policy, rng)
        draws.setdefault(tuple(group), [0, p])[0] += 1
    games = np.zeros((4, 4))
    for (a, b), n in known.pair_votes.items():
        games[a - 10, b - 10] = games[b - 10, a - 10] = n
    s = np.array([1.0, 0.9, 0.0, -1.0])
    expected = pair_weights(
        policy,
        s,
        laplace_covariance(s, games),
        pairs - 10,
        np.zeros(4),
        pair_votes=np.array([200, 100, 300, 200]),
        seed=1400,  # the board's votes
    )
    for k, pair in enumerate(map(tuple, pairs.tolist())):
        n, p = draws.get(pair, [0, expected[k]])
        assert p == pytest.approx(expected[k])
        assert abs(n / 3000 - p) < 4 * np.sqrt(p * (1 - p) / 3000)
