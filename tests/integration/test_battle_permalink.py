"""A battle's permalink (/battles/<public id>/): nothing before the vote, for anyone; after
it the prompt, the answers, the vote, and the contestants only as ARENA_REVEAL reveals them
to the voter; a private typed prompt only to its author."""

import pytest
from django.test import Client
from django.urls import reverse

from arena.live_answers import save_live_answer
from arena.models import Contestant, Match
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


def _vote(client, battle_id, **choice):
    body = {"idempotency_key": "key-0001", **(choice or {"winner": "b"})}
    return post_json(client, f"/api/battles/{battle_id}/vote", body)


def _url(battle_id):
    return reverse("battle_permalink", args=[battle_id])


def _names_in(html):
    return [name for name in CONTESTANTS if name in html]


def test_it_is_a_404_before_the_vote_for_everyone(client, arena):
    battle = _battle(client)
    assert client.get(_url(battle["id"])).status_code == 404  # its own voter too
    assert Client().get(_url(battle["id"])).status_code == 404
    assert client.get(_url("6f1c7b8e-0000-4000-8000-000000000000")).status_code == 404
    assert client.get("/battles/not-a-uuid/").status_code == 404


def test_after_the_vote_it_shows_the_battle_without_names_when_withheld(client, arena, settings):
    settings.ARENA_REVEAL = "fresh"  # stored answers: identities withheld
    battle = _battle(client)
    voted = _vote(client, battle["id"])
    assert voted.status_code == 200 and voted.json()["reveal"] == []
    assert voted.json()["permalink"] == _url(battle["id"])
    for viewer in (client, Client()):
        response = viewer.get(_url(battle["id"]))
        assert response.status_code == 200
        html = response.content.decode()
        assert battle["prompt"] in html
        assert all(a["text"].split("\n")[0] in html for a in battle["answers"])
        assert "The voter preferred answer B." in html
        assert 'id="permalink-withheld"' in html
        assert _names_in(html) == []
        assert "private" in response["Cache-Control"]


def test_it_reveals_what_the_voter_was_shown(client, arena, settings):
    settings.ARENA_REVEAL = "always"
    battle = _battle(client)
    revealed = _vote(client, battle["id"]).json()["reveal"]
    html = Client().get(_url(battle["id"])).content.decode()
    names = [r["model"] for r in revealed]
    assert sorted(_names_in(html)) == sorted(names)
    assert f"The voter preferred {names[1]}." in html
    # The reveal follows the setting now: withdrawn, the page withholds it too.
    settings.ARENA_REVEAL = "never"
    assert _names_in(Client().get(_url(battle["id"])).content.decode()) == []


def test_a_k_wise_ranking_is_shown(client, arena, settings):
    battle = _battle(client, k=3)
    assert _vote(client, battle["id"], ranking=[2, 1, 3]).status_code == 200
    html = client.get(_url(battle["id"])).content.decode()
    assert "The voter ranked: 1. answer B, 2. answer A, 3. answer C." in html


def _typed_battle(client):
    for name in ("alpha", "beta"):
        Contestant.objects.create(name=name, base_url="http://127.0.0.1:9/v1", api_model=name)
    battle = _battle(client, prompt_text="My private question about my health")
    for slot in (0, 1):  # the answers as the live stream stores them
        save_live_answer(battle["id"], slot, f"Live answer {slot}", 5, 7)
    return battle


def test_a_private_typed_prompt_is_shown_to_its_author_only(client, arena):
    battle = _typed_battle(client)
    assert _vote(client, battle["id"]).status_code == 200
    mine = client.get(_url(battle["id"])).content.decode()
    assert "My private question" in mine and "Live answer 0" in mine
    theirs = Client().get(_url(battle["id"])).content.decode()
    assert "My private question" not in theirs and "Live answer" not in theirs
    assert 'id="permalink-private"' in theirs
    # Fresh answers are revealed (ARENA_REVEAL=fresh): the names, not the texts.
    assert "alpha" in theirs and "beta" in theirs


def test_a_side_by_side_battle_keeps_its_names(client, arena, settings):
    settings.ARENA_REVEAL = "always"
    battle = _battle(client, models=[CONTESTANTS[1], CONTESTANTS[3]])
    _vote(client, battle["id"], winner="a")
    settings.ARENA_REVEAL = "fresh"
    html = Client().get(_url(battle["id"])).content.decode()
    assert f"The voter preferred {CONTESTANTS[1]}." in html and "counts on no leaderboard" in html


def test_a_run_or_imported_match_has_no_permalink(client, arena):
    imported = Match.objects.filter(origin=Match.Origin.IMPORT).first()
    assert imported is not None and imported.judgments.exists()
    assert client.get(_url(imported.public_id)).status_code == 404
