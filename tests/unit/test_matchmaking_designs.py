"""Evaluation designs: they finish, keep to their plan, never self-pair, fit once."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.matchmaking import (
    DESIGNS,
    Adaptive,
    Call,
    FixedAnchor,
    MediocreAnchor,
    RoundRobin,
    SingleElimination,
    Swiss,
    Verdict,
    bracket_order,
    fit_scores,
    swiss_pairing,
)
from arena.matchmaking.simulate import SimulatedJudge, make_world, run_design


def play(design, world, judge, seed=0, both_orders=False):
    """Run a plan by hand, returning it and every call it issued."""
    rng = np.random.default_rng(seed)
    plan = design.start(world.n_models, world.n_prompts, rng, both_orders=both_orders)
    calls = []
    while not plan.done:
        batch = plan.next_batch()
        calls.extend(batch)
        plan.observe(judge(world, batch, rng))
    return plan, np.array(calls, dtype=np.intp).reshape(-1, 3)


NON_ADAPTIVE = [
    RoundRobin(),
    RoundRobin(prompts=7),
    FixedAnchor(anchor=1),
    MediocreAnchor(screen_prompts=3),
    SingleElimination(),
    SingleElimination(seeding="adaptive", waves=3),
    Swiss(),
    Swiss(rounds=3, prompts_per_round=2),
]


def test_every_design_completes_for_16_contestants_and_100_prompts():
    world = make_world(16, 100, np.random.default_rng(0))
    judge = SimulatedJudge(position_bias=0.2, tie_nu=0.3)
    for design in [*NON_ADAPTIVE, Adaptive(), Adaptive(criterion="d-optimal")]:
        result = run_design(design, world, judge, np.random.default_rng(1))
        assert result.calls <= result.planned_calls
        if not isinstance(design, Adaptive):
            assert result.calls == result.planned_calls
        assert result.ranking.shape == (16,)
        assert result.tau > 0.3, design  # better than chance (sd of tau ~ 0.18 at n=16)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 9),
    prompts=st.integers(1, 12),
    both=st.booleans(),
    design=st.sampled_from(NON_ADAPTIVE),
    failure=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 1000),
)
def test_non_adaptive_designs_issue_exactly_the_planned_calls(
    n, prompts, both, design, failure, seed
):
    if isinstance(design, MediocreAnchor) and design.screen_prompts > prompts:
        design = MediocreAnchor(screen_prompts=prompts)
    world = make_world(n, prompts, np.random.default_rng(seed))
    judge = SimulatedJudge(tie_nu=0.5, failure_rate=failure)
    plan, calls = play(design, world, judge, seed, both)
    assert plan.calls_issued == len(calls) == design.planned_calls(n, prompts, both)
    assert np.all(calls[:, 1] != calls[:, 2])
    assert np.all((calls[:, 0] >= 0) & (calls[:, 0] < prompts))
    assert np.all((calls[:, 1:] >= 0) & (calls[:, 1:] < n))
    if both:  # both orders of every match
        ordered = {tuple(c) for c in calls.tolist()}
        assert all((p, b, a) in ordered for p, a, b in ordered)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 7),
    prompts=st.integers(1, 6),
    budget=st.integers(0, 60),
    batch=st.integers(1, 9),
    both=st.booleans(),
    criterion=st.sampled_from(["thompson", "ranking", "d-optimal"]),
    seed=st.integers(0, 1000),
)
def test_adaptive_designs_never_exceed_their_budget(
    n, prompts, budget, batch, both, criterion, seed
):
    design = Adaptive(budget=budget, batch_size=batch, criterion=criterion)
    world = make_world(n, prompts, np.random.default_rng(seed))
    plan, calls = play(design, world, SimulatedJudge(failure_rate=0.2), seed, both)
    assert design.planned_calls(n, prompts, both) == budget
    assert len(calls) <= budget
    assert np.all(calls[:, 1] != calls[:, 2])
    if budget >= 2 * n * (2 if both else 1):  # the budget is spent, not left over
        assert len(calls) > budget - (2 if both else 1) * max(n, batch) - 2


def test_adaptive_budget_defaults_to_a_fraction_of_round_robin():
    assert Adaptive(fraction=0.2).planned_calls(16, 100) == 2400
    assert Adaptive(fraction=0.2).planned_calls(16, 100, both_orders=True) == 4800
    assert Adaptive(budget=77).planned_calls(16, 100) == 77


def test_planned_calls_formulas():
    assert RoundRobin().planned_calls(16, 100) == 12000
    assert RoundRobin(prompts=10).planned_calls(16, 100, both_orders=True) == 2400
    assert FixedAnchor().planned_calls(16, 100) == 1500
    assert MediocreAnchor(screen_prompts=5).planned_calls(16, 100) == 120 * 5 + 15 * 95
    assert SingleElimination().planned_calls(16, 100) == 1500
    assert SingleElimination().planned_calls(11, 100) == 1000  # byes cost nothing
    assert Swiss(rounds=5, prompts_per_round=4).planned_calls(9, 100) == 5 * 4 * 4


class Oracle:
    """A judge that always prefers the stronger latent model (first wins on equality)."""

    def __call__(self, world, batch, rng):
        return [
            Verdict(p, a, b, float(world.strengths[a] >= world.strengths[b])) for p, a, b in batch
        ]


def test_single_elimination_brackets_have_the_champion_win_log2_n_matches_per_prompt():
    world = make_world(16, 5, np.random.default_rng(0), strengths=np.arange(16.0))
    plan, calls = play(SingleElimination(), world, Oracle())
    for p in range(5):
        mine = calls[calls[:, 0] == p]
        assert len(mine) == 15
        assert ((mine[:, 1] == 15) | (mine[:, 2] == 15)).sum() == 4  # 4 rounds, undefeated
        # every other model loses exactly once: it plays until its first loss
        appearances = np.bincount(mine[:, 1:].ravel(), minlength=16)
        assert appearances.sum() == 30


def test_seeded_bracket_keeps_the_top_seeds_apart_until_the_final():
    world = make_world(8, 1, np.random.default_rng(0), strengths=np.arange(8.0))
    ratings = tuple(np.arange(8.0))  # model 7 is seed 1
    plan, calls = play(SingleElimination(seeding="ratings", ratings=ratings), world, Oracle())
    first_round = {frozenset(c[1:]) for c in calls[:4].tolist()}
    assert first_round == {frozenset(s) for s in [(7, 0), (4, 3), (6, 1), (5, 2)]}
    assert frozenset(calls[-1, 1:].tolist()) == {7, 6}  # seeds 1 and 2 meet in the final


def test_bracket_order_is_the_standard_seeding():
    np.testing.assert_array_equal(bracket_order(4), [0, 3, 1, 2])
    np.testing.assert_array_equal(bracket_order(8), [0, 7, 3, 4, 1, 6, 2, 5])
    for size in (2, 16, 64):
        order = bracket_order(size)
        assert sorted(order) == list(range(size))
        assert np.all(order[0::2] + order[1::2] == size - 1)  # 1 v N, 2 v N-1, ...
    with pytest.raises(ValueError, match="power of two"):
        bracket_order(6)


def test_fixed_anchor_fit_is_the_logit_of_each_win_rate_against_the_anchor():
    world = make_world(5, 60, np.random.default_rng(3))
    plan, calls = play(FixedAnchor(anchor=2), world, SimulatedJudge(tie_nu=0.4))
    assert np.all((calls[:, 1] == 2) | (calls[:, 2] == 2))
    s = fit_scores(5, plan.wins, prior=0.0)
    others = np.arange(5) != 2
    rate = plan.wins[others, 2] / plan.games[others, 2]
    np.testing.assert_allclose(s[others] - s[2], np.log(rate / (1 - rate)), atol=1e-6)


def test_mediocre_anchor_screens_then_anchors_on_the_median_model():
    strengths = np.array([3.0, -3.0, 1.0, 0.0, -1.0, 2.0, -2.0])  # median: model 3
    world = make_world(7, 20, np.random.default_rng(0), strengths=strengths)
    plan, calls = play(MediocreAnchor(screen_prompts=4), world, Oracle())
    assert plan.anchor == 3
    screening = np.isin(calls[:, 0], plan.screen_prompts)
    assert screening.sum() == 21 * 4
    assert np.all((calls[~screening, 1] == 3) | (calls[~screening, 2] == 3))


def test_swiss_plan_never_rematches_while_a_rematch_free_round_must_exist():
    """After r rounds the unplayed graph is (n-1-r)-regular; for r <= n/2 - 1 it has a
    Hamiltonian cycle (Dirac), hence a perfect matching: no rematch is ever needed."""
    for n in (4, 8, 12, 16):
        world = make_world(n, 40, np.random.default_rng(n))
        plan, calls = play(Swiss(rounds=n // 2, prompts_per_round=1), world, SimulatedJudge())
        pairs = {frozenset(c[1:]) for c in calls.tolist()}
        assert len(pairs) == len(calls) == (n // 2) * (n // 2)
        assert plan.rematches == 0


def test_swiss_pairs_neighbours_in_the_standings():
    world = make_world(8, 40, np.random.default_rng(1), strengths=np.arange(8.0) * 3)
    plan, calls = play(Swiss(rounds=3, prompts_per_round=10), world, Oracle())
    last_round = {frozenset(c[1:]) for c in calls[-40:].tolist()}
    # after two rounds of a perfect judge the standings are informative: top plays top
    assert any(pair <= {7, 6, 5} for pair in last_round)


def test_plans_refuse_verdicts_that_do_not_belong_to_the_batch():
    plan = RoundRobin().start(3, 2, np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="no batch"):
        plan.observe([])
    batch = plan.next_batch()
    assert all(isinstance(c, Call) for c in batch)
    with pytest.raises(RuntimeError, match="observe"):
        plan.next_batch()
    p, a, b = batch[0]
    with pytest.raises(ValueError, match="not in this batch"):
        plan.observe([Verdict(p, a, a, 1.0)])
    with pytest.raises(ValueError, match="twice"):
        plan.observe([Verdict(p, a, b, 1.0), Verdict(p, a, b, 0.0)])
    with pytest.raises(ValueError, match="score"):
        plan.observe([Verdict(p, a, b, 2.0)])
    plan.observe([Verdict(p, a, b, 0.5)])
    assert plan.done and plan.next_batch() == []
    assert plan.wins[a, b] == plan.wins[b, a] == 0.5


def test_designs_are_registered_by_name_and_refuse_bad_parameters():
    assert set(DESIGNS) == {
        "round-robin",
        "anchor",
        "mediocre-anchor",
        "single-elimination",
        "swiss",
        "adaptive",
        "placement",
        "prp",
    }
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="anchor"):
        FixedAnchor(anchor=5).start(5, 3, rng)
    with pytest.raises(ValueError, match="screen_prompts"):
        MediocreAnchor(screen_prompts=4).start(5, 3, rng)
    with pytest.raises(ValueError, match="ratings"):
        SingleElimination(seeding="ratings").start(5, 3, rng)
    with pytest.raises(ValueError, match="seeding"):
        SingleElimination(seeding="elo").start(5, 3, rng)
    with pytest.raises(ValueError, match="criterion"):
        Adaptive(criterion="entropy").start(5, 3, rng)
    with pytest.raises(ValueError, match="at least 2"):
        RoundRobin().start(1, 3, rng)


def test_models_and_prompts_may_be_given_as_sequences():
    plan = RoundRobin().start(["a", "b", "c"], ["p1", "p2"], np.random.default_rng(0))
    assert len(plan.next_batch()) == math.comb(3, 2) * 2


def rematch_free_pairing_exists(models, met):
    if not models:
        return True
    a = models[0]
    return any(
        not met[a, b] and rematch_free_pairing_exists(models[1:k] + models[k + 1 :], met)
        for k, b in enumerate(models[1:], start=1)
    )


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 7), data=st.data())
def test_swiss_pairing_avoids_rematches_whenever_a_rematch_free_pairing_exists(n, data):
    standings = np.array(data.draw(st.permutations(range(n))))
    upper = data.draw(st.lists(st.booleans(), min_size=n * n, max_size=n * n))
    met = np.triu(np.array(upper).reshape(n, n), 1)
    met = met | met.T
    pairs, bye = swiss_pairing(standings, met)
    assert len(pairs) == n // 2
    seated = [*pairs.ravel().tolist(), *([] if bye is None else [bye])]
    assert sorted(seated) == list(range(n))  # everyone plays once, or sits out once
    byes = [None] if n % 2 == 0 else list(range(n))
    possible = any(rematch_free_pairing_exists([m for m in range(n) if m != b], met) for b in byes)
    assert (not met[pairs[:, 0], pairs[:, 1]].any()) == possible


@pytest.mark.parametrize(
    "design",
    [
        Adaptive(budget=120, batch_size=20),
        Swiss(rounds=4),
        SingleElimination(seeding="adaptive", waves=3),
    ],
)
def test_a_plan_pickled_between_batches_resumes_exactly(design):
    """What a worker restart needs: a checkpointed plan continues as if never stopped."""
    import pickle

    world = make_world(6, 12, np.random.default_rng(0))
    judge = SimulatedJudge(tie_nu=0.3)
    plan = design.start(6, 12, np.random.default_rng(5))
    judge_rng = np.random.default_rng(6)
    plan.observe(judge(world, plan.next_batch(), judge_rng))
    saved, saved_rng = pickle.dumps(plan), pickle.dumps(judge_rng)

    def finish(p, rng):
        calls = []
        while not p.done:
            batch = p.next_batch()
            calls.extend(batch)
            p.observe(judge(world, batch, rng))
        return calls, p.scores()

    original = finish(plan, judge_rng)
    resumed = finish(pickle.loads(saved), pickle.loads(saved_rng))
    assert original[0] == resumed[0]
    np.testing.assert_array_equal(original[1], resumed[1])
