"""Style control as Chatbot Arena defines it."""

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from arena.importers.records import JudgmentRecord
from arena.ratings.style import (
    StyleVotes,
    fit_style,
    style_features,
    style_leaderboard,
    style_votes_from_records,
)


def test_features_by_hand():
    # lengths (100, 50): (100 - 50) / (100 + 50 + 1) = 50/151; (10, 30): -20/41
    a = np.array([[100, 2, 0, 1], [10, 0, 4, 0]], float)
    b = np.array([[50, 0, 0, 3], [30, 1, 4, 0]], float)
    raw = (a - b) / (a + b + 1)
    assert raw[0, 0] == pytest.approx(50 / 151) and raw[1, 0] == pytest.approx(-20 / 41)
    f = style_features(a, b)
    np.testing.assert_allclose(f, (raw - raw.mean(0)) / np.where(raw.std(0) > 0, raw.std(0), 1))
    np.testing.assert_allclose(f[:, 0], [1.0, -1.0])  # two votes: standardised to +-1


def simulate(seed=0, votes=4000, length_effect=0.6):
    rng = np.random.default_rng(seed)
    n = 4
    s = np.array([0.5, 0.0, -0.2, -0.3])
    a = rng.integers(0, n, votes)
    b = (a + rng.integers(1, n, votes)) % n
    verbose = np.array([1.0, 3.0, 1.0, 2.0])  # model 1 writes long answers
    style_a = np.column_stack(
        [
            rng.poisson(200 * verbose[a]),
            rng.poisson(2, votes),
            rng.poisson(3, votes),
            rng.poisson(1, votes),
        ]
    ).astype(float)
    style_b = np.column_stack(
        [
            rng.poisson(200 * verbose[b]),
            rng.poisson(2, votes),
            rng.poisson(3, votes),
            rng.poisson(1, votes),
        ]
    ).astype(float)
    f = style_features(style_a, style_b)
    p = 1 / (1 + np.exp(-(s[a] - s[b] + length_effect * f[:, 0])))
    u = rng.random(votes)
    outcome = np.where(u < 0.1, 2, np.where(rng.random(votes) < p, 0, 1)).astype(np.int8)
    return s, StyleVotes(
        tuple(f"m{i}" for i in range(n)),
        a,
        b,
        outcome,
        style_a,
        style_b,
        np.ones(votes, np.int64),
        np.arange(votes),
    )


def test_matches_fastchat_regularised_logistic_regression():
    """FastChat: loss + reg/2 ||(r, beta)||^2 with r = s / ln 10; sklearn C = 1 / reg."""
    _, votes = simulate(1, votes=1500)
    fit = fit_style(votes, reg=0.5)
    n = len(votes.models)
    feats = style_features(votes.style_a, votes.style_b)
    X = np.zeros((votes.a.size, n + 4))
    X[np.arange(votes.a.size), votes.a] = math.log(10)
    X[np.arange(votes.a.size), votes.b] = -math.log(10)
    X[:, n:] = feats
    y_share = np.select([votes.outcome == 0, votes.outcome == 1], [1.0, 0.0], 0.5)
    Xd, yd = np.vstack([X, X]), np.r_[np.ones(len(X)), np.zeros(len(X))]
    wd = np.r_[y_share, 1 - y_share]
    lr = LogisticRegression(fit_intercept=False, C=1 / 0.5, tol=1e-12, max_iter=10_000)
    lr.fit(Xd[wd > 0], yd[wd > 0], sample_weight=wd[wd > 0])
    np.testing.assert_allclose(fit.scores, math.log(10) * lr.coef_[0][:n], atol=1e-5)
    np.testing.assert_allclose(fit.coefficients, lr.coef_[0][n:], atol=1e-5)


def test_recovers_length_effect_and_reports_intervals():
    s, votes = simulate(2, votes=6000)
    board = style_leaderboard(votes, bootstrap=200, seed=0)
    lo, hi = board.coefficient_ci["length"]
    assert lo < board.coefficients["length"] < hi
    assert 0.4 < board.coefficients["length"] < 0.8  # truth 0.6 (slightly shrunk by reg)
    assert abs(board.coefficients["bold"]) < 0.15
    assert [r.model for r in board.rows][0] == "m0"
    for row in board.rows:
        assert row.ci_lower <= row.rating <= row.ci_upper


def test_votes_from_records_and_missing_style():
    style = (
        {"tokens": 120, "headers": 1, "lists": 3, "bold": 0},
        {"tokens": 40, "headers": 0, "lists": 0, "bold": 2},
    )
    records = [
        JudgmentRecord("1", ("a", "b"), winner="a", style=style),
        JudgmentRecord("2", ("b", "a"), winner="tie", style=style[::-1], weight=3),
        JudgmentRecord("3", ("a", "b"), winner="b"),
    ]
    votes = style_votes_from_records(records)
    assert votes.a.tolist() == [0, 1] and votes.outcome.tolist() == [0, 2]
    assert votes.weight.tolist() == [1, 3]
    np.testing.assert_array_equal(votes.style_a[1], [40, 0, 0, 2])
    with pytest.raises(ValueError, match="style counts"):
        style_votes_from_records(records[2:])
