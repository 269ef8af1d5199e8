"""Issue 20: human-anchored boards against judge-only and human-only ones (pure numpy).

The world: ``--anchored-models`` (12) models with strengths ~ N(0, 0.6²) logits, every
pair compared on ``--anchored-prompts`` (50) prompts (3300 matches). Each match has its own human
preference ``p_k ~ Beta(μ c, (1 - μ) c)`` with ``μ = σ(θ_a - θ_b)`` (so the human
Bradley-Terry strengths are exactly ``θ``, the truth) and ``c = 2/3`` (two humans agree
on 80 % of the matches between equals). One human label is ``Bernoulli(p_k)``. The judge
reads the same match with a bias: ``logit p̂_k = logit p_k + b_a - b_b + N(0, 0.5²)``,
``b = +0.6`` logits for a quarter of the models (its own family) and 0 for the others,
and gives a verdict in both orders with a first-shown advantage of 0.3 logits, with its
probability (logprobs): ``Ŷ_k`` is the mean of the two orders' probabilities.

Boards, per seed: judge-only (the project's BT board on every judge verdict, bootstrap
intervals); human-only (the project's BT board on 10 % of the matches labelled, drawn
uniformly); human-anchored (:func:`arena.ratings.anchored.anchored_bt` on every judge
verdict and 10 % of the matches labelled, chosen by :func:`arena.matchmaking.anchors.
select_anchors`), and, for reference, anchored on a uniform 10 % and anchored on the
judge's verdicts without probabilities (mean of the two verdicts). Coverage is the share
of (model, seed) whose 95 % interval holds the true rating (mean 1000, 400/ln 10 scale).

Goal: the anchored intervals cover ≥ 93 % where the judge-only ones cover < 80 %, and are
at most 0.7 x as wide as the human-only board's (mean widths over models and seeds).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from arena.matchmaking.anchors import select_anchors
from arena.ratings import ELO_SCALE, counts_from_arrays, leaderboard
from arena.ratings.anchored import AnchoredMatches, anchored_bt
from arena.ratings.counts import FIRST, SECOND

GOAL_COVERAGE = 0.93
GOAL_JUDGE_BELOW = 0.80
GOAL_WIDTH_RATIO = 0.7
STRENGTH_SD = 0.6
CONCENTRATION = 2 / 3
JUDGE_BIAS = 0.6
JUDGE_NOISE = 0.5
POSITION = 0.3


def add_arguments(parser) -> None:
    parser.add_argument("--anchored-seeds", type=int, default=200)
    parser.add_argument("--anchored-models", type=int, default=12)
    parser.add_argument("--anchored-prompts", type=int, default=50)
    parser.add_argument("--anchored-budget", type=float, default=0.1, help="share labelled")
    parser.add_argument("--anchored-bootstrap", type=int, default=500)


def world(seed: int, n_models: int, n_prompts: int):
    """One simulated run: matches, true strengths, human preferences and judge verdicts."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, STRENGTH_SD, n_models)
    theta -= theta.mean()
    bias = np.zeros(n_models)
    bias[rng.choice(n_models, max(1, n_models // 4), replace=False)] = JUDGE_BIAS
    a, b = np.triu_indices(n_models, 1)
    first, second = np.repeat(a, n_prompts), np.repeat(b, n_prompts)
    swap = rng.random(first.size) < 0.5  # slot order of the match
    first, second = np.where(swap, second, first), np.where(swap, first, second)
    mu = expit(theta[first] - theta[second])
    p = np.clip(rng.beta(mu * CONCENTRATION, (1 - mu) * CONCENTRATION), 1e-3, 1 - 1e-3)
    human = (rng.random(p.size) < p).astype(np.float64)
    judge_logit = logit(p) + bias[first] - bias[second] + rng.normal(0, JUDGE_NOISE, p.size)
    # the judge's probability that slot 0 wins, shown first (in order) and second
    # (swapped), and its verdicts: whether slot 0 won
    probability = (expit(judge_logit + POSITION) + expit(judge_logit - POSITION)) / 2
    in_order = rng.random(p.size) < expit(judge_logit + POSITION)
    swapped = rng.random(p.size) < expit(judge_logit - POSITION)
    return theta, first, second, human, in_order, swapped, probability


def judge_board(models, first, second, in_order, swapped, bootstrap, seed):
    """The project's judge board: both orders of a match are one bootstrap unit."""
    n = first.size
    unit = np.concatenate([np.arange(n), np.arange(n)])
    shown_first = np.concatenate([first, second])
    shown_second = np.concatenate([second, first])
    first_won = np.concatenate([in_order, ~swapped])  # swapped: slot 1 shown first
    outcome = np.where(first_won, FIRST, SECOND)
    ones = np.ones(2 * n)
    counts = counts_from_arrays(
        models, unit, shown_first, shown_second, outcome, ones, ones, np.ones(2 * n, np.int64)
    )
    return leaderboard(counts, bootstrap=bootstrap, seed=seed)


def human_board(models, first, second, human, chosen, bootstrap, seed):
    """The project's BT board on the human labels of the chosen matches only."""
    idx = np.flatnonzero(chosen)
    outcome = np.where(human[idx] > 0.5, FIRST, SECOND)
    ones = np.ones(idx.size)
    counts = counts_from_arrays(
        models,
        np.arange(idx.size),
        first[idx],
        second[idx],
        outcome,
        ones,
        ones,
        np.ones(idx.size, np.int64),
    )
    return leaderboard(counts, bootstrap=bootstrap, seed=seed)


def _intervals(board, models):
    rows = {r.model: r for r in board.rows}
    lower = np.array([rows[m].ci_lower for m in models])
    upper = np.array([rows[m].ci_upper for m in models])
    return lower, upper


BOARDS = (
    "judge-only",
    "human-only",
    "anchored",
    "anchored, uniform 10%",
    "anchored, verdicts only",
)


def simulate_once(seed: int, n_models: int, n_prompts: int, budget_share: float, bootstrap: int):
    """Per board: (covered, width) per model, and the anchored fits' λ and ESS gain.

    "anchored" reads the judge's verdict probabilities (both orders averaged) and the
    labels the anchor selector chose; "anchored, uniform 10%" the same probabilities
    with labels on a uniform sample; "anchored, verdicts only" the judge's verdicts
    without probabilities (the mean of its two verdicts) and the selector's labels.
    """
    theta, first, second, human, in_order, swapped, probability = world(seed, n_models, n_prompts)
    models = tuple(f"m{i:02d}" for i in range(n_models))
    truth = ELO_SCALE * theta + 1000.0
    rng = np.random.default_rng(seed + 7_000_003)
    n = first.size
    budget = budget_share * n
    intervals, extra = {}, {}

    judge = judge_board(models, first, second, in_order, swapped, bootstrap, seed)
    intervals["judge-only"] = _intervals(judge, models)
    uniform = np.zeros(n, bool)
    uniform[rng.choice(n, int(round(budget)), replace=False)] = True
    intervals["human-only"] = _intervals(
        human_board(models, first, second, human, uniform, bootstrap, seed), models
    )

    verdicts = (in_order.astype(np.float64) + swapped) / 2
    spread = np.abs(in_order.astype(np.float64) - swapped)
    judge_scores = (np.array([judge.row(m).rating for m in models]) - 1000.0) / ELO_SCALE
    picked = select_anchors(first, second, probability, spread, judge_scores, budget, rng)
    picked_hard = select_anchors(first, second, verdicts, spread, judge_scores, budget, rng)
    for name, soft, plan_chosen, inclusion in (
        ("anchored", probability, picked.chosen, picked.inclusion),
        ("anchored, uniform 10%", probability, uniform, np.full(n, uniform.mean())),
        ("anchored, verdicts only", verdicts, picked_hard.chosen, picked_hard.inclusion),
    ):
        labels = np.where(plan_chosen, human, np.nan)
        fit = anchored_bt(AnchoredMatches(models, first, second, soft, labels, inclusion))
        _, lower, upper, _ = fit.ratings()
        intervals[name] = (lower, upper)
        extra[name] = (fit.lam, fit.ess_gain)
    covered = {
        name: ((lo <= truth) & (truth <= hi), hi - lo) for name, (lo, hi) in intervals.items()
    }
    return covered, extra


def section(args) -> None:
    """Print coverage and widths over seeds, and the ``goal human-anchored`` line."""
    from threadpoolctl import threadpool_limits

    covered = {b: [] for b in BOARDS}
    widths = {b: [] for b in BOARDS}
    tuned = {b: [] for b in BOARDS}
    with threadpool_limits(1):
        for seed in range(args.anchored_seeds):
            result, extra = simulate_once(
                seed,
                args.anchored_models,
                args.anchored_prompts,
                args.anchored_budget,
                args.anchored_bootstrap,
            )
            for b in BOARDS:
                covered[b].append(result[b][0])
                widths[b].append(result[b][1])
                if b in extra:
                    tuned[b].append(extra[b])
    n_matches = args.anchored_models * (args.anchored_models - 1) // 2 * args.anchored_prompts
    print(
        f"\n== Human-anchored boards (issue 20): {args.anchored_models} models x "
        f"{args.anchored_prompts} prompts = {n_matches} matches judged in both orders, the "
        f"judge biased +{JUDGE_BIAS} logits toward a quarter of the models, human labels on "
        f"{args.anchored_budget:.0%} of the matches, {args.anchored_seeds} seeds =="
    )
    print(f"{'board':<26} {'coverage':>9} {'mean 95% CI width':>18} {'lambda':>7} {'ESS gain':>9}")
    summary = {}
    for b in BOARDS:
        cov = float(np.mean(np.concatenate(covered[b])))
        width = float(np.mean(np.concatenate(widths[b])))
        summary[b] = (cov, width)
        lam, gain = (
            (
                f"{np.median([t[0] for t in tuned[b]]):.2f}",
                f"{np.median([t[1] for t in tuned[b]]):.2f} x",
            )
            if tuned[b]
            else ("", "")
        )
        print(f"{b:<26} {cov:>9.1%} {width:>14.1f} pts {lam:>7} {gain:>9}")
    print(
        "(lambda: median power; ESS gain: median estimated effective sample size against a "
        "human-only board of as many labels; CI widths are the project's bootstrap boards' "
        "for judge-only and human-only)"
    )
    cov, width = summary["anchored"]
    judge_cov = summary["judge-only"][0]
    ratio = width / summary["human-only"][1]
    met = cov >= GOAL_COVERAGE and judge_cov < GOAL_JUDGE_BELOW and ratio <= GOAL_WIDTH_RATIO
    print(
        f"goal human-anchored: coverage {cov:.1%} (>= {GOAL_COVERAGE:.0%}) where judge-only "
        f"covers {judge_cov:.1%} (< {GOAL_JUDGE_BELOW:.0%}); CI width {ratio:.2f} x "
        f"human-only's (<= {GOAL_WIDTH_RATIO}) {'MET' if met else 'NOT MET'}"
    )
