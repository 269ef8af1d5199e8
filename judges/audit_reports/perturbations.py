"""Perturbation runs (tagged evaluation runs) against the untagged baseline."""

from __future__ import annotations

import numpy as np

from judges.audit_metrics import (
    INVALID,
    TIE,
    A,
    B,
    flip_rate,
    swap,
)
from judges.audit_reports import queries
from judges.audit_reports.common import (
    Chart,
    align,
    cached,
    estimate_dict,
    estimate_row,
    group_index,
)


def perturbation_report(prompt_set: str, category: str = "") -> dict:
    return cached(
        "perturbations", prompt_set, (category,), lambda: _perturbations(prompt_set, category)
    )


def side_verdicts(rows: queries.Verdicts, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One verdict per comparison key: unanimous A or B over its judgments, else TIE.

    Verdicts are put in terms of the pair's lower contestant id (``A`` = it won), so runs
    that placed the answers in other slots compare. INVALID only when no judgment of the
    key has a valid verdict (a perturbation that breaks parsing is its own finding).
    """
    canon = np.where(rows.contestant_a > rows.contestant_b, swap(rows.verdict), rows.verdict)
    keys, g = np.unique(key, return_inverse=True)
    valid = canon != INVALID
    n_valid = np.bincount(g, weights=valid, minlength=keys.size)
    n_a = np.bincount(g, weights=valid & (canon == A), minlength=keys.size)
    n_b = np.bincount(g, weights=valid & (canon == B), minlength=keys.size)
    out = np.where(
        n_valid == 0, INVALID, np.where(n_a == n_valid, A, np.where(n_b == n_valid, B, TIE))
    )
    return keys, out.astype(np.int64)


def _perturbations(prompt_set: str, category: str) -> dict:
    v = queries.load_verdicts(prompt_set, category, who="judges")
    tags = sorted(set(np.unique(v.tag).tolist()) - {""})
    if not tags:
        return {"empty": True, "charts": [], "tags": []}
    judges = queries.judge_info(np.unique(v.judge))
    names = sorted({j.name for j in judges.values()})
    name_code = queries.lookup(
        {i: names.index(j.name) for i, j in judges.items()}, v.judge, default=-1
    ).astype(np.int64)
    # The same comparison: judge name (a cue may change the judge's version), prompt,
    # and the unordered pair of contestants.
    lo = np.minimum(v.contestant_a, v.contestant_b)
    hi = np.maximum(v.contestant_a, v.contestant_b)
    _, key = group_index(name_code, v.prompt, lo, hi)
    has_prompt = v.prompt >= 0
    base = has_prompt & (v.tag == "")
    base_keys, base_verdict = side_verdicts(v.take(base), key[base])
    rows, table = [], []
    for tag in tags:
        mine = has_prompt & (v.tag == tag)
        keys, after = side_verdicts(v.take(mine), key[mine])
        at = align(keys, base_keys)
        paired = at >= 0
        before = base_verdict[at[paired]]
        after = after[paired]
        # side_verdicts' keys are sorted like np.unique's, so first rows line up with them.
        judge_of = name_code[mine][np.unique(key[mine], return_index=True)[1]][paired]
        groups = [(tag, np.ones(before.size, bool))]
        if np.unique(judge_of).size > 1:
            groups += [(f"{tag} · {names[c]}", judge_of == c) for c in np.unique(judge_of).tolist()]
        for label, sel in groups:
            anyflip = flip_rate(before[sel], after[sel])
            reversal = flip_rate(before[sel], after[sel], ties_flip=False)
            rows.append(estimate_row(label, anyflip, series="any change"))
            rows.append(estimate_row(label, reversal, series="A ↔ B reversal"))
            table.append(
                {
                    "tag": label,
                    "pairs": int(sel.sum()),
                    "flip": estimate_dict(anyflip),
                    "reversal": estimate_dict(reversal),
                }
            )
    return {
        "empty": False,
        "tags": tags,
        "table": table,
        "charts": [
            Chart(
                "flips",
                "Flip rate against the untagged baseline (95% CI)",
                "estimates",
                rows,
                {"range": [0, 1]},
                note="A comparison's verdict is unanimous A or B over its judgments (orders, "
                "repeats), else a tie; matched to the baseline by judge name, prompt and pair.",
            ).as_dict()
        ],
    }
