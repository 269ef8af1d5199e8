"""One judge's metrics, the overview table and the judge page."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from judges import audit_data as data
from judges.audit import (
    MISSING,
    Estimate,
    accuracy,
    cohen_kappa,
    first_slot_win_rate,
    length_coefficient,
    longer_wins,
    position_consistency,
    position_preference,
    raw_agreement,
    repeat_stability,
    score_pairwise_inconsistency,
    self_preference,
    transitivity_violations,
    verdict_score,
)
from judges.audit_service.common import (
    AuditData,
    Chart,
    HumanConsensus,
    align,
    audit_data,
    cached,
    drawable,
    estimate_dict,
    estimate_row,
    group_index,
    match_verdicts,
    n_boot,
    num,
    order_pairs,
    p_text,
    tie_merged,
)

MAX_CATEGORIES = 12  # per-category breakdown: the largest categories
MIN_CATEGORY_ITEMS = 10


def judge_metrics(
    rows: data.Verdicts,
    humans: HumanConsensus,
    judge: data.JudgeInfo,
    owners: dict[int, tuple[str, str]],
    scores: data.Scores,
    detail: bool = True,
    repeats: data.Verdicts | None = None,
) -> dict:
    """Every audit metric of one judge on its (untagged) rows.

    Returns a dict of :class:`Estimate` and result dataclasses; see :data:`METRICS`.
    ``detail=False`` skips the logistic length fits (the slowest part), for tables.
    ``repeats`` are the judge's verdicts in repeat runs: they count for repeat stability
    (with the untagged re-runs) and for nothing else.
    """
    mv = match_verdicts(rows)
    per_match = {
        "verdict": np.repeat(mv.verdict, mv.weight),  # a weighted row is that many matches
        **_match_info(rows, np.repeat(mv.match, mv.weight)),
    }
    per_match["majority"], per_match["human_score"] = humans.at(per_match["match"])
    return {
        "n_judgments": int(rows.weight.sum()),
        "n_matches": int(np.unique(rows.match).size),
        **_position_metrics(rows),
        "stability": repeat_stability(
            _repeat_matrix(rows if repeats is None else data.Verdicts.concat(rows, repeats)),
            n_boot=n_boot(),
        ),
        **_agreement_metrics(per_match),
        **_length_metrics(per_match, detail),
        **_preference_metrics(per_match, judge, owners),
        **_consistency_metrics(rows, per_match, judge, scores),
        **_gold_metrics(rows, per_match),
    }


def _position_metrics(rows: data.Verdicts) -> dict:
    pairs = order_pairs(rows)
    o1 = np.repeat(pairs.order1, pairs.weight)
    o2 = np.repeat(pairs.order2, pairs.weight)
    testable, design = first_slot_design(rows)
    w = rows.weight[testable]
    return {
        "consistency": position_consistency(o1, o2),
        "preference": position_preference(o1, o2),
        "first_slot": first_slot_win_rate(np.repeat(rows.slot_verdict[testable], w)),
        "first_slot_design": design,
    }


def first_slot_design(rows: data.Verdicts) -> tuple[np.ndarray, str]:
    """Verdicts on which "the first-shown answer wins half the time" is a valid null.

    The binomial test needs the order to be independent of the answers: comparisons
    judged in both orders (balanced by construction), or single-order comparisons shown
    in a random order (taken to be so when both orders occur among them). Under a fixed
    order the first slot is always answer A and its win rate measures the answers, not
    the position, so those verdicts are left out.

    Returns the mask of usable rows and a label of the design.
    """
    (_, _), g = group_index(rows.match, rows.repeat)
    n = int(g.max()) + 1 if g.size else 0
    a_first = np.bincount(g, weights=~rows.b_first, minlength=n) > 0
    b_first = np.bincount(g, weights=rows.b_first, minlength=n) > 0
    both = (a_first & b_first)[g]
    single = ~both
    randomised = bool(np.any(single & rows.b_first) and np.any(single & ~rows.b_first))
    testable = both | (single & randomised)
    if not testable.any():
        return testable, "fixed order: not testable"
    return testable, " and ".join(
        label
        for label, present in (
            ("both orders", both.any()),
            ("randomised order", randomised),
        )
        if present
    )


def _agreement_metrics(m: dict) -> dict:
    verdict, majority = m["verdict"], m["majority"]
    return {
        "agreement": raw_agreement(verdict, majority, ties=True),
        "agreement_no_ties": raw_agreement(verdict, majority, ties=False),
        "kappa": cohen_kappa(tie_merged(verdict), tie_merged(majority), n_boot=n_boot()),
    }


def _length_metrics(m: dict, detail: bool) -> dict:
    """Judge vs humans on the same matches (those with a human verdict, if any exist)."""
    verdict, majority = m["verdict"], m["majority"]
    same = (m["len_a"] > 0) & (m["len_b"] > 0)
    if np.any(majority != MISSING):
        same &= majority != MISSING
    la, lb = m["len_a"][same], m["len_b"][same]
    out = {"length": longer_wins(verdict[same], majority[same], la, lb, n_boot=n_boot())}
    if detail:
        out["length_slope"] = length_coefficient(verdict[same], la, lb, n_boot=n_boot()).slope
        out["human_length_slope"] = length_coefficient(
            majority[same], la, lb, n_boot=n_boot()
        ).slope
    return out


def _preference_metrics(m: dict, judge: data.JudgeInfo, owners: dict) -> dict:
    """Self-preference (the judge's model by name) and family preference (by family)."""
    out = {}
    judge_score = verdict_score(m["verdict"])
    for key, owner, field in (("self", judge.model or judge.name, 0), ("family", judge.family, 1)):
        if owner:
            side_a = data.lookup(owners, m["contestant_a"], pick=lambda o, f=field: o[f])
            side_b = data.lookup(owners, m["contestant_b"], pick=lambda o, f=field: o[f])
            out[key] = self_preference(
                judge_score, m["human_score"], side_a, side_b, owner, n_boot=n_boot()
            )
    return out


def _consistency_metrics(rows: data.Verdicts, m: dict, judge, scores: data.Scores) -> dict:
    """Transitivity over every judgment; TrustJudge's score-vs-pairwise on per-match verdicts."""
    has_prompt = rows.prompt >= 0
    w = rows.weight[has_prompt]
    out = {
        "transitivity": transitivity_violations(
            np.repeat(rows.prompt[has_prompt], w),
            np.repeat(rows.contestant_a[has_prompt], w),
            np.repeat(rows.contestant_b[has_prompt], w),
            np.repeat(rows.verdict[has_prompt], w),
            n_boot=n_boot(),
        )
    }
    score_a = scores.lookup(judge.id, m["prompt"], m["contestant_a"])
    score_b = scores.lookup(judge.id, m["prompt"], m["contestant_b"])
    if np.any(np.isfinite(score_a) & np.isfinite(score_b)):
        out["score_pairwise"] = score_pairwise_inconsistency(score_a, score_b, m["verdict"])
    return out


def _gold_metrics(rows: data.Verdicts, m: dict) -> dict:
    """Accuracy of the per-match verdict, and of each presentation order on its own."""
    gold = np.repeat(rows.gold, rows.weight)
    verdict = np.repeat(rows.verdict, rows.weight)
    b_first = np.repeat(rows.b_first, rows.weight)
    return {
        "gold": accuracy(m["verdict"], m["gold"]),
        "gold_a_first": accuracy(verdict[~b_first], gold[~b_first]),
        "gold_b_first": accuracy(verdict[b_first], gold[b_first]),
    }


def _repeat_matrix(rows: data.Verdicts) -> np.ndarray:
    """(match, presentation) x repeat verdicts (slot terms), MISSING-padded."""
    (_, _), g = group_index(rows.match, rows.b_first)
    if g.size == 0:
        return np.zeros((0, 2), np.int64)
    width = max(2, int(rows.repeat.max()) + 1)
    out = np.full((int(g.max()) + 1, width), MISSING, np.int64)
    out[g, rows.repeat] = rows.slot_verdict
    return out


def _match_info(rows: data.Verdicts, matches) -> dict[str, np.ndarray]:
    """Per-match columns (prompt, gold, contestants, lengths) for a list of match ids."""
    uniq, first = np.unique(rows.match, return_index=True)
    at = align(matches, uniq)
    src = first[np.maximum(at, 0)]
    return {
        "match": np.asarray(matches),
        **{
            name: getattr(rows, name)[src]
            for name in ("prompt", "gold", "contestant_a", "contestant_b", "len_a", "len_b")
        },
    }


# What the overview table shows per judge: key, heading, how to get the Estimate, help.
METRICS: list[tuple[str, str, Callable[[dict], Estimate | None], str]] = [
    (
        "consistency",
        "Position consistency",
        lambda m: m["consistency"],
        "Share of pairs judged in both orders that get the same verdict in both (Wilson 95% CI).",
    ),
    (
        "first_slot",
        "First-slot win rate",
        lambda m: m["first_slot"].win_rate,
        "P(the answer shown first wins | decisive) on comparisons judged in both orders or in "
        "random order (a fixed order cannot separate position from quality); Clopper-Pearson "
        "CI, flagged when it excludes 0.5.",
    ),
    (
        "stability",
        "Repeat stability",
        lambda m: m["stability"],
        "Mean share of the modal verdict over identical re-runs (bootstrap CI).",
    ),
    (
        "agreement",
        "Agreement with humans",
        lambda m: m["agreement"],
        "Share of matches where the judge's verdict equals the human majority, ties included.",
    ),
    (
        "agreement_no_ties",
        "… without ties",
        lambda m: m["agreement_no_ties"],
        "The same, over matches where neither the judge nor the majority says tie.",
    ),
    (
        "kappa",
        "Cohen's κ vs humans",
        lambda m: m["kappa"],
        "Chance-corrected agreement with the human majority (bootstrap CI).",
    ),
    (
        "length",
        "Length bias",
        lambda m: m["length"].difference,
        "P(longer answer wins) for the judge minus for humans on the same matches.",
    ),
    (
        "self",
        "Self-preference",
        lambda m: m["self"].difference if "self" in m else None,
        "Judge's score of its own model's answers minus the humans' on the same pairs.",
    ),
    (
        "family",
        "Family preference",
        lambda m: m["family"].difference if "family" in m else None,
        "Judge's score of its family's answers minus the humans' on the same pairs.",
    ),
    (
        "cycles",
        "3-cycles",
        lambda m: m["transitivity"].cycle_share,
        "Share of strictly decided answer triples (same prompt) that form a cycle.",
    ),
    (
        "score_conflict",
        "Score vs pairwise",
        lambda m: m["score_pairwise"].conflict if "score_pairwise" in m else None,
        "TrustJudge: share of pairs whose single-answer scores disagree with the pairwise verdict.",
    ),
    (
        "gold",
        "Gold accuracy",
        lambda m: m["gold"],
        "Share of gold-labelled matches where the (both-order) verdict is right.",
    ),
]


def flagged(metrics: dict) -> bool:
    """Position bias: the first-slot win rate's 95% interval excludes 1/2."""
    return bool(metrics["first_slot"].win_rate.excludes(0.5))


def metric_cells(metrics: dict) -> dict[str, dict | None]:
    cells = {}
    for key, _, get, _ in METRICS:
        est = get(metrics)
        cells[key] = (
            None if est is None or est.n == 0 or np.isnan(est.value) else estimate_dict(est)
        )
    return cells


def _flat(cells: dict[str, dict | None]) -> dict:
    row = {}
    for key, cell in cells.items():
        for part in ("value", "low", "high", "n"):
            row[f"{key}.{part}"] = None if cell is None else cell[part]
    return row


# -- pages --------------------------------------------------------------------------------


def overview_report(prompt_set: str, category: str = "") -> dict:
    """Per judge version: n and 95% CI of every metric, and the first-slot chart."""
    return cached("overview", prompt_set, (category,), lambda: _overview(prompt_set, category))


def _overview(prompt_set: str, category: str) -> dict:
    d = audit_data(prompt_set, category)
    rows = []
    for judge_id, judge in sorted(d.judges.items(), key=lambda kv: kv[1].label):
        m = judge_metrics(
            d.verdicts.take(d.verdicts.judge == judge_id),
            d.humans,
            judge,
            d.owners,
            d.scores,
            detail=False,
            repeats=d.repeats.take(d.repeats.judge == judge_id),
        )
        rows.append(
            {
                "judge_id": judge_id,
                "judge": judge.label,
                "n_judgments": m["n_judgments"],
                "n_matches": m["n_matches"],
                "flagged": flagged(m),
                "p_value": num(m["first_slot"].p_value),
                "cells": metric_cells(m),
            }
        )
    table = Chart(
        "table",
        "Judges",
        "table",
        [
            {
                "judge_id": r["judge_id"],
                "judge": r["judge"],
                "n_judgments": r["n_judgments"],
                "n_matches": r["n_matches"],
                "position_bias_flagged": r["flagged"],
                "first_slot_p_value": r["p_value"],
                **_flat(r["cells"]),
            }
            for r in rows
        ],
    )
    charts = [
        _cell_chart(
            rows,
            "first_slot",
            "First-slot win rate (95% CI; 0.5 = no position bias)",
            {"reference": 0.5, "range": [0, 1]},
        ),
        _cell_chart(rows, "consistency", "Position consistency", {"range": [0, 1]}),
        _cell_chart(rows, "kappa", "Cohen's κ with the human majority", {"range": [-0.2, 1]}),
        _cell_chart(rows, "gold", "Accuracy on gold labels", {"range": [0, 1]}),
    ]
    return {
        "judges": rows,
        "metrics": [{"key": k, "title": t, "help": h} for k, t, _, h in METRICS],
        "table": table.as_dict(),
        "charts": [c.as_dict() for c in map(drawable, charts) if c.rows],
        "n_humans": int(d.humans.match.size),
    }


def _cell_chart(rows: list[dict], key: str, title: str, options: dict) -> Chart:
    out = []
    for r in rows:
        cell = r["cells"][key]
        if cell is not None:
            row = {"label": r["judge"], "series": "", **cell}
            if key == "first_slot":
                row.update(flagged=r["flagged"], p_value=r["p_value"])
            out.append(row)
    return Chart(key, title, "estimates", out, options)


def judge_report(judge_id: int, prompt_set: str, category: str = "") -> dict | None:
    """Every metric of one judge, as charts; None when the judge has no verdicts here."""
    return cached(
        "judge", prompt_set, (judge_id, category), lambda: _judge(judge_id, prompt_set, category)
    )


def _judge(judge_id: int, prompt_set: str, category: str) -> dict | None:
    d = audit_data(prompt_set, category, judge_id=judge_id)
    if judge_id not in d.judges:
        return None
    judge = d.judges[judge_id]
    rows = d.verdicts.take(d.verdicts.judge == judge_id)
    m = judge_metrics(
        rows,
        d.humans,
        judge,
        d.owners,
        d.scores,
        repeats=d.repeats.take(d.repeats.judge == judge_id),
    )
    fs = m["first_slot"]
    charts = [
        Chart(
            "position",
            "Position consistency and primacy / recency",
            "estimates",
            [
                estimate_row("consistent in both orders", m["consistency"]),
                estimate_row("primacy (inconsistent pairs)", m["preference"].primacy),
                estimate_row("recency (inconsistent pairs)", m["preference"].recency),
            ],
            {"range": [0, 1]},
            note=f"{m['preference'].n_inconsistent} of {m['preference'].n_pairs} pairs judged "
            f"differently in the two orders; favoured slot: {m['preference'].favoured_slot}.",
        ),
        Chart(
            "first-slot",
            "First-slot win rate (exact binomial test)",
            "estimates",
            [
                estimate_row(
                    "answer shown first wins",
                    fs.win_rate,
                    n_first=fs.n_first,
                    n_second=fs.n_second,
                    n_ties=fs.n_ties,
                    p_value=num(fs.p_value),
                    flagged=flagged(m),
                )
            ],
            {"reference": 0.5, "range": [0, 1]},
            note=f"Design: {m['first_slot_design']}. {fs.n_first} first-slot wins, "
            f"{fs.n_second} second-slot wins, {fs.n_ties} ties; two-sided binomial p = "
            f"{p_text(fs.p_value)}.",
        ),
        Chart(
            "length",
            "Length bias: P(longer answer wins)",
            "estimates",
            [
                estimate_row("judge", m["length"].judge, series="P(longer wins)"),
                estimate_row("humans", m["length"].human, series="P(longer wins)"),
                estimate_row("judge − humans", m["length"].difference, series="difference"),
            ],
            {"reference": 0.5},
            note="Decisive verdicts on pairs of unequal token length, on matches with a human "
            "verdict when there are any.",
        ),
        Chart(
            "length-slope",
            "Logistic length coefficient β₁ (log-odds per log length ratio)",
            "estimates",
            [
                estimate_row("judge", m["length_slope"]),
                estimate_row("humans", m["human_length_slope"]),
            ],
            {"reference": 0},
            note="P(A wins) = σ(β₀ + β₁ log(len_A / len_B)) on decisive verdicts.",
        ),
        Chart(
            "preference",
            "Self- and family-preference (own side's score, judge vs humans)",
            "estimates",
            [
                estimate_row(f"{key}: {who}", getattr(m[key], who), series=who)
                for key in ("self", "family")
                if key in m
                for who in ("judge", "human", "difference")
            ],
            {"reference": 0.5},
            note=f"Own model: {judge.model or judge.name}; own family: {judge.family or '(none)'}.",
        ),
        Chart(
            "agreement",
            "Agreement with the human majority",
            "estimates",
            [
                estimate_row("raw agreement (with ties)", m["agreement"]),
                estimate_row("raw agreement (without ties)", m["agreement_no_ties"]),
                estimate_row("Cohen's κ", m["kappa"]),
            ],
            {"range": [-0.2, 1]},
        ),
        Chart(
            "stability",
            "Repeat stability and transitivity",
            "estimates",
            [
                estimate_row("modal verdict share over repeats", m["stability"]),
                estimate_row("3-cycles / strict triples", m["transitivity"].cycle_share),
                estimate_row(
                    "tie contradictions / judged triples",
                    m["transitivity"].tie_contradiction_share,
                ),
            ],
            {"range": [0, 1]},
            note=f"{m['transitivity'].n_cycles} cycles in {m['transitivity'].n_strict_triples} "
            "strictly decided triples.",
        ),
        Chart(
            "score-pairwise",
            "Score vs pairwise inconsistency (TrustJudge)",
            "estimates",
            [
                estimate_row("conflict", m["score_pairwise"].conflict),
                estimate_row("reversal", m["score_pairwise"].reversal),
            ]
            if "score_pairwise" in m
            else [],
            {"range": [0, 1]},
        ),
        Chart(
            "gold",
            "Accuracy on gold labels",
            "estimates",
            [
                estimate_row("both orders combined", m["gold"]),
                estimate_row("answer A shown first", m["gold_a_first"]),
                estimate_row("answer B shown first", m["gold_b_first"]),
            ],
            {"range": [0, 1]},
        ),
        _category_chart(rows, d, judge),
    ]
    return {
        "judge": {
            "id": judge.id,
            "label": judge.label,
            "name": judge.name,
            "model": judge.model,
            "family": judge.family,
        },
        "flagged": flagged(m),
        "p_value": num(fs.p_value),
        "p_text": p_text(fs.p_value),
        "design": m["first_slot_design"],
        "first_slot": estimate_dict(fs.win_rate),
        "n_judgments": m["n_judgments"],
        "n_matches": m["n_matches"],
        "cells": metric_cells(m),
        "metrics": [{"key": k, "title": t, "help": h} for k, t, _, h in METRICS],
        "charts": [c.as_dict() for c in map(drawable, charts) if c.rows],
    }


def _category_chart(rows: data.Verdicts, d: AuditData, judge: data.JudgeInfo) -> Chart:
    """Key metrics per category (the largest categories with enough matches)."""
    labels, counts = np.unique(rows.category, return_counts=True)
    keep = [(c, n) for c, n in zip(labels, counts, strict=True) if c and n >= MIN_CATEGORY_ITEMS]
    keep.sort(key=lambda cn: -cn[1])
    out = []
    for category, _ in keep[:MAX_CATEGORIES]:
        m = judge_metrics(
            rows.take(rows.category == category), d.humans, judge, d.owners, d.scores, False
        )
        for key, name in (
            ("consistency", "position consistency"),
            ("first_slot", "first-slot win rate"),
            ("agreement", "agreement with humans"),
            ("gold", "gold accuracy"),
        ):
            est = m[key].win_rate if key == "first_slot" else m[key]
            if est.n:
                out.append(estimate_row(str(category), est, series=name))
    return Chart("categories", "By category", "estimates", out, {"range": [0, 1]})
