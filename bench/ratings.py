"""Benchmark: Bradley-Terry + 1000-replica bootstrap on 1.67M Chatbot Arena battles.

Three sections (``--sections solver,cli-log,scale``, all by default).

``scale``: the web refit's call, ``leaderboard(counts, bootstrap=1000)`` (BT fit, graph
check, 1000 exact multinomial replicas), timed warm (median of ``--rounds``, wall and
CPU seconds, with the machine's load average) on three boards:

1. a synthetic arena of 300 models and 10M votes (:func:`synthetic_board`: models
   arrive one after another and meet mostly the ~60 models live around them, as on
   Chatbot Arena, where 129 models met in 3,460 pairs; ~8,900 pairs here) — goal <= 2 s;
2. the 129-model, 1.67M-battle Chatbot Arena counts — goal <= 0.5 s;
3. a tiny sparse board (8 models, 30 votes; ~9% of its replicas have no MLE) — goal
   <= 50 ms.

It ends with ``goal scale: ... MET`` (or ``NOT MET``). ``--dense`` adds, for context
only, the worst case of 300 models where every pair met (44,850 pairs).

``cli-log``: the whole CLI on a raw battle log. The counts file is expanded (seeded) into
a 1.67M-line FastChat JSONL in a temporary directory (``question_id``, ``tstamp``,
``model_a``, ``model_b``, ``winner``, ``anony``), then, each in its own process, timed
end to end (wall, and peak RSS from ``os.wait4``):

1. ``python -m arena.ratings fit LOG --format fastchat --method bt --bootstrap 1000
   --anchor mixtral-8x7b-instruct-v0.1=1114 --json``;
2. FastChat's own path on the same file: ``pandas.read_json(LOG, lines=True)`` and
   ``rating_systems.compute_bt`` (the fit alone, no bootstrap), reimplemented below;
3. the record path the CLI took before the battle reader (every line parsed into a
   record, the records listed, then counted), whose board must equal the CLI's to 1e-6.

It ends with ``goal cli-log: ... MET`` (or ``NOT MET``): the CLI in <= 10 s wall and
<= 1 GB peak, and faster than FastChat's read + fit.

``solver``, on the counts alone, prints:

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
Run: ``.venv/bin/python bench/ratings.py [--sections solver,cli-log,scale] [--sizes
20000,40000,80000] [--rounds 2] [--skip-old]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.ratings import PairwiseCounts, bootstrap_bt, fit_bt, leaderboard, to_rating  # noqa: E402

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


def solver_section(args):
    sizes = [int(s) for s in args.sizes.split(",")]
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


# -- the CLI on a raw battle log --------------------------------------------------------

CLI_WALL_GOAL, CLI_RSS_GOAL = 10.0, 1e9  # seconds, bytes
WINNER_LABELS = ('"model_a"', '"model_b"', '"tie"', '"tie (bothbad)"')


def write_battle_log(raw, path: Path, seed: int = 0) -> int:
    """The counts expanded to one FastChat JSONL line per battle, shuffled (seeded), with a
    random conversation id and increasing time stamps, as FastChat's clean battles."""
    models = [json.dumps(m) for m in raw["models"]]
    pairs = np.array(raw["X"])
    reps = np.array(raw["Y"], np.int64).ravel()
    a = np.repeat(np.repeat(pairs[:, 0], 4), reps)
    b = np.repeat(np.repeat(pairs[:, 1], 4), reps)
    w = np.repeat(np.tile(np.arange(4), len(pairs)), reps)
    rng = np.random.default_rng(seed)
    order = rng.permutation(a.size)
    a, b, w = a[order].tolist(), b[order].tolist(), w[order].tolist()
    ids = rng.bytes(16 * len(a)).hex()
    stamps = np.round(np.cumsum(rng.exponential(30.0, len(a))) + 1_682_899_200.0, 4).tolist()
    with path.open("w") as f:
        for start in range(0, len(a), 100_000):
            f.write(
                "".join(
                    f'{{"question_id": "{ids[32 * i : 32 * i + 32]}", "tstamp": {stamps[i]!r}, '
                    f'"model_a": {models[a[i]]}, "model_b": {models[b[i]]}, '
                    f'"winner": {WINNER_LABELS[w[i]]}, "anony": true}}\n'
                    for i in range(start, min(start + 100_000, len(a)))
                )
            )
    return len(a)


# Started by a small process of its own, a child's peak RSS is its own: a child forked
# from this process (large after the solver section) would start with this one's.
_LAUNCHER = """
import json, os, sys, time
t = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t
rc = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    json.dump({"wall": wall, "rss": usage.ru_maxrss * 1024, "rc": rc}, f)
"""


