"""arena.matchmaking.power.run_power: a design's detectable rating difference against the
closed forms, the anchor formula of the same module, and its own inverse."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from arena.matchmaking import DESIGNS, prompts_needed
from arena.matchmaking.power import (
    comparison_graph,
    detectable_rating_difference,
    run_power,
)
from arena.ratings.scale import ELO_SCALE

Z = norm.ppf(0.975) + norm.ppf(0.8)


def design(name, **params):
    return DESIGNS[name](**({"anchor": 0} if name == "anchor" else {}), **params)


def test_round_robin_matches_the_complete_graph_closed_form():
    # Complete graph, w comparisons per pair, information 1/4 each: Var(s_i - s_j) = 2/(w m/4).
    for m, n in ((3, 10), (10, 500), (25, 40)):
        got = run_power(design("round-robin"), m, n, target=50).detectable
        assert got == pytest.approx(Z * math.sqrt(2 / (n * m / 4)) * ELO_SCALE, rel=1e-9)


def test_the_anchor_design_agrees_with_the_win_rate_formula():
    # Two models compared through an anchor on n prompts each: the prompts_needed formula
    # of the same module, on the win-rate difference a rating difference makes at p = 0.5.
    for target in (30.0, 50.0, 100.0):
        d = target / ELO_SCALE
        delta = 1 / (1 + math.exp(-d / 2)) - 1 / (1 + math.exp(d / 2))
        expected = prompts_needed(delta)
        got = run_power(design("anchor"), 6, 100, target=target).prompts_needed
        assert got == pytest.approx(expected, rel=0.02)


@given(
    st.sampled_from(sorted(DESIGNS)),
    st.integers(2, 12),
    st.integers(5, 400),
    st.floats(5, 300),
    st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_prompts_needed_is_the_smallest_count_that_reaches_the_target(name, m, n, target, both):
    if name == "single-elimination":
        m = 2 ** max(1, int(math.log2(m)))  # brackets take powers of two
    d = design(name)
    p = run_power(d, m, n, target=target, both_orders=both)
    assert p.under_powered == (p.detectable > target)
    needed = p.prompts_needed
    assert needed is not None
    assert run_power(d, m, needed, target=target, both_orders=both).detectable <= target
    low = max(int(getattr(d, "screen_prompts", 1)), 1)
    if needed > low:
        assert run_power(d, m, needed - 1, target=target, both_orders=both).detectable > target
    assert p.calls_needed == d.planned_calls(m, needed, both)
    assert p.approximate == (
        name not in ("round-robin", "anchor", "mediocre-anchor", "kwise-groups")
    )


def test_repeats_ties_and_both_orders_count_as_information():
    base = run_power(design("round-robin"), 5, 50, target=50).detectable
    assert run_power(design("round-robin"), 5, 50, target=50, repeats=4).detectable == (
        pytest.approx(base / 2)
    )
    assert run_power(design("round-robin"), 5, 50, target=50, both_orders=True).detectable == (
        pytest.approx(base / math.sqrt(2))
    )
    assert run_power(design("round-robin"), 5, 50, target=50, tie_rate=0.5).detectable == (
        pytest.approx(base * math.sqrt(2))
    )


def test_a_budget_detects_what_its_most_prompts_detect():
    d = design("round-robin")
    p = run_power(d, 4, 100, target=50, budget_calls=6 * 37 + 5)  # 37 prompts fit
    assert p.budget_detectable == pytest.approx(run_power(d, 4, 37, target=50).detectable)
    assert run_power(d, 4, 100, target=50, budget_calls=3).budget_detectable == math.inf
    assert run_power(d, 4, 100, target=50, budget_calls=3).as_dict()["budget_detectable"] is None


def test_a_disconnected_graph_detects_nothing_and_says_so():
    graph = np.zeros((4, 4))
    graph[0, 1] = graph[1, 0] = graph[2, 3] = graph[3, 2] = 100
    assert detectable_rating_difference(graph) == math.inf
    star = comparison_graph(design("anchor"), 4, 10)
    assert star[0].tolist() == [0, 10, 10, 10] and star[1, 2] == 0


def test_the_summary_states_both_figures_and_warns():
    p = run_power(design("anchor"), 8, 100, target=30, budget_calls=1000)
    assert p.under_powered
    text = p.summary()
    assert text.startswith("Under-powered: ") and f"{p.prompts_needed} prompts" in text
    assert "the budget of 1000 calls detects" in text
    with pytest.raises(ValueError, match="positive"):
        run_power(design("anchor"), 8, 100, target=0)


def test_a_jury_pays_its_panel_per_comparison_for_the_same_power():
    one = run_power(design("round-robin"), 5, 40, target=60, budget_calls=1200)
    jury = run_power(design("round-robin"), 5, 40, target=60, panel=3, budget_calls=3600)
    assert jury.planned_calls == 3 * one.planned_calls
    assert jury.calls_needed == 3 * one.calls_needed
    assert jury.prompts_needed == one.prompts_needed
    assert jury.detectable == pytest.approx(one.detectable)
    assert jury.budget_detectable == pytest.approx(one.budget_detectable)


def test_only_designs_that_pick_pairs_from_verdicts_are_approximate():
    from arena.matchmaking.kwise import AdaptiveGroups, RandomGroups, SlidingWindows

    assert not run_power(RandomGroups(k=4), 8, 20, target=60).approximate
    assert run_power(SlidingWindows(k=4), 8, 20, target=60).approximate
    assert run_power(AdaptiveGroups(k=4), 8, 20, target=60).approximate
    assert not run_power(design("round-robin"), 8, 20, target=60).approximate
