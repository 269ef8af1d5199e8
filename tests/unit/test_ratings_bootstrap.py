"""Bootstrap: exact multinomial replicas, batched solver, intervals, Rank(UB)."""

import math
from itertools import product

import numpy as np
import pytest
from scipy.stats import chisquare

from arena.ratings.bootstrap import (
    _distinct_positions,
    bootstrap_bt,
    multinomial_replicas,
    rank_upper_bound,
    replica_stats,
    solve_replicas,
    unit_stats,
)
from arena.ratings.bt import fit_bt, fit_design
from arena.ratings.counts import FIRST, SECOND, TIE, PairwiseCounts


def multinomial_pmf(x, n, p):
    return math.factorial(n) / np.prod([math.factorial(k) for k in x]) * np.prod(p ** np.array(x))


@pytest.mark.parametrize("multiplicity", [[1, 2, 3], [5, 1, 0, 2]])
def test_replicas_are_exactly_multinomial(multiplicity):
    """Chi-square of 40k replicas against the Multinomial(N, m/N) pmf, all outcomes."""
    m = np.array(multiplicity)
    n = int(m.sum())
    draws = multinomial_replicas(m, 40_000, np.random.default_rng(5))
    assert draws.shape == (m.size, 40_000)
    assert np.all(draws.sum(axis=0) == n) and np.all(draws >= 0)
    assert np.all(draws[m == 0] == 0)
    outcomes = [x for x in product(range(n + 1), repeat=m.size) if sum(x) == n]
    p = m / n
    expected = np.array([multinomial_pmf(x, n, p) for x in outcomes])
    keep = expected > 0
    index = {x: k for k, x in enumerate(outcomes)}
    observed = np.bincount([index[tuple(col)] for col in draws.T], minlength=len(outcomes))
    assert observed[~keep].sum() == 0
    pooled_obs, pooled_exp = observed[keep], expected[keep] * draws.shape[1]
    assert chisquare(pooled_obs, pooled_exp).pvalue > 1e-3


def test_distinct_positions_are_distinct_uniform_subsets():
    rng = np.random.default_rng(0)
    pos = _distinct_positions(np.array([5, 5]), np.array([2, 3]), rng)
    assert pos.size == 5 and len(set(pos[:2])) == 2 and len(set(pos[2:])) == 3
    # every 2-subset of {0..4} equally likely
    counts = {}
    for _ in range(20_000):
        p = tuple(_distinct_positions(np.array([5]), np.array([2]), rng))
        counts[p] = counts.get(p, 0) + 1
    assert len(counts) == 10 and all(0 <= a < b < 5 for a, b in counts)
    assert chisquare(list(counts.values())).pvalue > 1e-3


def small_counts(seed=0, n=5, votes=3000):
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 0.7, n)
    first = rng.integers(0, n, votes)
    second = (first + rng.integers(1, n, votes)) % n
    p = 1 / (1 + np.exp(-(s[first] - s[second])))
    outcome = np.where(rng.random(votes) < 0.1, TIE, np.where(rng.random(votes) < p, FIRST, SECOND))
    return s, PairwiseCounts.from_cells(
        [f"m{i}" for i in range(n)], first, second, outcome, np.ones(votes)
    )


@pytest.mark.parametrize("options", [{}, {"position": True}, {"ties": "davidson"}, {"prior": 0.5}])
def test_batched_solver_equals_newton_per_replica(options):
    _, counts = small_counts(1)
    fit = fit_bt(counts, **options)
    merged = unit_stats(counts.unit_types(), fit.design)
    stats = replica_stats(merged, fit.design, 40, np.random.default_rng(3))
    theta, ok = solve_replicas(fit, stats, tol=1e-10)
    assert ok.all()
    for b in range(0, 40, 13):
        ref = fit_design(fit.design, stats[:, :, b].T, counts.models, tol=1e-12).params
        np.testing.assert_allclose(theta[:, b], ref, atol=1e-8)


def test_replica_totals_and_merging():
    _, counts = small_counts(2)
    fit = fit_bt(counts)
    merged = unit_stats(counts.unit_types(), fit.design)
    # a tie and a both-bad vote are the same unit type to a half-tie model
    assert merged.members.shape[0] < counts.n_cells
    stats = replica_stats(merged, fit.design, 10, np.random.default_rng(0))
    np.testing.assert_allclose(stats[1].sum(axis=0), counts.total_votes)  # T sums to N


def test_seeded_and_independent_of_threads():
    _, counts = small_counts(3)
    a = bootstrap_bt(counts, 600, seed=7, threads=1)
    b = bootstrap_bt(counts, 600, seed=7, threads=2)
    c = bootstrap_bt(counts, 600, seed=8)
    np.testing.assert_array_equal(a.ratings, b.ratings)
    assert not np.array_equal(a.ratings, c.ratings)
    assert a.ratings.shape == (600, 5) and a.n_regularised == 0


