"""arena.trust.scores: each signal against a plain-Python loop, its calibration under the
Bradley-Terry model, and the combined score's thresholds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from arena.trust import scores


def _simulate(rng, n_groups, votes_per_group, strengths):
    """Honest decisive votes: each group votes by the BT probabilities of ``strengths``."""
    m = len(strengths)
    group = np.repeat(np.arange(n_groups), votes_per_group)
    n = len(group)
    i = rng.integers(0, m, n)
    j = (i + rng.integers(1, m, n)) % m
    i_wins = rng.random(n) < expit(strengths[i] - strengths[j])
    winner, loser = np.where(i_wins, i, j), np.where(i_wins, j, i)
    return group, winner, loser


def test_surprise_matches_a_loop():
    rng = np.random.default_rng(0)
    group = rng.integers(0, 5, 200)
    chosen, other = rng.normal(size=200), rng.normal(size=200)
    got = scores.surprise(group, chosen, other, 6)
    for g in range(6):
        ll = mean = var = 0.0
        for k in np.flatnonzero(group == g):
            d = chosen[k] - other[k]
            q = 1 / (1 + math.exp(-d))
            ll += math.log(q)
            mean += q * math.log(q) + (1 - q) * math.log(1 - q)
            var += q * (1 - q) * d * d
        assert got.n[g] == np.sum(group == g)
        assert got.log_likelihood[g] == pytest.approx(ll, abs=1e-9)
        assert got.z[g] == pytest.approx((ll - mean) / math.sqrt(var) if var else 0.0, abs=1e-9)


def test_surprise_is_a_z_score_for_honest_voters_and_very_negative_against_the_board():
    rng = np.random.default_rng(1)
    strengths = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    group, winner, loser = _simulate(rng, 2000, 40, strengths)
    z = scores.surprise(group, strengths[winner], strengths[loser], 2000).z
    assert abs(z.mean()) < 0.1 and 0.85 < z.std() < 1.15
    # Always voting for the weaker model: far below the expectation.
    weak, strong = np.maximum(winner, loser), np.minimum(winner, loser)
    contrary = scores.surprise(group, strengths[weak], strengths[strong], 2000).z
    assert np.all(contrary < -4)


def test_surprise_is_zero_without_information():
    z = scores.surprise(np.zeros(10, int), np.zeros(10), np.zeros(10), 1).z
    assert z.tolist() == [0.0]


def test_one_sided_matches_a_loop():
    rng = np.random.default_rng(2)
    n, m, groups = 400, 5, 7
    group = rng.integers(0, groups, n)
    winner = rng.integers(0, m, n)
    loser = (winner + rng.integers(1, m, n)) % m
    p = rng.uniform(0.1, 0.9, n)
    got = scores.one_sided(group, winner, loser, p, groups, m, min_votes=3)
    for g in range(groups):
        best = (0.0, -1, 0, 0.0, 0.0)
        for c in range(m):
            appear = wins = expected = var = 0.0
            for k in np.flatnonzero(group == g):
                if winner[k] == c:
                    appear, wins, expected = appear + 1, wins + 1, expected + p[k]
                    var += p[k] * (1 - p[k])
                elif loser[k] == c:
                    appear, expected = appear + 1, expected + 1 - p[k]
                    var += p[k] * (1 - p[k])
            z = (wins - expected) / math.sqrt(var) if appear >= 3 and var > 0 else 0.0
            if abs(z) > abs(best[0]):
                best = (z, c, appear, wins, expected)
        assert got.z[g] == pytest.approx(best[0], abs=1e-9)
        if best[1] >= 0:
            assert got.contestant[g] == best[1]
            assert got.appearances[g] == best[2] and got.wins[g] == best[3]
            assert got.expected[g] == pytest.approx(best[4])


def test_a_shill_is_one_sided_on_its_target_honest_voters_are_not():
    rng = np.random.default_rng(3)
    strengths = np.array([1.0, 0.5, 0.0, -0.5, -1.0])
    group, winner, loser = _simulate(rng, 300, 30, strengths)
    shill = group == 0
    on_target = shill & ((winner == 4) | (loser == 4))
    winner, loser = winner.copy(), loser.copy()
    other = np.where(winner == 4, loser, winner)
    winner[on_target], loser[on_target] = 4, other[on_target]
    p = expit(strengths[winner] - strengths[loser])
    side = scores.one_sided(group, winner, loser, p, 300, 5, min_votes=5)
    assert side.contestant[0] == 4 and side.z[0] > 4
    assert side.wins[0] == side.appearances[0]
    assert np.mean(np.abs(side.z[1:]) > 4) == 0  # no honest voter crosses the threshold


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.permutations(list(range(5))))
def test_relabelling_contestants_relabels_the_one_sided_result(seed, perm):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, 60)
    winner = rng.integers(0, 5, 60)
    loser = (winner + rng.integers(1, 5, 60)) % 5
    p = rng.uniform(0.2, 0.8, 60)
    perm = np.asarray(perm)
    one = scores.one_sided(group, winner, loser, p, 4, 5)
    two = scores.one_sided(group, perm[winner], perm[loser], p, 4, 5)
    np.testing.assert_allclose(np.abs(one.z), np.abs(two.z), atol=1e-9)
    unique = np.abs(one.z) > 0
    assert np.array_equal(perm[one.contestant[unique]], two.contestant[unique]) or np.any(
        np.isclose(np.abs(one.z), np.abs(one.z)[:, None]) & ~np.eye(4, dtype=bool)
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_flipping_every_vote_and_the_board_flips_the_sign_of_one_sidedness(seed):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, 50)
    winner = rng.integers(0, 4, 50)
    loser = (winner + rng.integers(1, 4, 50)) % 4
    p = rng.uniform(0.2, 0.8, 50)
    one = scores.one_sided(group, winner, loser, p, 3, 4)
    # Every vote the other way, on the negated board (P(loser beats winner) is now p).
    two = scores.one_sided(group, loser, winner, p, 3, 4)
    np.testing.assert_allclose(np.abs(one.z), np.abs(two.z), atol=1e-9)
    same = one.contestant == two.contestant
    np.testing.assert_allclose(one.z[same], -two.z[same], atol=1e-9)


def test_anomaly_thresholds():
    found = scores.anomaly(
        burst=np.array([11, 10, 0, 0, 0, 0]),
        surprise_z=np.array([0, 0, -4.0, -3.9, -9.0, 0]),
        one_sided_z=np.array([0, 0, 0, 0, 0, -4.0]),
        n_decisive=np.array([0, 0, 10, 10, 9, 10]),
        max_sessions=10,
        z_threshold=4.0,
        min_votes=10,
    )
    # More than 10 sessions flags; 10 do not. Too few votes: the vote signals are silent.
    assert found.flagged.tolist() == [True, False, True, False, False, True]
    assert found.score[0] == pytest.approx(1.0) and found.score[1] < 1


def test_trust():
    t = scores.trust(
        logged_in=np.array([True, False, False, False, True]),
        age_days=np.array([0, 60, 0, 15, 400]),
        n_decisive=np.array([0, 0, 100, 25, 100]),
        surprise_z=np.array([0, 0, 0, 0, -5]),
        flagged=np.array([False, False, False, False, False]),
    )
    assert t.tolist() == pytest.approx([0.5, 0.2, 0.3, 0.1 + 0.15, 0.7])
    assert scores.trust([True], [100], [100], [0], [True]).tolist() == [0.0]


def test_reasons_name_the_largest_signal():
    side = scores.OneSided(
        contestant=np.array([2, 0, 0]),
        appearances=np.array([20, 5, 5]),
        wins=np.array([20.0, 1, 1]),
        expected=np.array([8.0, 1, 1]),
        z=np.array([5.0, 0, 0]),
    )
    found = scores.anomaly(
        np.array([0, 40, 0]), np.array([-1, 0, -1]), side.z, np.array([20, 0, 20]),
        max_sessions=10, z_threshold=4, min_votes=10,
    )  # fmt: skip
    why = scores.reasons(found, np.array([0, 40, 0]), np.array([-1, 0, -1]), [20, 0, 20], side,
                         ["x", "y", "target"])  # fmt: skip
    assert why[0].startswith(scores.VOTES_REASON) and "target" in why[0]
    assert why[1].startswith(scores.BURST_REASON) and "40 new sessions" in why[1]
    assert why[2] == ""


def test_gold_matches_a_loop_and_a_coin_scores_zero():
    rng = np.random.default_rng(3)
    group = rng.integers(0, 6, 400)
    credit = rng.choice([0.0, 0.5, 1.0], 400)
    found = scores.gold(group, credit, 7)
    for g in range(7):
        mine = credit[group == g]
        assert found.n[g] == len(mine) and found.right[g] == pytest.approx(mine.sum())
        if len(mine):
            assert found.z[g] == pytest.approx(
                (mine.sum() - len(mine) / 2) / math.sqrt(len(mine) / 4)
            )
    assert found.n[6] == 0 and found.z[6] == 0
    # Ties all the way: exactly a coin.
    assert scores.gold(np.zeros(30, int), np.full(30, 0.5), 1).z.tolist() == [0.0]


@given(st.integers(0, 40), st.integers(0, 40))
@settings(max_examples=60, deadline=None)
def test_wrong_on_gold_flags_only_with_enough_gold_votes_far_below_a_coin(right, wrong):
    n = right + wrong
    found_gold = scores.gold(np.zeros(n, int), np.r_[np.ones(right), np.zeros(wrong)], 1)
    found = scores.anomaly(
        [0], [0.0], [0.0], [0], found_gold.z, found_gold.n,
        max_sessions=10, z_threshold=4.0, min_votes=10,
    )  # fmt: skip
    z = (right - n / 2) / math.sqrt(n / 4) if n else 0.0
    assert bool(found.flagged[0]) == (n >= 10 and z <= -4.0)
    if found.flagged[0]:
        why = scores.reasons(found, [0], [0.0], [0], _no_side(), ["x"], found_gold)
        assert why[0].startswith(scores.VOTES_REASON) and f"{right:g} of {n} gold" in why[0]


def _no_side():
    zero = np.zeros(1)
    return scores.OneSided(np.array([-1]), np.array([0]), zero, zero, zero)


def test_gold_record_earns_trust_up_to_its_share():
    t = scores.trust(
        logged_in=np.zeros(4, bool),
        age_days=np.zeros(4),
        n_decisive=np.zeros(4),
        surprise_z=np.zeros(4),
        flagged=np.array([False, False, False, True]),
        gold_z=np.array([-5.0, 2.0, 9.0, 9.0]),
        z_threshold=4.0,
    )
    assert t.tolist() == pytest.approx([0.0, 0.15, 0.3, 0.0])
    # Login, age, agreement and gold together are capped at 1.
    assert scores.trust([True], [100], [100], [0], [False], gold_z=[9.0]).tolist() == [1.0]
