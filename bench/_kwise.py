"""K-wise (listwise) designs in ``bench/judging.py``'s simulation (issue 14, part 1).

The same worlds as the pairwise designs (``make_world`` with ``default_rng(seed)``, the
design's generator ``default_rng(10_000 + seed)``). The simulated listwise judge ranks
the K answers it is shown by a Plackett-Luce draw on their qualities on the prompt, the
answer shown first getting the scenario's position bias (the pairwise judge's bonus), plus
the scenario's per-call noise; it never ties (the pairwise judge ties Davidson-style).
This is the fake server's listwise judge (``judges.clients.simulation.Simulator._rank``).

Goal: K = 4 random groups reach >= 0.95 x round robin's tau with <= 1/4 of its calls.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.stats import kendalltau

from arena.matchmaking.kwise import AdaptiveGroups, GroupVerdict, RandomGroups, SlidingWindows
from arena.matchmaking.simulate import make_world

GOAL_TAU_RATIO = 0.95
GOAL_CALL_SHARE = 0.25
GOAL_ROW = "K-wise, K = 4"


def designs() -> dict[str, object]:
    return {
        GOAL_ROW: RandomGroups(k=4),
        "K-wise, K = 4, windows": SlidingWindows(k=4),
        "K-wise, K = 4, by policy": AdaptiveGroups(k=4),  # not "adaptive": issue 5 goal
        "K-wise, K = 8": RandomGroups(k=8),
    }


def rank_calls(world, calls, rng, position_bias: float, noise: float) -> list[GroupVerdict]:
    """The simulated listwise judge (module docstring), vectorised over the batch."""
    if not calls:
        return []
    prompts = np.array([c.prompt for c in calls])
    shown = np.array([c.models for c in calls])
    u = world.quality[prompts[:, None], shown]
    u[:, 0] += position_bias
    if noise > 0:
        u = u + rng.normal(0.0, noise, u.shape)
    order = np.argsort(-(u + rng.gumbel(size=u.shape)), axis=1)  # a Plackett-Luce draw
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, u.shape[1] + 1)[None, :], axis=1)
    return [
        GroupVerdict(p, tuple(m), tuple(r))
        for p, m, r in zip(prompts.tolist(), shown.tolist(), ranks.tolist(), strict=True)
    ]


def simulate(seeds: int, n_models: int, n_prompts: int, scenario) -> dict[str, np.ndarray]:
    """Rows like ``bench/judging.py: simulate_designs``: (seeds, 4) of calls, tau
    (latent), tau (prompt set), seconds per run."""
    rows: dict[str, list] = {label: [] for label in designs()}
    for seed in range(seeds):
        world = make_world(
            n_models,
            n_prompts,
            np.random.default_rng(seed),
            strength_sd=scenario.strength_sd,
            prompt_sd=scenario.prompt_sd,
        )
        truth_set = world.quality.mean(axis=0)
        for label, design in designs().items():
            t0 = time.perf_counter()
            rng = np.random.default_rng(10_000 + seed)
            plan = design.start(n_models, n_prompts, rng)
            while not plan.done:
                batch = plan.next_batch()
                plan.observe(
                    rank_calls(world, batch, rng, scenario.position_bias, scenario.judge_noise)
                )
            scores = plan.scores()
            rows[label].append(
                (
                    plan.calls_issued,
                    kendalltau(world.strengths, scores).statistic,
                    kendalltau(truth_set, scores).statistic,
                    time.perf_counter() - t0,
                )
            )
    return {label: np.array(r, dtype=float) for label, r in rows.items()}


def print_goal(results: dict[str, np.ndarray], reference: str = "round robin") -> None:
    ref, row = results[reference], results[GOAL_ROW]
    calls, share = row[:, 0].mean(), row[:, 0].mean() / ref[:, 0].mean()
    ratio = row[:, 1].mean() / ref[:, 1].mean()
    met = share <= GOAL_CALL_SHARE and ratio >= GOAL_TAU_RATIO
    print(
        f"goal K-wise: K = 4 random groups, {calls:.0f} calls = {share:.3f} x round robin's "
        f"(<= {GOAL_CALL_SHARE:.2f}), tau {row[:, 1].mean():.3f} = {ratio:.3f} x round "
        f"robin's {ref[:, 1].mean():.3f} (>= {GOAL_TAU_RATIO:.2f}) {'MET' if met else 'NOT MET'}"
    )
