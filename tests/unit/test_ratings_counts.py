"""Aggregation: importer records -> cells and bootstrap units."""

import numpy as np
import pytest

from arena.importers.records import JudgmentRecord, PromptRecord
from arena.ratings.counts import BOTH_BAD, FIRST, SECOND, TIE, PairwiseCounts, counts_from_records


def cells(counts):
    return {
        (counts.models[f], counts.models[s], int(o)): w
        for f, s, o, w in zip(
            counts.first, counts.second, counts.outcome, counts.weight, strict=True
        )
    }


def test_winner_names_a_slot_and_cells_follow_the_order_shown():
    records = [
        JudgmentRecord("m1", ("x", "y"), winner="a"),  # x shown first and won
        JudgmentRecord("m2", ("x", "y"), winner="a", presentation=(1, 0)),  # y shown first, lost
        JudgmentRecord("m3", ("x", "y"), winner="bothbad", presentation=(1, 0)),
        PromptRecord("p", "text"),  # not a judgment: ignored
    ]
    c = counts_from_records(records)
    assert cells(c) == {("x", "y", FIRST): 1, ("y", "x", SECOND): 1, ("y", "x", BOTH_BAD): 1}
    np.testing.assert_array_equal(c.votes_per_model(), [3, 3])


def test_both_orders_form_one_unit_and_identical_units_merge():
    records = []
    for q in range(10):  # ten questions, each judged in both orders, all "x wins both"
        records.append(JudgmentRecord(f"q{q}", ("x", "y"), winner="a", judge="j"))
        records.append(
            JudgmentRecord(f"q{q}", ("x", "y"), winner="a", presentation=(1, 0), judge="j")
        )
    records.append(JudgmentRecord("q99", ("x", "y"), winner="tie", judge="j"))
    c = counts_from_records(records)
    assert c.units.n_units == 11
    assert c.units.members.shape[0] == 2  # two unit types: "x wins both orders", "a tie"
    assert sorted(c.units.multiplicity.tolist()) == [1, 10]
    np.testing.assert_allclose(c.units.multiplicity @ c.units.members, c.weight)


def test_weighted_records_are_separate_votes_and_strong_verdicts_weigh_more():
    records = [
        JudgmentRecord("pair", ("x", "y"), winner="a", weight=500),
        JudgmentRecord("pair", ("x", "y"), winner="b", weight=300),
        JudgmentRecord("h1", ("x", "y"), winner="b", strength=2, judge="j"),
    ]
    c = counts_from_records(records, strong_weight=3)
    assert cells(c) == {("x", "y", FIRST): 500, ("x", "y", SECOND): 303}
    assert c.votes.sum() == 801  # votes are not inflated by the strength weighting
    assert c.units.n_units == 801


def test_soft_preferences_split_one_vote():
    c = counts_from_records([JudgmentRecord("i1", ("base", "m"), preference=1.75)])
    assert cells(c) == {("base", "m", FIRST): 0.25, ("base", "m", SECOND): 0.75}
    assert c.units.n_units == 1


def test_rankings_break_into_pairs_in_one_unit():
    rec = JudgmentRecord(
        "k1", ("a", "b", "c"), kind="ranking", ranking=(2, 1, 2), presentation=(2, 0, 1)
    )
    c = counts_from_records([rec])
    # shown order c, a, b: (c, a) tie, (c, b) b wins -> SECOND, (a, b) SECOND
    assert cells(c) == {("c", "a", TIE): 1, ("c", "b", SECOND): 1, ("a", "b", SECOND): 1}
    assert c.units.n_units == 1 and c.units.members.shape == (1, 3)


def test_from_table_and_validation():
    c = PairwiseCounts.from_table(["a", "b"], [[0, 1]], [[5, 3, 0, 2]])
    assert cells(c) == {("a", "b", FIRST): 5, ("a", "b", SECOND): 3, ("a", "b", BOTH_BAD): 2}
    assert c.total_votes == 10 and c.unit_types().n_units == 10
    with pytest.raises(ValueError, match="itself"):
        PairwiseCounts(["a"], [0], [0], [0], [1])
    with pytest.raises(ValueError, match="outcome"):
        PairwiseCounts(["a", "b"], [0], [1], [7], [1])
    with pytest.raises(ValueError, match="fractional"):
        PairwiseCounts(["a", "b"], [0], [1], [0], [0.5]).unit_types()


def test_subset_keeps_cells_among_kept_models():
    c = PairwiseCounts.from_table(["a", "b", "c"], [[0, 1], [1, 2]], [[1, 2, 0, 0], [3, 4, 0, 0]])
    sub = c.subset([1, 2])
    assert sub.models == ("b", "c") and cells(sub) == {("b", "c", FIRST): 3, ("b", "c", SECOND): 4}


def test_records_can_be_independent_units():
    records = [JudgmentRecord("pair-0-1", ("x", "y"), winner=w) for w in ("tie", "bothbad", "a")]
    assert counts_from_records(records).units.n_units == 1  # one match, judged three times
    assert counts_from_records(records, group_by_match=False).units.n_units == 3


def test_counts_from_arrays_is_the_vectorised_path():
    from arena.ratings import counts_from_arrays

    # rows 0 and 1 are one unit (both orders of a comparison); row 2 stands for 4 votes
    c = counts_from_arrays(
        ("x", "y"),
        unit=np.array([0, 0, 1]),
        first=np.array([0, 1, 0]),
        second=np.array([1, 0, 1]),
        outcome=np.array([FIRST, SECOND, TIE]),
        amount=np.ones(3),
        votes=np.ones(3),
        mult=np.array([1, 1, 4]),
    )
    assert cells(c) == {("x", "y", FIRST): 1, ("y", "x", SECOND): 1, ("x", "y", TIE): 4}
    assert c.units.n_units == 5 and c.units.members.shape[0] == 2
