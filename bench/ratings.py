"""Benchmark: Bradley-Terry + 1000-replica bootstrap on 1.67M Chatbot Arena battles.

Prints, in one run:

1. ours — exact BT-MLE by Newton on aggregated counts, then 1000 exact multinomial
   bootstrap replicas solved together (:func:`arena.ratings.bootstrap_bt`); cold
   (first call in the process) and warm (median of 5);
2. FastChat's ``compute_mle_elo`` method — one scikit-learn ``LogisticRegression`` per
   bootstrap replica on one row per battle (battles duplicated, a tie = one win each
   way, ``fit_intercept=False``, no penalty, ``tol=1e-6``, SCALE 400 / BASE 10 /
   INIT 1000, rows resampled with ``battles.sample(frac=1, replace=True)``), timed on
   subsamples of battles and a few replicas, extrapolated linearly in battles to
   1.67M x (1 + 1000) fits;
3. for context, FastChat's newer ``compute_bootstrap_bt`` (L-BFGS on aggregated
   counts, one process per core), a few replicas timed and extrapolated to 1000 on 2
   cores.

Nothing is asserted about time (the machine is shared); the ratios are printed.
Run: ``.venv/bin/python bench/ratings.py [--sizes 20000,40000,80000] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.ratings import PairwiseCounts, bootstrap_bt, fit_bt, to_rating  # noqa: E402

ANCHOR = ("mixtral-8x7b-instruct-v0.1", 1114.0)
DATA_CANDIDATES = [ROOT / "arena" / "fixtures" / "datasets" / "chatbot_arena"]


def load():
    for d in DATA_CANDIDATES:
        path = d / "chatbotarena_20240814_agg.json"
        if path.exists():
            raw = json.loads(path.read_text())
            return raw, PairwiseCounts.from_table(raw["models"], raw["X"], raw["Y"])
    sys.exit("chatbotarena_20240814_agg.json not found (set ARENA_DATASETS)")


def ours(counts):
    t0 = time.perf_counter()
    fit = fit_bt(counts)
    t1 = time.perf_counter()
    boot = bootstrap_bt(counts, 1000, seed=0, anchor=ANCHOR, fit=fit)
    t2 = time.perf_counter()
    return fit, boot, t1 - t0, t2 - t0


# -- FastChat's compute_mle_elo, faithfully -------------------------------------------


def battles_frame(raw):
    """One row per battle (model_a, model_b, winner), as FastChat's clean battles."""
    import pandas as pd

    models = np.array(raw["models"])
    pairs = np.array(raw["X"])
    table = np.array(raw["Y"])
    winners = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])
    reps = table.ravel()
    a = np.repeat(np.repeat(pairs[:, 0], 4), reps)
    b = np.repeat(np.repeat(pairs[:, 1], 4), reps)
    w = np.repeat(np.tile(np.arange(4), len(pairs)), reps)
    return pd.DataFrame({"model_a": models[a], "model_b": models[b], "winner": winners[w]})


