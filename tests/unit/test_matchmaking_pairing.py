"""Live pairing policies: exact probabilities, the info-gain formula, the floor."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from arena.matchmaking import POLICIES, draw_pair, expected_information, pair_weights


def all_pairs(n):
    return np.column_stack(np.triu_indices(n, 1))


def test_uniform_gives_every_pair_the_same_probability():
    p = pair_weights("uniform", np.zeros(4), np.ones(4), all_pairs(4), np.zeros(4))
    np.testing.assert_allclose(p, np.full(6, 1 / 6))


def test_boost_new_weighs_pairs_by_the_product_of_contestant_boosts():
    votes = np.array([500, 10, 400, 0])  # contestants 1 and 3 are new
    pairs = np.array([[0, 1], [0, 2], [1, 3]])
    p = pair_weights("boost-new", np.zeros(4), np.ones(4), pairs, votes, new_votes=300, boost=3)
    np.testing.assert_allclose(p, np.array([3.0, 1.0, 9.0]) / 13.0)


def test_info_gain_is_half_log_one_plus_fisher_information_times_variance():
    s = np.array([0.0, 1.0, -0.5])
    var = np.array([0.2, 0.5, 1.0])
    pairs = all_pairs(3)
    g = expected_information(s, var, pairs)
    for k, (i, j) in enumerate(pairs):
        p = 1 / (1 + np.exp(-(s[i] - s[j])))
        assert g[k] == pytest.approx(0.5 * np.log(1 + p * (1 - p) * (var[i] + var[j])))
    floor = 0.2
    p = pair_weights("info-gain", s, var, pairs, np.zeros(3), floor=floor)
    np.testing.assert_allclose(p, (1 - floor) * g / g.sum() + floor / 3)


def test_info_gain_prefers_close_uncertain_pairs():
    s = np.array([0.0, 0.1, 3.0])
    var = np.array([1.0, 1.0, 1.0])
    p = pair_weights("info-gain", s, var, np.array([[0, 1], [0, 2]]), np.zeros(3))
    assert p[0] > p[1]  # coin flip beats a foregone conclusion at equal variance
    var = np.array([0.01, 0.01, 4.0])
    s = np.zeros(3)
    p = pair_weights("info-gain", s, var, np.array([[0, 1], [0, 2]]), np.zeros(3))
    assert p[1] > p[0]  # the unknown newcomer beats a well-known pair at equal odds


def test_a_covariance_matrix_gives_the_variance_of_the_difference():
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    g = expected_information(np.zeros(3), cov, np.array([[0, 1], [0, 2]]))
    np.testing.assert_allclose(g, 0.5 * np.log1p(0.25 * np.array([0.4, 2.0])))
    diagonal = np.diag([0.3, 0.7, 1.1])
    np.testing.assert_allclose(
        expected_information(np.zeros(3), diagonal, all_pairs(3)),
        expected_information(np.zeros(3), np.diag(diagonal), all_pairs(3)),
    )


def test_unrated_contestants_share_the_non_floor_mass():
    var = np.array([0.1, np.inf, 0.1, 0.1])
    pairs = all_pairs(4)  # 3 of the 6 pairs involve contestant 1
    p = pair_weights("info-gain", np.zeros(4), var, pairs, np.zeros(4), floor=0.4)
    involves = (pairs == 1).any(axis=1)
    np.testing.assert_allclose(p[involves], 0.6 / 3 + 0.4 / 6)
    np.testing.assert_allclose(p[~involves], 0.4 / 6)
    cov = np.diag(var)
    np.testing.assert_allclose(
        pair_weights("info-gain", np.zeros(4), cov, pairs, np.zeros(4), floor=0.4), p
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "elo"}, "unknown matchmaking policy"),
        ({"pairs": np.array([[0, 0]])}, "itself"),
        ({"pairs": np.array([[0, 9]])}, "out of range"),
        ({"pairs": np.zeros((0, 2))}, "non-empty"),
        ({"variances": np.array([1.0, -1.0, 1.0])}, "non-negative"),
        ({"variances": np.ones(2)}, "variances: expected shape"),
        ({"floor": 1.5}, "floor"),
    ],
)
def test_bad_input_is_refused_with_the_field_named(kwargs, message):
    args = {
        "policy": "info-gain",
        "strengths": np.zeros(3),
        "variances": np.ones(3),
        "pairs": all_pairs(3),
        "votes": np.zeros(3),
    }
    floor = kwargs.pop("floor", 0.2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        pair_weights(**args, floor=floor)


contestants = st.integers(min_value=2, max_value=6)


@st.composite
def arena_states(draw):
    n = draw(contestants)
    floats = st.floats(min_value=-3, max_value=3, allow_nan=False)
    strengths = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    variances = np.array(
        draw(st.lists(st.floats(min_value=0, max_value=5), min_size=n, max_size=n))
    )
    votes = np.array(draw(st.lists(st.integers(0, 600), min_size=n, max_size=n)))
    pairs = all_pairs(n)
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    keep[0] = True
    return strengths, variances, pairs[np.array(keep)], votes


@settings(max_examples=40, deadline=None)
@given(state=arena_states(), policy=st.sampled_from(POLICIES), floor=st.floats(0.01, 1.0))
def test_probabilities_are_a_distribution_with_a_floor(state, policy, floor):
    strengths, variances, pairs, votes = state
    p = pair_weights(policy, strengths, variances, pairs, votes, floor=floor)
    assert p.shape == (len(pairs),)
    assert p.sum() == pytest.approx(1.0)
    assert np.all(p > 0)
    if policy == "info-gain":
        assert np.all(p >= floor / len(pairs) - 1e-12)


@settings(max_examples=15, deadline=None)
@given(state=arena_states(), policy=st.sampled_from(POLICIES), seed=st.integers(0, 2**32 - 1))
def test_the_reported_probability_is_the_empirical_draw_frequency(state, policy, seed):
    strengths, variances, pairs, votes = state
    p = pair_weights(policy, strengths, variances, pairs, votes)
    rng = np.random.default_rng(seed)
    draws = 4000
    seen = np.zeros(len(pairs))
    for _ in range(draws):
        k, reported = draw_pair(p, rng)
        assert reported == p[k]
        seen[k] += 1
    if len(pairs) > 1:
        # a correct sampler fails this at rate 1e-4 per example; hypothesis seeds are fixed
        assert chisquare(seen, p * draws).pvalue > 1e-4


# -- issue 16: K-Sort-style UCB and Thompson sampling ----------------------------------


def test_ucb_meets_the_closest_opponent_less_an_exploration_bonus():
    """K-Sort Arena's rule: opponent = argmin |s_i - s_q| - α √(ln V / (1 + n_iq))."""
    s = np.array([0.0, 0.1, 0.6])
    pairs = all_pairs(3)  # (0,1) (0,2) (1,2)
    p = pair_weights("ucb", s, np.ones(3), pairs, np.zeros(3), floor=0.0)
    # 0 -> 1, 1 -> 0, 2 -> 1: each designated contestant with probability 1/3
    np.testing.assert_allclose(p, [2 / 3, 0.0, 1 / 3])
    # (0,1) judged 400 times, the others never: the bonus sends 0 and 1 to 2 instead
    votes = np.array([400.0, 0.0, 0.0])
    bonus = 0.5 * np.sqrt(np.log(400.0) / (1 + votes))
    cost = np.abs(s[pairs[:, 0]] - s[pairs[:, 1]]) - bonus
    assert cost[1] < cost[0] and cost[2] < cost[0]
    p = pair_weights("ucb", s, np.ones(3), pairs, np.zeros(3), floor=0.0, pair_votes=votes)
    np.testing.assert_allclose(p, [0.0, 1 / 3, 2 / 3])  # 0 -> 2, 1 -> 2, 2 -> 1
    with pytest.raises(ValueError, match="pair_votes"):
        pair_weights("ucb", s, np.ones(3), pairs, np.zeros(3), pair_votes=np.ones(2))


