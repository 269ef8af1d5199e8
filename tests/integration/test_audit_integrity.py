"""Vote-integrity panel: per-voter volume, concentration, upsets, timing, gold accuracy, and
the leaderboard with and without flagged voters.

Expected values come from the arena's own leaderboard path (``scope_counts`` on the
running counts, after deleting the flagged voter's votes for the clean board) and from
the pure integrity functions on the simulated vote arrays.
"""

from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.db.models import F
from django.utils import timezone
from scipy.special import expit

from arena.boards import BoardScope, rebuild_pair_counts, scope_counts
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import Judgment, PromptSet, Voter
from arena.ratings.leaderboard import leaderboard
from arena.ratings.scale import ELO_SCALE
from judges.audit_metrics import flagged_vote_impact, upset_scores, voter_concentration
from judges.audit_metrics.integrity import NO_WINNER

pytestmark = pytest.mark.django_db
MODELS = ("alpha", "beta", "gamma", "delta", "zeta")
QUALITY = np.array([1.0, 0.6, 0.3, 0.0, -0.3])


@pytest.fixture
def votes():
    """5 honest voters, a shill for "zeta" (flagged), and an aggregated crowd row."""
    rng = np.random.default_rng(7)
    records, rows = [], []
    k = 0

    def vote(voter, i, j, winner, weight=1, gold=None):
        nonlocal k
        records.append(
            JudgmentRecord(
                match_id=f"m{k}",
                contestants=(MODELS[i], MODELS[j]),
                winner=winner,
                voter=voter,
                weight=weight,
                gold_winner=gold,
            )
        )
        rows.append((voter, i, j, winner, weight))
        k += 1

    for v in range(5):
        for _ in range(120):
            i, j = rng.choice(len(MODELS), 2, replace=False)
            a_wins = rng.random() < expit(QUALITY[i] - QUALITY[j])
            gold = ("a" if QUALITY[i] > QUALITY[j] else "b") if rng.random() < 0.2 else None
            vote(f"honest{v}", i, j, "a" if a_wins else "b", gold=gold)
    for _ in range(90):  # the shill always votes for zeta, which is in every battle it sees
        j = rng.integers(0, 4)
        zeta_first = rng.random() < 0.5
        i, jj = (4, j) if zeta_first else (j, 4)
        vote("shill", i, jj, "a" if zeta_first else "b", gold=("b" if zeta_first else "a"))
    vote("crowd", 0, 1, "a", weight=50)
    vote("crowd", 0, 1, "tie", weight=10)
    import_records(records, prompt_set="votes", source="t")
    Voter.objects.filter(label="shill").update(flagged=True, flag_reason="test")
    shown = timezone.now()
    Judgment.objects.filter(voter__label="shill").update(
        shown_at=shown, voted_at=shown + timedelta(seconds=1)
    )
    Judgment.objects.filter(voter__label="honest0").update(
        shown_at=shown, voted_at=shown + timedelta(seconds=20)
    )
    return rows


def _arrays(rows, drop=()):
    keep = [r for r in rows if r[0] not in drop]
    voter = np.repeat([r[0] for r in keep], [r[4] for r in keep])
    i = np.repeat([r[1] for r in keep], [r[4] for r in keep])
    j = np.repeat([r[2] for r in keep], [r[4] for r in keep])
    w = np.repeat([r[3] for r in keep], [r[4] for r in keep])
    return voter, i, j, w


def _wins(i, j, w):
    n = len(MODELS)
    wins = np.zeros((n, n))
    score = np.where(w == "a", 1.0, np.where(w == "b", 0.0, 0.5))
    np.add.at(wins, (i, j), score)
    np.add.at(wins, (j, i), 1 - score)
    return wins


