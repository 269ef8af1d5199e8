"""Juries (issue 15): a panel of three differently biased judges against each of them.

The world is the fake server's ``jury`` scenario (:func:`judges.clients.scenarios.jury`):
the demo's twelve candidates answer ``--jury-prompts`` prompts (their texts, lengths and
qualities from :mod:`judges.clients.simulation`), and three noisy jurors judge every pair
on every prompt in both orders with the simulator's own judge model
(:meth:`Simulator.pairwise_probabilities`: position, length and self-preference biases,
per-call noise, ties). Each seed is a fresh scenario seed (other answers, other noise).

Per juror, and for the jury's verdicts (:func:`arena.ratings.jury.jury_verdicts`:
majority, mean of the verdict distributions, reliability-weighted with weights from each
juror's accuracy on a separate gold set of 200 comparisons, shrunk toward equal): Kendall
τ between the Bradley-Terry fit of its verdicts and the candidates' latent qualities, and
its first-slot bias, |share of decisive verdicts won by the answer shown first − ½|. The
judge-effects fit (:mod:`arena.ratings.judge_effects`) of all three jurors' verdicts
is one more board.

Goal: the majority jury's mean τ is above its best juror's, and its first-slot bias
below every juror's (``goal jury: ... MET``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.stats import kendalltau

from arena.matchmaking._fit import fit_scores
from arena.ratings.counts import FIRST, SECOND, TIE
from arena.ratings.judge_effects import fit_judge_effects
from arena.ratings.jury import jury_verdicts, reliability_weights, slot0_points
from judges.clients.scenarios import JURORS, jury
from judges.clients.simulation import AnswerInfo, Simulator, answer_quality, generate_answer

GOLD_CALLS = 200


def add_arguments(parser) -> None:
    parser.add_argument("--jury-seeds", type=int, default=5)
    parser.add_argument("--jury-prompts", type=int, default=40)


def _world(seed: int, n_prompts: int):
    """The scenario at ``seed``, its candidates and the answers' infos [prompt][model]."""
    scenario = replace(jury(), seed=seed)
    candidates = [m for m in scenario.models if m.name not in JURORS]
    prompts = [
        f"Question {seed}-{p}: explain topic {p} and how it works in practice."
        for p in range(n_prompts)
    ]
    infos = []
    for prompt in prompts:
        row = []
        for model in candidates:
            text = generate_answer(model, prompt, scenario.seed)
            row.append(
                AnswerInfo(
                    answer_quality(scenario, model, prompt),
                    model.name,
                    model.family,
                    len(text),
                    frozenset(),
                )
            )
        infos.append(row)
    return scenario, candidates, infos


def _judge_all(sim: Simulator, juror, calls, infos, rng) -> tuple[np.ndarray, np.ndarray]:
    """Each call (prompt, first, second) judged once: the shown-order outcome code and
    P(first) + ½ P(tie) of the verdict distribution."""
    outcome = np.empty(len(calls), np.int64)
    soft = np.empty(len(calls))
    draws = rng.random(len(calls))
    for k, (p, a, b) in enumerate(calls):
        p_a, p_b, p_tie = sim.pairwise_probabilities(juror, (infos[p][a], infos[p][b]), rng)
        u = draws[k]
        outcome[k] = FIRST if u < p_a else SECOND if u < p_a + p_b else TIE
        soft[k] = p_a + p_tie / 2
    return outcome, soft


def _tau(n: int, first, second, score, truth) -> float:
    """Kendall τ of the BT fit of verdicts (first-shown score 1, ½, 0) against the truth."""
    wins = np.zeros((n, n))
    np.add.at(wins, (first, second), score)
    np.add.at(wins, (second, first), 1.0 - score)
    return float(kendalltau(fit_scores(n, wins), truth).statistic)


def _first_bias(outcome) -> float:
    decisive = (outcome == FIRST) | (outcome == SECOND)
    return abs(float(np.mean(outcome[decisive] == FIRST)) - 0.5) if decisive.any() else float("nan")


