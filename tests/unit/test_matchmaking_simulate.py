"""The simulated world and judge behave as documented."""

import numpy as np
import pytest
from scipy.stats import chisquare, kendalltau

from arena.matchmaking import RoundRobin
from arena.matchmaking.simulate import SimulatedJudge, make_world, run_design


def test_davidson_probabilities_reduce_to_bradley_terry_without_ties():
    world = make_world(
        3, 1, np.random.default_rng(0), strengths=np.array([0.0, 1.0, -2.0]), prompt_sd=0
    )
    calls = np.array([[0, 1, 0], [0, 0, 2], [0, 2, 1]])
    z = np.array([1.0, 2.0, -3.0])
    prob = SimulatedJudge().probabilities(world, calls)
    np.testing.assert_allclose(prob[:, 0], 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(prob[:, 2], 0)
    nu = 0.7
    prob = SimulatedJudge(tie_nu=nu, position_bias=0.3).probabilities(world, calls)
    zb = z + 0.3
    total = np.exp(zb / 2) + np.exp(-zb / 2) + nu
    np.testing.assert_allclose(
        prob, np.column_stack([np.exp(zb / 2), np.exp(-zb / 2), np.full(3, nu)]) / total[:, None]
    )


def test_verdict_frequencies_follow_the_judge_probabilities():
    world = make_world(2, 1, np.random.default_rng(0), strengths=np.array([0.4, 0.0]), prompt_sd=0)
    judge = SimulatedJudge(position_bias=0.2, tie_nu=0.5)
    batch = [(0, 0, 1)] * 20_000
    scores = np.array([v.score for v in judge(world, batch, np.random.default_rng(1))])
    counts = [np.sum(scores == 1), np.sum(scores == 0), np.sum(scores == 0.5)]
    expected = judge.probabilities(world, np.array([[0, 0, 1]]))[0] * len(batch)
    assert chisquare(counts, expected).pvalue > 1e-3


def test_failed_calls_are_missing_and_prompt_effects_are_fixed_per_prompt():
    world = make_world(4, 50, np.random.default_rng(0), prompt_sd=0.5)
    assert world.quality.shape == (50, 4)
    np.testing.assert_allclose(world.quality.mean(axis=0), world.strengths, atol=0.3)
    batch = [(p, 0, 1) for p in range(50)]
    answered = SimulatedJudge(failure_rate=0.5)(world, batch, np.random.default_rng(2))
    assert 10 < len(answered) < 40


def test_round_robin_recovers_a_well_separated_order():
    world = make_world(6, 60, np.random.default_rng(0), strengths=np.arange(6.0), prompt_sd=0.1)
    result = run_design(RoundRobin(), world, SimulatedJudge(), np.random.default_rng(1))
    assert result.calls == result.planned_calls == 15 * 60
    assert result.tau == pytest.approx(1.0)
    assert result.tau == pytest.approx(kendalltau(world.strengths, result.scores).statistic)
    np.testing.assert_array_equal(result.ranking, np.arange(6)[::-1])


def test_world_rejects_strengths_of_the_wrong_shape():
    with pytest.raises(ValueError, match="strengths"):
        make_world(3, 2, np.random.default_rng(0), strengths=np.zeros(4))


# -- live boards (issue 16) ---------------------------------------------------------------


def test_a_live_board_converges_and_keeps_the_propensity_of_every_vote():
    from arena.matchmaking.simulate import LivePolicy, simulate_live

    strengths = np.linspace(2.0, -2.0, 12)
    for policy in [LivePolicy(name) for name in ("uniform", "misorder", "thompson", "ucb")]:
        run = simulate_live(
            policy,
            strengths,
            np.random.default_rng(0),
            checkpoints=[120, 1200, 12000],
            batch=120,
            growth=0.25,
            tie_nu=1.0,
            top=3,
        )
        np.testing.assert_array_equal(run.checkpoints, [120, 1200, 12000])
        assert run.propensity.size == 12000
        assert np.all((run.propensity > 0) & (run.propensity <= 1))
        if policy.policy == "uniform":
            np.testing.assert_allclose(run.propensity, 1 / 66)
        else:  # the 20 % uniform floor
            assert run.propensity.min() >= 0.2 / 66 - 1e-12
        assert run.tau[-1] > 0.9 and run.top_right[-1]
        assert run.tau[-1] > run.tau[0]


def test_first_stable_is_where_the_target_starts_to_hold():
    from arena.matchmaking.simulate import first_stable

    votes = np.array([10, 20, 40, 80, 160])
    ok = np.array([True, False, True, True, False])
    assert first_stable(votes, ok, settle=2) == 40
    assert first_stable(votes, ok, settle=3) == float("inf")
    assert first_stable(votes, ok) == float("inf")  # not held to the end
    assert first_stable(votes, np.array([False, True, False, True, True])) == 80