def test_thompson_with_a_certain_board_gives_its_adjacent_pairs_and_the_top_boundary():
    n, top, focus = 6, 2, 0.4
    s = -np.arange(n, dtype=float)  # 0 best
    pairs = all_pairs(n)
    p = pair_weights(
        "thompson", s, np.full(n, 1e-8), pairs, np.zeros(n), floor=0.0, top=top, focus=focus
    )
    expected = np.zeros(len(pairs))
    for k, (i, j) in enumerate(pairs.tolist()):
        if j == i + 1:
            expected[k] = (1 - focus) / (n - 1) + (focus if i == top - 1 else 0.0)
    np.testing.assert_allclose(p, expected)


def test_thompson_on_an_unknown_board_makes_every_pair_equally_likely():
    """Exchangeable draws: each of the C(n, 2) pairs is adjacent equally often."""
    n = 5
    pairs = all_pairs(n)
    p = pair_weights("thompson", np.zeros(n), np.eye(n), pairs, np.zeros(n), floor=0.0, focus=0)
    draws = 256 * (n - 1)  # adjacencies counted
    assert chisquare(p * draws, np.full(len(pairs), draws / len(pairs))).pvalue > 1e-3
    # a full covariance is used: two contestants known to be equal are (almost) always adjacent
    cov = np.eye(n)
    cov[0, 1] = cov[1, 0] = 1 - 1e-9
    p = pair_weights("thompson", np.zeros(n), cov, pairs, np.zeros(n), floor=0.0, focus=0)
    assert p[0] > 0.9 / (n - 1)


