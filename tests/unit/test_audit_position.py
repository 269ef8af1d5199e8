"""Position bias on simulated judges, and properties of the position metrics."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from judges.audit_metrics import (
    BOTH_BAD,
    FIRST,
    INVALID,
    MISSING,
    SECOND,
    TIE,
    combine_orders,
    first_slot_win_rate,
    position_consistency,
    position_preference,
    swap,
    to_answer_terms,
)

verdict_codes = st.sampled_from([FIRST, SECOND, TIE, BOTH_BAD, INVALID])


def simulate_judge(first_slot_preference, n, rng):
    """Slot verdicts of a judge on ``n`` battles shown in random order.

    Answer A is better in a random half of the pairs. With probability ``bias`` the judge
    ignores the answers and picks slot 0; otherwise it picks the better answer. An
    overall first-slot win rate ``p`` therefore needs ``bias = 2p - 1``.
    """
    bias = 2 * first_slot_preference - 1
    a_better = rng.random(n) < 0.5
    swapped = rng.random(n) < 0.5  # randomised presentation order
    better_slot = np.where(a_better != swapped, FIRST, SECOND)
    lazy = rng.random(n) < bias
    return np.where(lazy, FIRST, better_slot), swapped


def test_it_flags_a_judge_with_a_first_slot_preference_of_0_7():
    rng = np.random.default_rng(7)
    slots, _ = simulate_judge(0.7, 400, rng)
    test = first_slot_win_rate(slots)
    assert test.flagged
    assert test.p_value < 0.05
    assert test.win_rate.excludes(0.5)
    assert test.win_rate.low < 0.7 < test.win_rate.high
    assert test.win_rate.method == "exact"


def test_it_does_not_flag_an_unbiased_judge():
    rng = np.random.default_rng(8)
    slots, _ = simulate_judge(0.5, 400, rng)
    test = first_slot_win_rate(slots)
    assert not test.flagged
    assert not test.win_rate.excludes(0.5)


def test_false_alarm_rate_is_near_the_test_level():
    rng = np.random.default_rng(9)
    flags = [first_slot_win_rate(simulate_judge(0.5, 200, rng)[0]).flagged for _ in range(200)]
    assert np.mean(flags) < 0.09  # exact test: at most 5% in expectation


def test_interval_and_p_value_match_scipy():
    slots = np.array([FIRST] * 31 + [SECOND] * 19 + [TIE] * 4 + [INVALID, MISSING])
    test = first_slot_win_rate(slots)
    ref = stats.binomtest(31, 50)
    ci = ref.proportion_ci(method="exact")
    assert (test.n_first, test.n_second, test.n_ties) == (31, 19, 4)
    assert test.p_value == pytest.approx(ref.pvalue)
    assert (test.win_rate.low, test.win_rate.high) == pytest.approx((ci.low, ci.high))


def test_a_biased_judge_in_both_orders_is_inconsistent_with_primacy():
    rng = np.random.default_rng(10)
    n = 300
    a_better = rng.random(n) < 0.5
    lazy = rng.random(n) < 0.4
    # Order 1: A in slot 0. Order 2: B in slot 0. A lazy judge picks slot 0 both times.
    order1 = np.where(lazy | a_better, FIRST, SECOND)
    order2 = np.where(lazy | ~a_better, FIRST, SECOND)
    cons = position_consistency(order1, order2)
    # Inconsistent exactly where the judge was lazy against the better answer in one order.
    expected = np.mean(order1 == swap(order2))
    assert cons.value == pytest.approx(expected)
    pref = position_preference(order1, order2)
    assert pref.primacy.value == 1.0 and pref.recency.value == 0.0
    assert pref.favoured_slot == "first"


def test_missing_pairs_are_left_out_and_ties_compare_as_ties():
    order1 = np.array([FIRST, TIE, INVALID, MISSING, SECOND, BOTH_BAD])
    order2 = np.array([SECOND, TIE, INVALID, FIRST, SECOND, TIE])
    est = position_consistency(order1, order2)
    # consistent: FIRST/SECOND (answer A both times), TIE/TIE, INVALID/INVALID; not:
    # SECOND/SECOND (recency), BOTH_BAD/TIE (different verdicts).
    assert (est.n, round(est.value * est.n)) == (5, 3)
    pref = position_preference(order1, order2)
    assert (pref.n_inconsistent, pref.recency.value, pref.primacy.value) == (2, 0.5, 0.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(verdict_codes, verdict_codes), min_size=1, max_size=40))
def test_consistency_is_symmetric_in_the_two_orders(pairs):
    o1, o2 = map(np.array, zip(*pairs, strict=True))
    assert position_consistency(o1, o2).value == position_consistency(o2, o1).value
    p12, p21 = position_preference(o1, o2), position_preference(o2, o1)
    assert (p12.primacy.value, p12.recency.value) == pytest.approx(
        (p21.primacy.value, p21.recency.value), nan_ok=True
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(verdict_codes, min_size=1, max_size=60))
def test_swapping_slots_mirrors_the_first_slot_rate(verdicts):
    v = np.array(verdicts)
    a, b = first_slot_win_rate(v), first_slot_win_rate(swap(v))
    if a.n_first + a.n_second:
        assert a.win_rate.value == pytest.approx(1 - b.win_rate.value)
        assert a.p_value == pytest.approx(b.p_value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(verdict_codes, verdict_codes), min_size=1, max_size=40))
def test_combined_verdict_is_decisive_only_when_consistent(pairs):
    o1, o2 = map(np.array, zip(*pairs, strict=True))
    combined = combine_orders(o1, o2)
    decisive = (combined == FIRST) | (combined == SECOND)
    assert np.all(~decisive | (o1 == swap(o2)))
    assert np.array_equal(to_answer_terms(to_answer_terms(o2, True), True), o2)