def test_it_reports_volume_concentration_timing_and_gold_per_voter(staff, votes):
    response = staff.get("/audit/integrity/", {"set": "votes"})
    assert response.status_code == 200
    report = response.context["report"]
    assert report["n_votes"] == 5 * 120 + 90 + 60  # the crowd's rows count 50 and 10 votes
    charts = {c["key"]: c for c in response.context["charts"]}
    voters = {r["voter"]: r for r in charts["voters"]["rows"]}
    voter, i, j, w = _arrays(votes)
    names = {name: k for k, name in enumerate(MODELS)}
    winner = np.where(w == "a", i, np.where(w == "b", j, NO_WINNER))
    loser = np.where(w == "a", j, i)
    expected = voter_concentration(voter, winner, loser)
    for row in expected.rows():
        page = voters[row["voter"]]
        assert page["n_votes"] == row["n_votes"]
        assert page["n_decisive"] == row["n_decisive"]
        assert page["top_share"] == pytest.approx(row["top_share"], rel=1e-12)
        assert page["hhi"] == pytest.approx(row["hhi"], rel=1e-12)
        assert page["top_win_rate"] == pytest.approx(row["top_win_rate"], rel=1e-12)
        assert names[page["top_contestant"]] == row["top_contestant"]
    shill = voters["shill"]
    assert shill["flagged"] and shill["top_contestant"] == "zeta" and shill["top_share"] == 1.0
    assert shill["median_seconds"] == 1.0 and shill["fast_share"] == 1.0
    assert voters["honest0"]["median_seconds"] == 20.0 and voters["honest0"]["fast_share"] == 0.0
    assert voters["honest1"]["median_seconds"] is None
    assert shill["gold_n"] == 90 and shill["gold_accuracy"] == 0.0
    # The page lists the flagged voter first.
    assert report["voters"][0]["voter"] == "shill"
    assert b"flagged" in response.content


def test_upset_scores_use_the_all_votes_leaderboard(staff, votes):
    response = staff.get("/audit/integrity/", {"set": "votes"})
    charts = {c["key"]: c for c in response.context["charts"]}
    board = {r["label"]: r["value"] for r in charts["board"]["rows"] if r["series"] == "all votes"}
    voter, i, j, w = _arrays(votes)
    decisive = w != "tie"
    rating = np.array([board[m] for m in MODELS])
    win = np.where(w == "a", i, j)[decisive]
    lose = np.where(w == "a", j, i)[decisive]
    expected = upset_scores(voter[decisive], rating[win], rating[lose], scale=ELO_SCALE)
    voters = {r["voter"]: r for r in charts["voters"]["rows"]}
    for row in expected.rows():
        assert voters[row["voter"]]["upset_z_peers"] == pytest.approx(row["z_peers"], rel=1e-9)
        assert voters[row["voter"]]["upset_rate"] == pytest.approx(row["upset_rate"], rel=1e-12)


def test_the_board_with_and_without_flagged_voters_matches_the_arena_leaderboard(staff, votes):
    response = staff.get("/audit/integrity/", {"set": "votes"})
    report = response.context["report"]
    rows = report["board"]["rows"]
    boot = settings.ARENA_BOOTSTRAP_ROUNDS

    def check(series, board):
        page = {r["label"]: r for r in rows if r["series"] == series}
        assert set(page) == {r.model for r in board.rows}
        for r in board.rows:
            assert page[r.model]["value"] == pytest.approx(r.rating, rel=1e-9)
            assert page[r.model]["low"] == pytest.approx(r.ci_lower, rel=1e-9)
            assert page[r.model]["high"] == pytest.approx(r.ci_upper, rel=1e-9)
            assert page[r.model]["n"] == r.votes

    scope = BoardScope("votes", "humans")
    check("all votes", leaderboard(scope_counts(scope), bootstrap=boot))
    # The clean board: what the arena would fit had the shill never voted.
    Judgment.objects.filter(voter__flagged=True).delete()
    rebuild_pair_counts(PromptSet.objects.get(slug="votes"))
    check("without flagged voters", leaderboard(scope_counts(scope), bootstrap=boot))

    _, i, j, w = _arrays(votes)
    _, ci, cj, cw = _arrays(votes, drop=("shill",))
    impact = flagged_vote_impact(_wins(i, j, w), _wins(ci, cj, cw), 3)
    page = report["board"]["impact"]
    assert page["n_flagged_votes"] == pytest.approx(90)
    assert page["min_margin"] == pytest.approx(np.min(impact.margins))
    assert [m["votes_to_flip"] for m in report["board"]["margins"]] == pytest.approx(
        list(impact.margins)
    )
    assert page["top_all"] == [MODELS[k] for k in impact.change.top_before]
    assert page["top_clean"] == [MODELS[k] for k in impact.change.top_after]
    assert page["could_flip"] == impact.could_flip


