"""TrustJudge against discrete verdicts on a simulated noisy judge (issue 14 part 3).

The world: ``--trust-models`` candidates of known quality (evenly spread over ±1.5 logits,
answer noise 0.5 per prompt) answer ``--trust-prompts`` prompts; the judge is the test
scenario's noisy judge (``JudgeBehaviour(noise=1.0, tie=0.1)``: per-call logit noise 1,
tie propensity 0.1). Everything goes through the real parts: answers and judge replies
from :class:`judges.clients.simulation.Simulator` (sampled at temperature 1, as the paper
does), the fake server's logprobs (top 20 alternatives of the verdict token), our parser
and :func:`judges.clients.judge.reply_probabilities`.

Per prompt, every answer is rated once on 1-10 and once on 1-100, and every pair is
judged in both orders with MT-Bench's ``[[A]]/[[B]]/[[C]]`` labels (the paper's). Rows:

- score-comparison inconsistency (the paper's conflict rate: a pair relation against the
  relation of the two scores), each way of judging against itself, as the audit measures
  it (:func:`judges.audit_metrics.trustjudge.trustjudge_audit`): discrete 1-10 (or 1-100)
  ratings against the both-orders relation, TrustJudge's distribution-sensitive 1-10 (or
  1-100, softmax T = 0.2) scores against the likelihood-aware relation; the rows "vs
  discrete pairs" mix the two (distribution-sensitive scores against the both-orders
  relation: every pair whose orders disagree is a tie there, which no continuous score
  matches), shown for what the score side alone does;
- pairwise transitivity inconsistency (triples fitting no weak order): discrete both-order
  relations (disagreement = tie), likelihood-aware aggregation, perplexity fallback;
  "pairs tied by the orders" is the share of pairs whose two orders disagree (a tie on
  the pair side, which no score matches unless it ties too), and "on decisive pairs"
  the conflict rate over the other pairs;
- Kendall τ, per prompt (the prompt's answers ranked by their scores, or by their net
  pairwise wins, against the answers' simulated quality, averaged over prompts: the
  accuracy TrustJudge should keep), and of the models' order against their true quality:
  mean score per model, and BT on hard verdicts against BT on soft outcomes (each verdict counting ``p`` / ``1 - p``
  with ``p`` its probability, :func:`arena.ratings.counts.soft_outcome_counts`).

Goal: both TrustJudge rates at least 30 % lower (relative) than the discrete ones
(1-10 scores against each way's own pair relation for the score comparison, likelihood
aggregation for transitivity). The goal line also prints the score side alone (the
distribution-sensitive scores against the discrete relation), which on this judge is not
lower: 44 % of its pairs are ties by the orders, which no continuous score matches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.stats import kendalltau

from arena.ratings.bt import fit_bt
from arena.ratings.counts import PairwiseCounts, soft_outcome_counts
from judges import prompts, verdicts
from judges.audit_metrics import TIE, A, B
from judges.audit_metrics.score_pairwise import score_pairwise_inconsistency
from judges.audit_metrics.trustjudge import (
    both_orders_relation,
    distribution_score,
    likelihood_relation,
    perplexity,
    perplexity_relation,
    transitivity_inconsistency,
)
from judges.clients.fake_server import _logprobs_content
from judges.clients.judge import parse_reply, reply_probabilities
from judges.clients.simulation import JudgeBehaviour, Scenario, SimModel, Simulator, Style

GOAL_REDUCTION = 0.30
NOISY_JUDGE = JudgeBehaviour(noise=1.0, tie=0.1)  # scenarios.test()'s "judge-noisy"


@dataclass
class _Reply:  # what reply_probabilities reads of an llm.openai_compat.ChatReply
    text: str
    logprobs: list


def add_arguments(parser) -> None:
    parser.add_argument("--trust-models", type=int, default=8)
    parser.add_argument("--trust-prompts", type=int, default=30)
    parser.add_argument("--trust-seeds", type=int, default=3)


def _ask(sim, messages, nonce):
    reply = sim.chat({"model": "judge", "messages": messages, "temperature": 1.0, "seed": nonce}, 0)
    logprobs = _logprobs_content(reply, 20)
    return _Reply(reply.text, logprobs)


def one_world(seed: int, n_models: int, n_prompts: int) -> dict:
    plain = Style(mean_words=60, headers=0.0, lists=0.0, bold=0.0)
    quality = np.linspace(-1.5, 1.5, n_models)
    models = [SimModel(f"m{i}", quality=float(q), style=plain) for i, q in enumerate(quality)]
    scenario = Scenario(
        "trust", (*models, SimModel("judge", judge=NOISY_JUDGE)), seed=seed, answer_noise=0.5
    )
    sim = Simulator(scenario)
    questions = [
        f"Question {seed}-{p}: explain topic number {p} clearly." for p in range(n_prompts)
    ]
    answers = [
        [sim.generate(m, [{"role": "user", "content": q}]).text for m in models] for q in questions
    ]
    scores = {}  # (scale mode, kind) -> array (prompts, models)
    for mode in prompts.SINGLE_MODES:
        low, high = prompts.score_scale(mode)
        tpl = prompts.get_template(mode)
        hard = np.full((n_prompts, n_models), np.nan)
        soft = np.full((n_prompts, n_models), np.nan)
        for p, q in enumerate(questions):
            for m in range(n_models):
                reply = _ask(sim, prompts.render(tpl, q, [answers[p][m]]), f"{mode}:{p}:{m}")
                parsed = parse_reply(mode, reply.text)
                if isinstance(parsed, verdicts.Score):
                    hard[p, m] = parsed.value
                found = reply_probabilities(mode, reply)
                if found is not None:
                    s = distribution_score(found.by_label, low, high)
                    soft[p, m] = np.nan if s is None else s
        scores[mode, "discrete"], scores[mode, "trust"] = hard, soft
    tpl = prompts.get_template(prompts.PAIRWISE_MTBENCH)
    rows = []  # prompt, a, b, v1, v2, p1 (3), p2 (3), ppl1, ppl2
    for p, q in enumerate(questions):
        for a, b in combinations(range(n_models), 2):
            row = [p, a, b]
            probs, ppl, codes = [], [], []
            for order in ((0, 1), (1, 0)):
                messages = prompts.render(tpl, q, [answers[p][a], answers[p][b]], order)
                reply = _ask(sim, messages, f"pair:{p}:{a}:{b}:{order}")
                parsed = verdicts.to_slots(parse_reply(prompts.PAIRWISE_MTBENCH, reply.text), order)
                codes.append(parsed.code if isinstance(parsed, verdicts.SlotVerdict) else 4)
                found = reply_probabilities(prompts.PAIRWISE_MTBENCH, reply)
                w = found.winner if found else {}
                in_slots = {order[0]: w.get("A", np.nan), order[1]: w.get("B", np.nan)}
                probs.append([in_slots[0], in_slots[1], w.get("tie", np.nan)])
                ppl.append(perplexity([t["logprob"] for t in reply.logprobs]))
            rows.append(row + codes + probs[0] + probs[1] + ppl)
    table = np.asarray(rows, dtype=np.float64)
    truth = np.array(
        [
            [sim.answer_info(text, q).quality for text in texts]
            for q, texts in zip(questions, answers, strict=True)
        ]
    )
    return {"quality": quality, "answer_quality": truth, "scores": scores, "pairs": table}


def measure(world: dict) -> dict:
    t = world["pairs"]
    prompt, a, b = t[:, 0].astype(int), t[:, 1].astype(int), t[:, 2].astype(int)
    v1, v2 = t[:, 3].astype(int), t[:, 4].astype(int)
    p1, p2 = t[:, 5:8], t[:, 8:11]
    discrete = both_orders_relation(v1, v2)
    likely = likelihood_relation(p1, p2)
    ppl = perplexity_relation(v1, v2, t[:, 11], t[:, 12])
    out = {}
    truth = world["answer_quality"]
    decisive = (discrete == A) | (discrete == B)
    out["pairs tied by the orders"] = float(np.mean(discrete == TIE))
    for (mode, kind), s in world["scores"].items():
        top = prompts.score_scale(mode)[1]
        own = discrete if kind == "discrete" else likely  # each way of judging against itself
        conflict = score_pairwise_inconsistency(s[prompt, a], s[prompt, b], own).conflict
        on_decisive = score_pairwise_inconsistency(
            s[prompt, a][decisive], s[prompt, b][decisive], discrete[decisive]
        ).conflict
        out[f"score {kind} {top}"] = conflict.value
        if kind == "trust":  # the score side alone: against the discrete relation
            mixed = score_pairwise_inconsistency(s[prompt, a], s[prompt, b], discrete).conflict
            out[f"score trust {top} vs discrete pairs"] = mixed.value
        out[f"score {kind} {top} on decisive pairs"] = on_decisive.value
        out[f"tau mean score {kind} {prompts.score_scale(mode)[1]}"] = _tau(
            np.nanmean(s, axis=0), world["quality"]
        )
        out[f"tau per prompt, score {kind} {prompts.score_scale(mode)[1]}"] = _per_prompt_tau(
            s, truth
        )
    for name, rel in (("discrete", discrete), ("likelihood", likely), ("perplexity", ppl)):
        out[f"transitivity {name}"] = transitivity_inconsistency(
            prompt, a, b, rel, n_boot=0
        ).share.value
    for name, rel in (("discrete", discrete), ("likelihood", likely)):
        wins = np.zeros(truth.shape)  # Copeland: net wins of each answer within its prompt
        sign = np.where(rel == A, 1.0, np.where(rel == B, -1.0, 0.0))
        np.add.at(wins, (prompt, a), sign)
        np.add.at(wins, (prompt, b), -sign)
        out[f"tau per prompt, pairs {name}"] = _per_prompt_tau(wins, truth)
    n = len(world["quality"])
    names = [str(i) for i in range(n)]
    hard_out = np.where(discrete == A, 0, np.where(discrete == B, 1, 2))
    keep = discrete >= 0
    hard = PairwiseCounts.from_cells(names, a[keep], b[keep], hard_out[keep], np.ones(keep.sum()))
    merged = p1 + p2
    ok = np.all(np.isfinite(merged), axis=1)
    p_a = (merged[:, 0] + 0.5 * merged[:, 2]) / merged.sum(axis=1).clip(1e-12)
    soft = soft_outcome_counts(names, a[ok], b[ok], p_a[ok])
    out["tau BT hard verdicts"] = _tau(fit_bt(hard, prior=0.01).scores, world["quality"])
    out["tau BT soft outcomes"] = _tau(fit_bt(soft, prior=0.01).scores, world["quality"])
    return out


def _per_prompt_tau(estimate, truth) -> float:
    """Mean over prompts of Kendall τ between an answer ranking and the answers' quality."""
    return float(np.nanmean([_tau(e, t) for e, t in zip(estimate, truth, strict=True)]))


