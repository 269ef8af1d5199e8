"""arena.importers.preferences: the per-answer-pair tally and choice against a plain loop."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.importers.preferences import PreferenceFilters, choose, tally_pairs

verdict = st.tuples(
    st.integers(0, 2),  # prompt
    st.integers(0, 3),  # output in slot 0
    st.integers(0, 3),  # output in slot 1
    st.sampled_from(["a", "b", "tie", "bothbad"]),
    st.booleans(),  # slot 0 shown first
    st.integers(1, 3),  # weight
)


@given(st.lists(verdict, min_size=1, max_size=60))
@settings(max_examples=150, deadline=None)
def test_tally_and_choice_match_a_loop(rows):
    rows = [r for r in rows if r[1] != r[2]]
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    t = tally_pairs(*cols, np.full(len(rows), np.nan))
    chosen = choose(t, PreferenceFilters())
    expected = {}
    for prompt, o0, o1, winner, zero_first, w in rows:
        lo, hi = min(o0, o1), max(o0, o1)
        e = expected.setdefault((prompt, lo, hi), {"lo": 0, "hi": 0, "tie": 0, "order": {}})
        if winner in ("a", "b"):
            out = o0 if winner == "a" else o1
            side = "lo" if out == lo else "hi"
            e[side] += w
            lo_first = zero_first == (o0 == lo)
            e["order"].setdefault(lo_first, {"lo": 0, "hi": 0})[side] += w
        else:
            e["tie"] += w
    assert len(t.prompt) == len(expected)
    for i, key in enumerate(
        zip(t.prompt.tolist(), t.first.tolist(), t.second.tolist(), strict=True)
    ):
        e = expected[key]
        assert (t.first_votes[i], t.second_votes[i], t.ties[i]) == (e["lo"], e["hi"], e["tie"])
        assert chosen.keep[i] == (e["lo"] != e["hi"])
        if e["lo"] != e["hi"]:
            side = "lo" if e["lo"] > e["hi"] else "hi"
            other = "hi" if side == "lo" else "lo"
            assert chosen.chosen_is_first[i] == (side == "lo")
            assert chosen.agreement[i] == pytest.approx(e[side] / (e["lo"] + e["hi"]))
            if len(e["order"]) == 2:
                agree = all(o[side] > o[other] for o in e["order"].values())
                assert chosen.orders_agree[i] == int(agree)
            else:
                assert chosen.orders_agree[i] == -1


def test_soft_preferences_become_the_probability_of_the_chosen_answer():
    # Two verdicts on outputs 5 and 9: AlpacaEval preference 1.2 (slot 0 = 5 better, p=0.8)
    # and, swapped slots, 1.4 (slot 0 = 9 better with p=0.6, so 5 with 0.4).
    t = tally_pairs([1, 1], [5, 9], [9, 5], ["a", "b"], [True, True], [1, 1], [1.2, 1.4])
    chosen = choose(t, PreferenceFilters())
    assert chosen.chosen_is_first[0] and chosen.probability[0] == pytest.approx(0.6)
    assert chosen.orders_agree[0] == 1  # 5 won shown first, and shown second
    assert not choose(t, PreferenceFilters(min_probability=0.7)).keep[0]
    assert choose(t, PreferenceFilters(min_probability=0.6)).keep[0]