def run_measured(argv, out_path: Path) -> tuple[float, int, int, str]:
    """(wall seconds, peak RSS bytes, exit code, stderr) of one child process."""
    measured = out_path.with_suffix(".measured")
    with out_path.open("w") as out, tempfile.TemporaryFile("w+") as err:
        launcher = [sys.executable, "-c", _LAUNCHER, str(measured), *argv]
        subprocess.run(launcher, stdout=out, stderr=err, cwd=ROOT, check=False)
        err.seek(0)
        stderr = err.read()
    if not measured.exists():
        sys.exit(f"could not run {argv[:3]}: {stderr}")
    m = json.loads(measured.read_text())
    return m["wall"], m["rss"], m["rc"], stderr


def preprocess_for_bt(df):
    """FastChat ``rating_systems.preprocess_for_bt``: unique (matchup, outcome) with counts."""
    import pandas as pd

    n_rows = len(df)
    schedule = np.full((n_rows, 3), fill_value=1, dtype=np.int32)  # outcome 1: a tie
    model_indices, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    schedule[:, [0, 1]] = np.column_stack([model_indices[:n_rows], model_indices[n_rows:]])
    schedule[df["winner"] == "model_a", 2] = 2
    schedule[df["winner"] == "model_b", 2] = 0
    matchups_outcomes, weights = np.unique(schedule, return_counts=True, axis=0)
    matchups = matchups_outcomes[:, [0, 1]]
    outcomes = matchups_outcomes[:, 2].astype(np.float64) / 2.0
    return matchups, outcomes, models.to_list(), weights.astype(np.float64)


def bt_loss_and_grad(ratings, matchups, outcomes, weights, alpha=1.0):
    """FastChat ``rating_systems.bt_loss_and_grad`` (a tie is half a win and half a loss)."""
    from scipy.special import expit

    matchup_ratings = ratings[matchups]
    logits = alpha * (matchup_ratings[:, 0] - matchup_ratings[:, 1])
    probs = expit(logits)
    loss = -((np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)) * weights).sum()
    matchups_grads = -alpha * (outcomes - probs) * weights
    model_grad = np.zeros_like(ratings)
    np.add.at(
        model_grad,
        matchups[:, [0, 1]],
        matchups_grads[:, None] * np.array([1.0, -1.0], dtype=np.float64),
    )
    return loss, model_grad


def compute_bt(df, base=10.0, scale=400.0, init_rating=1000, tol=1e-6):
    """FastChat ``rating_systems.compute_bt``: L-BFGS on the unique outcomes, anchored at
    mixtral-8x7b-instruct-v0.1 = 1114 (``scale_and_offset``)."""
    import pandas as pd
    from scipy.optimize import minimize

    matchups, outcomes, models, weights = preprocess_for_bt(df)
    result = minimize(
        fun=bt_loss_and_grad,
        x0=np.zeros(len(models), dtype=np.float64),
        args=(matchups, outcomes, weights, math.log(base)),
        jac=True,
        method="L-BFGS-B",
        options={"disp": False, "maxiter": 100, "gtol": tol},
    )
    scaled = result["x"] * scale + init_rating
    if ANCHOR[0] in models:
        scaled += ANCHOR[1] - scaled[models.index(ANCHOR[0])]
    return pd.Series(scaled, index=models).sort_values(ascending=False)


def fastchat_worker(log: str) -> None:
    """Child process: FastChat's read + fit, printing its ratings and inner timings as JSON."""
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_json(log, lines=True)
    t1 = time.perf_counter()
    ratings = compute_bt(df)
    t2 = time.perf_counter()
    print(json.dumps({"read": t1 - t0, "fit": t2 - t1, "ratings": ratings.to_dict()}))


def old_path_worker(log: str) -> None:
    """Child process: the record path (parse every line into a record, list them, count)."""
    from arena.ratings.__main__ import build_parser, fit_board, load_records

    args = build_parser().parse_args(
        ["fit", log, "--format", "fastchat", "--bootstrap", "1000", "--anchor", "=".join(
            [ANCHOR[0], str(int(ANCHOR[1]))]
        )]
    )  # fmt: skip
    print(json.dumps(fit_board(load_records("fastchat", [log]), args).to_rows()))