def compute_mle_elo(df, SCALE=400, BASE=10, INIT_RATING=1000):
    """FastChat / Chatbot Arena notebook ``compute_mle_elo`` (one row per battle)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    models = pd.Series(np.arange(len(models)), index=models)
    # duplicate battles
    df = pd.concat([df, df], ignore_index=True)
    p = len(models.index)
    n = df.shape[0]
    X = np.zeros([n, p])
    X[np.arange(n), models[df["model_a"]]] = +math.log(BASE)
    X[np.arange(n), models[df["model_b"]]] = -math.log(BASE)
    # one A win => two A win
    Y = np.zeros(n)
    Y[df["winner"] == "model_a"] = 1.0
    # one tie => one A win + one B win
    tie_idx = (df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")
    tie_idx[len(tie_idx) // 2 :] = False
    Y[tie_idx] = 1.0
    # penalty=None in FastChat; scikit-learn >= 1.8 spells "no penalty" C=np.inf
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-6)
    lr.fit(X, Y)
    elo_scores = SCALE * lr.coef_[0] + INIT_RATING
    if ANCHOR[0] in models.index:
        elo_scores += ANCHOR[1] - elo_scores[models[ANCHOR[0]]]
    return pd.Series(elo_scores, index=models.index).sort_values(ascending=False)


def time_fastchat_lr(frame, sizes, rounds):
    """Seconds per fit at each subsample size (median of ``rounds`` bootstrap fits)."""
    out = {}
    for size in sizes:
        sub = frame.sample(n=size, random_state=0)
        times = []
        for r in range(rounds):
            sample = sub.sample(frac=1.0, replace=True, random_state=r)  # one replica
            t = time.perf_counter()
            compute_mle_elo(sample)
            times.append(time.perf_counter() - t)
        out[size] = statistics.median(times)
    return out


# -- FastChat's compute_bootstrap_bt (aggregated, L-BFGS), per replica --------------------


def fastchat_fit_bt_seconds(raw, replicas=5):
    from scipy.optimize import minimize
    from scipy.special import expit

    pairs = np.array(raw["X"])
    table = np.array(raw["Y"], float)
    matchups = np.repeat(pairs, 3, axis=0)
    outcomes = np.tile([1.0, 0.0, 0.5], len(pairs))
    weights = np.c_[table[:, 0], table[:, 1], table[:, 2] + table[:, 3]].ravel()
    keep = weights > 0
    matchups, outcomes, weights = matchups[keep], outcomes[keep], weights[keep]
    alpha = math.log(10.0)
    n = len(raw["models"])

    def loss_and_grad(r, w):
        mr = r[matchups]
        probs = expit(alpha * (mr[:, 0] - mr[:, 1]))
        loss = -((np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)) * w).sum()
        g = -alpha * (outcomes - probs) * w
        grad = np.zeros_like(r)
        np.add.at(grad, matchups, g[:, None] * np.array([1.0, -1.0]))
        return loss, grad

    rng = np.random.default_rng(seed=0)
    total = weights.sum()
    boot = rng.multinomial(int(total), weights / total, size=replicas) / total
    t = time.perf_counter()
    for w in boot:
        minimize(
            loss_and_grad,
            np.zeros(n),
            args=(w,),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 100, "gtol": 1e-6},
        )
    return (time.perf_counter() - t) / replicas


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,40000,80000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    warnings.simplefilter("ignore", category=FutureWarning)

    raw, counts = load()
    n_battles = int(counts.total_votes)
    print(
        f"Chatbot Arena 2024-08-14: {n_battles:,} battles, {counts.n_models} models, "
        f"{len(raw['X'])} pairs, {os.cpu_count()} cores"
    )

    fit, boot, t_fit, cold = ours(counts)
    warm = [ours(counts)[3] for _ in range(5)]
    t_ours = statistics.median(warm)
    ratings = to_rating(fit.scores, counts.models, ANCHOR)
    top = int(np.argmax(ratings))
    print("\n[ours] Newton BT-MLE on counts + 1000 exact multinomial replicas, batched")
    print(f"  BT fit alone            {t_fit * 1000:8.1f} ms  ({fit.n_iter} Newton steps)")
    print(f"  fit + 1000 replicas     {cold:8.3f} s   (cold, first call)")
    print(
        f"  fit + 1000 replicas     {t_ours:8.3f} s   (warm, median of 5; min {min(warm):.3f}, "
        f"max {max(warm):.3f})"
    )
    print(
        f"  top: {counts.models[top]} {ratings[top]:.2f} "
        f"[{boot.lower[top]:.2f}, {boot.upper[top]:.2f}]"
    )

    print("\n[FastChat compute_mle_elo] sklearn LogisticRegression per replica, one row per battle")
    frame = battles_frame(raw)
    per_fit = time_fastchat_lr(frame, sizes, args.rounds)
    for size, sec in per_fit.items():
        print(f"  {size:>7,} battles: {sec:7.3f} s per fit")
    xs, ys = np.array(list(per_fit)), np.array(list(per_fit.values()))
    # least-squares line through (battles, seconds); it grows with rows (X is dense)
    slope, intercept = np.polyfit(xs, ys, 1) if len(xs) > 1 else (ys[0] / xs[0], 0.0)
    if slope <= 0:  # timing noise: fall back to proportional scaling
        slope, intercept = ys[-1] / xs[-1], 0.0
    full_fit = intercept + slope * n_battles
    extrapolated = full_fit * 1001
    print(
        f"  extrapolated: {full_fit:7.1f} s per fit on {n_battles:,} battles (least-squares "
        f"line; X alone would be {2 * n_battles * counts.n_models * 8 / 1e9:.1f} GB)"
    )
    print(f"  x (1 fit + 1000 replicas) = {extrapolated:,.0f} s = {extrapolated / 3600:.1f} h")

    per_rep = fastchat_fit_bt_seconds(raw)
    cores = os.cpu_count() or 1
    bt_total = per_rep * 1000 / cores
    print("\n[FastChat compute_bootstrap_bt] L-BFGS on aggregated counts, one process per core")
    print(f"  {per_rep:.3f} s per replica -> ~{bt_total:.0f} s for 1000 on {cores} cores")

    print("\nratios (time of theirs / time of ours, warm):")
    print(f"  vs compute_mle_elo per-battle logistic regression: {extrapolated / t_ours:,.0f}x")
    print(f"  vs compute_bootstrap_bt aggregated L-BFGS:         {bt_total / t_ours:,.0f}x")
    print(
        f"goal: ours < 1 s -> {'met' if t_ours < 1 else 'NOT met'} ({t_ours:.3f} s); "
        f">= 1000x -> {'met' if extrapolated / t_ours >= 1000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
