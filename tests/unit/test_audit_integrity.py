"""Vote integrity: per-voter tables checked against plain-Python counts, BT flips vs choix."""

from collections import Counter, defaultdict

import choix
import numpy as np
import pytest

from judges.audit_metrics import (
    bt_strengths,
    flagged_vote_impact,
    top_k_change,
    upset_scores,
    vote_timing,
    voter_concentration,
    votes_to_flip,
)
from judges.audit_metrics.integrity import NO_WINNER


def test_voter_concentration_matches_counter():
    rng = np.random.default_rng(0)
    voter = rng.choice(["ann", "bob", "cy", "dee"], 300)
    winner = rng.integers(-1, 6, 300)  # -1: tie
    winner[voter == "dee"] = np.where(rng.random(np.sum(voter == "dee")) < 0.9, 3, 1)
    table = voter_concentration(voter, winner)
    assert table.voter.tolist() == ["ann", "bob", "cy", "dee"]
    for r, name in enumerate(table.voter):
        mine = winner[voter == name]
        counts = Counter(int(w) for w in mine if w != NO_WINNER)
        top, top_n = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        total = sum(counts.values())
        assert table.n_votes[r] == len(mine)
        assert table.n_decisive[r] == total
        assert table.top_contestant[r] == top
        assert table.top_share[r] == pytest.approx(top_n / total)
        assert table.hhi[r] == pytest.approx(sum((c / total) ** 2 for c in counts.values()))
    dee = table.rows()[3]
    assert dee["voter"] == "dee" and dee["top_contestant"] == 3 and dee["top_share"] > 0.8
    assert np.all(np.isnan(table.top_win_rate))


def test_top_win_rate_counts_the_battles_the_favourite_appeared_in():
    voter = np.array(["a"] * 6 + ["b"] * 4)
    winner = np.array([7, 7, 2, 3, 7, NO_WINNER, 1, 2, 1, 2])
    loser = np.array([1, 2, 7, 4, 5, 7, 2, 1, 2, 1])
    table = voter_concentration(voter, winner, loser)
    # a: top 7 (3 wins); 7 appeared in 4 decisive battles (the tie is not one).
    # b: 1 and 2 have 2 wins each -> lowest id 1; it appeared in all 4 battles.
    assert table.top_contestant.tolist() == [7, 1]
    assert table.top_win_rate.tolist() == [0.75, 0.5]


def test_voter_without_decisive_votes():
    table = voter_concentration(["a", "a", "b"], [NO_WINNER, NO_WINNER, 2])
    assert table.n_decisive.tolist() == [0, 1]
    assert table.top_contestant.tolist() == [NO_WINNER, 2]
    assert np.isnan(table.top_share[0]) and np.isnan(table.hhi[0])


def test_upset_scores_flag_a_contrarian_voter():
    rng = np.random.default_rng(1)
    strengths = np.linspace(-1.5, 1.5, 8)
    n = 4000
    voter = rng.choice([f"v{k}" for k in range(20)], n)
    a, b = rng.integers(0, 8, n), rng.integers(0, 8, n)
    keep = a != b
    voter, a, b = voter[keep], a[keep], b[keep]
    a_wins = rng.random(a.size) < 1 / (1 + np.exp(-(strengths[a] - strengths[b])))
    a_wins[voter == "v7"] = (
        strengths[a][voter == "v7"] < strengths[b][voter == "v7"]
    )  # always the underdog
    winner = np.where(a_wins, a, b)
    loser = np.where(a_wins, b, a)
    s = upset_scores(voter, strengths[winner], strengths[loser])
    v7 = s.voter.tolist().index("v7")
    assert s.upset_rate[v7] == 1.0
    assert s.z_peers[v7] > 5 and s.z_model[v7] > 5
    others = np.delete(np.arange(len(s.voter)), v7)
    assert np.all(np.abs(s.z_model[others]) < 3.5)
    # Independent check of one voter's numbers.
    mask = voter == "v0"
    gap = strengths[winner][mask] - strengths[loser][mask]
    q = 1 / (1 + np.exp(np.abs(gap)))
    row = s.rows()[0]
    assert row["upsets"] == int(np.sum(gap < 0))
    assert row["expected"] == pytest.approx(q.sum())
    assert row["z_model"] == pytest.approx(
        (np.sum(gap < 0) - q.sum()) / np.sqrt(np.sum(q * (1 - q)))
    )
    rest = ~mask
    p_rest = np.mean(strengths[winner][rest] < strengths[loser][rest])
    assert row["z_peers"] == pytest.approx(
        (row["upset_rate"] - p_rest) / np.sqrt(p_rest * (1 - p_rest) / row["n"])
    )


