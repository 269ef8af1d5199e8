"""Annotator quality (judges.audit_metrics.annotators) and the hand-out plan (pure)."""

from types import SimpleNamespace

import numpy as np
import pytest

from judges.audit_metrics.annotators import annotator_quality, pool_alpha
from judges.audit_metrics.krippendorff import krippendorff_alpha
from judges.campaigns import _in_slot_terms, plan_hand_out


def test_it_counts_gold_accuracy_agreement_and_time():
    # items 1, 2 regular (3 annotators each), item 9 gold (answer code 0)
    item = [1, 1, 1, 2, 2, 2, 9, 9]
    member = [10, 11, 12, 10, 11, 12, 10, 11]
    code = [0, 0, 1, 2, 2, 2, 0, 1]
    gold = [-1, -1, -1, -1, -1, -1, 0, 0]
    seconds = [5, 6, 7, 8, 9, np.nan, 10, 1]
    q = {a.member: a for a in annotator_quality(item, member, code, gold, seconds)}
    assert (q[10].gold_answers, q[10].gold_correct, q[10].gold_accuracy) == (1, 1, 1.0)
    assert (q[11].gold_correct, q[11].gold_accuracy) == (0, 0.0)
    assert np.isnan(q[12].gold_accuracy) and q[12].gold_answers == 0
    # member 10: item 1 agrees with 1 of 2 others, item 2 with 2 of 2: 3/4
    assert (q[10].agreement_pairs, q[10].agreement) == (4, 0.75)
    assert q[12].agreement == 2 / 4  # item 1: 0 of 2, item 2: 2 of 2
    assert q[10].median_seconds == 8.0 and q[12].median_seconds == 7.0  # NaN left out
    assert q[10].answers == 3


def test_it_flags_a_guesser_on_gold_and_a_fast_clicker():
    n = 8
    item = list(range(100, 100 + n)) * 2
    member = [1] * n + [2] * n
    gold = [0] * (2 * n)
    code = [0] * n + [1] * n  # member 1 always right, member 2 always wrong
    seconds = [20.0] * n + [1.0] * n
    q = {a.member: a for a in annotator_quality(item, member, code, gold, seconds)}
    assert q[1].flags == ()
    assert any("gold accuracy 0/8" in f for f in q[2].flags)
    assert any("median 1.0 s" in f for f in q[2].flags)


def test_pool_alpha_is_krippendorffs_alpha_of_the_items_by_annotators_table():
    rng = np.random.default_rng(3)
    item = np.repeat(np.arange(30), 3)
    member = np.tile([5, 6, 7], 30)
    truth = rng.integers(0, 2, 30)
    code = np.where(rng.random(90) < 0.8, np.repeat(truth, 3), 3)
    got = pool_alpha(item, member, code, n_boot=0)
    expected = krippendorff_alpha(code.reshape(30, 3).astype(float), "nominal", n_boot=0)
    assert got.value == pytest.approx(expected.value)
    assert 0.2 < got.value < 1


def test_a_verdict_in_the_order_shown_is_stored_in_slot_terms():
    assert _in_slot_terms("a", None, (1, 0)) == ("b", None)
    assert _in_slot_terms("b", None, (1, 0)) == ("a", None)
    assert _in_slot_terms("a", None, (0, 1)) == ("a", None)
    assert _in_slot_terms("tie", None, (1, 0)) == ("tie", None)
    # shown: slot 2, slot 0, slot 1; ranked 1, 3, 2 in that order
    assert _in_slot_terms(None, (1, 3, 2), (2, 0, 1)) == (None, [3, 2, 1])


def _campaign(**fields):
    base = {"redundancy": 2, "queue_size": 3, "gold_rate": 0.0}
    return SimpleNamespace(**{**base, **fields})


def test_the_plan_gives_each_item_to_r_annotators_balanced_and_never_twice():
    members = [1, 2, 3, 4]
    items = {i: False for i in range(10, 16)}  # 6 items x r=2 = 12 copies
    plan = plan_hand_out(_campaign(), members, items, [], np.random.default_rng(0))
    assert len(plan) == 12  # every queue filled to 3
    per_item = {i: [m for it, m in plan if it == i] for i in items}
    assert all(len(ms) == 2 and len(set(ms)) == 2 for ms in per_item.values())
    per_member = np.bincount([m for _, m in plan])[1:]
    assert per_member.tolist() == [3, 3, 3, 3]


def test_the_plan_respects_what_is_held_and_hands_expired_items_to_someone_else():
    items = {10: False, 11: False}
    held = [(10, 1, "done"), (10, 2, "expired"), (11, 1, "pending")]
    plan = plan_hand_out(_campaign(), [1, 2, 3], items, held, np.random.default_rng(0))
    # item 10 needs one more copy, not from 1 (has it); 11 needs one more, not from 1
    assert sorted(plan) == sorted([(10, 3), (11, 2)]) or sorted(plan) == sorted([(10, 2), (11, 3)])
    assert all(member != 1 for _, member in plan)


def test_gold_items_are_mixed_in_at_the_rate():
    items = {i: False for i in range(1000, 1400)} | {i: True for i in range(1, 200)}
    campaign = _campaign(redundancy=1, queue_size=40, gold_rate=0.25)
    plan = plan_hand_out(campaign, [1, 2, 3, 4], items, [], np.random.default_rng(1))
    for member in (1, 2, 3, 4):
        mine = [items[i] for i, m in plan if m == member]
        assert len(mine) == 40
        assert abs(sum(mine) - 10) <= 1  # within one of the rate, always
        assert len({i for i, m in plan if m == member}) == 40


def test_an_item_let_expire_goes_back_to_its_annotator_only_when_nothing_else_is_left():
    # a pool of exactly r = 2: member 1 let item 10 expire; member 2 answered it
    items = {10: False, 11: False}
    held = [(10, 1, "expired"), (10, 2, "done"), (11, 1, "done"), (11, 2, "done")]
    plan = plan_hand_out(_campaign(), [1, 2], items, held, np.random.default_rng(0))
    assert plan == [(10, 1)]
    # with a third member free, the item goes to them instead
    plan = plan_hand_out(_campaign(), [1, 2, 3], items, held, np.random.default_rng(0))
    assert plan == [(10, 3)]


def test_an_item_let_expire_goes_to_the_other_annotator_whoever_comes_first():
    items = {10: False}
    held = [(10, 1, "expired")]  # member 1 sorts first (same totals, lower id)
    plan = plan_hand_out(_campaign(redundancy=1), [1, 2], items, held, np.random.default_rng(0))
    assert plan == [(10, 2)]