def cli_log_section(args):
    raw, counts = load()
    with tempfile.TemporaryDirectory(prefix="arena-bench-") as tmp:
        log = Path(tmp) / "battles.jsonl"
        t = time.perf_counter()
        n = write_battle_log(raw, log, seed=args.seed)
        size = log.stat().st_size
        print(
            f"\n[cli-log] FastChat JSONL from the counts file: {n:,} lines, {size / 1e6:.0f} MB "
            f"(seed {args.seed}, written in {time.perf_counter() - t:.1f} s)"
        )
        anchor = f"{ANCHOR[0]}={int(ANCHOR[1])}"
        cli = [sys.executable, "-m", "arena.ratings", "fit", str(log), "--format", "fastchat",
               "--method", "bt", "--bootstrap", "1000", "--anchor", anchor, "--json"]  # fmt: skip
        wall, rss, rc, err = run_measured(cli, Path(tmp) / "cli.json")
        if rc != 0:
            sys.exit(f"the CLI failed ({rc}): {err}")
        rows = json.loads((Path(tmp) / "cli.json").read_text())
        print("  ours: python -m arena.ratings fit (read + BT + 1000 replicas)")
        print(f"    {wall:6.2f} s wall, {rss / 1e9:5.2f} GB peak RSS")

        worker = [sys.executable, __file__, "--fastchat-worker", str(log)]
        fc_wall, fc_rss, rc, err = run_measured(worker, Path(tmp) / "fastchat.json")
        if rc != 0:
            sys.exit(f"FastChat's path failed ({rc}): {err}")
        fc = json.loads((Path(tmp) / "fastchat.json").read_text())
        print("  FastChat: pandas.read_json(lines=True) + compute_bt (fit only, no bootstrap)")
        print(
            f"    {fc_wall:6.2f} s wall ({fc['read']:.2f} s read_json, {fc['fit']:.2f} s fit), "
            f"{fc_rss / 1e9:5.2f} GB peak RSS"
        )
        ours = {r["model"]: r["rating"] for r in rows}
        fc_diff = max(abs(ours[m] - v) for m, v in fc["ratings"].items())
        print(f"    max |our rating - FastChat's| = {fc_diff:.4f} (L-BFGS gtol 1e-6 vs Newton)")

        if args.skip_old:
            print("  the record path: skipped (--skip-old)")
        else:
            worker = [sys.executable, __file__, "--old-path-worker", str(log)]
            old_wall, old_rss, rc, err = run_measured(worker, Path(tmp) / "old.json")
            if rc != 0:
                sys.exit(f"the record path failed ({rc}): {err}")
            old = {r["model"]: r for r in json.loads((Path(tmp) / "old.json").read_text())}
            diff = max(
                abs(r[key] - old[r["model"]][key])
                for r in rows
                for key in ("rating", "ci_lower", "ci_upper", "votes")
            )
            same_models = set(old) == set(ours)
            print("  the record path (before the battle reader): parse to records, list, count")
            print(f"    {old_wall:6.2f} s wall, {old_rss / 1e9:5.2f} GB peak RSS")
            print(
                f"    max |CLI - record path| over rating, CI bounds, votes = {diff:.2e} "
                f"({'same' if same_models else 'DIFFERENT'} models)"
            )
            if diff > 1e-6 or not same_models:
                print("    RATINGS CHANGED (more than 1e-6)")

    met = wall <= CLI_WALL_GOAL and rss <= CLI_RSS_GOAL and wall < fc_wall
    print(
        f"goal cli-log: CLI {wall:.2f} s wall (<= {CLI_WALL_GOAL:g}), {rss / 1e9:.2f} GB peak "
        f"(<= {CLI_RSS_GOAL / 1e9:g}); FastChat read + fit {fc_wall:.2f} s "
        f"({fc_wall / wall:.1f}x ours) {'MET' if met else 'NOT MET'}"
    )


# -- boards at scale: the refit's call on big, real and tiny boards ----------------------

SCALE_GOALS = {"300 models, 10M votes": 2.0, "Chatbot Arena": 0.5, "tiny sparse": 0.05}


