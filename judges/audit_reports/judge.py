"""The overview page (every judge's metrics side by side) and one judge's page."""

from __future__ import annotations

import numpy as np

from judges.audit_reports import queries
from judges.audit_reports.common import (
    AuditData,
    Chart,
    cached,
    drawable,
    estimate_dict,
    estimate_row,
    load_audit_data,
    num,
    p_text,
)
from judges.audit_reports.judge_metrics import (
    JudgeMetrics,
    judge_metrics,
    metric_cells,
    metric_headings,
)

MAX_CATEGORIES = 12  # per-category breakdown: the largest categories
MIN_CATEGORY_ITEMS = 10


def _metrics_of(d: AuditData, judge_id: int, detail: bool) -> JudgeMetrics:
    """One judge's metrics on the loaded verdicts (its repeat runs count for stability)."""
    return judge_metrics(
        d.verdicts.take(d.verdicts.judge == judge_id),
        d.humans,
        d.judges[judge_id],
        d.owners,
        d.scores,
        detail=detail,
        repeats=d.repeats.take(d.repeats.judge == judge_id),
        annotators=d.annotators,
    )


# -- overview -----------------------------------------------------------------------------


def overview_report(prompt_set: str, category: str = "") -> dict:
    """Per judge version: n and 95% CI of every metric, and the first-slot chart."""
    return cached("overview", prompt_set, (category,), lambda: _overview(prompt_set, category))


def _overview(prompt_set: str, category: str) -> dict:
    d = load_audit_data(prompt_set, category)
    rows = []
    for judge_id, judge in sorted(d.judges.items(), key=lambda kv: kv[1].label):
        m = _metrics_of(d, judge_id, detail=False)
        rows.append(
            {
                "judge_id": judge_id,
                "judge": judge.label,
                "n_judgments": m.n_judgments,
                "n_matches": m.n_matches,
                "flagged": m.flagged,
                "p_value": num(m.first_slot.p_value),
                "cells": metric_cells(m),
            }
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
        _cell_chart(
            rows,
            "annotator_kappa",
            "Cohen's κ with the annotators' majority (campaign labels)",
            {"range": [-0.2, 1]},
        ),
        _cell_chart(rows, "gold", "Accuracy on gold labels", {"range": [0, 1]}),
    ]
    return {
        "judges": rows,
        "metrics": metric_headings(),
        "table": _overview_table(rows).as_dict(),
        "charts": [c.as_dict() for c in map(drawable, charts) if c.rows],
        "n_humans": int(d.humans.match.size),
        "n_annotated": int(d.annotators.match.size),
    }


def _overview_table(rows: list[dict]) -> Chart:
    """The overview as a CSV: one row per judge, every metric as value/low/high/n columns."""
    return Chart(
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


def _flat(cells: dict[str, dict | None]) -> dict:
    row = {}
    for key, cell in cells.items():
        for part in ("value", "low", "high", "n"):
            row[f"{key}.{part}"] = None if cell is None else cell[part]
    return row


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


# -- one judge ----------------------------------------------------------------------------


def judge_report(judge_id: int, prompt_set: str, category: str = "") -> dict | None:
    """Every metric of one judge, as charts; None when the judge has no verdicts here."""
    return cached(
        "judge", prompt_set, (judge_id, category), lambda: _judge(judge_id, prompt_set, category)
    )


def _judge(judge_id: int, prompt_set: str, category: str) -> dict | None:
    d = load_audit_data(prompt_set, category, judge_id=judge_id)
    if judge_id not in d.judges:
        return None
    judge = d.judges[judge_id]
    m = _metrics_of(d, judge_id, detail=True)
    charts = [
        *_position_charts(m),
        *_bias_charts(m, judge),
        *_agreement_charts(m),
        _category_chart(d.verdicts.take(d.verdicts.judge == judge_id), d, judge),
    ]
    return {
        "judge": {
            "id": judge.id,
            "label": judge.label,
            "name": judge.name,
            "model": judge.model,
            "family": judge.family,
        },
        "flagged": m.flagged,
        "p_value": num(m.first_slot.p_value),
        "p_text": p_text(m.first_slot.p_value),
        "design": m.first_slot_design,
        "first_slot": estimate_dict(m.first_slot.win_rate),
        "n_judgments": m.n_judgments,
        "n_matches": m.n_matches,
        "cells": metric_cells(m),
        "metrics": metric_headings(),
        "charts": [c.as_dict() for c in map(drawable, charts) if c.rows],
    }


def _position_charts(m: JudgeMetrics) -> list[Chart]:
    """Position consistency, primacy / recency, and the first-slot binomial test."""
    fs, pref = m.first_slot, m.preference
    return [
        Chart(
            "position",
            "Position consistency and primacy / recency",
            "estimates",
            [
                estimate_row("consistent in both orders", m.consistency),
                estimate_row("primacy (inconsistent pairs)", pref.primacy),
                estimate_row("recency (inconsistent pairs)", pref.recency),
            ],
            {"range": [0, 1]},
            note=f"{pref.n_inconsistent} of {pref.n_pairs} pairs judged "
            f"differently in the two orders; favoured slot: {pref.favoured_slot}.",
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
                    flagged=m.flagged,
                )
            ],
            {"reference": 0.5, "range": [0, 1]},
            note=f"Design: {m.first_slot_design}. {fs.n_first} first-slot wins, "
            f"{fs.n_second} second-slot wins, {fs.n_ties} ties; two-sided binomial p = "
            f"{p_text(fs.p_value)}.",
        ),
    ]


