"""K-wise designs (arena.matchmaking.kwise): cover, Latin squares, plans, the PL fit."""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from arena.matchmaking import DESIGNS, AdaptiveGroups, GroupVerdict, RandomGroups, SlidingWindows
from arena.matchmaking.kwise import cover_missing, latin_square, partition_groups
from arena.matchmaking.power import comparison_graph
from arena.matchmaking.simulate import make_world


def _pairs_met(groups: np.ndarray, n: int) -> np.ndarray:
    met = np.zeros((n, n), bool)
    for group in groups:
        for a, b in itertools.combinations(group, 2):
            met[a, b] = met[b, a] = True
    np.fill_diagonal(met, True)
    return met


@pytest.mark.parametrize("n,k,prompts", [(16, 4, 3), (5, 3, 1), (7, 4, 1), (9, 2, 2), (30, 8, 1)])
def test_random_groups_cover_every_pair(n, k, prompts):
    design = RandomGroups(k=k, rounds=1)  # one partition per prompt: the cover must repair
    groups = design.groups(n, prompts)
    assert groups.shape[1] == 1 + k
    assert _pairs_met(groups[:, 1:], n).all()
    for row in groups[:, 1:]:
        assert len(set(row.tolist())) == k  # never a model twice in a group
    assert design.planned_calls(n, prompts) == len(groups)
    assert design.planned_calls(n, prompts, both_orders=True) == k * len(groups)


def test_cover_missing_closes_every_open_pair_and_nothing_when_covered():
    rng = np.random.default_rng(0)
    groups = np.array([[0, 1, 2], [3, 4, 5]])
    extra = cover_missing(groups, 6, 3, rng)
    assert _pairs_met(np.vstack([groups, extra]), 6).all()
    assert len(extra) <= 9  # the 9 pairs across the two groups, at most one group each
    assert len(cover_missing(np.array([[0, 1, 2, 3]]), 4, 4, rng)) == 0


def test_partition_fills_a_short_group_with_distinct_models():
    groups = partition_groups(7, 4, np.random.default_rng(3))
    assert groups.shape == (2, 4)
    assert set(groups.ravel().tolist()) == set(range(7))
    assert all(len(set(g.tolist())) == 4 for g in groups)


def test_default_rounds_meet_each_pair_about_once_per_prompt():
    n, k, prompts = 16, 4, 40
    groups = RandomGroups(k=k).groups(n, prompts)[:, 1:]
    meetings = np.zeros((n, n))
    for group in groups:
        for a, b in itertools.combinations(group, 2):
            meetings[a, b] += 1
            meetings[b, a] += 1
    per_prompt = meetings[np.triu_indices(n, 1)].mean() / prompts
    assert 0.9 <= per_prompt <= 1.1  # round robin: exactly 1
    # ceil(15 / 3) = 5 partitions of 4 groups, less a set drawn twice on a prompt: 1/6 of 120
    assert 19 <= len(groups) / prompts <= 20


@pytest.mark.parametrize("k", range(2, 11))
def test_latin_square_is_balanced(k):
    square = latin_square(k)
    assert square.shape == (k, k)
    for row in square:  # each row an order of the k slots
        assert sorted(row.tolist()) == list(range(k))
    for column in square.T:  # each slot at each position exactly once
        assert sorted(column.tolist()) == list(range(k))
    if k % 2 == 0:  # Williams: each slot follows each other slot exactly once
        follows = {(int(a), int(b)) for row in square for a, b in itertools.pairwise(row)}
        assert len(follows) == k * (k - 1)


def test_a_group_in_every_order_shows_each_model_at_each_position_once():
    plan = RandomGroups(k=4).start(8, 2, np.random.default_rng(0), both_orders=True)
    calls = plan.next_batch()
    by_group: dict = {}
    for call in calls:
        by_group.setdefault((call.prompt, frozenset(call.models)), []).append(call.models)
    for shown in by_group.values():
        assert len(shown) == 4
        for position in range(4):
            assert sorted(order[position] for order in shown) == sorted(shown[0])


def test_one_order_per_group_rotates_positions_over_the_run():
    plan = RandomGroups(k=4, rounds=3).start(8, 200, np.random.default_rng(0))
    calls = plan.next_batch()
    assert len(calls) == plan.calls_issued == RandomGroups(k=4, rounds=3).planned_calls(8, 200)
    first = np.bincount([c.models[0] for c in calls], minlength=8) / len(calls)
    assert np.all(np.abs(first - 1 / 8) < 0.04)  # every model shown first about as often


