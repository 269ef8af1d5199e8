"""Agreement page: Cohen's kappa matrices, Fleiss' kappa and Krippendorff's alpha."""

from __future__ import annotations

import numpy as np

from judges.audit_metrics import (
    MISSING,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
)
from judges.audit_reports import queries
from judges.audit_reports.common import (
    Chart,
    MatchVerdicts,
    align,
    cached,
    drawable,
    estimate_dict,
    estimate_row,
    load_audit_data,
    match_verdicts,
    n_boot,
    nan_estimate,
    tie_merged,
)

MAX_HUMAN_RATERS = 12  # raters in the human agreement matrix: the most prolific voters


def agreement_report(prompt_set: str, category: str = "") -> dict:
    return cached("agreement", prompt_set, (category,), lambda: _agreement(prompt_set, category))


def _agreement(prompt_set: str, category: str) -> dict:
    d = load_audit_data(prompt_set, category)
    mv = match_verdicts(d.verdicts)
    matches = np.unique(mv.match)
    judge_ids = sorted(d.judges, key=lambda i: d.judges[i].label)
    voter_ids, voter_n = np.unique(mv.rater[mv.rater < 0], return_counts=True)
    top = voter_ids[np.argsort(-voter_n, kind="stable")][:MAX_HUMAN_RATERS]
    names = queries.voter_info(-top)
    human_ids = sorted(top.tolist(), key=lambda r: names.get(-r, ("", False))[0])
    judge_cols = [_column(mv, rater, matches) for rater in judge_ids]
    human_cols = [_column(mv, rater, matches) for rater in human_ids]
    judge_labels = [d.judges[j].label for j in judge_ids]
    human_labels = [names.get(-h, (str(h), False))[0] for h in human_ids]
    judge_cols_and_majority, judge_labels_and_majority = list(judge_cols), list(judge_labels)
    for consensus, label in ((d.humans, "human majority"), (d.annotators, "annotator majority")):
        majority, _ = consensus.at(matches)  # the crowd's and the annotators', never mixed
        if np.any(majority != MISSING):
            judge_cols_and_majority.append(tie_merged(majority))
            judge_labels_and_majority.append(label)
    charts = []
    if len(judge_cols_and_majority) >= 2:
        title = "Cohen's κ between judges (and the human and annotator majorities)"
        charts.append(
            _kappa_heatmap("judges", title, judge_cols_and_majority, judge_labels_and_majority)
        )
    if len(human_cols) >= 2:
        title = "Cohen's κ between people (voters, and annotators by their label)"
        charts.append(_kappa_heatmap("humans", title, human_cols, human_labels))
    groups = []
    if len(judge_cols) >= 2:
        groups += _group_agreement("judges", np.stack(judge_cols, axis=1))
    humans = mv.rater < 0
    if voter_ids.size >= 2:
        shown = np.stack(human_cols, axis=1)
        groups += _group_agreement("humans", shown, _packed(mv.match[humans], mv.verdict[humans]))
    charts.append(
        Chart(
            "groups",
            "Agreement among several raters",
            "estimates",
            groups,
            {"range": [-0.2, 1]},
            note="Fleiss' κ over the matches every rater of the group judged (for people: the "
            "most active voters shown above); Krippendorff's α (nominal) over every verdict of "
            "the group, missing verdicts allowed.",
        )
    )
    return {
        "charts": [c.as_dict() for c in map(drawable, charts) if c.rows],
        "n_judges": len(judge_ids),
        "n_humans": int(voter_ids.size),
        "n_humans_shown": len(human_ids),
        "n_matches": int(matches.size),
    }


def _column(mv: MatchVerdicts, rater: int, matches: np.ndarray) -> np.ndarray:
    """One rater's verdict on each match (MISSING where it gave none), both-bad as tie."""
    col = np.full(matches.size, MISSING, np.int64)
    mine = mv.of(rater)
    col[align(mine.match, matches)] = mine.verdict
    return tie_merged(col)


def _packed(match: np.ndarray, verdict: np.ndarray) -> np.ndarray:
    """Every verdict on each match, packed left into ``(matches, most votes on one match)``.

    Krippendorff's alpha depends only on how many coders gave each value to each unit,
    not on who they were, so thousands of arena voters fit in a few columns.
    """
    order = np.argsort(match, kind="stable")
    match, verdict = match[order], tie_merged(verdict[order])
    units, start, count = np.unique(match, return_index=True, return_counts=True)
    unit = np.repeat(np.arange(units.size), count)
    slot = np.arange(match.size) - np.repeat(start, count)
    out = np.full((units.size, int(count.max()) if count.size else 0), MISSING, np.int64)
    out[unit, slot] = verdict
    return out


def _kappa_heatmap(key: str, title: str, cols: list[np.ndarray], labels: list[str]) -> Chart:
    rows = []
    for i, a in enumerate(cols):
        for j, b in enumerate(cols):
            if i == j:
                rows.append(
                    {
                        "row": labels[i],
                        "column": labels[j],
                        "value": 1.0,
                        "low": None,
                        "high": None,
                        "n": int(np.sum(a != MISSING)),
                    }
                )
                continue
            if j < i:
                continue
            shared = int(np.sum((a != MISSING) & (b != MISSING)))
            est = cohen_kappa(a, b, n_boot=n_boot()) if shared >= 2 else nan_estimate("bootstrap")
            for r, c in ((labels[i], labels[j]), (labels[j], labels[i])):
                rows.append({"row": r, "column": c, **estimate_dict(est)})
    return Chart(f"kappa-{key}", title, "heatmap", rows, {"labels": labels, "zmin": -1, "zmax": 1})


def _group_agreement(group: str, ratings: np.ndarray, packed: np.ndarray | None = None) -> list:
    """Fleiss' kappa on the complete rows of ``ratings``; alpha on ``packed`` (or ``ratings``)."""
    complete = np.all(ratings != MISSING, axis=1)
    rows = []
    if complete.sum() >= 2:
        kappa = fleiss_kappa(ratings[complete], n_boot=n_boot())
        rows.append(estimate_row(f"{group}: Fleiss' κ", kappa, series=group))
    alpha = krippendorff_alpha(
        ratings if packed is None else packed, "nominal", n_boot=n_boot(), missing=MISSING
    )
    rows.append(estimate_row(f"{group}: Krippendorff's α", alpha, series=group))
    return rows
