"""PRP sorting per prompt (issue 14 part 2), a section of bench/judging.py.

On the worlds of section 1 (one per seed: ``N`` models, ``P`` prompts, the same scenario
and simulated judge, position bias included), each PRP variant of
:class:`arena.matchmaking.PRP` sorts every prompt's ``N`` answers, each comparison asked
in both orders. Per prompt: the judge calls (mean and most, against ``N log2 N``), the
top-1 accuracy (the answer ranked first is the prompt's best by the world's quality),
and for full rankings the mean Kendall τ against the prompt's true order; then τ of the
board fitted on all the run's verdicts against the latent strengths. "probability" rows
score by the simulated judge's exact probability of A against B (P(A) + ½ P(tie)), an
idealised logprob reading. Goal: heapsort and sliding window, at the best-of-N settings
(top 1 and top 3), use ≤ 2 N log2 N calls on every prompt (``goal PRP: ... MET``).
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy.stats import kendalltau

from arena.matchmaking import PRP, Verdict
from arena.matchmaking.simulate import make_world

VARIANTS = {
    "allpair": PRP("allpair"),
    "allpair, probability": PRP("allpair", scoring="probability"),
    "heapsort, top 1": PRP("heapsort", 1),
    "heapsort, top 3": PRP("heapsort", 3),
    "heapsort, top 1, probability": PRP("heapsort", 1, scoring="probability"),
    "heapsort, full": PRP("heapsort", None),
    "sliding, top 1": PRP("sliding", 1),
    "sliding, top 3": PRP("sliding", 3),
}
GOAL_ROWS = ("heapsort, top 1", "heapsort, top 3", "sliding, top 1", "sliding, top 3")


def _soft_judge(judge):
    """The simulated judge's probability of the first answer (ties half) as the score."""

    def soft(world, batch, rng):
        calls = np.asarray(batch, np.intp).reshape(-1, 3)
        prob = judge.probabilities(world, calls)
        score = prob[:, 0] + 0.5 * prob[:, 2]
        return [Verdict(*c, s) for c, s in zip(calls.tolist(), score.tolist(), strict=True)]

    return soft


def _play(design, world, judge, rng):
    plan = design.start(world.n_models, world.n_prompts, rng)
    rounds = 0
    while not plan.done:
        batch = plan.next_batch()
        plan.observe(judge(world, batch, rng))
        rounds += 1
    return plan, rounds


def prp_rows(seeds: int, n_models: int, n_prompts: int, scenario) -> dict[str, np.ndarray]:
    """Per variant, per seed: mean calls per prompt, most calls on a prompt, top-1
    accuracy, mean per-prompt τ (NaN for partial rankings), board τ, rounds, seconds."""
    judge = scenario.judge()
    rows = {label: [] for label in VARIANTS}
    for seed in range(seeds):
        world = make_world(
            n_models,
            n_prompts,
            np.random.default_rng(seed),
            strength_sd=scenario.strength_sd,
            prompt_sd=scenario.prompt_sd,
        )
        best = world.quality.argmax(axis=1)
        for label, design in VARIANTS.items():
            t0 = time.perf_counter()
            judged = _soft_judge(judge) if design.scoring == "probability" else judge
            plan, rounds = _play(design, world, judged, np.random.default_rng(10_000 + seed))
            seconds = time.perf_counter() - t0
            ranking = plan.rankings()
            full = design.ranked(n_models) == n_models
            tau = (
                np.mean([
                    kendalltau(np.argsort(r), np.argsort(np.argsort(-q))).statistic
                    for r, q in zip(ranking, world.quality, strict=True)
                ])
                if full
                else np.nan
            )  # fmt: skip
            rows[label].append((
                plan.prompt_calls.mean(),
                plan.prompt_calls.max(),
                np.mean(ranking[:, 0] == best),
                tau,
                kendalltau(world.strengths, plan.scores()).statistic,
                rounds,
                seconds,
            ))  # fmt: skip
    return {label: np.array(r, dtype=float) for label, r in rows.items()}


def prp_section(args, scenario) -> None:
    n = args.models
    bound = n * math.log2(n)
    print(
        f"\n== PRP sorting per prompt (issue 14): N={n} answers per prompt, P={args.prompts} "
        f"prompts, {args.seeds} seeds, both orders; N log2 N = {bound:.0f} =="
    )
    t0 = time.perf_counter()
    results = prp_rows(args.seeds, n, args.prompts, scenario)
    print(
        f"{'variant':30s} {'calls/prompt':>12s} {'most':>5s} {'x NlogN':>7s} {'top-1':>6s} "
        f"{'tau/prompt':>10s} {'tau board':>9s} {'rounds':>6s} {'s/run':>6s}"
    )
    for label, r in results.items():
        tau = r[:, 3].mean()
        print(
            f"{label:30s} {r[:, 0].mean():12.1f} {r[:, 1].max():5.0f} "
            f"{r[:, 0].mean() / bound:7.2f} {r[:, 2].mean():6.3f} "
            f"{'–' if math.isnan(tau) else f'{tau:.3f}':>10s} {r[:, 4].mean():9.3f} "
            f"{r[:, 5].mean():6.0f} {r[:, 6].mean():6.2f}"
        )
    most = max(results[label][:, 1].max() for label in GOAL_ROWS)
    accuracy = ", ".join(f"{label} {results[label][:, 2].mean():.3f}" for label in GOAL_ROWS)
    full = results["heapsort, full"]
    print(f"   ({time.perf_counter() - t0:.0f} s)")
    print(
        f"goal PRP: heapsort and sliding window at top 1 and top 3 use at most {most:.0f} calls "
        f"on a prompt against 2 N log2 N = {2 * bound:.0f} (N = {n}); top-1 accuracy {accuracy}; "
        f"a full heapsort takes {full[:, 0].mean():.0f} (most {full[:, 1].max():.0f}): "
        + ("MET" if most <= 2 * bound else "NOT MET")
    )
