"""What every audit page shares: chart rows, grouping helpers, the human consensus, caching.

Conventions shared by every metric of the audit pages (see also
:mod:`judges.audit_reports.queries`):

- The judge metrics read *untagged* verdicts: judgments in a perturbation run (a run
  with a tag) are shown only on the perturbations page.
- One verdict per (rater, match) -- what agreement, length, self-preference, gold and
  score-consistency metrics compare -- is the repeat-0 verdict; for a pair judged in
  both orders it is the PRP combination (:func:`judges.audit_metrics.combine_orders`: A
  or B only when both orders agree, else a tie; INVALID if either order was unparsable).
- The human verdict on a match is the weighted majority of its crowd votes (the label
  more than half of the votes gave; both-bad counts as a tie), and the human score of
  answer A is the share of votes it won (ties half). Annotators' labels (people's
  verdicts on a run's matches, ``judges.campaigns``; ``Verdicts.annotation``) are never
  mixed in: they form the annotators' verdict, the same majority of the labels alone,
  which the judge metrics compare with apart (``annotator_agreement``, ``annotator_kappa``).
- Agreement merges both-bad into tie on both sides (FastChat's MT-Bench convention).
- A row with ``weight`` w stands for w identical votes: per-vote metrics repeat it w
  times, never count it once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.cache import cache

from judges.audit_metrics import (
    BOTH_BAD,
    INVALID,
    MISSING,
    TIE,
    A,
    Estimate,
    combine_orders,
    swap,
)
from judges.audit_reports import queries

CACHE_SECONDS = 300


def n_boot() -> int:
    return int(settings.ARENA_BOOTSTRAP_ROUNDS)


# -- JSON-ready values --------------------------------------------------------------------


def num(x) -> float | None:
    """A float for JSON: None for NaN, infinity or None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def estimate_dict(est: Estimate) -> dict:
    return {"value": num(est.value), "low": num(est.low), "high": num(est.high), "n": int(est.n)}


def estimate_row(label: str, est: Estimate, series: str = "", **extra) -> dict:
    """One bar of an "estimates" chart (and one CSV row)."""
    return {"label": label, "series": series, **estimate_dict(est), **extra}


@dataclass
class Chart:
    """A chart and its CSV: ``rows`` are flat dicts, drawn by ``static/judges/audit.js``.

    ``kind`` is "estimates" (bars with 95% intervals; rows: label, series, value, low,
    high, n), "heatmap" (rows: row, column, value, low, high, n), "scatter" (rows with
    the fields named in ``options["x"]``, ``options["y"]``) or "table" (CSV only).
    """

    key: str
    title: str
    kind: str
    rows: list[dict]
    options: dict = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "kind": self.kind,
            "rows": self.rows,
            "options": self.options,
            "note": self.note,
        }


# -- grouping helpers ---------------------------------------------------------------------


def group_index(*keys) -> tuple[np.ndarray, np.ndarray]:
    """Distinct combinations of integer key columns (shape (k, G)) and each row's group."""
    stacked = np.stack([np.asarray(k, np.int64) for k in keys])
    if stacked.shape[1] == 0:
        return stacked, np.zeros(0, np.intp)
    uniq, inverse = np.unique(stacked, axis=1, return_inverse=True)
    return uniq, inverse.ravel()


def align(wanted, available) -> np.ndarray:
    """Position of each ``wanted`` id in the sorted array ``available``; -1 where absent."""
    wanted = np.asarray(wanted)
    if len(available) == 0:
        return np.full(wanted.shape, -1)
    at = np.clip(np.searchsorted(available, wanted), 0, len(available) - 1)
    return np.where(available[at] == wanted, at, -1)


def tie_merged(verdicts) -> np.ndarray:
    v = np.asarray(verdicts)
    return np.where(v == BOTH_BAD, TIE, v)


@dataclass(frozen=True, eq=False)
class OrderPairs:
    """One judge's verdicts on each (match, repeat) in both orders, in slot terms."""

    match: np.ndarray
    order1: np.ndarray  # slot 0 (answer A) shown first; MISSING if not judged so
    order2: np.ndarray  # slot 1 (answer B) shown first
    weight: np.ndarray


def order_pairs(rows: queries.Verdicts) -> OrderPairs:
    """Pivot one judge's rows to (match, repeat) x presentation order."""
    (match, _), g = group_index(rows.match, rows.repeat)
    n = match.size
    order1 = np.full(n, MISSING, np.int64)
    order2 = np.full(n, MISSING, np.int64)
    slot = rows.slot_verdict
    order1[g[~rows.b_first]] = slot[~rows.b_first]
    order2[g[rows.b_first]] = slot[rows.b_first]
    weight = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(weight, g, rows.weight)
    return OrderPairs(match, order1, order2, weight)


@dataclass(frozen=True, eq=False)
class MatchVerdicts:
    """One answer-terms verdict per (rater, match), sorted by rater then match."""

    rater: np.ndarray
    match: np.ndarray
    verdict: np.ndarray
    weight: np.ndarray

    def of(self, rater: int) -> MatchVerdicts:
        keep = self.rater == rater
        return MatchVerdicts(
            self.rater[keep], self.match[keep], self.verdict[keep], self.weight[keep]
        )


