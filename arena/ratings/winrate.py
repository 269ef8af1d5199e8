"""Win rates against a baseline: AlpacaEval's, and the Arena-Hard score.

AlpacaEval (``alpaca_eval.metrics.get_winrate``)
------------------------------------------------
Each instruction has a preference ``p ∈ [1, 2]`` for (baseline, model): 1 = baseline
better, 2 = model better, 1.5 = draw (0 is the old spelling of a draw and means 1.5;
anything outside [1, 2] or NaN is dropped). With ``x = p - 1``::

    win_rate       = 100 · mean(x)
    standard_error = 100 · std(x, ddof=1) / sqrt(n)       (pandas ``sem``)
    n_wins = #(x > 0.5), n_wins_base = #(x < 0.5), n_draws = #(p == 1.5), n_total = n
    discrete_win_rate: the same mean after rounding each p to 1, 2 (1.5 stays a draw)

The baseline's own row (its annotations against itself) is all draws: 50 ± 0, listed on
every board. Beside the raw win rate, where the records carry the outputs' lengths
(``meta["output_chars"]``, AlpacaEval's annotations do), the length-controlled win rate of
AlpacaEval 2.0 and its standard error (:mod:`arena.ratings.length_controlled`).

Arena-Hard (``show_result.py`` of arena-hard-auto v0.1)
-------------------------------------------------------
Every question is judged twice, once in each order; "A>>B" counts as 3 votes
(``--weight 3``), "A>B" as 1, "A=B" as a tie. Bradley-Terry with ties as half wins
gives the strengths; a model's score is its expected win rate against the baseline,
``100 · σ(s_model - s_baseline)``, with a bootstrap percentile interval. Arena-Hard
resamples exploded rows; here both games of a question form one unit, so a strong
verdict's three votes and the swapped game move together (intervals are, if anything,
more honest).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .bootstrap import FALLBACK_PRIOR, bootstrap_bt, percentile_interval
from .bt import fit_bt
from .counts import PairwiseCounts, counts_from_records
from .graph import check_graph
from .leaderboard import Leaderboard, observed_points, ranked_rows
from .length_controlled import (
    GamedRows,
    LengthControlled,
    baseline_against_itself,
    instruction_difficulty,
    length_controlled_winrate,
    standardized_length_difference,
)

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class WinRate:
    """AlpacaEval's head-to-head summary (percentages)."""

    win_rate: float
    standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    discrete_win_rate: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def alpaca_eval_winrate(preferences) -> WinRate:
    """AlpacaEval's ``get_winrate`` on a sequence of preferences (see module doc)."""
    p = np.asarray(preferences, dtype=np.float64).copy()
    p[p == 0.0] = 1.5  # backward compatibility: 0 meant a draw
    n_draws = int(np.sum(p == 1.5))
    x = p[(p >= 1.0) & (p <= 2.0)] - 1.0  # NaN fails both comparisons: dropped
    n = x.size
    mean = x.mean() if n else np.nan
    sem = x.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return WinRate(
        win_rate=float(mean * 100.0),
        standard_error=float(sem * 100.0),
        n_wins=int(np.sum(x > 0.5)),
        n_wins_base=int(np.sum(x < 0.5)),
        n_draws=n_draws,
        n_total=int(n),
        discrete_win_rate=_discrete_win_rate(preferences),
    )


def _discrete_win_rate(preferences) -> float:
    """AlpacaEval's ``ZeroOneScoringRule``: 1.5 -> draw, round the rest (half to even)."""
    p = np.asarray(preferences, dtype=np.float64).copy()
    p[p == 1.5] = 0.0
    p = np.round(p)
    p[p == 0.0] = 1.5
    x = p[(p >= 1.0) & (p <= 2.0)] - 1.0
    return float(x.mean() * 100.0) if x.size else float("nan")


def model_preferences(records: Iterable, baseline: str) -> dict[str, list[float]]:
    """Per model, its preferences against ``baseline`` on the AlpacaEval scale.

    A record's ``preference`` is about slot 1 (1 = slot 0 better); it is flipped
    (``3 - p``) when the model sits in slot 0. Records with only a ``winner`` map to 2,
    1 or 1.5. A record of weight ``w`` counts ``w`` times.
    """
    out: dict[str, list[float]] = {}
    for rec in records:
        found = against_baseline(rec, baseline)
        if found is not None and not np.isnan(found[2]):
            out.setdefault(found[0], []).extend([found[2]] * int(rec.weight))
    return out


