"""Judge calibration against human labels: where an LLM judge and humans part (issue 20).

Input: a run's labelled matches (one entry each): the two models (indices), the judge's
soft verdict and the human label for the first model (both in [0, 1]), and the weight of
each label (1 / its probability of being chosen, so that a selection that favoured some
matches still gives the run's averages). Output, JSON-ready:

- ``overall``: labelled matches, the share where judge and humans are on the same side
  (both for the first model, both against, or both even), the mean absolute gap;
- ``models``: per model, the judge's lean toward it, the weighted mean of
  ``judge - human`` over its matches from its side, with a standard error and a z: a
  positive lean means the judge rates the model above what humans say;
- ``pairs``: per model pair (named in alphabetical order), labelled matches, the
  weighted mean judge and human verdicts for the first-named model, their gap and the
  agreement share; largest gaps first;
- ``disagreements``: the matches where the judge and the humans are on opposite sides,
  largest gap first (at most ``limit``).
"""

from __future__ import annotations

import numpy as np


def judge_calibration(
    models, first, second, judge, human, weight, match_ids=None, *, limit: int = 25
) -> dict:
    """The calibration panel's tables (module docstring)."""
    first, second = np.asarray(first, np.intp), np.asarray(second, np.intp)
    judge, human = np.asarray(judge, np.float64), np.asarray(human, np.float64)
    weight = np.asarray(weight, np.float64)
    n, m = judge.size, len(models)
    if n == 0:
        return {"overall": {"labelled": 0}, "models": [], "pairs": [], "disagreements": []}
    side_j, side_h = np.sign(judge - 0.5), np.sign(human - 0.5)
    agree = side_j == side_h
    gap = judge - human

    # per model: the gap from the model's side (first: gap, second: -gap)
    wsum = np.bincount(first, weight, m) + np.bincount(second, weight, m)
    lean_sum = np.bincount(first, weight * gap, m) - np.bincount(second, weight * gap, m)
    lean = np.divide(lean_sum, wsum, out=np.zeros(m), where=wsum > 0)
    count = np.bincount(first, minlength=m) + np.bincount(second, minlength=m)
    dev = np.bincount(first, weight * (gap - lean[first]) ** 2, m) + np.bincount(
        second, weight * (-gap - lean[second]) ** 2, m
    )
    variance = np.divide(dev, wsum, out=np.zeros(m), where=wsum > 0)
    # effective size of a weighted mean: (Σw)² / Σw²
    w2 = np.bincount(first, weight**2, m) + np.bincount(second, weight**2, m)
    n_eff = np.divide(wsum**2, w2, out=np.zeros(m), where=w2 > 0)
    se = np.sqrt(np.divide(variance, n_eff, out=np.full(m, np.nan), where=n_eff > 1))
    model_rows = [
        {
            "model": models[i],
            "labelled": int(count[i]),
            "lean": float(lean[i]),
            "se": None if not np.isfinite(se[i]) else float(se[i]),
            "z": None if not np.isfinite(se[i]) or se[i] == 0 else float(lean[i] / se[i]),
        }
        for i in np.argsort(-np.abs(lean), kind="stable")
        if count[i] > 0
    ]

    # per pair, oriented toward the alphabetically first model
    names = np.asarray(models, dtype=object)
    flip = names[first] > names[second]
    lo, hi = np.where(flip, second, first), np.where(flip, first, second)
    judge_o, human_o = np.where(flip, 1 - judge, judge), np.where(flip, 1 - human, human)
    keys, index = np.unique(lo * m + hi, return_inverse=True)
    k = keys.size
    pw = np.bincount(index, weight, k)
    pair_rows = []
    j_mean = np.bincount(index, weight * judge_o, k) / pw
    h_mean = np.bincount(index, weight * human_o, k) / pw
    agreement = np.bincount(index, agree.astype(np.float64), k) / np.bincount(index, None, k)
    pair_n = np.bincount(index, None, k).astype(int)
    for p in np.argsort(-np.abs(j_mean - h_mean), kind="stable"):
        a, b = divmod(int(keys[p]), m)
        pair_rows.append(
            {
                "models": [models[a], models[b]],
                "labelled": int(pair_n[p]),
                "judge": float(j_mean[p]),
                "human": float(h_mean[p]),
                "gap": float(j_mean[p] - h_mean[p]),
                "agreement": float(agreement[p]),
            }
        )

    opposite = np.flatnonzero((side_j * side_h) < 0)
    opposite = opposite[np.argsort(-np.abs(gap[opposite]), kind="stable")][:limit]
    ids = np.arange(n) if match_ids is None else np.asarray(match_ids)
    disagreements = [
        {
            "match": int(ids[i]),
            "models": [models[first[i]], models[second[i]]],
            "judge": float(judge[i]),
            "human": float(human[i]),
        }
        for i in opposite.tolist()
    ]
    return {
        "overall": {
            "labelled": int(n),
            "agreement": float(agree.mean()),
            "mean_abs_gap": float(np.abs(gap).mean()),
            "opposite": int(((side_j * side_h) < 0).sum()),
        },
        "models": model_rows,
        "pairs": pair_rows,
        "disagreements": disagreements,
    }