def test_thompson_probabilities_are_fixed_by_the_seed():
    s, var = np.array([0.0, 0.2, 0.3, 1.0]), np.full(4, 0.5)
    a, b, c = (
        pair_weights("thompson", s, var, all_pairs(4), np.zeros(4), seed=seed) for seed in (3, 3, 4)
    )
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# -- "misorder": P(order wrong) x share of the doubt one vote removes ---------------------


def test_misorder_gain_is_the_flip_probability_times_the_variance_one_vote_removes():
    """Against the formula from scipy's normal cdf, a full covariance and the top boundary
    (weighted by the flip probability alone)."""
    from scipy.stats import norm

    s = np.array([1.0, 0.8, 0.0, -1.5])
    cov = np.array(
        [[0.3, 0.1, 0.0, 0.0], [0.1, 0.4, 0.05, 0.0], [0.0, 0.05, 0.2, 0.0], [0.0, 0.0, 0.0, 0.5]]
    )
    pairs = all_pairs(4)
    i, j = pairs.T
    d = s[i] - s[j]
    v = cov[i, i] + cov[j, j] - 2 * cov[i, j]
    info = v / (4 * np.cosh(d / 2) ** 2)  # p (1 - p) v
    wrong = norm.cdf(-np.abs(d) / np.sqrt(v))
    g = wrong * info / (1 + info)
    across = np.array([k in ((0, 2), (0, 3), (1, 2), (1, 3)) for k in map(tuple, pairs.tolist())])
    focus, floor = 0.3, 0.1
    boundary = wrong * across / (wrong * across).sum()
    expected = (1 - floor) * ((1 - focus) * g / g.sum() + focus * boundary)
    p = pair_weights("misorder", s, cov, pairs, np.zeros(4), top=2, focus=focus, floor=floor)
    np.testing.assert_allclose(p, expected + floor / 6)
    # per-contestant variances: v = σ_i² + σ_j²
    p = pair_weights("misorder", s, np.diagonal(cov), pairs, np.zeros(4), top=2, focus=0)
    v = np.diagonal(cov)[i] + np.diagonal(cov)[j]
    info = v / (4 * np.cosh(d / 2) ** 2)
    g = norm.cdf(-np.abs(d) / np.sqrt(v)) * info / (1 + info)
    np.testing.assert_allclose(p, 0.8 * g / g.sum() + 0.2 / 6)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(3, 12),
    seed=st.integers(0, 2**32 - 1),
    unrated=st.booleans(),
    focus=st.floats(0, 1),
)
def test_misorder_is_a_distribution_with_the_floor(n, seed, unrated, focus):
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 2, n)
    var = rng.uniform(1e-6, 2, n)
    if unrated:
        var[rng.integers(n)] = np.inf
    pairs = all_pairs(n)
    p = pair_weights("misorder", s, var, pairs, np.zeros(n), top=min(3, n - 1), focus=focus)
    assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0)
    assert p.min() >= 0.2 / len(pairs) - 1e-12
