"""Properties any correct pairwise rating must have (hypothesis), and bootstrap coverage."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.ratings import FIRST, SECOND, TIE, PairwiseCounts, bootstrap_bt, fit_bt
from arena.ratings.plackett_luce import Rankings, fit_pl

N_MODELS = 4


@st.composite
def vote_tables(draw, n=N_MODELS):
    """Counts on every ordered pair with every outcome present (so the MLE exists)."""
    weights = draw(st.lists(st.integers(1, 40), min_size=n * (n - 1) * 3, max_size=n * (n - 1) * 3))
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    first = np.repeat([p[0] for p in pairs], 3)
    second = np.repeat([p[1] for p in pairs], 3)
    outcome = np.tile([FIRST, SECOND, TIE], len(pairs))
    return PairwiseCounts.from_cells(
        [f"m{i}" for i in range(n)], first, second, outcome, np.array(weights, float)
    )


FLIP = np.array([SECOND, FIRST, TIE, 3])


@settings(max_examples=25, deadline=None)
@given(vote_tables(), st.permutations(range(N_MODELS)))
def test_relabelling_models_permutes_scores(counts, perm):
    perm = np.array(perm)  # model i becomes model perm[i]
    names = [None] * N_MODELS
    for i, p in enumerate(perm):
        names[p] = counts.models[i]
    relabelled = PairwiseCounts(
        names, perm[counts.first], perm[counts.second], counts.outcome, counts.weight
    )
    np.testing.assert_allclose(fit_bt(relabelled).scores[perm], fit_bt(counts).scores, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    vote_tables(),
    st.lists(
        st.booleans(),
        min_size=N_MODELS * (N_MODELS - 1) * 3,
        max_size=N_MODELS * (N_MODELS - 1) * 3,
    ),
)
def test_side_labels_do_not_matter_without_position_term(counts, swap):
    swap = np.array(swap)[: counts.n_cells]
    swapped = PairwiseCounts(
        counts.models,
        np.where(swap, counts.second, counts.first),
        np.where(swap, counts.first, counts.second),
        np.where(swap, FLIP[counts.outcome], counts.outcome),
        counts.weight,
    )
    np.testing.assert_allclose(fit_bt(swapped).scores, fit_bt(counts).scores, atol=1e-9)
    np.testing.assert_allclose(
        fit_bt(swapped, ties="davidson").scores, fit_bt(counts, ties="davidson").scores, atol=1e-8
    )


@settings(max_examples=25, deadline=None)
@given(vote_tables())
def test_flipping_every_outcome_negates_scores(counts):
    flipped = PairwiseCounts(
        counts.models, counts.first, counts.second, FLIP[counts.outcome], counts.weight
    )
    np.testing.assert_allclose(fit_bt(flipped).scores, -fit_bt(counts).scores, atol=1e-9)
    with_pos = fit_bt(counts, position=True)
    flipped_pos = fit_bt(flipped, position=True)
    np.testing.assert_allclose(flipped_pos.scores, -with_pos.scores, atol=1e-9)
    assert abs(flipped_pos.position + with_pos.position) < 1e-9


@settings(max_examples=20, deadline=None)
@given(vote_tables())
def test_plackett_luce_on_pairs_equals_bradley_terry(counts):
    rows = [
        ([f, s], {FIRST: [1, 2], SECOND: [2, 1]}.get(o, [1, 1]))
        for f, s, o in zip(counts.first, counts.second, counts.outcome, strict=True)
    ]
    rankings = Rankings.from_lists(counts.models, rows, counts.weight.astype(int))
    np.testing.assert_allclose(fit_pl(rankings).scores, fit_bt(counts).scores, atol=1e-8)


def simulate(strengths, votes, rng):
    n = len(strengths)
    first = rng.integers(0, n, votes)
    second = (first + rng.integers(1, n, votes)) % n
    p = 1 / (1 + np.exp(-(strengths[first] - strengths[second])))
    outcome = np.where(rng.random(votes) < p, FIRST, SECOND)
    return PairwiseCounts.from_cells(
        [f"m{i}" for i in range(n)], first, second, outcome, np.ones(votes)
    )


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=6), st.integers(0, 2**31))
def test_recovers_known_strengths(strengths, seed):
    s = np.array(strengths) - np.mean(strengths)
    counts = simulate(s, 30_000, np.random.default_rng(seed))
    fit = fit_bt(counts)
    # standard errors from the inverse Hessian; 5 SE is a generous, non-flaky bound
    se = np.sqrt(np.diag(np.linalg.inv(fit.hessian))[: len(s)])
    assert np.all(np.abs(fit.scores - s) < 5 * se + 1e-9)


def test_bootstrap_intervals_cover_the_truth_about_95_percent():
    """200 simulated arenas; the 95% interval of s_i - s_0 should hold the truth ~95%."""
    rng = np.random.default_rng(2024)
    truth = np.array([0.0, 0.3, -0.4, 0.8])
    hits = []
    for _ in range(200):
        counts = simulate(truth, 600, rng)
        boot = bootstrap_bt(counts, 300, seed=rng, anchor=("m0", 0.0), threads=1)
        true_rating = 400 / np.log(10) * (truth - truth[0])
        hits.extend((boot.lower[1:] <= true_rating[1:]) & (true_rating[1:] <= boot.upper[1:]))
    coverage = np.mean(hits)
    assert 0.92 <= coverage <= 0.98, coverage  # 600 intervals: SE of the rate ~0.009