def test_percentiles_and_rank_upper_bound():
    lower = np.array([10.0, 8.0, 1.0, 0.0])
    upper = np.array([12.0, 11.0, 9.5, 2.0])
    # 9.5 < 10 (model 0) -> rank 2; 2.0 < 10 and 8 -> rank 3
    np.testing.assert_array_equal(rank_upper_bound(lower, upper), [1, 1, 2, 3])
    _, counts = small_counts(4)
    boot = bootstrap_bt(counts, 400, seed=0)
    np.testing.assert_allclose(boot.lower, np.percentile(boot.ratings, 2.5, axis=0))
    np.testing.assert_allclose(boot.upper, np.percentile(boot.ratings, 97.5, axis=0))


def test_units_resample_both_orders_together():
    """Two orders of one comparison always agree here, so every replica keeps them paired."""
    from arena.importers.records import JudgmentRecord
    from arena.ratings.counts import counts_from_records

    records = []
    rng = np.random.default_rng(0)
    for q in range(300):
        a, b = rng.choice(["x", "y", "z"], 2, replace=False)
        win = "a" if rng.random() < 0.6 else "b"
        records.append(JudgmentRecord(f"q{q}", (a, b), winner=win, presentation=(0, 1), judge="j"))
        records.append(JudgmentRecord(f"q{q}", (a, b), winner=win, presentation=(1, 0), judge="j"))
    counts = counts_from_records(records)
    assert counts.units.n_units == 300  # one unit per question, not per game
    fit = fit_bt(counts)
    merged = unit_stats(counts.unit_types(), fit.design)
    stats = replica_stats(merged, fit.design, 50, np.random.default_rng(1))
    np.testing.assert_allclose(stats[1].sum(axis=0), 600)  # 300 units x 2 games
    assert np.all(stats[1] % 2 == 0)  # games come in pairs


def test_degenerate_replicas_are_regularised_not_crashing():
    # model c has a single win: many replicas lose it and c's MLE runs to -inf
    models = ["a", "b", "c"]
    first = [0, 0, 1, 2, 0, 1]
    second = [1, 1, 0, 0, 2, 2]
    outcome = [FIRST, SECOND, FIRST, FIRST, FIRST, FIRST]
    weight = [30, 20, 25, 1, 10, 12]
    counts = PairwiseCounts.from_cells(models, first, second, outcome, weight)
    boot = bootstrap_bt(counts, 300, seed=0)
    assert boot.n_regularised > 0
    assert np.all(np.isfinite(boot.ratings))


def test_categorical_draws_are_exact_in_integers():
    """The top-up's categorical draws: chi-square against m / N, zero-weight units never."""
    from arena.ratings.bootstrap import MultinomialSampler

    m = np.array([7, 1, 0, 12, 3, 3, 50, 0, 1])
    picks = MultinomialSampler(m).categorical(200_000, np.random.default_rng(2))
    observed = np.bincount(picks, minlength=m.size)
    assert observed[m == 0].sum() == 0
    keep = m > 0
    assert chisquare(observed[keep], m[keep] / m.sum() * picks.size).pvalue > 1e-3


@pytest.mark.parametrize("mean", [0.0, 0.4, 3.0, 27.5, 812.0, 40_000.0])
def test_poisson_table_matches_the_poisson_pmf(mean):
    """Table inversion (guide table, bisection in the tails) against scipy's pmf."""
    from scipy.stats import poisson

    from arena.ratings.bootstrap import PoissonTable

    table = PoissonTable(np.array([mean, 1.0, mean]))
    draws = table.draw(60_000, np.random.default_rng(3))
    x = draws[[0, 2]].ravel()
    assert x.min() >= 0
    if mean == 0.0:
        assert np.all(x == 0)
        return
    values = np.arange(x.min(), x.max() + 1)
    observed = np.bincount(x - x.min())
    expected = poisson.pmf(values, mean) * x.size
    keep = expected >= 5  # pool the tails
    pooled_obs = np.r_[observed[keep], observed[~keep].sum()]
    pooled_exp = np.r_[expected[keep], x.size - expected[keep].sum()]
    assert chisquare(pooled_obs, pooled_exp).pvalue > 1e-3
    assert x.mean() == pytest.approx(mean, abs=5 * np.sqrt(mean / x.size))


@pytest.mark.parametrize("options", [{}, {"position": True}, {"ties": "davidson"}, {"prior": 0.5}])
def test_batched_newton_equals_newton_per_replica(options):
    from arena.ratings.bootstrap import newton_replicas

    _, counts = small_counts(5)
    fit = fit_bt(counts, **options)
    merged = unit_stats(counts.unit_types(), fit.design)
    stats = replica_stats(merged, fit.design, 30, np.random.default_rng(4))
    x0 = np.zeros((fit.design.n_params, 30))  # far from the answer: the line search works
    if options.get("ties") == "davidson":
        x0[-1] = fit.tie_log_nu
    theta, ok = newton_replicas(fit.design, stats, x0, tol=1e-10)
    assert ok.all()
    for b in range(0, 30, 7):
        ref = fit_design(fit.design, stats[:, :, b].T, counts.models, tol=1e-12).params
        np.testing.assert_allclose(theta[:, b], ref, atol=1e-8)


