"""Side by side: two models picked by name, their answers named, votes counted apart.

Served and voted through the battles' own endpoints (POST /api/battles with ``models``,
POST /api/battles/<id>/vote): the same checks, rate limits and voter rules as anonymous
battles. A side-by-side vote goes to the ``"human:named"`` cells, which no board reads.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from arena.boards import (
    HUMAN_SOURCE,
    NAMED_SOURCE,
    BoardScope,
    move_voter_counts,
    rebuild_pair_counts,
    scope_counts,
)
from arena.models import (
    BoardState,
    Contestant,
    Judgment,
    Match,
    PairOutcomeCount,
    Prompt,
    PromptSet,
    Voter,
)
from arena.services import refresh_leaderboard
from judges.audit_reports.queries import pairwise_judgments
from tests.e2e.seed import CONTESTANTS, seed
from tests.factories import post_json

pytestmark = pytest.mark.django_db

LEFT, RIGHT = CONTESTANTS[0], CONTESTANTS[2]


@pytest.fixture
def arena():
    seed()
    return PromptSet.objects.get(slug="e2e-arena")


@pytest.fixture
def named(settings):
    """Stored answers may be named: ARENA_REVEAL=always."""
    settings.ARENA_REVEAL = "always"


def _serve(client, **body):
    return post_json(client, "/api/battles", {"models": [LEFT, RIGHT], **body})


def _vote(client, battle_id, winner="a", key="key-0001"):
    return post_json(
        client, f"/api/battles/{battle_id}/vote", {"winner": winner, "idempotency_key": key}
    )


def _human_cells():
    return sorted(
        PairOutcomeCount.objects.filter(source=HUMAN_SOURCE).values_list(
            "contestant_a_id", "contestant_b_id", "winner", "count"
        )
    )


def test_it_serves_both_answers_named_in_the_order_picked(client, arena, named):
    response = _serve(client)
    assert response.status_code == 201, response.content
    battle = response.json()
    assert battle["named"] is True
    assert [a["model"] for a in battle["answers"]] == [LEFT, RIGHT]
    assert all(a["text"] for a in battle["answers"])
    match = Match.objects.get(public_id=battle["id"])
    assert match.origin == Match.Origin.SIDE_BY_SIDE and match.prompt.visibility == "public"
    assert list(match.slots.values_list("contestant__name", flat=True)) == [LEFT, RIGHT]


def test_anonymous_battles_stay_anonymous(client, arena, named):
    battle = post_json(client, "/api/battles", {}).json()
    assert battle["named"] is False
    assert all(a["model"] is None for a in battle["answers"])


def test_a_named_vote_never_reaches_the_anonymous_board(
    client, arena, named, django_capture_on_commit_callbacks
):
    human = BoardScope("e2e-arena", "humans")
    everyone = BoardScope("e2e-arena", "all")
    before_cells, before_counts = _human_cells(), scope_counts(human)
    before_all = [scope_counts(everyone, raw=raw).votes.sum() for raw in (False, True)]
    before_board = refresh_leaderboard(human, bootstrap=10)
    battle = _serve(client).json()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        answer = _vote(client, battle["id"])
    assert answer.status_code == 200, answer.content
    assert [r["model"] for r in answer.json()["reveal"]] == [LEFT, RIGHT]
    assert callbacks == []  # no refit asked for: no board reads these votes
    assert not BoardState.objects.exists()
    named_cell = PairOutcomeCount.objects.get(source=NAMED_SOURCE)
    assert (named_cell.contestant_a.name, named_cell.winner, named_cell.count) == (LEFT, "a", 1)
    assert _human_cells() == before_cells
    after_counts = scope_counts(human)
    assert after_counts.votes.sum() == before_counts.votes.sum()
    assert scope_counts(human, exclude_flagged=True).votes.sum() == before_counts.votes.sum()
    assert scope_counts(human, raw=True).votes.sum() == before_counts.votes.sum()
    assert [scope_counts(everyone, raw=raw).votes.sum() for raw in (False, True)] == before_all
    assert refresh_leaderboard(human, bootstrap=10).n_votes == before_board.n_votes
    assert not pairwise_judgments("e2e-arena").filter(match__public_id=battle["id"]).exists()
    # Rebuilt from the raw judgments, the named vote lands in its own cell again.
    rebuild_pair_counts(arena)
    assert _human_cells() == before_cells
    assert PairOutcomeCount.objects.get(source=NAMED_SOURCE).count == 1


def test_flagging_a_voter_leaves_named_votes_where_they_are(client, arena, named):
    battle = _serve(client).json()
    assert _vote(client, battle["id"]).status_code == 200
    voter = Match.objects.get(public_id=battle["id"]).owner
    before = _human_cells()
    moved, _ = move_voter_counts([voter.pk], flagged=True)
    assert moved == 0  # its only vote is a named one
    assert _human_cells() == before
    assert PairOutcomeCount.objects.get(source=NAMED_SOURCE).count == 1


def test_only_its_voter_may_vote_once(client, arena, named):
    battle = _serve(client).json()
    before = Judgment.objects.count()
    assert _vote(Client(), battle["id"]).status_code == 403  # no session: someone else
    other = Client()
    post_json(other, "/api/battles", {})  # a session of its own
    assert _vote(other, battle["id"]).status_code == 403
    assert _vote(client, battle["id"]).status_code == 200
    assert _vote(client, battle["id"], key="key-0002").status_code == 409
    assert Judgment.objects.count() == before + 1


def test_named_battles_and_votes_are_rate_limited(client, arena, named, settings, one_rate_window):
    settings.ARENA_BATTLE_RATE_IP = "2/60"
    assert [_serve(Client()).status_code for _ in range(3)] == [201, 201, 429]
    settings.ARENA_BATTLE_RATE_IP = "100/60"
    settings.ARENA_VOTE_RATE_SESSION = "1/60"
    first, second = _serve(client).json(), _serve(client).json()
    assert _vote(client, first["id"]).status_code == 200
    refused = _vote(client, second["id"], key="key-0002")
    assert refused.status_code == 429 and refused.headers["Retry-After"]


def test_the_voter_gate_applies(client, arena, named, settings):
    settings.ARENA_VOTER_GATE = "login"
    voters, matches = Voter.objects.count(), Match.objects.count()
    assert _serve(client).status_code == 403
    assert (Voter.objects.count(), Match.objects.count()) == (voters, matches)


def test_stored_answers_are_named_only_where_the_reveal_would_name_them(client, arena, settings):
    settings.ARENA_REVEAL = "fresh"
    voters, matches = Voter.objects.count(), Match.objects.count()
    refused = _serve(client)
    assert refused.status_code == 403 and refused.json()["field"] == "prompt_id"
    assert (Voter.objects.count(), Match.objects.count()) == (voters, matches)  # nothing written
    settings.ARENA_REVEAL = "trusted"
    assert _serve(client).status_code == 403  # a new session has no track record
    client.force_login(get_user_model().objects.create_user("ada"))
    assert _serve(client).status_code == 201


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"models": [LEFT]}, 400, "models"),
        ({"models": [LEFT, LEFT]}, 400, "models"),
        ({"models": [LEFT, RIGHT, CONTESTANTS[1]]}, 400, "models"),
        ({"models": [LEFT, "nobody"]}, 404, "models"),
        ({"models": [LEFT, RIGHT], "k": 3}, 400, "models"),
        ({"models": [LEFT, RIGHT], "prompt_id": 10**9}, 404, "prompt_id"),
        ({"prompt_id": 1}, 400, "prompt_id"),
        ({"models": [LEFT, RIGHT], "prompt_text": "hi"}, 400, "models"),  # no endpoints
        ({"models": "owl-7b"}, 422, None),
    ],
)
def test_bad_side_by_side_requests_are_refused(client, arena, named, body, status, field):
    matches = Match.objects.count()
    response = post_json(client, "/api/battles", body)
    assert response.status_code == status, response.content
    if field:
        assert response.json()["field"] == field
    assert Match.objects.count() == matches


def test_an_inactive_model_cannot_be_picked(client, arena, named):
    Contestant.objects.filter(name=RIGHT).update(is_active=False)
    assert _serve(client).status_code == 404


def test_a_picked_prompt_is_served(client, arena, named):
    prompts = client.get(
        "/api/side-by-side/prompts", {"set": "e2e-arena", "model_a": LEFT, "model_b": RIGHT}
    )
    assert prompts.status_code == 200 and len(prompts.json()) == 6
    chosen = prompts.json()[3]
    battle = _serve(client, prompt_id=chosen["id"]).json()
    assert battle["prompt"] == Prompt.objects.get(pk=chosen["id"]).text
    missing = client.get(
        "/api/side-by-side/prompts", {"set": "nope", "model_a": LEFT, "model_b": RIGHT}
    )
    assert missing.status_code == 404


def test_a_typed_prompt_is_answered_live_by_the_two_picked(client, arena, settings):
    settings.ARENA_REVEAL = "fresh"  # answers written for this battle may be named
    for name in ("alpha", "beta"):
        Contestant.objects.create(name=name, base_url="http://127.0.0.1:9/v1", api_model=name)
    response = post_json(
        client, "/api/battles", {"models": ["beta", "alpha"], "prompt_text": "Why is the sky blue?"}
    )
    assert response.status_code == 201, response.content
    battle = response.json()
    assert battle["streaming"] and [a["model"] for a in battle["answers"]] == ["beta", "alpha"]
    prompt = Match.objects.get(public_id=battle["id"]).prompt
    assert prompt.visibility == Prompt.Visibility.PRIVATE and prompt.author is not None
    settings.ARENA_REVEAL = "never"
    refused = post_json(client, "/api/battles", {"models": ["beta", "alpha"], "prompt_text": "x"})
    assert refused.status_code == 403


def test_the_page_offers_what_the_reveal_allows(client, arena, settings):
    settings.ARENA_REVEAL = "fresh"
    page = client.get("/side-by-side/").content.decode()
    assert 'id="sbs-unavailable"' in page  # no live models, stored answers not named
    settings.ARENA_REVEAL = "always"
    page = client.get("/side-by-side/").content.decode()
    assert 'id="sbs-form"' in page and all(f">{name}</option>" in page for name in CONTESTANTS)