def test_elo_scale_gives_the_same_scores():
    voter = np.array(["a", "a", "b", "b", "b"])
    w = np.array([0.3, -0.2, 0.5, 0.1, -0.4])
    lo = np.array([0.0, 0.1, 0.2, 0.3, 0.0])
    elo = 400 / np.log(10)
    s1 = upset_scores(voter, w, lo)
    s2 = upset_scores(voter, w * elo + 1000, lo * elo + 1000, scale=elo)
    assert np.allclose(s1.z_model, s2.z_model)


def test_vote_timing_matches_numpy_per_voter():
    rng = np.random.default_rng(2)
    voter = rng.integers(0, 7, 200)
    seconds = rng.exponential(10, 200)
    seconds[:5] = np.nan
    t = vote_timing(voter, seconds, fast=2.0)
    groups = defaultdict(list)
    for who, sec in zip(voter, seconds, strict=True):
        if np.isfinite(sec):
            groups[who].append(sec)
    for r, who in enumerate(t.voter):
        x = np.array(groups[who])
        assert t.n[r] == len(x)
        assert t.median[r] == pytest.approx(np.median(x))
        assert t.minimum[r] == pytest.approx(x.min())
        assert t.fast_share[r] == pytest.approx(np.mean(x < 2.0))


def test_top_k_change():
    before = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    after = np.array([4.0, 5.0, 1.0, 3.5, 0.0])
    c = top_k_change(before, after, 3)
    assert c.top_before.tolist() == [0, 1, 2] and c.top_after.tolist() == [1, 0, 3]
    assert c.set_changed and c.order_changed and c.n_moved == 3
    assert c.entered.tolist() == [3] and c.left.tolist() == [2]
    same = top_k_change(before, before + 1, 3)
    assert not same.set_changed and not same.order_changed and same.n_moved == 0


def wins_matrix(rng, k=6, votes=40):
    strengths = np.linspace(1.0, -1.0, k)
    w = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            p = 1 / (1 + np.exp(-(strengths[i] - strengths[j])))
            won = rng.binomial(votes, p)
            w[i, j], w[j, i] = won, votes - won
    return w


def test_bt_strengths_match_choix():
    w = wins_matrix(np.random.default_rng(3))
    ours = bt_strengths(w, prior=0.0)
    theirs = choix.ilsr_pairwise_dense(w, tol=1e-12, max_iter=1000)
    assert ours == pytest.approx(theirs - theirs.mean(), abs=1e-6)


def test_votes_to_flip_is_the_smallest_flipping_count_by_choix():
    w = wins_matrix(np.random.default_rng(4))
    margins = votes_to_flip(w, 3, prior=0.0)
    order = np.argsort(-choix.ilsr_pairwise_dense(w, tol=1e-12, max_iter=1000))
    for r, m in enumerate(margins):
        i, j = order[r], order[r + 1]
        assert np.isfinite(m) and m >= 1

        def above(extra, i=i, j=j):
            trial = w.copy()
            trial[j, i] += extra
            s = choix.ilsr_pairwise_dense(trial, tol=1e-12, max_iter=1000)
            return s[j] - s[i] > 1e-9  # exact ties happen with integer counts

        assert above(m) and not above(m - 1)


def test_flagged_vote_impact():
    rng = np.random.default_rng(5)
    clean = wins_matrix(rng, k=5, votes=30)
    flagged = np.zeros_like(clean)
    flagged[4, 0] = 200  # a voter ring pushes the weakest model over the strongest
    impact = flagged_vote_impact(clean + flagged, clean, k=2)
    assert impact.n_flagged_votes == 200
    assert impact.change.set_changed  # with the ring, contestant 4 enters the top 2
    assert impact.could_flip
    harmless = flagged_vote_impact(clean + 0, clean, k=2)
    assert not harmless.change.order_changed and not harmless.could_flip
    assert harmless.as_dict()["margins"] == harmless.margins.tolist()