def against_baseline(rec, baseline: str) -> tuple[str, int, float] | None:
    """``(model, the model's slot, preference about the model)`` of a pairwise record
    against ``baseline`` (NaN: a failed annotation), else None (not against it, or the
    baseline against itself)."""
    if getattr(rec, "kind", None) != "pairwise" or baseline not in rec.contestants:
        return None
    slot = 1 - rec.contestants.index(baseline)
    model = rec.contestants[slot]
    if model == baseline:
        return None
    if rec.preference is not None:
        pref = 1.5 if rec.preference == 0 else float(rec.preference)  # 0: old draw
        pref = pref if slot == 1 else 3.0 - pref
    elif rec.winner is not None:
        won = {"a": 0, "b": 1}.get(rec.winner)
        pref = 1.5 if won is None else (2.0 if won == slot else 1.0)
    else:
        pref = np.nan
    return model, slot, float(pref)


def winrate_leaderboard(
    records: Iterable, baseline: str, *, ci: float = 0.95, length_controlled: bool = True
) -> Leaderboard:
    """AlpacaEval win rates vs ``baseline``; interval = win rate ± z · standard error.

    The baseline is listed at 50 ± 0 (its annotations against itself are all draws). With
    ``length_controlled`` and the outputs' lengths in the records, each row also carries
    AlpacaEval 2.0's length-controlled win rate and its standard error.
    """
    z = Z_95 if ci == 0.95 else float(_normal_quantile(0.5 + ci / 2))
    records = list(records)
    prefs = model_preferences(records, baseline)
    if not prefs:
        raise ValueError(f"baseline: no judgments against {baseline!r}")
    stats = {m: alpaca_eval_winrate(p) for m, p in prefs.items()}
    annotations = baseline_annotations(records, baseline) if length_controlled else None
    notes = [f"win rate (%) against {baseline}, AlpacaEval definition; interval ± {z:.2f} SE"]
    lc: dict[str, LengthControlled] = {}
    if annotations is not None:
        lc, lc_notes = length_controlled_rates(annotations, baseline)
        notes.extend(lc_notes)
    n = max(s.n_total for s in stats.values())  # the instructions (AlpacaEval: 805)
    stats[baseline] = WinRate(50.0, 0.0, 0, 0, n, n, 50.0)  # all draws against itself
    if lc:
        lc[baseline] = baseline_against_itself()
    models = sorted(stats, key=lambda m: -stats[m].win_rate)
    wr = np.array([stats[m].win_rate for m in models])
    se = np.array([stats[m].standard_error for m in models])
    nan = LengthControlled(np.nan, np.nan, {}, np.nan, False)
    rows = ranked_rows(
        models,
        wr,
        [stats[m].n_total for m in models],
        lower=wr - z * se,
        upper=wr + z * se,
        standard_error=se,
        length_controlled=[lc.get(m, nan).win_rate for m in models] if lc else None,
        lc_standard_error=[lc.get(m, nan).standard_error for m in models] if lc else None,
    )
    coefficients = {f"{m}.discrete_win_rate": stats[m].discrete_win_rate for m in models}
    for m, fit in lc.items():
        if m != baseline:
            coefficients.update({f"{m}.lc_{k}": v for k, v in fit.weights.items()})
    return Leaderboard(
        method="winrate",
        rows=rows,
        value_name="win_rate",
        n_votes=float(sum(s.n_total for m, s in stats.items() if m != baseline)),
        coefficients=coefficients,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class BaselineAnnotations:
    """Every annotation against the baseline, one row each (a record of weight w: w rows)."""

    models: tuple[str, ...]
    model: np.ndarray  # index into models
    prompt: np.ndarray  # index of the instruction, in order of first appearance
    preference: np.ndarray  # in [1, 2] about the model; NaN = failed annotation
    len_baseline: np.ndarray  # characters
    len_model: np.ndarray


def baseline_annotations(records: Iterable, baseline: str) -> BaselineAnnotations | None:
    """The annotations against ``baseline`` with both outputs' lengths, or None when some
    judgment against it has no lengths (length control needs them all)."""
    models: dict[str, int] = {}
    prompts: dict[str, int] = {}
    cols: list[tuple] = []
    for rec in records:
        found = against_baseline(rec, baseline)
        if found is None:
            continue
        model, slot, pref = found  # a failed annotation (NaN) is predicted, not fitted
        chars = rec.meta.get("output_chars")
        if chars is None or rec.prompt_id is None:
            return None
        m = models.setdefault(model, len(models))
        q = prompts.setdefault(rec.prompt_id, len(prompts))
        cols.extend([(m, q, pref, chars[1 - slot], chars[slot])] * int(rec.weight))
    if not cols:
        return None
    m, q, pref, len_b, len_m = (np.array(c) for c in zip(*cols, strict=True))
    return BaselineAnnotations(
        tuple(models), m.astype(np.intp), q.astype(np.intp), pref.astype(float), len_b, len_m
    )


def is_gamed_baseline(model: str, baseline: str) -> bool:
    """AlpacaEval's gamed baselines: the baseline made verbose or concise (its notebook's
    rule, e.g. ``gpt4_1106_preview_verbose``)."""
    return model != baseline and baseline in model and ("verbose" in model or "concise" in model)


def length_controlled_rates(
    ann: BaselineAnnotations, baseline: str
) -> tuple[dict[str, LengthControlled], list[str]]:
    """Each model's LC win rate: instruction difficulties fitted jointly on all models'
    annotations, then one GLM per model, regularised by the gamed baselines if present."""
    gamed_model = np.array([is_gamed_baseline(m, baseline) for m in ann.models])
    difficulty = instruction_difficulty(
        ann.model, ann.prompt, ann.preference, ann.len_baseline, ann.len_model, gamed_model
    )[ann.prompt]
    gamed = None
    if gamed_model.any():
        parts = [np.flatnonzero(ann.model == k) for k in np.flatnonzero(gamed_model)]
        gamed = GamedRows(
            preference=np.concatenate([ann.preference[r] for r in parts]),
            std_delta_len=np.concatenate(
                [
                    standardized_length_difference(ann.len_baseline[r], ann.len_model[r])
                    for r in parts
                ]
            ),
            difficulty=np.concatenate([difficulty[r] for r in parts]),
        )
    out = {}
    for k, model in enumerate(ann.models):
        rows = ann.model == k
        if not np.isfinite(ann.preference[rows]).any():
            continue
        out[model] = length_controlled_winrate(
            ann.preference[rows],
            ann.len_baseline[rows],
            ann.len_model[rows],
            difficulty[rows],
            gamed=gamed,
        )
    how = (
        "regularised toward the baseline by "
        + ", ".join(m for m, g in zip(ann.models, gamed_model, strict=True) if g)
        if gamed is not None
        else "not regularised (no gamed baseline, <baseline>_verbose/_concise, in the data)"
    )
    notes = [
        "length_controlled_win_rate: AlpacaEval 2.0's GLM (length_controlled_v1), "
        f"instruction difficulty estimated jointly from these {len(ann.models)} models, {how}"
    ]
    return out, notes


def _normal_quantile(q: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(q))


# -- Arena-Hard ----------------------------------------------------------------------------


def infer_baseline(counts: PairwiseCounts) -> str:
    """The one model that took part in every vote (Arena-Hard's layout); of two such (one
    model against the baseline), the one always shown first (AlpacaEval's generator_1)."""
    n = counts.n_models
    first = np.bincount(counts.first, minlength=n)
    every = np.flatnonzero(first + np.bincount(counts.second, minlength=n) == counts.n_cells)
    if every.size > 1:
        every = every[first[every] == counts.n_cells]
    if every.size != 1:
        raise ValueError("baseline: cannot tell the baseline model; pass --baseline")
    return counts.models[every[0]]


def arena_hard_leaderboard(
    counts: PairwiseCounts,
    baseline: str | None = None,
    bootstrap: int = 1000,
    seed: int | None = 0,
    *,
    ci: float = 0.95,
) -> Leaderboard:
    """Arena-Hard scores: expected win rate (%) against ``baseline`` under Bradley-Terry.

    ``counts`` should weight strong verdicts (``counts_from_records(records,
    strong_weight=3)``).
    """
    baseline = baseline or infer_baseline(counts)
    if baseline not in counts.models:
        raise ValueError(f"baseline: {baseline!r} has no judgments")
    k = counts.models.index(baseline)
    graph = check_graph(counts)
    prior = 0.0
    notes = graph.messages()
    if not graph.mle_exists:
        prior = FALLBACK_PRIOR
        notes.append(f"no maximum-likelihood fit exists; using a N(0, {1 / prior:g}) prior")
    fit = fit_bt(counts, prior=prior)
    score = 100.0 * _sigmoid(fit.scores - fit.scores[k])
    lower = upper = None
    if bootstrap:
        boot = bootstrap_bt(counts, bootstrap, seed, fit=fit)
        s = boot.params[:, : counts.n_models]
        lower, upper = percentile_interval(100.0 * _sigmoid(s - s[:, [k]]), ci)
    votes = counts.votes_per_model()
    points = observed_points(counts)
    rows = ranked_rows(
        counts.models,
        score,
        votes,
        lower=lower,
        upper=upper,
        win_rate=np.divide(points, votes, out=np.full(votes.shape, np.nan), where=votes > 0),
        component=graph.component,
    )
    notes.append(f"score = expected win rate (%) against {baseline}; strong verdicts weighted")
    return Leaderboard(
        method="arena-hard",
        rows=rows,
        value_name="score",
        graph=graph,
        n_votes=counts.total_votes,
        n_replicas=bootstrap,
        seed=seed if bootstrap else None,
        prior=prior,
        notes=tuple(notes),
    )


def arena_hard_from_records(records: Iterable, baseline=None, bootstrap=1000, seed=0):
    """:func:`arena_hard_leaderboard` on judgment records ("A>>B" = 3 votes)."""
    return arena_hard_leaderboard(
        counts_from_records(records, strong_weight=3.0), baseline, bootstrap, seed
    )


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, float)))