def _rank(world, calls, rng):
    out = []
    for call in calls:
        u = world.quality[call.prompt, list(call.models)] + rng.gumbel(size=len(call.models))
        ranks = np.empty(len(u), int)
        ranks[np.argsort(-u)] = np.arange(1, len(u) + 1)
        out.append(GroupVerdict(call.prompt, call.models, tuple(ranks.tolist())))
    return out


@pytest.mark.parametrize(
    "design",
    [RandomGroups(k=4), SlidingWindows(k=4, refit_prompts=5), AdaptiveGroups(k=4, refit_prompts=5)],
)
def test_plans_recover_the_order_of_a_plackett_luce_judge(design):
    rng = np.random.default_rng(1)
    world = make_world(10, 40, rng, strength_sd=2.0, prompt_sd=0.3)
    plan = design.start(10, 40, rng)
    while not plan.done:
        plan.observe(_rank(world, plan.next_batch(), rng))
    assert plan.calls_issued <= design.planned_calls(10, 40)
    assert kendalltau(world.strengths, plan.scores()).statistic > 0.8


def test_observe_refuses_verdicts_for_calls_not_asked():
    plan = RandomGroups(k=3).start(4, 1, np.random.default_rng(0))
    calls = plan.next_batch()
    with pytest.raises(ValueError, match="not in this batch"):
        plan.observe([GroupVerdict(0, (3, 2, 1, 0), (1, 2, 3, 4))])
    with pytest.raises(ValueError, match="rank"):
        plan.observe([GroupVerdict(calls[0].prompt, calls[0].models, (0, 1, 2))])
    plan.observe([])
    assert plan.done


def test_windows_follow_the_fitted_ranking():
    rng = np.random.default_rng(2)
    world = make_world(12, 30, rng, strength_sd=3.0, prompt_sd=0.1)
    plan = SlidingWindows(k=4, screen=0.3, refit_prompts=30).start(12, 30, rng)
    plan.observe(_rank(world, plan.next_batch(), rng))  # the random screening groups
    windows = plan.next_batch()
    truth = np.argsort(-world.strengths)
    place = np.empty(12, int)
    place[truth] = np.arange(12)
    spans = [np.ptp(place[list(c.models)]) for c in windows]
    assert np.median(spans) <= 5  # neighbours of the true order meet (a random group: ~7)


def test_designs_are_registered_and_check_their_parameters():
    assert DESIGNS["kwise-groups"] is RandomGroups
    assert DESIGNS["kwise-windows"] is SlidingWindows
    with pytest.raises(ValueError, match="k: expected"):
        RandomGroups(k=1).planned_calls(8, 2)
    with pytest.raises(ValueError, match="k: expected"):
        RandomGroups(k=17).planned_calls(20, 2)
    with pytest.raises(ValueError, match="stride"):
        SlidingWindows(k=4, stride=5).planned_calls(8, 2)
    # a group never holds more models than the run has
    assert RandomGroups(k=8).groups(3, 2).shape == (2, 4)


def test_power_counts_a_ranking_as_its_pairwise_information():
    design = RandomGroups(k=4)
    graph = comparison_graph(design, 8, 10)
    assert graph.shape == (8, 8) and np.all(np.diag(graph) == 0)
    assert np.all(graph[~np.eye(8, dtype=bool)] > 0)
    calls = design.planned_calls(8, 10)
    worth = 2 * (1 / 2 + 2 / 3 + 3 / 4)  # a ranking of 4: 3.83 comparisons over 6 pairs
    assert graph.sum() / 2 == pytest.approx(calls * worth)
    assert worth < math.comb(4, 2)


def test_adaptive_groups_gather_the_pairs_the_policy_weighs_most():
    rng = np.random.default_rng(4)
    world = make_world(12, 30, rng, strength_sd=3.0, prompt_sd=0.1)
    design = AdaptiveGroups(k=4, screen=0.3, refit_prompts=30)
    plan = design.start(12, 30, rng)
    plan.observe(_rank(world, plan.next_batch(), rng))  # the random screening groups
    weights = plan.pair_weight_matrix()
    assert np.allclose(weights, weights.T) and weights[
        np.triu_indices(12, 1)
    ].sum() == pytest.approx(1)
    groups = plan.next_batch()
    assert len(groups) <= design.planned_calls(12, 30) - RandomGroups(k=4).planned_calls(12, 9)
    inside = np.mean([weights[np.ix_(c.models, c.models)].sum() / 2 for c in groups])
    members = [rng.permutation(12)[:4] for _ in range(200)]
    at_random = np.mean([weights[np.ix_(m, m)].sum() / 2 for m in members])
    assert inside > 2 * at_random  # the groups hold the doubtful pairs, not any four
    with pytest.raises(ValueError, match="criterion"):
        AdaptiveGroups(criterion="coin").planned_calls(8, 4)
