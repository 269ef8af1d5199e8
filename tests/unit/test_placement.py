"""arena.matchmaking.Placement: one newcomer placed on a known board with few calls."""

import math

import numpy as np
import pytest

from arena.matchmaking import DESIGNS, Placement, RoundRobin
from arena.matchmaking._fit import fit_scores
from arena.matchmaking.simulate import SimulatedJudge, World, make_world
from arena.ratings.scale import ELO_SCALE

JUDGE = SimulatedJudge()


def play(plan, world, rng):
    batches = []
    while not plan.done:
        batch = plan.next_batch()
        batches.append(batch)
        plan.observe(JUDGE(world, batch, rng))
    return batches


def rank_of(scores, k):
    return int(np.argsort(np.argsort(-np.asarray(scores)))[k])


def test_it_is_a_design_with_checked_parameters():
    assert DESIGNS["placement"] is Placement
    rng = np.random.default_rng(0)
    for params, message in (
        ({"newcomer": 5, "strengths": (0.0,) * 5}, "newcomer"),
        ({"newcomer": 0, "strengths": (0.0,) * 4}, "strengths"),
        ({"newcomer": 0, "strengths": (0.0, math.inf, 0, 0, 0)}, "finite"),
        ({"newcomer": 0, "strengths": (0.0,) * 5, "ci_width": 0}, "ci_width"),
        ({"newcomer": 0, "strengths": (0.0,) * 5, "batch_size": 0}, "batch_size"),
    ):
        with pytest.raises(ValueError, match=message):
            Placement(**params).start(5, 10, rng)
    # Never more than the newcomer against every anchor on every prompt.
    assert Placement().planned_calls(5, 10) == 40
    assert Placement(budget=7).planned_calls(5, 10, both_orders=True) == 7


def test_it_narrows_on_the_newcomers_neighbours_and_stops_early():
    rng = np.random.default_rng(3)
    strengths = np.linspace(-2, 2, 21)
    world = make_world(21, 400, rng, strengths=np.r_[strengths[:20], 0.31])
    design = Placement(newcomer=20, strengths=tuple(np.r_[strengths[:20], 0.0]), ci_width=40)
    plan = design.start(21, 400, rng)
    batches = play(plan, world, rng)
    # Anchors chosen get closer to the newcomer as its interval narrows (binary search).
    distance = [np.mean([abs(strengths[c.second if c.first == 20 else c.first] - 0.31)
                         for c in b]) for b in batches]  # fmt: skip
    assert np.mean(distance[-3:]) < np.mean(distance[:3])
    assert plan.calls_issued < 0.15 * design.planned_calls(21, 400)
    assert 2 * plan.interval_half_width * ELO_SCALE < 40 or plan.settled
    assert abs(plan.scores()[20] - 0.31) * ELO_SCALE < 40
    # Each anchor meets the newcomer on a prompt at most once.
    calls = [tuple(sorted((c.first, c.second))) + (c.prompt,) for b in batches for c in b]
    assert len(calls) == len(set(calls))


def test_a_newcomer_far_above_the_board_settles_at_once():
    rng = np.random.default_rng(1)
    strengths = np.r_[np.linspace(-1, 1, 10), 0.0]
    world = make_world(11, 200, rng, strengths=np.r_[strengths[:10], 6.0])
    plan = Placement(newcomer=10, strengths=tuple(strengths), ci_width=5).start(11, 200, rng)
    play(plan, world, rng)
    assert rank_of(plan.scores(), 10) == 0
    assert plan.calls_issued <= 40  # known to be first long before the interval is 5 wide


def test_a_replay_of_the_same_verdicts_gives_the_same_batches():
    strengths = tuple(np.linspace(-1.5, 1.5, 12))
    design = Placement(newcomer=4, strengths=strengths)
    world = make_world(12, 50, np.random.default_rng(5), strengths=np.array(strengths))
    rng = np.random.default_rng(7)
    first = design.start(12, 50, np.random.default_rng(11))
    batches, verdicts = [], []
    while not first.done:
        batches.append(first.next_batch())
        verdicts.append(JUDGE(world, batches[-1], rng))
        first.observe(verdicts[-1])
    again = design.start(12, 50, np.random.default_rng(11))
    for batch, verdict in zip(batches, verdicts, strict=True):
        assert again.next_batch() == batch
        again.observe(verdict)
    assert again.done


@pytest.mark.parametrize("seed", range(6))
def test_a_placement_lands_within_one_rank_of_all_pairs_with_few_calls(seed):
    """The goal of bench/judging.py (there over more seeds): 20 models, 500 prompts."""
    rng = np.random.default_rng(seed)
    world = make_world(21, 500, rng)
    full = RoundRobin().start(21, 500, rng)
    play(full, world, rng)
    board = RoundRobin().start(20, 500, rng)
    play(board, World(world.strengths[:20], world.quality[:, :20]), rng)
    budget = int(0.15 * 20 * 500)
    plan = Placement(newcomer=20, strengths=(*board.scores(), 0.0), budget=budget).start(
        21, 500, rng
    )
    play(plan, world, rng)
    wins = plan.wins.copy()
    wins[:20, :20] += board.wins
    assert abs(rank_of(fit_scores(21, wins), 20) - rank_of(full.scores(), 20)) <= 1
    assert plan.calls_issued <= budget
