"""Accuracy, raw agreement, Cohen's and Fleiss' kappa against scikit-learn/statsmodels."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
from statsmodels.stats.proportion import proportion_confint

from judges.audit_metrics import (
    BOTH_BAD,
    INVALID,
    MISSING,
    TIE,
    A,
    B,
    accuracy,
    cohen_kappa,
    fleiss_kappa,
    fleiss_kappa_table,
    human_majority,
    raw_agreement,
)

labels = st.integers(min_value=0, max_value=4)


def paired(min_size=2, max_size=60):
    return st.lists(st.tuples(labels, labels), min_size=min_size, max_size=max_size)


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn: a single label
@settings(max_examples=80, deadline=None)
@given(paired(), st.sampled_from([None, "linear", "quadratic"]))
def test_cohen_kappa_matches_sklearn(pairs, weights):
    a, b = map(np.array, zip(*pairs, strict=True))
    ref = cohen_kappa_score(a, b, weights=weights)
    ours = cohen_kappa(a, b, weights=weights, n_boot=0).value
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(labels, min_size=2, max_size=60))
def test_kappa_is_one_for_identical_raters(a):
    a = np.array(a)
    assume(len(np.unique(a)) > 1)
    est = cohen_kappa(a, a, n_boot=50, rng=0)
    assert est.value == pytest.approx(1.0)
    # Every resample of identical raters also agrees perfectly (or is undefined).
    assert est.low == pytest.approx(1.0) and est.high == pytest.approx(1.0)
    assert fleiss_kappa(np.stack([a, a, a], axis=1), n_boot=0).value == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=5).flatmap(
        lambda m: st.lists(st.lists(labels, min_size=m, max_size=m), min_size=2, max_size=40)
    )
)
def test_fleiss_kappa_matches_statsmodels(rows):
    ratings = np.array(rows)
    table, _ = aggregate_raters(ratings)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = sm_fleiss(table, method="fleiss")
    ours = fleiss_kappa(ratings, n_boot=0).value
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-9)
        assert fleiss_kappa_table(table, n_boot=0).value == pytest.approx(ref, abs=1e-9)


def test_fleiss_kappa_on_fleiss_1971_table():
    # The worked example of Wikipedia's "Fleiss' kappa" article (10 items, 14 raters,
    # 5 categories): kappa = 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    est = fleiss_kappa_table(table, n_boot=300, rng=0)
    assert round(est.value, 3) == 0.210
    assert est.value == pytest.approx(sm_fleiss(table), abs=1e-12)
    assert est.low < est.value < est.high


def test_fleiss_kappa_refuses_missing_ratings():
    with pytest.raises(ValueError, match="krippendorff"):
        fleiss_kappa(np.array([[A, B], [A, MISSING]]))


def test_bootstrap_interval_is_seeded_and_covers_the_estimate():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 400)
    noisy = np.where(rng.random(400) < 0.7, truth, rng.integers(0, 3, 400))
    one = cohen_kappa(truth, noisy, rng=5)
    two = cohen_kappa(truth, noisy, rng=np.random.default_rng(5))
    assert one == two
    assert one.low < one.value < one.high
    assert one.method == "bootstrap" and one.n == 400


def test_accuracy_keeps_invalid_as_wrong_and_drops_missing():
    verdicts = np.array([A, B, INVALID, TIE, MISSING, A])
    gold = np.array([A, A, A, TIE, A, MISSING])
    est = accuracy(verdicts, gold)
    assert (est.n, est.value) == (4, 0.5)
    low, high = proportion_confint(2, 4, method="wilson")
    assert (est.low, est.high) == pytest.approx((low, high))


def test_raw_agreement_with_and_without_ties():
    judge = np.array([A, B, TIE, BOTH_BAD, A, B, MISSING])
    human = np.array([A, A, TIE, TIE, TIE, B, A])
    with_ties = raw_agreement(judge, human)
    # FastChat counts "tie" and "tie (bothbad)" as agreeing.
    assert (with_ties.n, with_ties.value) == (6, pytest.approx(4 / 6))
    without = raw_agreement(judge, human, ties=False)
    assert (without.n, without.value) == (3, pytest.approx(2 / 3))


def test_human_majority_needs_more_than_half():
    ratings = np.array(
        [
            [A, A, B],  # 2 of 3
            [A, B, TIE],  # all differ: no majority
            [B, B, B],
            [A, B, MISSING],  # 1-1: no majority
            [TIE, TIE, MISSING],  # 2 of 2
        ]
    )
    assert human_majority(ratings).tolist() == [A, MISSING, B, MISSING, TIE]