def _bias_charts(m: JudgeMetrics, judge: queries.JudgeInfo) -> list[Chart]:
    """Length bias (both measures) and self- / family-preference."""
    preferences = (("self", m.self_preference), ("family", m.family_preference))
    return [
        Chart(
            "length",
            "Length bias: P(longer answer wins)",
            "estimates",
            [
                estimate_row("judge", m.length.judge, series="P(longer wins)"),
                estimate_row("humans", m.length.human, series="P(longer wins)"),
                estimate_row("judge − humans", m.length.difference, series="difference"),
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
                estimate_row("judge", m.length_slope),
                estimate_row("humans", m.human_length_slope),
            ],
            {"reference": 0},
            note="P(A wins) = σ(β₀ + β₁ log(len_A / len_B)) on decisive verdicts.",
        ),
        Chart(
            "preference",
            "Self- and family-preference (own side's score, judge vs humans)",
            "estimates",
            [
                estimate_row(f"{key}: {who}", getattr(result, who), series=who)
                for key, result in preferences
                if result is not None
                for who in ("judge", "human", "difference")
            ],
            {"reference": 0.5},
            note=f"Own model: {judge.model or judge.name}; own family: {judge.family or '(none)'}.",
        ),
    ]


def _agreement_charts(m: JudgeMetrics) -> list[Chart]:
    """Agreement with humans, stability and transitivity, score vs pairwise, gold."""
    cycles = m.transitivity

    def agreement(key, title, with_ties, without_ties, kappa, note=""):
        rows = [
            estimate_row("raw agreement (with ties)", with_ties),
            estimate_row("raw agreement (without ties)", without_ties),
            estimate_row("Cohen's κ", kappa),
        ]
        return Chart(key, title, "estimates", rows, {"range": [-0.2, 1]}, note=note)

    return [
        agreement(
            "agreement",
            "Agreement with the human majority",
            m.agreement,
            m.agreement_no_ties,
            m.kappa,
            note="The crowd's votes (those the public boards count); annotators' labels apart.",
        ),
        agreement(
            "annotator-agreement",
            "Agreement with the annotators' majority (campaign labels on run matches)",
            m.annotator_agreement,
            m.annotator_agreement_no_ties,
            m.annotator_kappa,
        ),
        Chart(
            "stability",
            "Repeat stability and transitivity",
            "estimates",
            [
                estimate_row("modal verdict share over repeats", m.stability),
                estimate_row("3-cycles / strict triples", cycles.cycle_share),
                estimate_row("tie contradictions / judged triples", cycles.tie_contradiction_share),
            ],
            {"range": [0, 1]},
            note=f"{cycles.n_cycles} cycles in {cycles.n_strict_triples} strictly decided triples.",
        ),
        Chart(
            "score-pairwise",
            "Score vs pairwise inconsistency (TrustJudge)",
            "estimates",
            [
                estimate_row("conflict", m.score_pairwise.conflict),
                estimate_row("reversal", m.score_pairwise.reversal),
            ]
            if m.score_pairwise is not None
            else [],
            {"range": [0, 1]},
        ),
        _trustjudge_chart(m),
        Chart(
            "gold",
            "Accuracy on gold labels",
            "estimates",
            [
                estimate_row("both orders combined", m.gold),
                estimate_row("answer A shown first", m.gold_a_first),
                estimate_row("answer B shown first", m.gold_b_first),
            ],
            {"range": [0, 1]},
        ),
    ]


def _trustjudge_chart(m: JudgeMetrics) -> Chart:
    """TrustJudge's two inconsistency measures, discrete verdicts beside TrustJudge."""
    tj = m.trustjudge
    rows, note = [], ""
    if tj is not None:
        measures = (
            ("score-comparison", tj.score_discrete, tj.score_trust),
            (
                "pairwise transitivity",
                tj.transitivity_discrete.share,
                tj.transitivity_trust.share,
            ),
        )
        for label, discrete, trust in measures:
            for series, est in (("discrete", discrete), ("TrustJudge", trust)):
                if est is not None and est.n:
                    rows.append(estimate_row(label, est, series=series))
        note = (
            f"{tj.n_pairs} pairs judged in both orders: {tj.n_likelihood} decided by both "
            f"orders' verdict probabilities, {tj.n_perplexity} by perplexity, the rest as "
            f"discrete verdicts; {tj.transitivity_discrete.n_triples} answer triples. "
            "The paper reports 23.32% -> 14.89% and 15.22% -> 4.40% (Llama-3.1-70B)."
        )
    return Chart(
        "trustjudge",
        "Inconsistency: discrete vs TrustJudge (arXiv:2509.21117)",
        "estimates",
        rows,
        {"range": [0, 1]},
        note=note,
    )


def _category_chart(rows: queries.Verdicts, d: AuditData, judge: queries.JudgeInfo) -> Chart:
    """Key metrics per category (the largest categories with enough matches)."""
    labels, counts = np.unique(rows.category, return_counts=True)
    keep = [(c, n) for c, n in zip(labels, counts, strict=True) if c and n >= MIN_CATEGORY_ITEMS]
    keep.sort(key=lambda cn: -cn[1])
    out = []
    for category, _ in keep[:MAX_CATEGORIES]:
        m = judge_metrics(
            rows.take(rows.category == category),
            d.humans,
            judge,
            d.owners,
            d.scores,
            False,
            annotators=d.annotators,
        )
        for est, name in (
            (m.consistency, "position consistency"),
            (m.first_slot.win_rate, "first-slot win rate"),
            (m.agreement, "agreement with humans"),
            (m.gold, "gold accuracy"),
        ):
            if est.n:
                out.append(estimate_row(str(category), est, series=name))
    return Chart("categories", "By category", "estimates", out, {"range": [0, 1]})
