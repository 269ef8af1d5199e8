"""Swiss standings (arena.ratings.swiss): simulated Swiss tournaments on win probabilities."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.ratings.counts import PairwiseCounts
from arena.ratings.swiss import (
    default_rounds,
    simulate_swiss,
    swiss_board,
    swiss_leaderboard,
    win_probabilities,
)


def bt_probabilities(strengths):
    s = np.asarray(strengths, float)
    return 1.0 / (1.0 + np.exp(s[None, :] - s[:, None]))


def test_default_rounds_is_ceil_log2():
    assert [default_rounds(n) for n in (1, 2, 3, 4, 5, 8, 9, 100)] == [0, 1, 2, 2, 3, 3, 4, 7]


def test_a_dominant_model_scores_every_round():
    p = bt_probabilities([0, 0.3, -0.2, 0.1, 0.5, -1, 0.2, 0])
    p[0, 1:], p[1:, 0] = 1.0, 0.0
    result = simulate_swiss(p, tournaments=500, seed=1)
    assert result.expected[0] == result.rounds == 3
    assert result.sd[0] == 0
    assert result.rank_probabilities[0, 0] == 1.0


@pytest.mark.parametrize("n", [4, 7, 10])
def test_symmetric_models_have_equal_expectations(n):
    result = simulate_swiss(np.full((n, n), 0.5), tournaments=4000, seed=2)
    # Every model plays every round but (odd n) one bye a round, shared alike.
    mean = result.rounds * (n - n % 2) / 2 / n
    standard_error = result.sd / np.sqrt(4000)
    assert np.all(np.abs(result.expected - mean) < 5 * standard_error + 1e-12)
    assert np.allclose(result.rank_probabilities.sum(axis=0), 1)
    assert np.allclose(result.rank_probabilities, 1 / n, atol=0.04)


def exact_four_player_scores(p):
    """Expected scores of a 2-round Swiss of 4 players, by enumeration (the reference):
    round 1 is one of the 3 pairings at random; round 2 pairs the two winners and the two
    losers, who have not met."""
    expected = np.zeros(4)
    pairings = [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    for (i, j), (k, m) in pairings:
        for w1, w2 in itertools.product([(i, j), (j, i)], [(k, m), (m, k)]):
            prob = p[w1] * p[w2] / 3
            (win_a, lose_a), (win_b, lose_b) = w1, w2
            for pair in ((win_a, win_b), (lose_a, lose_b)):
                u, v = pair
                expected[u] += prob * p[u, v]
                expected[v] += prob * p[v, u]
            expected[win_a] += prob
            expected[win_b] += prob
    return expected


def test_four_players_match_exact_enumeration():
    p = bt_probabilities([1.2, 0.4, -0.3, -1.3])
    result = simulate_swiss(p, tournaments=40000, seed=3)
    exact = exact_four_player_scores(p)
    assert np.abs(result.expected - exact).max() < 5 * result.sd.max() / np.sqrt(40000)


def random_probabilities(n, seed):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)), 1)
    p = upper + np.tril(1 - upper.T, -1)
    np.fill_diagonal(p, 0.5)
    return p


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 13), seed=st.integers(0, 10_000), data=st.data())
def test_points_per_tournament_and_no_avoidable_rematch(n, seed, data):
    size = n + n % 2
    rounds = data.draw(st.integers(1, size // 2))
    result = simulate_swiss(random_probabilities(n, seed), rounds=rounds, tournaments=60, seed=seed)
    # Every game hands out one point; a bye (odd n) is worth 0 by default.
    assert np.all(result.scores.sum(axis=1) == rounds * (n // 2))
    opp = result.opponents  # (T, rounds, n)
    for tournament in opp:
        for model in range(n):
            met = tournament[:, model]
            met = np.where(met < 0, n, met)  # the bye counts as one opponent
            assert len(set(met.tolist())) == rounds, "a rematch that could be avoided"
    # opponents are symmetric
    t, r, m = np.nonzero(opp >= 0)
    assert np.all(opp[t, r, opp[t, r, m]] == m)


def test_bye_points_count_when_asked():
    result = simulate_swiss(np.full((5, 5), 0.5), tournaments=50, bye_points=1.0)
    assert np.all(result.scores.sum(axis=1) == result.rounds * 3)


def test_win_probabilities_shrink_toward_bradley_terry():
    # a beats b 30 times out of 40, b beats c 10 of 20, a and c never met.
    counts = PairwiseCounts.from_table(
        ("a", "b", "c"), [(0, 1), (1, 2)], [[30, 10, 0, 0], [10, 10, 0, 0]]
    )
    p = win_probabilities(counts, prior_votes=10)
    assert np.allclose(p + p.T, 1)
    bt = win_probabilities(counts, prior_votes=1e12)
    assert p[0, 1] == pytest.approx((30 + 10 * bt[0, 1]) / 50)
    assert p[0, 2] == pytest.approx(bt[0, 2])  # never met: Bradley-Terry's prediction
    raw = win_probabilities(counts, prior_votes=0)
    assert raw[0, 1] == pytest.approx(0.75)


def test_swiss_leaderboard_rows():
    counts = PairwiseCounts.from_table(
        ("a", "b", "c", "d"),
        [(0, 1), (1, 2), (2, 3), (0, 3)],
        [[8, 2, 1, 0], [6, 4, 0, 0], [7, 3, 0, 0], [9, 1, 0, 0]],
    )
    board = swiss_leaderboard(counts, tournaments=400, seed=0)
    assert board.method == "swiss" and board.value_name == "score"
    assert [r.model for r in board.rows][0] == "a"
    assert sum(r.rating for r in board.rows) == pytest.approx(2 * 2)  # 2 rounds x 2 games
    assert all(r.standard_error is not None for r in board.rows)
    assert board.to_rows()[0]["score"] == board.rows[0].rating


def test_swiss_board_rows_carry_the_rank_distribution():
    counts = PairwiseCounts.from_table(
        ("a", "b", "c"), [(0, 1), (1, 2), (0, 2)], [[9, 1, 0, 0], [6, 4, 0, 0], [9, 1, 0, 0]]
    )
    board = swiss_board(counts, tournaments=300, seed=0)
    assert board["method"] == "swiss" and board["value"] == "score"
    assert sum(r["p_first"] for r in board["rows"]) == pytest.approx(1)
    assert board["rows"][0]["model"] == "a" and board["rows"][0]["mean_rank"] < 2
    assert board["coefficients"]["tournaments"] == 300