def synthetic_board(n_models=300, n_votes=10_000_000, window=30, dense=False, seed=0):
    """An arena-like board: models arrive one after another and meet mostly the ones live
    around them (``|i - j| <= window``, plus 1% of the other pairs at a fifth of the
    traffic); strengths drift upward with arrival; 20% ties, 30% of them both-bad; either
    model may be shown first. ``dense``: every pair met (the worst case)."""
    rng = np.random.default_rng(seed)
    strength = np.cumsum(rng.normal(0.01, 0.08, n_models))
    strength -= strength.mean()
    i, j = np.triu_indices(n_models, 1)
    near = ((j - i) <= window) | dense
    keep = near | (rng.random(i.size) < 0.01)
    i, j, near = i[keep], j[keep], near[keep]
    share = rng.lognormal(0.0, 1.0, i.size) * np.where(near, 1.0, 0.2)
    votes = rng.multinomial(n_votes, share / share.sum())
    p = 1.0 / (1.0 + np.exp(-(strength[i] - strength[j])))
    tie = 0.2
    first = rng.binomial(votes, (1 - tie) * p)
    second = rng.binomial(votes - first, (1 - tie) * (1 - p) / (1 - (1 - tie) * p))
    ties = votes - first - second
    bothbad = rng.binomial(ties, 0.3)
    table = np.c_[first, second, ties - bothbad, bothbad]
    flip = rng.random(i.size) < 0.5
    pairs = np.where(flip[:, None], np.c_[j, i], np.c_[i, j])
    table = np.where(flip[:, None], table[:, [1, 0, 2, 3]], table)
    models = [f"model-{k:03d}" for k in range(n_models)]
    return PairwiseCounts.from_table(models, pairs, table)


def tiny_sparse_board(seed=1):
    """8 models, 30 single votes on random pairs (an MLE exists; many replicas lose it)."""
    rng = np.random.default_rng(seed)
    pairs = np.array([rng.choice(8, 2, replace=False) for _ in range(30)])
    outcome = rng.integers(0, 3, 30)
    models = [f"m{k}" for k in range(8)]
    return PairwiseCounts.from_cells(models, pairs[:, 0], pairs[:, 1], outcome, np.ones(30))


def time_board(counts, rounds):
    """(median wall s, median CPU s, board) of ``leaderboard(counts, bootstrap=1000)``."""
    board = leaderboard(counts, bootstrap=1000)  # warm-up: imports, first allocations
    walls, cpus = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.process_time()
        board = leaderboard(counts, bootstrap=1000)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return walls, cpus, board


def scale_section(args):
    _, arena = load()
    boards = {
        "300 models, 10M votes": synthetic_board(),
        "Chatbot Arena": arena,
        "tiny sparse": tiny_sparse_board(),
    }
    if args.dense:
        boards["300 models dense (context)"] = synthetic_board(dense=True)
    print(
        f"\n[scale] leaderboard(counts, bootstrap=1000), warm, median of {args.rounds} "
        f"(load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{os.cpu_count()} cores)"
    )
    medians = {}
    for name, counts in boards.items():
        walls, cpus, board = time_board(counts, args.rounds)
        pairs = np.unique(np.sort(np.c_[counts.first, counts.second], axis=1), axis=0).shape[0]
        medians[name] = statistics.median(walls)
        goal = SCALE_GOALS.get(name)
        print(
            f"  {name:<28} {counts.n_models:>4} models {pairs:>6,} pairs "
            f"{counts.total_votes:>12,.0f} votes: {medians[name]:7.3f} s wall "
            f"(runs {', '.join(f'{w:.3f}' for w in walls)}; CPU {statistics.median(cpus):.3f} s)"
            + (f"  goal <= {goal:g} s" if goal else "")
        )
        if board.notes:
            print(f"    notes: {'; '.join(board.notes)}")
    print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    met = all(medians[name] <= goal for name, goal in SCALE_GOALS.items())
    figures = "; ".join(
        f"{name} {medians[name]:.3f} s (<= {goal:g})" for name, goal in SCALE_GOALS.items()
    )
    print(f"goal scale: {figures} {'MET' if met else 'NOT MET'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="solver,cli-log,scale")
    parser.add_argument("--dense", action="store_true", help="scale: also every pair met")
    parser.add_argument("--sizes", default="20000,40000,80000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="of the generated battle log")
    parser.add_argument("--skip-old", action="store_true", help="skip the record path check")
    parser.add_argument("--fastchat-worker", metavar="LOG", help=argparse.SUPPRESS)
    parser.add_argument("--old-path-worker", metavar="LOG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fastchat_worker:
        return fastchat_worker(args.fastchat_worker)
    if args.old_path_worker:
        return old_path_worker(args.old_path_worker)
    warnings.simplefilter("ignore", category=FutureWarning)
    sections = args.sections.split(",")
    unknown = set(sections) - {"solver", "cli-log", "scale"}
    if unknown:
        parser.error(f"--sections: unknown {', '.join(sorted(unknown))} (solver, cli-log, scale)")
    if "solver" in sections:
        solver_section(args)
    if "cli-log" in sections:
        cli_log_section(args)
    if "scale" in sections:
        scale_section(args)


if __name__ == "__main__":
    main()
