"""Intervals: Wilson and exact against statsmodels, the pattern bootstrap against resampling."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from judges.audit_metrics.estimate import (
    bootstrap,
    patterns,
    proportion,
    weighted_mean_statistic,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_and_exact_match_statsmodels(kn):
    k, n = kn
    w = proportion(k, n)
    assert (w.low, w.high) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-12)
    e = proportion(k, n, method="exact")
    assert (e.low, e.high) == pytest.approx(proportion_confint(k, n, method="beta"), abs=1e-9)


def test_empty_proportion_is_nan():
    est = proportion(0, 0)
    assert est.n == 0 and np.isnan(est.value) and np.isnan(est.low)


def test_patterns_count_identical_items():
    (a, b), counts = patterns(np.array([1, 2, 1, 1]), np.array([0.5, 0.5, 0.5, 0.25]))
    assert sorted(zip(a.tolist(), b.tolist(), counts.tolist(), strict=True)) == [
        (1, 0.25, 1),
        (1, 0.5, 2),
        (2, 0.5, 1),
    ]


def test_pattern_bootstrap_agrees_with_index_resampling():
    # Resampling items = a multinomial over patterns: both give the same distribution of
    # the mean, so their intervals agree to Monte-Carlo error.
    rng = np.random.default_rng(0)
    x = rng.choice([0.0, 0.5, 1.0], 300, p=[0.3, 0.2, 0.5])
    (values,), counts = patterns(x)
    value, low, high = bootstrap(weighted_mean_statistic(values), counts, rng=1, n_boot=4000)
    idx = np.random.default_rng(2).integers(0, x.size, (4000, x.size))
    ref_low, ref_high = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
    assert value == pytest.approx(x.mean())
    assert low == pytest.approx(ref_low, abs=0.01)
    assert high == pytest.approx(ref_high, abs=0.01)


def test_bootstrap_ignores_undefined_replicas_and_handles_no_items():
    value, low, high = bootstrap(lambda w: w[:, 0] / w[:, 1], np.array([1, 1]), rng=0, n_boot=500)
    assert value == 1.0 and np.isfinite(low) and np.isfinite(high)
    v, lo, hi = bootstrap(lambda w: w.sum(axis=1), np.array([], dtype=int))
    assert np.isnan(v) and np.isnan(lo) and np.isnan(hi)
