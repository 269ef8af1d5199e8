"""The adaptive design's maths: preposterior misorder probability, rank-one updates."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from arena.matchmaking import Adaptive, fit_scores, laplace_covariance
from arena.matchmaking.adaptive import _DOptimalGreedy, _RankingGreedy, misorder_after
from arena.matchmaking.simulate import SimulatedJudge, make_world


@pytest.mark.parametrize(
    ("mu", "v", "v_after"), [(0.3, 0.2, 0.05), (-1.0, 1.5, 1.0), (0.0, 0.4, 0.1), (2.0, 0.1, 0.01)]
)
def test_misorder_after_matches_the_bivariate_normal_orthant_formula(mu, v, v_after):
    """P(sign X != sign Y) = Φ(a) + Φ(b) - 2 Φ₂(a, b; ρ), with X the future posterior mean
    ~ N(μ, δ) and Y the truth ~ N(μ, v), Cov(X, Y) = δ = v - v'."""
    delta = v - v_after
    cov = [[delta, delta], [delta, v]]
    both_positive = multivariate_normal(mean=[0, 0], cov=cov).cdf([abs(mu), abs(mu)])
    expected = (
        norm.cdf(abs(mu) / np.sqrt(delta)) + norm.cdf(abs(mu) / np.sqrt(v)) - 2 * both_positive
    )
    assert misorder_after(mu, v, v_after) == pytest.approx(expected, abs=2e-5)


def test_misorder_after_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mu, v, v_after = 0.25, 0.3, 0.08
    x = rng.normal(mu, np.sqrt(v - v_after), 400_000)
    y = x + rng.normal(0, np.sqrt(v_after), x.size)
    assert misorder_after(mu, v, v_after) == pytest.approx(
        np.mean(np.sign(x) != np.sign(y)), abs=3e-3
    )


def test_misorder_after_limits():
    mu, v = np.array([0.0, 0.5, -1.0]), np.array([0.5, 0.5, 2.0])
    # no new data: today's probability that the sign is wrong
    np.testing.assert_allclose(misorder_after(mu, v, v), norm.cdf(-np.abs(mu) / np.sqrt(v)))
    # perfect data: never wrong
    np.testing.assert_allclose(misorder_after(mu, v, np.zeros(3)), 0.0, atol=1e-12)
    # more data, fewer mistakes
    assert np.all(misorder_after(mu, v, v / 4) < misorder_after(mu, v, v / 2))


def fitted_state(seed=0, n=6):
    rng = np.random.default_rng(seed)
    wins = rng.integers(0, 6, (n, n)).astype(float)
    np.fill_diagonal(wins, 0)
    mu = fit_scores(n, wins)
    return wins, mu, laplace_covariance(mu, wins + wins.T)


def test_the_rank_one_update_equals_refitting_the_covariance_with_one_more_game():
    wins, mu, cov = fitted_state()
    first, second = np.triu_indices(6, 1)
    greedy = _RankingGreedy(mu, cov, first, second)
    c = 4
    greedy._update(c)
    more = wins.copy()
    more[first[c], second[c]] += 1  # a game at fixed μ: only the count matters
    games = more + more.T
    np.testing.assert_allclose(greedy.cov, laplace_covariance(mu, games), rtol=1e-9, atol=1e-12)


def test_candidate_gains_are_the_drop_in_expected_misordered_pairs():
    wins, mu, cov = fitted_state(seed=1)
    first, second = np.triu_indices(6, 1)
    greedy = _RankingGreedy(mu, cov, first, second)
    gains = greedy.gains(np.arange(first.size))
    d = mu[first] - mu[second]

    def v_of(sigma):
        return np.diag(sigma)[first] + np.diag(sigma)[second] - 2 * sigma[first, second]

    for c in (0, 7, 14):
        more = wins.copy()
        more[first[c], second[c]] += 1
        after = laplace_covariance(mu, more + more.T)
        expected = norm.cdf(-np.abs(d) / np.sqrt(v_of(cov))) - misorder_after(
            d, v_of(cov), v_of(after)
        )
        assert gains[c] == pytest.approx(expected.sum(), rel=1e-8)
    d_opt = _DOptimalGreedy(mu, cov, first, second).gains(np.arange(first.size))
    p = 1 / (1 + np.exp(-d))
    np.testing.assert_allclose(d_opt, np.log1p(p * (1 - p) * v_of(cov)))


def test_greedy_batches_favour_close_pairs_over_foregone_conclusions():
    mu = np.array([-3.0, 0.0, 0.05, 3.0])
    cov = np.eye(4) * 0.2
    first, second = np.triu_indices(4, 1)
    picked = _RankingGreedy(mu, cov, first, second).pick(5, np.full(first.size, 10))
    assert (picked == [1, 2]).all(axis=1).sum() >= 3  # the coin-flip pair dominates


def test_adaptive_spreads_each_pair_over_the_prompts():
    world = make_world(6, 7, np.random.default_rng(0))
    plan = Adaptive(budget=300, batch_size=20).start(6, 7, np.random.default_rng(1))
    judge, rng = SimulatedJudge(), np.random.default_rng(2)
    while not plan.done:
        batch = plan.next_batch()
        keys = {tuple(c) for c in batch}
        assert len(keys) == len(batch)  # no call twice in a batch
        plan.observe(judge(world, batch, rng))
    assert plan.calls_issued == 300
    i, j = np.triu_indices(6, 1)
    per_prompt = plan.prompt_games[i, j]  # (pairs, prompts)
    used = per_prompt.sum(axis=1) > 0
    # a pair's k-th match goes to one of its least-judged prompts
    assert np.all(per_prompt[used].max(axis=1) - per_prompt[used].min(axis=1) <= 1)


@pytest.mark.parametrize("criterion", ["misorder", "thompson"])
def test_drawn_batches_keep_the_probability_each_pair_was_drawn_with(criterion):
    """A criterion named after a live policy draws its pairs like the live arena and keeps
    each probability."""
    from arena.matchmaking import PRIOR
    from arena.matchmaking.pairing import pair_weights

    world = make_world(8, 5, np.random.default_rng(0))
    design = Adaptive(budget=200, batch_size=24, criterion=criterion)
    plan = design.start(8, 5, np.random.default_rng(1))
    judge, rng = SimulatedJudge(), np.random.default_rng(2)
    first, second = np.triu_indices(8, 1)
    batches = 0
    while not plan.done:
        drawn_from = np.full(first.size, 1 / first.size)  # the warm-up: a random cycle
        if plan.calls_issued:  # then the policy on the fit so far
            mu = plan.scores()
            cov = laplace_covariance(mu, plan.games, PRIOR)
            pairs = np.column_stack([first, second])
            drawn_from = pair_weights(
                criterion, mu, cov, pairs, np.zeros(8), seed=plan.calls_issued
            )
        batch = plan.next_batch()
        batches += 1
        assert {(p, min(a, b), max(a, b)) for p, a, b in batch} == set(plan.batch_probability)
        for (_, lo, hi), prob in plan.batch_probability.items():
            k = np.flatnonzero((first == lo) & (second == hi))[0]
            assert prob == pytest.approx(drawn_from[k]) and 0 < prob <= 1
        plan.observe(judge(world, batch, rng))
    assert batches >= 6 and plan.calls_issued <= 200
