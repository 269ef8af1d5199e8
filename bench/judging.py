"""Benchmark: LLM-judge evaluation designs — judge calls against ranking quality.

Section 1 (simulation, pure numpy): ``N`` simulated models of known latent strength,
``P`` prompts with per-prompt quality noise, a simulated judge (Bradley-Terry/Davidson
with position bias and ties; :mod:`arena.matchmaking.simulate`). Every design of
:mod:`arena.matchmaking` runs to completion on the same worlds (one world per seed);
the table gives its judge calls, Kendall τ between its BT fit and the latent strengths
(mean ± standard error over seeds), calls as % of round robin's, and τ as a fraction of
round robin's τ (ratio of the means over the same seeds). It also gives τ against the
*prompt-set* truth (mean quality over the P prompts actually used), which no design can
beat by judging more.

K-wise rows (issue 14, :mod:`bench._kwise`): a listwise judge ranks K answers per call
(random groups covering every pair, sliding windows), fitted by Plackett-Luce; goal
``goal K-wise: ... MET``: K = 4 reaches >= 0.95 x round robin's τ with <= 1/4 of its calls.

Goal (issue 5): single elimination or adaptive reaches ≥ 0.95 × round robin's τ with
≤ 20 % of its calls; the last lines say whether this run met it.

Nothing is asserted about time. Run::

    .venv/bin/python bench/judging.py [--seeds 10] [--models 16] [--prompts 100]

Placement (issue 17, pure numpy): a board of ``--placement-models`` (20) simulated models
judged all pairs on ``--placement-prompts`` (500) prompts, then one newcomer placed on it
with :class:`arena.matchmaking.Placement` (budget: 15 % of the calls all pairs would take
to add it, i.e. newcomer x every model x every prompt), its verdicts merged into the
board's in one BT fit; against the same world judged all pairs with the newcomer. Goal:
every seeded newcomer lands within ±1 rank of its all-pairs position, with <= 15 % of the
calls; the line ``goal placement: ... MET`` / ``NOT MET`` says whether this run met it.

Adaptive matchmaking (issue 16, pure numpy, last; ``--only-adaptive`` runs it alone): live
boards of 32, 64 and 128 models with Chatbot Arena strengths (a random subset of the 129 of
the reference table per seed), votes drawn in batches by each pairing policy of
:func:`arena.matchmaking.pair_weights` from the board's latest fit, refitted every
max(2 N, votes / 8) votes for every policy (:func:`arena.matchmaking.simulate.simulate_live`);
the votes until Kendall τ ≥ 0.9 and until the top-10 set is right (each held at 3
checkpoints in a row), as a multiple of uniform pairs' on the same worlds. Goal: ≤ 0.5 x at N = 64 (``goal adaptive: ... MET``).
The policies' settings were tuned on seeds 0-199; the bench runs 20 seeds from
``--adaptive-seed-base`` (default 1000): run 2000, 3000, ... for seed sets never seen.

Human-anchored boards (issue 20, pure numpy, ``bench/_human_anchored.py``;
``--only-anchored`` runs it alone): a judge biased toward a quarter of the models, human
labels on 10 % of the matches chosen by the anchor selector; coverage of the true ratings
by each board's 95 % intervals and their widths (``goal human-anchored: ... MET``).

Juries (issue 15, :mod:`bench._jury`; ``--only-jury`` runs it alone): three differently
biased simulated jurors against their majority, mean and reliability-weighted verdicts.
Goal: the jury's τ above its best juror's, its first-slot bias below every juror's
(``goal jury: ... MET``).

PRP sorting (issue 14 part 2, :mod:`bench._prp`, pure numpy): every prompt's answers
sorted by PRP allpair, heapsort and sliding window on section 1's worlds; calls per prompt
against N log2 N and top-1 accuracy. Goal: ≤ 2 N log2 N calls per prompt (``goal PRP``).
TrustJudge (issue 14 part 3, :mod:`bench._trustjudge`): discrete verdicts against
TrustJudge's distribution-sensitive scores and likelihood-aware aggregation on the
simulated noisy judge; ``goal TrustJudge: ... MET`` / ``NOT MET``.

Section 2 (:mod:`bench.judging_pipeline`, skipped when PostgreSQL or Redis is not
reachable): judge calls per second through the real pipeline (Celery worker processes,
PostgreSQL, Redis) against the fake OpenAI-compatible server with 50 ms latency, 2 workers.
``--designs all --pipeline-prompts 100`` runs every design at 16 × 100.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import _human_anchored  # noqa: E402  (bench/_human_anchored.py: issue 20)
import _jury  # noqa: E402  (bench/_jury.py: issue 15's juries)
import _kwise  # noqa: E402  (bench/_kwise.py, this directory: issue 14's K-wise rows)
import _trustjudge  # noqa: E402  (bench/_trustjudge.py, this directory)
import judging_pipeline  # noqa: E402  (bench/judging_pipeline.py, this directory)
from _prp import prp_section  # noqa: E402  (bench/_prp.py: issue 14's PRP sorting)

from arena.matchmaking import (  # noqa: E402
    Adaptive,
    FixedAnchor,
    MediocreAnchor,
    Placement,
    RoundRobin,
    SingleElimination,
    Swiss,
)
from arena.matchmaking._fit import fit_scores  # noqa: E402
from arena.matchmaking.simulate import (  # noqa: E402
    SimulatedJudge,
    World,
    make_world,
    run_design,
)

GOAL_TAU_RATIO = 0.95
GOAL_CALL_SHARE = 0.20

# -- section 1: simulated designs ------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    strength_sd: float = 1.0  # latent strengths ~ N(0, sd²), logits (1 logit ≈ 174 Elo)
    prompt_sd: float = 0.5  # per-(prompt, model) quality noise
    position_bias: float = 0.2  # logit bonus of the answer shown first
    tie_nu: float = 0.3  # Davidson ν: P(tie) = 13 % between equals
    judge_noise: float = 0.0  # per-call logit noise

    def judge(self) -> SimulatedJudge:
        return SimulatedJudge(
            position_bias=self.position_bias, noise=self.judge_noise, tie_nu=self.tie_nu
        )


def simulation_designs(n_prompts: int) -> dict[str, object]:
    """The designs compared, by label (round robin first: it is the reference).

    "round robin, 20% of prompts" is the uniform-allocation baseline at the adaptive
    design's budget: what the same calls buy without any adaptivity.
    """
    return {
        "round robin": RoundRobin(),
        "round robin, 20% of prompts": RoundRobin(prompts=max(1, n_prompts // 5)),
        "fixed anchor": FixedAnchor(anchor=0),
        "mediocre anchor (5 screen)": MediocreAnchor(screen_prompts=5),
        "single elim, random": SingleElimination(seeding="random"),
        "single elim, adaptive": SingleElimination(seeding="adaptive"),
        "swiss": Swiss(),
        "adaptive 20%, ranking": Adaptive(fraction=0.2, criterion="ranking"),
        "adaptive 20%, d-optimal": Adaptive(fraction=0.2, criterion="d-optimal"),
        "adaptive 10%, ranking": Adaptive(fraction=0.1, criterion="ranking"),
    }


def simulate_designs(designs, seeds, n_models, n_prompts, scenario, both_orders=False):
    """Run every design on the same world per seed.

    Returns
    -------
    dict label -> ndarray, shape (seeds, 4): calls, τ (latent), τ (prompt set), seconds
    """
    judge = scenario.judge()
    rows = {label: [] for label in designs}
    for seed in range(seeds):
        world = make_world(
            n_models,
            n_prompts,
            np.random.default_rng(seed),
            strength_sd=scenario.strength_sd,
            prompt_sd=scenario.prompt_sd,
        )
        prompt_set_truth = world.quality.mean(axis=0)
        for label, design in designs.items():
            t0 = time.perf_counter()
            result = run_design(
                design, world, judge, np.random.default_rng(10_000 + seed), both_orders=both_orders
            )
            seconds = time.perf_counter() - t0
            tau_set = kendalltau(prompt_set_truth, result.scores).statistic
            rows[label].append((result.calls, result.tau, tau_set, seconds))
    return {label: np.array(r, dtype=float) for label, r in rows.items()}


def print_simulation(results, reference="round robin") -> None:
    ref = results[reference]
    ref_calls, ref_tau = ref[:, 0].mean(), ref[:, 1].mean()
    seeds = len(ref)
    print(
        f"{'design':28s} {'calls':>7s} {'% RR':>6s} {'tau':>6s} {'± se':>6s} "
        f"{'x RR tau':>8s} {'tau set':>7s} {'s/run':>6s}"
    )
    for label, r in results.items():
        tau = r[:, 1]
        se = tau.std(ddof=1) / math.sqrt(seeds) if seeds > 1 else float("nan")
        print(
            f"{label:28s} {r[:, 0].mean():7.0f} {100 * r[:, 0].mean() / ref_calls:5.1f}% "
            f"{tau.mean():6.3f} {se:6.3f} {tau.mean() / ref_tau:8.3f} "
            f"{r[:, 2].mean():7.3f} {r[:, 3].mean():6.2f}"
        )
    met = [
        label
        for label, r in results.items()
        if ("single elim" in label or "adaptive" in label)
        and r[:, 0].mean() <= GOAL_CALL_SHARE * ref_calls
        and r[:, 1].mean() >= GOAL_TAU_RATIO * ref_tau
    ]
    print(
        f"goal (single elimination or adaptive: >= {GOAL_TAU_RATIO:.2f} x RR tau with "
        f"<= {GOAL_CALL_SHARE:.0%} of its calls): "
        + (f"MET by {', '.join(met)}" if met else "NOT met in this run")
    )


def simulation_section(args) -> None:
    scenario = Scenario(
        strength_sd=args.strength_sd,
        prompt_sd=args.prompt_sd,
        position_bias=args.position_bias,
        tie_nu=args.tie_nu,
    )
    print(
        f"== simulated designs: N={args.models} models, P={args.prompts} prompts, "
        f"{args.seeds} seeds, {'both orders' if args.both_orders else 'one random order'} ==\n"
        f"   {scenario}"
    )
    t0 = time.perf_counter()
    results = simulate_designs(
        simulation_designs(args.prompts),
        args.seeds,
        args.models,
        args.prompts,
        scenario,
        args.both_orders,
    )
    results.update(_kwise.simulate(args.seeds, args.models, args.prompts, scenario))
    print_simulation(results)
    _kwise.print_goal(results)
    print(f"   ({time.perf_counter() - t0:.0f} s)")
    prp_section(args, scenario)


# -- placement: one newcomer on an existing board --------------------------------------

PLACEMENT_SHARE = 0.15


def _play(plan, world, judge, rng):
    while not plan.done:
        plan.observe(judge(world, plan.next_batch(), rng))
    return plan


def _rank(scores, k: int) -> int:
    return int(np.argsort(np.argsort(-np.asarray(scores), kind="stable"))[k])


def place_once(seed: int, n_models: int, n_prompts: int, scenario: Scenario):
    """(calls share of all pairs, |placed rank - all-pairs rank|, newcomer's true rank)."""
    rng = np.random.default_rng(seed)
    judge = scenario.judge()
    n = n_models + 1
    world = make_world(n, n_prompts, rng, strength_sd=scenario.strength_sd,
                       prompt_sd=scenario.prompt_sd)  # fmt: skip
    full = _play(RoundRobin().start(n, n_prompts, rng), world, judge, rng)
    board_world = World(world.strengths[:n_models], world.quality[:, :n_models])
    board = _play(RoundRobin().start(n_models, n_prompts, rng), board_world, judge, rng)
    all_pairs = n_models * n_prompts
    design = Placement(
        newcomer=n_models,
        strengths=(*board.scores(), 0.0),
        budget=int(PLACEMENT_SHARE * all_pairs),
    )
    plan = _play(design.start(n, n_prompts, rng), world, judge, rng)
    wins = plan.wins.copy()
    wins[:n_models, :n_models] += board.wins  # one fit over everything
    placed = _rank(fit_scores(n, wins), n_models)
    return (
        plan.calls_issued / all_pairs,
        abs(placed - _rank(full.scores(), n_models)),
        _rank(world.strengths, n_models),
    )


def placement_section(args) -> None:
    scenario = Scenario(
        strength_sd=args.strength_sd,
        prompt_sd=args.prompt_sd,
        position_bias=args.position_bias,
        tie_nu=args.tie_nu,
    )
    m, p = args.placement_models, args.placement_prompts
    print(
        f"\n== placement: a newcomer on a board of {m} models, {p} prompts, "
        f"{args.placement_seeds} seeds ==\n   {scenario}"
    )
    t0 = time.perf_counter()
    results = np.array([place_once(seed, m, p, scenario) for seed in range(args.placement_seeds)])
    share, off, true_rank = results.T
    print(f"   {'seed':>4} {'true rank':>9} {'calls %':>8} {'rank off':>8}")
    for seed, (s, o, t) in enumerate(results.tolist()):
        print(f"   {seed:>4} {int(t) + 1:>9} {100 * s:>7.1f}% {int(o):>8}")
    within = int(np.sum(off <= 1))
    met = within == len(results) and share.max() <= PLACEMENT_SHARE + 1e-12
    print(f"   ({time.perf_counter() - t0:.0f} s)")
    print(
        f"goal placement: {within}/{len(results)} newcomers within ±1 rank of their "
        f"all-pairs position (off by {int(off.max())} at most), calls {100 * share.mean():.1f}% "
        f"of all pairs on average, {100 * share.max():.1f}% at most (<= "
        f"{100 * PLACEMENT_SHARE:.0f}%) {'MET' if met else 'NOT MET'}"
    )


# -- main -------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--strength-sd", type=float, default=Scenario.strength_sd)
    parser.add_argument("--prompt-sd", type=float, default=Scenario.prompt_sd)
    parser.add_argument("--position-bias", type=float, default=Scenario.position_bias)
    parser.add_argument("--tie-nu", type=float, default=Scenario.tie_nu)
    parser.add_argument("--both-orders", action="store_true")
    parser.add_argument("--placement-models", type=int, default=20)
    parser.add_argument("--placement-prompts", type=int, default=500)
    parser.add_argument("--placement-seeds", type=int, default=20)
    parser.add_argument("--adaptive-models", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--adaptive-seeds", type=int, default=20, help="at N = 64 (the goal)")
    parser.add_argument("--adaptive-other-seeds", type=int, default=4, help="at other N")
    parser.add_argument("--adaptive-cap", type=int, default=8000, help="votes per model")
    parser.add_argument("--adaptive-grid", type=float, default=4, help="checkpoints per doubling")
    parser.add_argument(
        "--adaptive-batch", type=float, default=2, help="votes between refits, x N (at least)"
    )
    parser.add_argument("--adaptive-growth", type=float, default=0.125)
    parser.add_argument("--adaptive-settle", type=int, default=3)
    parser.add_argument(
        "--adaptive-seed-base",
        type=int,
        default=ADAPTIVE_SEED_BASE,
        help="first seed (the policies were tuned on seeds 0-199: run others)",
    )
    parser.add_argument("--only-adaptive", action="store_true", help="run issue 16's section only")
    parser.add_argument("--only-anchored", action="store_true", help="run issue 20's section only")
    parser.add_argument(
        "--no-pipeline", action="store_true", help="skip the Celery pipeline section"
    )
    parser.add_argument("--only-jury", action="store_true", help="run issue 15's section only")
    _jury.add_arguments(parser)
    judging_pipeline.add_arguments(parser)
    _human_anchored.add_arguments(parser)
    _trustjudge.add_arguments(parser)
    parser.add_argument("--only-trustjudge", action="store_true", help="issue 14's TrustJudge rows")
    return parser.parse_args(argv)


def pipeline_section(args) -> None:
    """Judge calls per second through Celery workers against the fake server (PostgreSQL + Redis)."""
    try:
        import psycopg
        import redis

        psycopg.connect(args.database_url, connect_timeout=3).close()
        redis.Redis.from_url(args.redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any reason the services are not there
        print(f"\n== Celery pipeline: skipped, PostgreSQL or Redis not reachable ({exc}) ==")
        return
    print()
    judging_pipeline.print_results(args, judging_pipeline.run_bench(args))


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.only_trustjudge:
        _trustjudge.trustjudge_section(args)
        return
    if args.only_adaptive or args.only_jury:
        (adaptive_section if args.only_adaptive else _jury.jury_section)(args)
        return
    if args.only_anchored:
        _human_anchored.section(args)
        return
    simulation_section(args)
    placement_section(args)
    _human_anchored.section(args)
    _jury.jury_section(args)
    _trustjudge.trustjudge_section(args)
    if not args.no_pipeline:
        pipeline_section(args)
    adaptive_section(args)


# -- issue 16: adaptive matchmaking on live boards of 32-128 models ---------------------

ADAPTIVE_GOAL_SHARE = 0.5
ADAPTIVE_SEED_BASE = 1000  # the policies' settings were chosen on seeds 0-199
ADAPTIVE_GOAL_MODELS = 64
ARENA_TIE_NU = 1.05  # Davidson ν: 34.5 % ties + both bad between equals, as in the arena data


def adaptive_policies():
    """The live pairing policies compared (:func:`arena.matchmaking.pair_weights`)."""
    from arena.matchmaking.simulate import LivePolicy

    return {
        "uniform pairs": LivePolicy("uniform"),
        "K-Sort UCB": LivePolicy("ucb"),
        "Thompson, adjacent pairs": LivePolicy("thompson", focus=0.0),
        "Thompson, top-10 focus": LivePolicy("thompson"),
        "information gain": LivePolicy("info-gain"),
        "misorder (tau + top-10)": LivePolicy("misorder"),
        "human-vote policy": LivePolicy("info-gain", covariance=False),
    }


def arena_strengths() -> np.ndarray:
    """The 129 Chatbot Arena BT strengths (logits) of the reference table."""
    from arena.ratings import ELO_SCALE

    table = ROOT / "arena/fixtures/datasets/chatbot_arena/bt_20240814_reference_table.txt"
    rows = table.read_text().splitlines()[2:]
    return np.array([float(r.split("|")[2]) for r in rows]) / ELO_SCALE


def adaptive_budgets(policy, n_models, seed, args):
    """Votes until τ ≥ 0.9, until the top-10 set is right, until both (inf: not by the cap)."""
    from arena.matchmaking.simulate import first_stable, simulate_live

    rng = np.random.default_rng(seed)
    strengths = rng.choice(arena_strengths(), n_models, replace=False)
    batch = int(args.adaptive_batch * n_models)
    cap = args.adaptive_cap * n_models
    grid = 10 * n_models * 2.0 ** (np.arange(0, 200) / args.adaptive_grid)
    run = simulate_live(
        policy,
        strengths,
        np.random.default_rng(50_000 + seed),
        checkpoints=np.round(grid[grid <= cap]),
        batch=batch,
        growth=args.adaptive_growth,
        tie_nu=ARENA_TIE_NU,
        top=10,
        tau_target=0.9,
        settle=args.adaptive_settle,
    )
    tau = first_stable(run.checkpoints, run.tau >= 0.9, args.adaptive_settle)
    top = first_stable(run.checkpoints, run.top_right, args.adaptive_settle)
    both = first_stable(run.checkpoints, (run.tau >= 0.9) & run.top_right, args.adaptive_settle)
    return tau, top, both, cap


def _ratio(votes, reference, cap):
    """Per-seed budget ratio; a censored reference counts as the cap (the policy's ratio is
    then an upper bound), a censored policy as inf, both censored as 1."""
    ref = np.where(np.isfinite(reference), reference, cap)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(votes) & np.isinf(reference), 1.0, votes / ref)


def adaptive_section(args) -> None:
    """Issue 16: votes each live pairing policy needs on boards of 32, 64 and 128 models."""
    from threadpoolctl import threadpool_limits

    policies = adaptive_policies()
    print(
        "\n== adaptive matchmaking (issue 16): Chatbot Arena strengths (a random subset of "
        f"the 129 per seed), {args.adaptive_seeds} seeds from {args.adaptive_seed_base} at "
        f"N={ADAPTIVE_GOAL_MODELS}, "
        f"{args.adaptive_other_seeds} at other N ==\n"
        f"   a vote: Davidson ties (nu={ARENA_TIE_NU}); the board refits (project BT, warm "
        f"start) every max({args.adaptive_batch:g} N, {args.adaptive_growth:g} x votes) votes, "
        "the same for every policy; floor 0.2 uniform.\n"
        f"   budget = votes at the first checkpoint (x2^(1/{args.adaptive_grid:g}) grid) from "
        f"which the target holds at {args.adaptive_settle} checkpoints in a row; cap "
        f"{args.adaptive_cap} x N votes. Median over seeds; ratio = median of per-seed "
        "policy / uniform."
    )
    t0 = time.perf_counter()
    summary = {}
    with threadpool_limits(1):  # tiny matrices: BLAS threads only fight on a busy machine
        for n in args.adaptive_models:
            count = args.adaptive_seeds if n == ADAPTIVE_GOAL_MODELS else args.adaptive_other_seeds
            seeds = range(args.adaptive_seed_base, args.adaptive_seed_base + count)
            got = {
                label: np.array([adaptive_budgets(p, n, seed, args) for seed in seeds])
                for label, p in policies.items()
            }
            ref = got["uniform pairs"]
            print(
                f"   N={n:<3} {'policy (median votes)':26s} {'tau>=0.9':>9s} {'x unif':>6s} {'top-10 set':>10s}"
                f" {'x unif':>6s} {'both':>9s} {'x unif':>6s}"
            )
            for label, r in got.items():
                cap = r[0, 3]
                ratios = [float(np.median(_ratio(r[:, k], ref[:, k], cap))) for k in range(3)]
                votes = [np.median(r[:, k]) for k in range(3)]
                summary[n, label] = ratios
                cells = " ".join(
                    (f"{v:>9.0f}" if np.isfinite(v) else f"{'> cap':>9s}") + f" {x:>6.2f}"
                    for v, x in zip(votes, ratios, strict=True)
                )
                print(f"         {label:26s} {cells}")
    print(f"   ({time.perf_counter() - t0:.0f} s)")
    n = ADAPTIVE_GOAL_MODELS
    scored = {
        label: r for (size, label), r in summary.items() if size == n and label != "uniform pairs"
    }
    if not scored:
        print(f"goal adaptive: N={n} not simulated (--adaptive-models) NOT MET")
        return
    best = min(scored, key=lambda label: scored[label][2])
    tau_x, top_x, both_x = scored[best]
    met = both_x <= ADAPTIVE_GOAL_SHARE
    print(
        f"goal adaptive: at N={n} (seeds from {args.adaptive_seed_base}), {best} needs {both_x:.2f} x uniform's votes until tau >= 0.9 "
        f"and the top-10 set are both right ({tau_x:.2f} x for tau alone, {top_x:.2f} x for "
        f"the top 10; <= {ADAPTIVE_GOAL_SHARE:.1f} x) {'MET' if met else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
