"""Model pages (/models/<name>/) and their JSON and CSV (/api/model, /api/model.csv)."""

import csv
import io
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from arena.boards import FLAGGED_SOURCE, NAMED_SOURCE, BoardScope
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import BoardState, Contestant, Judge, PairOutcomeCount, PromptSet
from arena.services import refresh_leaderboard

pytestmark = pytest.mark.django_db

ODD = "org/model:v1.2"  # a name with a slash and a colon
SCRIPT = '<script>alert("x")</script> & co'
SPACED = "two words 100%"
RIVALS = ["plain-7b", ODD, SCRIPT, SPACED]


def _votes(pairs, *, judge=None, category="chat"):
    """Records: ``(a, b, winner, weight)`` votes of one crowd (or one LLM judge)."""
    return [
        JudgmentRecord(
            match_id=f"{judge or 'h'}-{a}-{b}-{winner}-{category}",
            contestants=(a, b),
            winner=winner,
            weight=weight,
            voter=None if judge else "crowd",
            judge=judge,
            category=category,
        )
        for a, b, winner, weight in pairs
    ]


@pytest.fixture
def board():
    """Four models on one set: human votes in two categories, one LLM judge's verdicts; the
    human board, one category board and the judge's board fitted."""
    plain, odd, script, spaced = RIVALS
    human = [
        (plain, odd, "a", 6),
        (plain, odd, "b", 2),
        (plain, odd, "tie", 2),
        (plain, script, "a", 3),
        (script, plain, "bothbad", 1),
        (odd, spaced, "a", 4),
        (spaced, script, "b", 5),
    ]
    import_records(
        [
            *_votes(human),
            *_votes([(plain, spaced, "b", 3)], category="code"),
            *_votes([(plain, odd, "a", 1), (odd, spaced, "b", 1)], judge="gpt-judge"),
        ],
        prompt_set="board",
        source="test",
    )
    Contestant.objects.filter(name=plain).update(
        description="A small model.\nSecond line.",
        organization="Plain Labs <b>",
        license="Apache-2.0",
        link="https://example.org/plain",
    )
    judge = Judge.objects.get(name="gpt-judge")
    for by, category in (
        ("humans", ""),
        ("humans", ""),
        ("humans", "chat"),
        (f"judge:{judge.pk}", ""),
    ):
        refresh_leaderboard(BoardScope("board", by, category), bootstrap=20)
    return judge


def _page(client, name):
    return client.get(reverse("model_page", args=[name]))


def test_it_shows_a_models_page(client, board):
    response = _page(client, "plain-7b")
    assert response.status_code == 200
    html = response.content.decode()
    assert "A small model.\nSecond line." in html
    assert "Plain Labs &lt;b&gt;" in html and "Apache-2.0" in html
    assert 'href="https://example.org/plain"' in html
    profile = response.context["profile"]
    boards = {b["by"]: b for b in profile["boards"]}
    assert set(boards) == {"humans", f"judge:{board.pk}"}
    assert boards[f"judge:{board.pk}"]["label"] == "Judge: gpt-judge"
    assert len(boards["humans"]["history"]) == 2  # two fits of the human board
    assert boards["humans"]["rating"] == boards["humans"]["history"][-1]["rating"]
    assert [(c["category"], c["pending"]) for c in profile["categories"]] == [
        ("chat", False),
        ("code", True),
    ]


