"""Board options: the online Elo and the Swiss standings, fitted beside Bradley-Terry by the
one refit and answered by /api/leaderboard?method=..."""

import io
import math

import numpy as np
import pytest
from django.core.management import call_command

from arena.boards import BoardScope
from arena.importers.formats import parse
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import LeaderboardSnapshot
from arena.ratings.winrate import winrate_leaderboard
from arena.services import refit, request_refit
from tests.alpaca_eval_sim import BASELINE, simulated_items, write_results_folder
from tests.factories import pair_results

pytestmark = pytest.mark.django_db

STRENGTH = {"alpha": 1.0, "beta": 0.2, "gamma": -0.4, "delta": -0.8}


def votes(n=400, seed=0):
    """Single human votes in the order cast, and a judge's verdicts (another board)."""
    rng = np.random.default_rng(seed)
    names = list(STRENGTH)
    records = []
    for t in range(n):
        a, b = rng.choice(names, 2, replace=False)
        p = 1 / (1 + math.exp(STRENGTH[b] - STRENGTH[a]))
        u = rng.random()
        winner = "tie" if u < 0.08 else ("a" if rng.random() < p else "b")
        records.append(JudgmentRecord(f"v{t}", (a, b), winner=winner, voter=f"voter{t % 7}"))
    records.append(JudgmentRecord("j1", ("delta", "alpha"), winner="a", judge="judgy"))
    return records


def reference_elo(records, k=4.0):
    """FastChat's compute_online_elo, written out: every model from 1000, base 10, scale 400."""
    rating = dict.fromkeys(STRENGTH, 1000.0)
    for r in records:
        a, b = r.contestants
        expected = 1 / (1 + 10 ** ((rating[b] - rating[a]) / 400))
        score = {"a": 1.0, "b": 0.0, "tie": 0.5}[r.winner]
        rating[a] += k * (score - expected)
        rating[b] -= k * (score - expected)
    return rating


@pytest.fixture
def fitted(settings):
    settings.ARENA_SWISS_TOURNAMENTS = 500
    settings.ARENA_ELO_K = 8.0
    records = votes()
    import_records(records, prompt_set="toy", source="test")
    snapshot = refit(BoardScope("toy", "humans").key, final=True)
    return records, snapshot


def test_the_refit_stores_elo_and_swiss_with_the_snapshot(fitted):
    records, snapshot = fitted
    assert set(snapshot.options) == {"elo", "swiss"}
    elo = snapshot.options["elo"]
    assert elo["coefficients"] == {"k": 8.0}
    humans = [r for r in records if r.voter]
    expected = reference_elo(humans, k=8.0)
    got = {row["model"]: row["rating"] for row in elo["rows"]}
    assert got == pytest.approx(expected, abs=1e-9)  # the votes replayed in the order cast
    swiss = snapshot.options["swiss"]
    assert swiss["value"] == "score" and swiss["coefficients"]["tournaments"] == 500
    assert [row["model"] for row in swiss["rows"]][0] == "alpha"
    assert sum(row["rating"] for row in swiss["rows"]) == pytest.approx(2 * 2)  # 2 rounds
    assert sum(row["p_first"] for row in swiss["rows"]) == pytest.approx(1)
    # stored again as it was read: one refit, one snapshot
    assert LeaderboardSnapshot.objects.get().options == snapshot.options


def test_the_api_answers_each_method_of_the_same_snapshot(client, fitted):
    _, snapshot = fitted
    query = {"set": "toy", "by": "humans"}
    bt = client.get("/api/leaderboard", query).json()
    assert bt["method"] == "bt" and bt["options"] == ["elo", "swiss"] and bt["value"] == "rating"
    elo = client.get("/api/leaderboard", {**query, "method": "elo"}).json()
    assert elo["method"] == "elo" and elo["coefficients"] == {"k": 8.0}
    assert elo["created_at"] == bt["created_at"] and elo["n_votes"] == bt["n_votes"]
    assert [r["rating"] for r in elo["rows"]] == [
        r["rating"] for r in snapshot.options["elo"]["rows"]
    ]
    swiss = client.get("/api/leaderboard", {**query, "method": "swiss"}).json()
    assert swiss["value"] == "score"
    assert all(r["p_first"] is not None and r["mean_rank"] >= 1 for r in swiss["rows"])
    assert any("Swiss" in w for w in swiss["graph"]["warnings"])
    csv = client.get("/api/leaderboard.csv", {**query, "method": "swiss"}).content.decode()
    assert csv.splitlines()[1].split(",")[1] == "alpha"


def test_a_method_it_does_not_know_is_refused(client, fitted):
    response = client.get("/api/leaderboard", {"set": "toy", "by": "humans", "method": "glicko"})
    assert response.status_code == 422


def test_a_style_controlled_board_has_only_bradley_terry(client, fitted):
    # aggregated rows without stored answers: the style board is empty, with no options
    snapshot = refit(BoardScope("toy", "humans", style_control=True).key, final=True)
    assert snapshot.options == {}
    response = client.get(
        "/api/leaderboard", {"set": "toy", "by": "humans", "style": "1", "method": "swiss"}
    )
    assert response.status_code == 404 and response.json()["field"] == "method"