def test_batched_newton_with_covariates_that_have_zeros():
    """Style-control designs: rows of different length in the sparse design matrix."""
    from dataclasses import replace

    from arena.ratings.bootstrap import newton_replicas

    _, counts = small_counts(6)
    fit = fit_bt(counts)
    rng = np.random.default_rng(7)
    covariates = rng.normal(size=(fit.design.n_rows, 2)) * (
        rng.random((fit.design.n_rows, 2)) < 0.6
    )
    design = replace(fit.design, covariates=covariates, covariate_prior=0.3)
    merged = unit_stats(counts.unit_types(), design)
    stats = replica_stats(merged, design, 12, np.random.default_rng(8))
    theta, ok = newton_replicas(design, stats, np.zeros((design.n_params, 12)), tol=1e-10)
    assert ok.all()
    for b in (0, 5, 11):
        ref = fit_design(design, stats[:, :, b].T, counts.models, tol=1e-12).params
        np.testing.assert_allclose(theta[:, b], ref, atol=1e-8)


def test_tiny_sparse_board_solves_every_replica_exactly():
    """30 votes on 8 models: many replicas lose a link. Each replica's answer is its own
    MLE (or, without one, its FALLBACK_PRIOR MAP), as Newton on that replica alone."""
    from arena.ratings.bootstrap import FALLBACK_PRIOR
    from arena.ratings.graph import strongly_connected_columns

    rng = np.random.default_rng(1)
    first, second = [], []
    for _ in range(30):
        i, j = rng.choice(8, 2, replace=False)
        first.append(i)
        second.append(j)
    outcome = rng.integers(0, 3, 30)
    counts = PairwiseCounts.from_cells(
        [f"m{i}" for i in range(8)], first, second, outcome, np.ones(30)
    )
    fit = fit_bt(counts)
    assert fit.mle_exists
    boot = bootstrap_bt(counts, 250, seed=3, fit=fit)
    assert np.all(np.isfinite(boot.ratings)) and 0 < boot.n_regularised < 250
    # redraw the same replicas (one block of 125 from each child generator)
    children = np.random.default_rng(3).spawn(2)
    merged = unit_stats(counts.unit_types(), fit.design)
    stats = np.concatenate(
        [replica_stats(merged, fit.design, 125, child) for child in children], axis=2
    )
    d = fit.design
    wins, total = stats
    exists = strongly_connected_columns(d.n_models, d.first, d.second, wins > 0, total - wins > 0)
    assert (~exists).sum() == boot.n_regularised
    for b in range(0, 250, 17):
        design = d if exists[b] else d.with_prior(FALLBACK_PRIOR)
        ref = fit_design(design, stats[:, :, b].T, counts.models, tol=1e-12).params
        np.testing.assert_allclose(boot.params[b], ref, atol=1e-6)


def test_ill_conditioned_replicas_count_as_regularised_only_without_an_mle():
    """a beat b 10M times, b beat c 5M times, c beat a 3 times: a replica has an MLE iff
    it keeps one of c's 3 wins (P = 1 - e^-3). Strengths ~15 apart make Newton stall on
    rounding near the answer; that must count as solved, not send it to the prior."""
    counts = PairwiseCounts.from_cells(
        ["a", "b", "c"], [0, 1, 2], [1, 2, 0], [FIRST] * 3, [10_000_000, 5_000_000, 3]
    )
    boot = bootstrap_bt(counts, 1000, seed=0)
    expected = 1000 * math.exp(-3)  # ~50, binomial sd ~7
    assert abs(boot.n_regularised - expected) < 4 * math.sqrt(expected)


@pytest.mark.parametrize("mean", [2.5, 1e4, 1e7, 3e8])
def test_poisson_table_tails_carry_no_rounding(mean):
    """The table's end values stand for tails below 1e-18: rounding must not land there."""
    from scipy.stats import poisson

    from arena.ratings.bootstrap import PoissonTable

    table = PoissonTable(np.array([mean]))
    cdf = table.cdf
    assert 1.0 - cdf[table.seg_last[0] - 1] < 1e-12  # P(last value)
    start = table.seg_last[0] - cdf.size + 1
    assert cdf[start] < 1e-12 or start == -table.value_shift[0]  # P(first) unless it is 0
    x = np.maximum(0, np.round(mean + np.sqrt(mean) * np.array([-2.0, 0.0, 2.0])))
    at = (x + table.value_shift[0]).astype(int)
    np.testing.assert_allclose(cdf[at], poisson.cdf(x, mean), rtol=1e-6)
