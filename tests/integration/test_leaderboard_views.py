"""Leaderboard page, JSON and CSV endpoints."""

import pytest

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import LeaderboardSnapshot
from arena.tasks import refit_leaderboard
from tests.factories import pair_results

pytestmark = pytest.mark.django_db


@pytest.fixture
def first_read(client, django_capture_on_commit_callbacks):
    """The first read of a board: empty and pending, and it fits nothing itself; then the
    refit it asked for runs (what the worker does with the queued task)."""

    def read(params) -> dict:
        # The test's transaction never commits: run what the request queued on commit.
        with django_capture_on_commit_callbacks(execute=True):
            board = client.get("/api/leaderboard", params).json()
        assert board["pending"] and board["rows"] == [] and board["created_at"] is None
        assert not LeaderboardSnapshot.objects.filter(scope=board["scope"]).exists()
        assert refit_leaderboard(board["scope"]) is not None
        return board

    return read


@pytest.fixture
def board_data():
    # alpha beats beta 30:10, beta beats gamma 20:10, alpha beats gamma 15:5, 4 ties each
    records = pair_results(
        [("alpha", "beta", 30, 10, 4), ("beta", "gamma", 20, 10, 4), ("alpha", "gamma", 15, 5, 4)]
    )
    records.append(
        JudgmentRecord(
            match_id="j1",
            contestants=("alpha", "beta"),
            winner="b",
            judge="judgy",
            presentation=(0, 1),
        )
    )
    records.append(
        JudgmentRecord(
            match_id="j1",
            contestants=("alpha", "beta"),
            winner="b",
            judge="judgy",
            presentation=(1, 0),
        )
    )
    records.append(
        JudgmentRecord(match_id="j2", contestants=("beta", "gamma"), winner="a", judge="judgy")
    )
    import_records(records, prompt_set="toy", source="test")


def test_it_serves_the_json_leaderboard(client, board_data, first_read):
    first_read({"set": "toy", "by": "humans"})
    response = client.get("/api/leaderboard", {"set": "toy", "by": "humans"})
    assert response.status_code == 200
    board = response.json()
    assert board["n_votes"] == 30 + 10 + 4 + 20 + 10 + 4 + 15 + 5 + 4
    assert [row["model"] for row in board["rows"]] == ["alpha", "beta", "gamma"]
    alpha, beta, gamma = board["rows"]
    assert alpha["rating"] > beta["rating"] > gamma["rating"]
    assert alpha["votes"] == 30 + 10 + 4 + 15 + 5 + 4
    assert alpha["ci_lower"] <= alpha["rating"] <= alpha["ci_upper"]
    # Ratings are centred on 1000 (mean strength zero).
    assert abs(sum(r["rating"] for r in board["rows"]) / 3 - 1000) < 1e-6 + 0.02


def test_it_keeps_judges_apart_from_humans(client, board_data, first_read):
    first_read({"set": "toy", "by": "judges"})
    board = client.get("/api/leaderboard", {"set": "toy", "by": "judges"}).json()
    assert board["n_votes"] == 3
    assert LeaderboardSnapshot.objects.filter(scope__contains="by=judges").count() == 1


def test_it_serves_csv(client, board_data, first_read):
    first_read({"set": "toy"})
    response = client.get("/api/leaderboard.csv", {"set": "toy"})
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    lines = response.content.decode().strip().splitlines()
    assert lines[0] == "rank_ub,model,rating,ci_lower,ci_upper,votes,win_rate"
    assert lines[1].split(",")[1] == "alpha" and len(lines) == 4


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"set": "nope"}, 404, "set"),
        ({"set": "toy", "by": "robots"}, 400, "by"),
        ({"set": "toy", "style": "maybe"}, 400, "style"),
        ({}, 422, None),
    ],
)
def test_it_rejects_bad_scopes(client, board_data, params, status, field):
    response = client.get("/api/leaderboard", params)
    assert response.status_code == status
    if field:
        assert response.json()["field"] == field and response.json()["detail"]


def test_the_page_shows_the_table(client, board_data, first_read):
    pending = client.get("/", {"set": "toy"}).content.decode()
    assert "being fitted" in pending and 'data-pending="1"' in pending and "alpha" not in pending
    first_read({"set": "toy"})
    response = client.get("/", {"set": "toy"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "alpha" in html and "gamma" in html and "Rank (UB)" in html
    assert client.get("/", {"set": "toy", "by": "judges"}).status_code == 200
    assert client.get("/", {"set": "nope"}).status_code == 404


def test_the_page_says_when_there_is_no_data(client):
    response = client.get("/")
    assert response.status_code == 200 and b"No comparisons yet" in response.content


def test_prompt_sets_lists_boards(client, board_data):
    sets = client.get("/api/prompt-sets").json()
    assert sets[0]["slug"] == "toy"
    assert [b["by"] for b in sets[0]["boards"]][:2] == ["humans", "judges"]


def test_judge_boards_resample_both_orders_of_a_comparison_together(board_data):
    from arena.boards import BoardScope, scope_counts

    counts = scope_counts(BoardScope("toy", "judges"))
    assert counts.total_votes == 3
    assert counts.units.n_units == 2  # match j1 (two orders) + match j2


def test_human_boards_read_the_running_counts(board_data):
    from arena.boards import BoardScope, rebuild_pair_counts, scope_counts
    from arena.models import PairOutcomeCount, PromptSet

    before = scope_counts(BoardScope("toy", "humans"))
    assert PairOutcomeCount.objects.filter(source="human").count() == 9
    rebuild_pair_counts(PromptSet.objects.get(slug="toy"))
    after = scope_counts(BoardScope("toy", "humans"))
    assert before.total_votes == after.total_votes == 102
    assert before.models == after.models == ("alpha", "beta", "gamma")


def test_a_prompt_set_can_pin_a_models_rating(client, board_data, first_read):
    from arena.models import PromptSet

    PromptSet.objects.filter(slug="toy").update(rating_anchor="beta=1200")
    first_read({"set": "toy"})
    board = client.get("/api/leaderboard", {"set": "toy"}).json()
    ratings = {r["model"]: r["rating"] for r in board["rows"]}
    assert ratings["beta"] == pytest.approx(1200) and ratings["alpha"] > 1200 > ratings["gamma"]
    first_read({"set": "toy", "by": "judges"})
    judges = client.get("/api/leaderboard", {"set": "toy", "by": "judges"}).json()
    assert judges[
        "rows"
    ]  # the judge board has beta too; a board without the model is left unanchored


def test_a_malformed_anchor_is_refused_by_validation():
    from django.core.exceptions import ValidationError

    from arena.models import PromptSet

    with pytest.raises(ValidationError, match="rating_anchor"):
        PromptSet(slug="x", name="x", rating_anchor="beta").full_clean()