def test_a_judge_board_replays_the_judges_verdicts_only(fitted):
    snapshot = refit(BoardScope("toy", "judges").key, final=True)
    rows = {r["model"]: r["rating"] for r in snapshot.options["elo"]["rows"]}
    assert set(rows) == {"alpha", "delta"} and rows["delta"] > rows["alpha"]
    everyone = refit(BoardScope("toy", "all").key, final=True)
    assert everyone.options["elo"]["n_votes"] == 401  # the humans' 400 and the judge's one


def test_a_board_not_fitted_yet_is_pending_for_every_method(
    client, django_capture_on_commit_callbacks
):
    import_records(votes(20), prompt_set="toy", source="test")
    with django_capture_on_commit_callbacks(execute=False):
        board = client.get(
            "/api/leaderboard", {"set": "toy", "by": "humans", "method": "swiss"}
        ).json()
    assert board["pending"] and board["rows"] == [] and board["method"] == "swiss"


def test_the_page_offers_the_methods(client, fitted):
    page = client.get("/", {"set": "toy", "by": "humans", "method": "swiss"})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="method"' in html and 'value="swiss" selected' in html
    assert "Expected score" in html and "Mean rank" in html and "method=swiss" in html


def test_votes_queue_one_refit_for_all_methods(django_capture_on_commit_callbacks, fitted):
    # the options ride on the one refit: no second task, no second scope key
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        request_refit([BoardScope("toy", "humans").key])
    assert len(callbacks) == 1


def test_the_pages_other_reads_take_the_same_query(client, fitted):
    query = {"set": "toy", "by": "humans", "method": "swiss"}
    assert client.get("/api/leaderboard/pairs", query).status_code == 200
    assert client.get("/api/leaderboard/history", query).status_code == 200


def test_a_board_of_aggregated_counts_has_no_elo(client, settings):
    settings.ARENA_SWISS_TOURNAMENTS = 100
    import_records(pair_results([("alpha", "beta", 30, 10, 4)]), prompt_set="toy", source="t")
    snapshot = refit(BoardScope("toy", "humans").key, final=True)
    assert snapshot.options["elo"]["rows"] == []
    elo = client.get("/api/leaderboard", {"set": "toy", "method": "elo"}).json()
    assert elo["rows"] == [] and any("one by one" in w for w in elo["graph"]["warnings"])
    assert len(snapshot.options["swiss"]["rows"]) == 2


def test_a_baseline_board_has_alpaca_evals_win_rates_beside_bradley_terry(client, tmp_path):
    """An imported AlpacaEval results folder: the board's win rates against the baseline
    are those of the files (`python -m arena.ratings fit --method winrate`), raw and
    length-controlled, answered by /api/leaderboard?method=winrate and drawn on the page."""
    items = simulated_items(
        {"m-short": (0.3, -0.4), "m-long": (0.0, 0.9), "m-even": (-0.2, 0.0)}, n_instructions=30
    )
    folder = write_results_folder(tmp_path, items)
    call_command("arena_import", "--format", "alpaca-eval", str(folder), stdout=io.StringIO())
    expected = winrate_leaderboard(list(parse("alpaca-eval", folder)), BASELINE).as_dict()
    snapshot = refit(BoardScope("alpaca-eval", "judges").key, final=True)
    option = snapshot.options["winrate"]
    assert option["value"] == "win_rate" and option["coefficients"] == {"baseline": BASELINE}
    got = {row["model"]: row for row in option["rows"]}
    assert set(got) == {BASELINE, "m-short", "m-long", "m-even"}
    for row in expected["rows"]:
        mine = got[row["model"]]
        assert mine["rating"] == pytest.approx(row["win_rate"], abs=1e-9)  # raw: exact
        assert mine["ci_lower"] == pytest.approx(row["ci_lower"], abs=1e-9)
        assert mine["length_controlled_win_rate"] == pytest.approx(
            row["length_controlled_win_rate"], abs=1e-6
        )
        assert mine["lc_standard_error"] == pytest.approx(row["lc_standard_error"], abs=1e-6)
    assert got[BASELINE]["rating"] == 50.0 and got[BASELINE]["length_controlled_win_rate"] == 50.0
    # the long-winded model's win rate shrinks once its length is controlled
    assert got["m-long"]["length_controlled_win_rate"] < got["m-long"]["rating"]
    query = {"set": "alpaca-eval", "by": "judges"}
    bt = client.get("/api/leaderboard", query).json()
    assert "winrate" in bt["options"]
    board = client.get("/api/leaderboard", {**query, "method": "winrate"}).json()
    assert board["method"] == "winrate" and board["value"] == "win_rate"
    assert {r["model"]: r["length_controlled_win_rate"] for r in board["rows"]} == {
        m: r["length_controlled_win_rate"] for m, r in got.items()
    }
    page = client.get("/", {**query, "method": "winrate"}).content.decode()
    assert 'value="winrate" selected' in page and "LC win rate" in page
    assert f"against {BASELINE}" in page


def test_a_board_without_a_baseline_has_no_win_rates(client, fitted):
    _, snapshot = fitted
    assert "winrate" not in snapshot.options  # four models, none in every comparison
    response = client.get("/api/leaderboard", {"set": "toy", "by": "humans", "method": "winrate"})
    assert response.status_code == 404 and response.json()["field"] == "method"
    assert "baseline" in response.json()["detail"]
    assert 'value="winrate"' not in client.get("/", {"set": "toy", "by": "humans"}).content.decode()
