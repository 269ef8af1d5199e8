"""The facade the Django layer calls."""

import json

import numpy as np
import pytest

from arena.ratings import ELO_SCALE, FIRST, SECOND, TIE, PairwiseCounts, leaderboard


def arena(seed=0, votes=5000, gamma=0.3):
    rng = np.random.default_rng(seed)
    s = np.array([0.6, 0.2, 0.0, -0.8])
    first = rng.integers(0, 4, votes)
    second = (first + rng.integers(1, 4, votes)) % 4
    p = 1 / (1 + np.exp(-(s[first] - s[second] + gamma)))
    u = rng.random(votes)
    outcome = np.where(u < 0.15, TIE, np.where(rng.random(votes) < p, FIRST, SECOND))
    return PairwiseCounts.from_cells(["a", "b", "c", "d"], first, second, outcome, np.ones(votes))


def test_rows_sorted_with_intervals_and_observed_win_rate():
    counts = arena()
    board = leaderboard(counts, bootstrap=300, seed=0, anchor=("c", 1000.0))
    assert [r.model for r in board.rows] == ["a", "b", "c", "d"]
    assert board.row("c").rating == pytest.approx(1000.0)
    for r in board.rows:
        assert r.ci_lower <= r.rating <= r.ci_upper
        assert 0 < r.win_rate < 1
    assert sum(r.votes for r in board.rows) == 2 * 5000
    assert board.rows[0].rank_ub == 1 and board.rows[-1].rank_ub == 4
    json.dumps(board.as_dict())  # serialisable for a snapshot


def test_position_term_reported_in_rating_points():
    board = leaderboard(arena(gamma=0.3), bootstrap=0, position=True)
    assert board.position == pytest.approx(ELO_SCALE * 0.3, abs=20)
    assert all(r.ci_lower is None for r in board.rows)
    assert [r.rank_ub for r in board.rows] == [1, 2, 3, 4]


def test_davidson_ties_report_nu():
    board = leaderboard(arena(), bootstrap=100, ties="davidson")
    assert board.method == "bt-davidson" and "log_nu" in board.coefficients
    assert [r.model for r in board.rows] == ["a", "b", "c", "d"]


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        leaderboard(arena(), method="elo")