def _tau(estimate, truth) -> float:
    return float(kendalltau(estimate, truth).statistic)


def trustjudge_section(args) -> None:
    """Rows of both inconsistency rates and τ, discrete against TrustJudge, and the goal line."""
    n, k, seeds = args.trust_models, args.trust_prompts, args.trust_seeds
    print(
        f"\n== TrustJudge (issue 14): noisy judge (noise {NOISY_JUDGE.noise}, tie "
        f"{NOISY_JUDGE.tie}), {n} models x {k} prompts, {seeds} seeds =="
    )
    results = [measure(one_world(seed, n, k)) for seed in range(seeds)]
    keys = list(results[0])
    print(f"{'measure':<38} {'mean':>8} {'se':>8}")
    mean = {}
    for key in keys:
        values = np.array([r[key] for r in results])
        mean[key] = float(values.mean())
        se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
        print(f"{key:<38} {mean[key]:>8.4f} {se:>8.4f}")
    score_cut = 1 - mean["score trust 10"] / mean["score discrete 10"]
    trans_cut = 1 - mean["transitivity likelihood"] / mean["transitivity discrete"]
    met = score_cut >= GOAL_REDUCTION and trans_cut >= GOAL_REDUCTION
    print(
        f"goal TrustJudge: score-comparison inconsistency {mean['score discrete 10']:.2%} -> "
        f"{mean['score trust 10']:.2%} ({score_cut:.0%} lower; the scores alone against the "
        f"discrete pairs {mean['score trust 10 vs discrete pairs']:.2%}, on decisive pairs "
        f"{mean['score discrete 10 on decisive pairs']:.1%} -> "
        f"{mean['score trust 10 on decisive pairs']:.1%}), pairwise transitivity "
        f"inconsistency {mean['transitivity discrete']:.2%} -> "
        f"{mean['transitivity likelihood']:.2%} ({trans_cut:.0%} lower); both >= "
        f"{GOAL_REDUCTION:.0%} lower: {'MET' if met else 'NOT MET'}"
    )