def test_flagging_a_voter_changes_the_panel_at_once(staff, votes):
    before = staff.get("/audit/integrity/", {"set": "votes"}).context["report"]
    assert before["n_flagged"] == 1
    Voter.objects.filter(label="honest3").update(flagged=True)
    after = staff.get("/audit/integrity/", {"set": "votes"}).context["report"]
    assert after["n_flagged"] == 2
    assert after["board"]["impact"]["n_flagged_votes"] == pytest.approx(90 + 120)


def test_without_human_votes_the_panel_says_so(staff):
    import_records(
        [JudgmentRecord(match_id="m", contestants=("x", "y"), winner="a", judge="j")],
        prompt_set="judged",
        source="t",
    )
    response = staff.get("/audit/integrity/", {"set": "judged"})
    assert response.status_code == 200
    assert b'id="integrity-empty"' in response.content


def test_time_to_vote_is_read_in_the_database_for_every_backend(staff, votes):
    mine = Judgment.objects.filter(voter__label="honest1")
    mine.update(shown_at=timezone.now())
    mine.update(voted_at=F("shown_at") + timedelta(milliseconds=2500))
    report = staff.get("/audit/integrity/", {"set": "votes"}).context["report"]
    charts = {c["key"]: c for c in report["charts"]}
    honest1 = next(r for r in charts["voters"]["rows"] if r["voter"] == "honest1")
    assert honest1["median_seconds"] == pytest.approx(2.5)
    assert honest1["fast_share"] == 1.0


def test_the_panel_shows_the_public_human_board_rankings_included(staff, votes):
    # K-wise human rankings count on the public human board (their pairwise breakdown):
    # the panel's "all votes" board is that board, and the clean board leaves out the
    # rankings of flagged voters as well as their pairwise votes.
    rng = np.random.default_rng(11)
    records = []
    for k in range(40):
        trio = tuple(MODELS[m] for m in rng.choice(len(MODELS), 3, replace=False))
        voter = "shill" if k % 4 == 0 else f"honest{k % 5}"
        ranking = tuple(int(r) for r in rng.permutation([1, 2, 3]))
        records.append(
            JudgmentRecord(
                match_id=f"rank{k}",
                contestants=trio,
                kind="ranking",
                ranking=ranking,
                presentation=(0, 1, 2),
                voter=voter,
            )
        )
    assert import_records(records, prompt_set="votes", source="t").ok
    report = staff.get("/audit/integrity/", {"set": "votes"}).context["report"]
    boot = settings.ARENA_BOOTSTRAP_ROUNDS
    scope = BoardScope("votes", "humans")

    def board(series):
        return {r["label"]: r for r in report["board"]["rows"] if r["series"] == series}

    def same(page, expected):
        assert set(page) == {r.model for r in expected.rows}
        for r in expected.rows:
            assert page[r.model]["value"] == pytest.approx(r.rating, rel=1e-9)
            assert page[r.model]["n"] == r.votes

    public = leaderboard(scope_counts(scope), bootstrap=boot)
    same(board("all votes"), public)
    assert sum(r.votes for r in public.rows) > 2 * (5 * 120 + 90 + 60)  # rankings counted
    Judgment.objects.filter(voter__flagged=True).delete()
    rebuild_pair_counts(PromptSet.objects.get(slug="votes"))
    same(board("without flagged voters"), leaderboard(scope_counts(scope), bootstrap=boot))
