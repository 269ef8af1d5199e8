"""Comparison-graph health: reported and handled, never a crash or silent nonsense."""

import numpy as np

from arena.ratings import FIRST, SECOND, TIE, PairwiseCounts, check_graph, fit_bt, leaderboard


def counts(models, cells):
    first, second, outcome, weight = zip(*cells, strict=True)
    return PairwiseCounts.from_cells(models, first, second, outcome, weight)


def test_healthy_graph():
    c = counts(
        "abc",
        [(0, 1, FIRST, 5), (1, 0, FIRST, 3), (1, 2, FIRST, 4), (2, 1, FIRST, 2), (2, 0, TIE, 1)],
    )
    report = check_graph(c)
    assert report.connected and report.mle_exists and report.messages() == []


def test_undefeated_model_is_reported_and_regularised():
    c = counts("abc", [(0, 1, FIRST, 5), (0, 2, FIRST, 4), (1, 2, FIRST, 3), (2, 1, FIRST, 2)])
    report = check_graph(c)
    assert report.never_lost == ("a",) and not report.mle_exists
    assert fit_bt(c).converged is False and fit_bt(c).mle_exists is False
    board = leaderboard(c, bootstrap=100, seed=0)
    assert board.prior > 0 and any("prior" in n for n in board.notes)
    assert any("never lost" in n for n in board.notes)
    ratings = [r.rating for r in board.rows]
    assert np.all(np.isfinite(ratings)) and board.rows[0].model == "a"
    assert all(r.ci_lower is not None and np.isfinite(r.ci_lower) for r in board.rows)


def test_disconnected_groups_are_labelled():
    c = counts(
        "abcde",
        [
            (0, 1, FIRST, 5),
            (1, 0, FIRST, 3),
            (2, 3, FIRST, 4),
            (3, 2, SECOND, 1),
            (3, 4, TIE, 2),
            (4, 2, FIRST, 1),
            (2, 4, FIRST, 1),
        ],
    )
    report = check_graph(c)
    assert report.n_components == 2 and not report.connected
    assert report.component.tolist() == [1, 1, 0, 0, 0]  # largest group first
    board = leaderboard(c, bootstrap=0)
    rows = board.to_rows()
    assert {r["model"]: r["component"] for r in rows} == {"a": 1, "b": 1, "c": 0, "d": 0, "e": 0}
    assert any("never compared" in n for n in board.notes)


def test_never_won_and_no_votes():
    c = PairwiseCounts.from_cells(["a", "b", "c"], [0], [1], [FIRST], [3])
    report = check_graph(c)
    assert report.never_won == ("b",) and report.never_lost == ("a",)
    assert report.no_votes == ("c",)
    board = leaderboard(c, bootstrap=50)
    assert len(board.rows) == 3 and all(np.isfinite(r.rating) for r in board.rows)


def test_single_model_and_empty():
    empty = PairwiseCounts(["a"], [], [], [], [])
    board = leaderboard(empty, bootstrap=10)
    assert len(board.rows) == 1 and board.rows[0].votes == 0