def jury_once(seed: int, n_prompts: int) -> dict:
    scenario, candidates, infos = _world(seed, n_prompts)
    sim = Simulator(scenario)
    rng = np.random.default_rng(seed)
    n = len(candidates)
    truth = np.array([m.quality for m in candidates])
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]  # both orders
    calls = np.array([(p, a, b) for p in range(n_prompts) for a, b in pairs], np.int64)
    jurors = [scenario.model(name) for name in JURORS]
    outcomes, softs = zip(*(_judge_all(sim, j, calls, infos, rng) for j in jurors), strict=True)
    first, second = calls[:, 1], calls[:, 2]
    result = {"jurors": {}}
    for name, outcome in zip(JURORS, outcomes, strict=True):
        score = slot0_points(np.where(outcome == TIE, 2, outcome))
        result["jurors"][name] = (_tau(n, first, second, score, truth), _first_bias(outcome))
    # gold set: 200 other comparisons whose right answer is the better latent answer
    gold_calls = calls[rng.choice(len(calls), GOLD_CALLS, replace=False)]
    agreed, judged = [], []
    for juror in jurors:
        outcome, _ = _judge_all(sim, juror, gold_calls, infos, rng)
        q = np.array([infos[p][a].quality - infos[p][b].quality for p, a, b in gold_calls])
        decisive = outcome != TIE
        right = np.where(q > 0, FIRST, SECOND)
        agreed.append(int(np.sum(decisive & (outcome == right))))
        judged.append(int(decisive.sum()))
    weights = reliability_weights(agreed, judged)
    # the jury: the call is the same slot order for every juror (slot 0 shown first)
    m = len(jurors)
    call = np.tile(np.arange(len(calls)), m)
    juror = np.repeat(np.arange(m), len(calls))
    winner = np.concatenate(outcomes)  # FIRST/SECOND/TIE are the slot codes a/b/tie here
    prob = np.concatenate(softs)
    for rule in ("majority", "mean", "weighted"):
        pooled = jury_verdicts(
            call,
            juror,
            winner,
            rule=rule,
            weights=weights,
            slot0_probability=prob,
            n_calls=len(calls),
        )
        result[rule] = (
            _tau(n, first, second, pooled.score, truth),
            _first_bias(np.where(pooled.winner == 2, TIE, pooled.winner)),
        )
    fit = fit_judge_effects(n, m, juror, np.tile(first, m), np.tile(second, m), winner)
    result["judge-effects"] = (float(kendalltau(fit.strength, truth).statistic), float("nan"))
    result["planted_first"] = [j.judge.position_first for j in jurors]
    result["fitted_first"] = fit.first_share().tolist()
    result["weights"] = weights.tolist()
    return result


def jury_section(args) -> None:
    seeds = range(args.jury_seeds)
    runs = [jury_once(seed, args.jury_prompts) for seed in seeds]
    n_calls = 12 * 11 * args.jury_prompts
    print(
        f"\n== Juries (issue 15): 12 candidates x {args.jury_prompts} prompts, every pair in both "
        f"orders ({n_calls} calls per juror), {len(runs)} seeds =="
    )
    print(f"{'board':<24} {'tau':>14} {'first-slot bias':>16}")

    def line(label, values):
        tau = np.array([v[0] for v in values])
        bias = np.array([v[1] for v in values])
        se = tau.std(ddof=1) / np.sqrt(len(tau)) if len(tau) > 1 else 0.0
        shown = "–" if np.isnan(bias).all() else f"{np.nanmean(bias):.3f}"
        print(f"{label:<24} {tau.mean():>7.3f} ± {se:.3f} {shown:>16}")
        return tau.mean(), float(np.nanmean(bias)) if not np.isnan(bias).all() else float("nan")

    juror_figures = {name: line(name, [r["jurors"][name] for r in runs]) for name in JURORS}
    rules = {
        rule: line(f"jury: {rule}", [r[rule] for r in runs])
        for rule in ("majority", "mean", "weighted")
    }
    line("judge-effects fit", [r["judge-effects"] for r in runs])
    planted = runs[0]["planted_first"]
    fitted = np.mean([r["fitted_first"] for r in runs], axis=0)
    print(
        "judge-effects first-slot share (planted position_first -> fitted σ(γ); the per-call "
        "logit noise flattens the planted share toward ½): "
        + ", ".join(
            f"{n} {p:.2f}->{f:.2f}" for n, p, f in zip(JURORS, planted, fitted, strict=True)
        )
    )
    weights = np.mean([r["weights"] for r in runs], axis=0)
    print(
        "weighted rule's weights (gold accuracy, shrunk): "
        + ", ".join(f"{n} {w:.2f}" for n, w in zip(JURORS, weights, strict=True))
    )
    best_name = max(juror_figures, key=lambda k: juror_figures[k][0])
    best_tau = juror_figures[best_name][0]
    least_bias = min(b for _, b in juror_figures.values())
    tau, bias = rules["majority"]
    met = tau > best_tau and bias < least_bias
    print(
        f"goal jury: the majority jury of 3 reaches tau {tau:.3f} against its best juror's "
        f"{best_tau:.3f} ({best_name}), first-slot bias {bias:.3f} against the least biased "
        f"juror's {least_bias:.3f}: {'MET' if met else 'NOT MET'}"
    )