def match_verdicts(rows: queries.Verdicts) -> MatchVerdicts:
    """Each rater's repeat-0 verdict per match, both orders combined by the PRP rule."""
    rows = rows.take(rows.repeat == 0)
    (rater, match), g = group_index(rows.rater, rows.match)
    n = match.size
    first = np.full(n, MISSING, np.int64)  # answer-terms verdict with A shown first
    second = np.full(n, MISSING, np.int64)  # ... with B shown first
    first[g[~rows.b_first]] = rows.verdict[~rows.b_first]
    second[g[rows.b_first]] = rows.verdict[rows.b_first]
    both = (first != MISSING) & (second != MISSING)
    combined = np.where(
        both, combine_orders(first, swap(second)), np.where(first != MISSING, first, second)
    )
    weight = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(weight, g, rows.weight)
    return MatchVerdicts(rater, match, combined, weight)


@dataclass(frozen=True, eq=False)
class HumanConsensus:
    """Per match with human votes: weighted majority verdict and the share A won."""

    match: np.ndarray  # sorted
    majority: np.ndarray
    score_a: np.ndarray
    votes: np.ndarray

    def at(self, matches) -> tuple[np.ndarray, np.ndarray]:
        """Majority verdict and score of A for each match (MISSING / NaN without votes)."""
        i = align(matches, self.match)
        has = i >= 0
        if not len(self.match):
            return np.full(i.shape, MISSING, np.int64), np.full(i.shape, np.nan)
        j = np.maximum(i, 0)
        return np.where(has, self.majority[j], MISSING), np.where(has, self.score_a[j], np.nan)


def human_consensus(rows: queries.Verdicts, annotators: bool = False) -> HumanConsensus:
    """Weighted majority and A's share of the crowd's votes on each match, or with
    ``annotators`` of the annotators' labels (never both at once).

    With ``n_c`` the votes for verdict ``c`` (A, B, tie; both-bad as tie; weighted):
    majority = the ``c`` with ``2 n_c > Σ n`` (MISSING if none), ``score_A = (n_A +
    n_tie / 2) / Σ n``. With unit weights the majority is
    :func:`judges.audit_metrics.human_majority` of the votes.
    """
    rows = rows.take(
        (rows.voter >= 0) & (rows.annotation == annotators) & (rows.verdict != INVALID)
    )
    match, g = np.unique(rows.match, return_inverse=True)
    table = np.zeros((match.size, 3))
    np.add.at(table, (g, tie_merged(rows.verdict)), rows.weight)
    total = table.sum(axis=1)
    top = table.argmax(axis=1) if match.size else np.zeros(0, np.intp)
    wins = 2 * table[np.arange(match.size), top] > total
    majority = np.where(wins, top, MISSING)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (table[:, A] + 0.5 * table[:, TIE]) / total
    return HumanConsensus(match, majority.astype(np.int64), score, total)


def nan_estimate(method: str = "wilson") -> Estimate:
    return Estimate(np.nan, np.nan, np.nan, 0, method)


# -- shared loading -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AuditData:
    verdicts: queries.Verdicts  # untagged
    repeats: queries.Verdicts  # judgments of repeat runs (tag "repeat"), for repeat stability
    judges: dict[int, queries.JudgeInfo]
    owners: dict[int, tuple[str, str]]
    scores: queries.Scores
    humans: HumanConsensus  # the crowd's votes
    annotators: HumanConsensus  # the annotators' labels (annotation campaigns)


REPEAT_TAGS = ("repeat", "repeats")


def load_audit_data(prompt_set: str, category: str = "", judge_id: int | None = None) -> AuditData:
    """Untagged verdicts, names, single-answer scores, the crowd's consensus and the
    annotators' (5 queries)."""
    everything = queries.load_verdicts(prompt_set, category, judge_id=judge_id)
    v = everything.take(everything.tag == "")
    judges = queries.judge_info(np.unique(v.judge[v.judge >= 0]))
    owners = queries.contestant_info(np.unique(np.concatenate([v.contestant_a, v.contestant_b])))
    return AuditData(
        v,
        everything.take(np.isin(everything.tag, REPEAT_TAGS)),
        judges,
        owners,
        queries.load_scores(prompt_set, category),
        human_consensus(v),
        human_consensus(v, annotators=True),
    )


def cached(name: str, prompt_set: str, params: tuple, compute: Callable[[], dict]) -> dict:
    """``compute()``, kept for :data:`CACHE_SECONDS` or until the set's judgments change."""
    parts = [prompt_set, queries.fingerprint(prompt_set), str(n_boot()), *map(str, params)]
    # Hashed: categories may hold spaces, which memcached-style keys may not.
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    key = f"audit:{name}:{digest}"
    result = cache.get(key)
    if result is None:
        result = compute()
        cache.set(key, result, CACHE_SECONDS)
    return result


def drawable(chart: Chart) -> Chart:
    """The chart without rows that have no estimate (NaN: no eligible items)."""
    if chart.kind == "estimates":
        chart.rows = [r for r in chart.rows if r["value"] is not None]
    return chart


def p_text(p) -> str:
    return "–" if p is None or not np.isfinite(p) else f"{p:.2g}"
