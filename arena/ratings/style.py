"""Style control, as Chatbot Arena defines it (FastChat ``rating_systems.py``).

Answers that are longer or carry more markdown win more votes whatever their
substance. Style control adds these effects to the Bradley-Terry model so the model
strengths are what is left once style is accounted for (LMSYS blog, 2024-08-28).

Features. For each vote and each element ``x`` in (answer length in tokens, markdown
headers, list items, bold spans), with ``x_a``, ``x_b`` the counts of the answers in
slot a and b::

    f = (x_a - x_b) / (x_a + x_b + 1)

then every feature is standardised over the votes, ``(f - mean) / std`` (population
std, as ``np.std``).

Model. ``P(a beats b) = σ(s_a - s_b + f · β)``, ties and both-bad votes counting half,
fitted with FastChat's L2 penalty ``reg/2 · (||s / ln 10||² + ||β||²)`` (``reg = 0.5``;
FastChat penalises base-10 strengths). Ratings are ``400 / ln 10 · s + 1000`` (or
anchored); the coefficients ``β`` are log-odds per standard deviation of each feature.
Intervals come from the bootstrap over whole votes, like every other board here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from arena.vocabulary import WINNER_CODE

from .bootstrap import bootstrap_bt, percentile_interval
from .bt import _HALF_STATS, BTFit, PairDesign, fit_design
from .counts import PairwiseCounts, _dedupe_units
from .graph import check_graph
from .leaderboard import Leaderboard, _rows
from .scale import Anchor, to_rating

STYLE_ELEMENTS = ("tokens", "headers", "lists", "bold")
FEATURE_NAMES = ("length", "headers", "lists", "bold")


@dataclass(frozen=True, eq=False)
class StyleVotes:
    """Pairwise votes with the style counts of both answers.

    Attributes
    ----------
    models : tuple of str
    a, b : ndarray of intp, shape (N,)
        Models in slot a (left/first) and slot b.
    outcome : ndarray of int8, shape (N,)
        0 a wins, 1 b wins, 2 tie, 3 both bad.
    style_a, style_b : ndarray, shape (N, 4)
        (tokens, headers, lists, bold) of each answer.
    weight : ndarray of int64, shape (N,)
        Identical votes.
    unit : ndarray of int64, shape (N,)
        Bootstrap unit of each vote (both orders of one LLM comparison share one).
    """

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray
    style_a: np.ndarray
    style_b: np.ndarray
    weight: np.ndarray
    unit: np.ndarray


def style_votes_from_records(records: Iterable) -> StyleVotes:
    """Pairwise judgment records that carry ``style`` for both slots."""
    names: dict[str, int] = {}
    units: dict[tuple, int] = {}
    a, b, out, sa, sb, w, unit = [], [], [], [], [], [], []
    missing = 0
    for rec in records:
        if getattr(rec, "kind", None) != "pairwise" or rec.winner is None:
            continue
        if not rec.style or len(rec.style) < 2:
            missing += 1
            continue
        a.append(names.setdefault(rec.contestants[0], len(names)))
        b.append(names.setdefault(rec.contestants[1], len(names)))
        out.append(WINNER_CODE[rec.winner])
        sa.append([float(rec.style[0].get(e, 0)) for e in STYLE_ELEMENTS])
        sb.append([float(rec.style[1].get(e, 0)) for e in STYLE_ELEMENTS])
        w.append(int(rec.weight))
        key = (rec.match_id, rec.judge, rec.voter) if rec.weight == 1 else ("#", len(unit))
        unit.append(units.setdefault(key, len(units)))
    if not a:
        raise ValueError(
            "style: style control needs per-answer style counts (tokens, headers, lists, "
            f"bold) on the votes; {missing} votes had none"
        )
    return StyleVotes(
        tuple(names),
        np.array(a, np.intp),
        np.array(b, np.intp),
        np.array(out, np.int8),
        np.array(sa),
        np.array(sb),
        np.array(w, np.int64),
        np.array(unit, np.int64),
    )


def style_features(style_a: np.ndarray, style_b: np.ndarray, weight=None) -> np.ndarray:
    """``(x_a - x_b) / (x_a + x_b + 1)``, standardised per feature; shape (N, 4).

    ``weight`` counts identical votes (mean and std are over all votes).
    """
    diff = (style_a - style_b) / (style_a + style_b + 1.0)
    w = np.ones(len(diff)) if weight is None else np.asarray(weight, float)
    mean = np.average(diff, axis=0, weights=w)
    std = np.sqrt(np.average((diff - mean) ** 2, axis=0, weights=w))
    return (diff - mean) / np.where(std > 0, std, 1.0)


def style_problem(votes: StyleVotes, reg: float = 0.5):
    """``(counts, design)``: one cell per vote, rows per distinct (a, b, features)."""
    feats = style_features(votes.style_a, votes.style_b, votes.weight)
    key = np.column_stack([votes.a, votes.b, feats])
    uniq, row = np.unique(key, axis=0, return_inverse=True)
    row = row.ravel()
    n_votes = votes.a.size
    members = sp.csr_matrix(
        (np.ones(n_votes), (votes.unit, np.arange(n_votes))), shape=(votes.unit.max() + 1, n_votes)
    )
    mult = np.zeros(members.shape[0], np.int64)
    mult[votes.unit] = votes.weight
    counts = PairwiseCounts(
        votes.models,
        votes.a,
        votes.b,
        votes.outcome,
        votes.weight.astype(float),
        units=_dedupe_units(members, mult) if np.unique(votes.unit).size < n_votes else None,
    )
    design = PairDesign(
        n_models=len(votes.models),
        first=uniq[:, 0].astype(np.intp),
        second=uniq[:, 1].astype(np.intp),
        ties="half",
        position=False,
        prior=reg / math.log(10.0) ** 2,
        cell_row=row,
        cell_stat=np.array([_HALF_STATS[o] for o in range(4)])[votes.outcome],
        covariates=uniq[:, 2:],
        covariate_prior=reg,
    )
    return counts, design


def fit_style(votes: StyleVotes, *, reg: float = 0.5) -> BTFit:
    """Style-controlled strengths; ``fit.coefficients`` are the style coefficients β."""
    counts, design = style_problem(votes, reg)
    return fit_design(design, design.row_stats(counts.weight), votes.models)


def style_leaderboard(
    votes: StyleVotes,
    bootstrap: int = 1000,
    seed: int | None = 0,
    anchor: Anchor | None = None,
    *,
    reg: float = 0.5,
    ci: float = 0.95,
) -> Leaderboard:
    """Style-controlled Bradley-Terry leaderboard with intervals and style coefficients."""
    counts, design = style_problem(votes, reg)
    fit = fit_design(design, design.row_stats(counts.weight), votes.models)
    graph = check_graph(counts)
    ratings = to_rating(fit.scores, votes.models, anchor)
    boot = None
    coef_ci = {}
    if bootstrap:
        boot = bootstrap_bt(counts, bootstrap, seed, anchor=anchor, ci=ci, fit=fit)
        n = len(votes.models)
        lo, hi = percentile_interval(boot.params[:, n:], ci)
        coef_ci = {name: (lo[k], hi[k]) for k, name in enumerate(FEATURE_NAMES)}
    notes = graph.messages() + [
        "style control: ratings hold answer length and markdown (headers, lists, bold) "
        "fixed; coefficients are log-odds per standard deviation of each style feature"
    ]
    return Leaderboard(
        method="bt-style",
        rows=_rows(counts, ratings, boot, graph),
        graph=graph,
        n_votes=counts.total_votes,
        n_replicas=bootstrap,
        seed=seed if bootstrap else None,
        anchor=anchor,
        prior=design.prior,
        coefficients=dict(zip(FEATURE_NAMES, fit.coefficients.tolist(), strict=True)),
        coefficient_ci=coef_ci,
        notes=tuple(notes),
    )
