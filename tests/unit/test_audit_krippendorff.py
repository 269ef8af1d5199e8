"""Krippendorff's alpha: the worked examples of Krippendorff (2011) and its properties.

Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability. Annenberg School
for Communication, University of Pennsylvania. Data are printed there with observers as
rows; here they are transposed to (units, coders).
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from judges.audit_metrics import krippendorff_alpha

nan = np.nan

# A. Binary data, two observers, no missing data: alpha = 0.095.
BINARY = np.array([[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]).T

# B. Nominal data, two observers, no missing data: alpha = 0.692.
NOMINAL = np.array([list("aabbdcccedda"), list("babbbccceddd")]).T

# C. Nominal data, any number of observers, missing data: alpha = 0.743 (nominal);
# the same data as interval values: alpha = 0.849. Ordinal 0.815 and ratio 0.797 are the
# values R's irr::kripp.alpha (and DescTools::KrippAlpha) print for this example.
MISSING_DATA = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
).T


def codes(letters):
    """Letters to numbers (only equality matters for nominal data)."""
    _, inv = np.unique(letters, return_inverse=True)
    return inv.reshape(letters.shape).astype(float)


def test_binary_two_observers():
    # By hand: o_00 = 10, o_01 = o_10 = 4, o_11 = 2; n_0 = 14, n_1 = 6, n = 20;
    # alpha = 1 - (n - 1) o_01 / (n_0 n_1) = 1 - 19 * 4 / 84 = 0.0952.
    est = krippendorff_alpha(BINARY, n_boot=0)
    assert est.value == pytest.approx(1 - 19 * 4 / 84, abs=1e-12)
    assert round(est.value, 3) == 0.095


def test_nominal_two_observers():
    # By hand: 3 disagreeing units -> off-diagonal mass 6; n = 24; value counts
    # a 4, b 6, c 6, d 6, e 2 -> sum_{c != k} n_c n_k = 576 - 128 = 448;
    # alpha = 1 - 23 * 6 / 448 = 0.692.
    est = krippendorff_alpha(codes(NOMINAL), n_boot=0)
    assert est.value == pytest.approx(1 - 23 * 6 / 448, abs=1e-12)
    assert round(est.value, 3) == 0.692
    assert est.n == 12


@pytest.mark.parametrize(
    "level, published",
    [("nominal", 0.743), ("interval", 0.849), ("ordinal", 0.815), ("ratio", 0.797)],
)
def test_any_number_of_observers_with_missing_data(level, published):
    est = krippendorff_alpha(MISSING_DATA, level, n_boot=200, rng=0)
    assert round(est.value, 3) == published
    assert est.n == 11  # unit 12 has a single value: not pairable
    assert est.low <= est.value <= est.high


def test_nominal_value_by_hand():
    # 40 pairable values; value counts 1 -> 9, 2 -> 13, 3 -> 10, 4 -> 5, 5 -> 3.
    # Off-diagonal coincidences: unit 2 {2,2,2,3}: 6 ordered pairs / (4 - 1) = 2;
    # unit 6 {1,2,3,4}: 12 / 3 = 4; unit 8 {1,1,1,2}: 6 / 3 = 2; total 8.
    # alpha = 1 - (n - 1) * 8 / (n^2 - sum n_c^2) = 1 - 39 * 8 / 1216 = 0.7434.
    n_c = np.array([9, 13, 10, 5, 3])
    assert n_c.sum() == 40
    alpha = 1 - 39 * 8 / (40**2 - np.sum(n_c**2))
    assert krippendorff_alpha(MISSING_DATA, n_boot=0).value == pytest.approx(alpha, abs=1e-12)


def reliability_data(max_units=25):
    return st.integers(min_value=2, max_value=4).flatmap(
        lambda m: st.lists(
            st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=m, max_size=m),
            min_size=2,
            max_size=max_units,
        )
    )


def to_array(rows):
    return np.array([[nan if v is None else v for v in row] for row in rows], dtype=float)


@settings(max_examples=60, deadline=None)
@given(reliability_data(), st.permutations(range(5)))
def test_nominal_alpha_ignores_the_names_of_categories(rows, perm):
    data = to_array(rows)
    relabelled = data.copy()
    present = ~np.isnan(data)
    relabelled[present] = np.array(perm)[data[present].astype(int)] * 10 + 3
    a = krippendorff_alpha(data, n_boot=0).value
    b = krippendorff_alpha(relabelled, n_boot=0).value
    assert a == pytest.approx(b, abs=1e-12, nan_ok=True)


@settings(max_examples=60, deadline=None)
@given(reliability_data())
def test_ordinal_alpha_depends_only_on_order_and_interval_on_affine_scale(rows):
    data = to_array(rows)
    monotone = np.exp(data)  # strictly increasing: same ranks
    affine = 3 * data - 7
    ordinal = krippendorff_alpha(data, "ordinal", n_boot=0).value
    interval = krippendorff_alpha(data, "interval", n_boot=0).value
    assert krippendorff_alpha(monotone, "ordinal", n_boot=0).value == pytest.approx(
        ordinal, abs=1e-9, nan_ok=True
    )
    assert krippendorff_alpha(affine, "interval", n_boot=0).value == pytest.approx(
        interval, abs=1e-9, nan_ok=True
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=4).flatmap(
        lambda m: st.lists(
            st.lists(st.integers(0, 3), min_size=m, max_size=m), min_size=2, max_size=30
        )
    )
)
def test_complete_nominal_alpha_is_small_sample_corrected_fleiss_kappa(rows):
    # With every unit coded by all m coders: 1 - alpha = (1 - kappa_Fleiss) (n - 1) / n,
    # n = units x coders (Krippendorff 2011, "alpha's embrace of other statistics").
    data = np.array(rows)
    table, _ = aggregate_raters(data)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = sm_fleiss(table)
    assume(np.isfinite(kappa))
    n = data.size
    alpha = krippendorff_alpha(data.astype(float), n_boot=0).value
    assert alpha == pytest.approx(1 - (1 - kappa) * (n - 1) / n, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(reliability_data())
def test_identical_coders_give_alpha_one(rows):
    first = to_array(rows)[:, :1]
    data = np.hstack([first, first, first])
    assume(len(np.unique(first[~np.isnan(first)])) > 1)
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(data, level, n_boot=0).value == pytest.approx(1.0)


def test_rejects_unknown_level():
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(BINARY, "circular")