def test_a_category_board_never_fitted_is_asked_for(
    client, board, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _page(client, "plain-7b")
    assert BoardState.objects.filter(scope=BoardScope("board", "humans", "code").key).exists()


def test_head_to_head_counts_public_human_votes_only(client, board):
    plain, odd = Contestant.objects.get(name="plain-7b"), Contestant.objects.get(name=ODD)
    for source in (FLAGGED_SOURCE, NAMED_SOURCE, "judge:999"):  # never on the public table
        PairOutcomeCount.objects.bump(
            prompt_set_id=PromptSet.objects.get(slug="board").pk,
            source=source,
            category="chat",
            contestant_a_id=plain.pk,
            contestant_b_id=odd.pk,
            winner="b",
            a_first=True,
            count=1000,
        )
    rivals = {
        r["opponent"]: r
        for r in client.get("/api/model", {"name": "plain-7b"}).json()["head_to_head"]
    }
    # 6 wins, 2 losses, 2 ties as slot a; the judge's verdict is not a human vote.
    assert rivals[ODD] == {
        **rivals[ODD],
        "votes": 10,
        "wins": 6,
        "losses": 2,
        "ties": 2,
        "both_bad": 0,
        "win_rate": 0.7,
    }
    # As slot b: 3 losses of the script model are wins; "both bad" counts half.
    assert (rivals[SCRIPT]["wins"], rivals[SCRIPT]["both_bad"], rivals[SCRIPT]["win_rate"]) == (
        3,
        1,
        round(3.5 / 4, 4),
    )
    assert rivals[SPACED]["losses"] == 3 and rivals[SPACED]["linked"] is True


@pytest.mark.parametrize("name", [ODD, SCRIPT, SPACED])
def test_any_name_has_a_safe_url_and_escaped_page(client, board, name):
    url = reverse("model_page", args=[name])
    assert "<" not in url and " " not in url
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.content.decode()
    assert "<script>alert" not in html
    assert response.context["info"]["name"] == name
    # The leaderboard's script builds the same link with encodeURIComponent per "/" part.
    script_url = "/models/" + "/".join(quote(part, safe="-_.!~*'()") for part in name.split("/"))
    assert client.get(script_url + "/").context["info"]["name"] == name


def test_leaderboard_rows_link_to_model_pages(client, board):
    html = client.get("/", {"set": "board", "by": "humans"}).content.decode()
    for name in RIVALS:
        assert f'href="{escape(reverse("model_page", args=[name]))}"' in html
    assert "<script>alert" not in html


@pytest.mark.parametrize("name", ["nobody", "plain-7b/extra", "", "gpt-judge"])
def test_a_name_without_a_page_is_a_404(client, board, name):
    response = client.get("/models/" + name + "/")
    assert response.status_code == 404
    assert client.get("/api/model", {"name": name}).status_code == 404


def test_inactive_and_anonymous_contestants_have_no_page(client, board):
    Contestant.objects.filter(name="plain-7b").update(is_active=False)
    Contestant.objects.filter(name=ODD).update(kind=Contestant.Kind.ANONYMOUS)
    assert _page(client, "plain-7b").status_code == 404
    assert _page(client, ODD).status_code == 404
    rivals = client.get("/api/model", {"name": SPACED}).json()["head_to_head"]
    assert {r["opponent"]: r["linked"] for r in rivals} == {"plain-7b": False, SCRIPT: True}


def test_a_link_that_is_not_a_web_address_is_not_shown(client, board):
    Contestant.objects.filter(name="plain-7b").update(link="javascript:alert(1)")
    response = _page(client, "plain-7b")
    assert "javascript:" not in response.content.decode()
    assert response.context["info"]["link"] == ""


def test_the_json_is_the_pages_data(client, board):
    page = _page(client, ODD).context["profile"]
    response = client.get("/api/model", {"name": ODD})
    assert response.status_code == 200
    assert response.json()["model"]["name"] == ODD
    assert [b["rating"] for b in response.json()["boards"]] == [b["rating"] for b in page["boards"]]


def test_csv_tables(client, board):
    response = client.get("/api/model.csv", {"name": "plain-7b"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["opponent"] for r in rows} == {ODD, SCRIPT, SPACED}
    history = client.get("/api/model.csv", {"name": "plain-7b", "table": "history"})
    assert len(list(csv.DictReader(io.StringIO(history.content.decode())))) == 3  # 2 human, 1 judge
    bad = client.get("/api/model.csv", {"name": "plain-7b", "table": "nope"})
    assert bad.status_code == 400 and bad.json()["field"] == "table"
    assert client.get("/api/model.csv", {"table": "boards"}).status_code == 422


def test_queries_do_not_grow_with_rivals_or_votes(client, board):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert _page(client, "plain-7b").status_code == 200
        return len(queries)

    before = count()
    more = [(f"extra-{i}", "plain-7b", "a", 2) for i in range(6)]
    import_records(_votes(more), prompt_set="board", source="more")
    refresh_leaderboard(BoardScope("board", "humans"), bootstrap=20)
    refresh_leaderboard(BoardScope("board", "humans", "chat"), bootstrap=20)
    after = count()
    assert len(client.get("/api/model", {"name": "plain-7b"}).json()["head_to_head"]) == 9
    assert after == before
