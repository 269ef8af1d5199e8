"""Every audit metric of one judge, and the table of metrics the overview shows.

:func:`judge_metrics` turns one judge's stored verdicts (:class:`queries.Verdicts`) into
a :class:`JudgeMetrics`: plain results of the pure :mod:`judges.audit_metrics`
functions. The pages (:mod:`judges.audit_reports.judge`) turn it into charts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from judges.audit_metrics import (
    MISSING,
    Estimate,
    FirstSlotTest,
    LengthBias,
    PositionPreference,
    ScorePairwise,
    SelfPreference,
    Transitivity,
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
from judges.audit_metrics.trustjudge import TrustJudgeAudit, trustjudge_audit
from judges.audit_reports import queries
from judges.audit_reports.common import (
    HumanConsensus,
    align,
    estimate_dict,
    group_index,
    match_verdicts,
    n_boot,
    order_pairs,
    tie_merged,
)


@dataclass(frozen=True)
class JudgeMetrics:
    """One judge's audit metrics on one prompt set (and category).

    The length slopes are None for a summary (``detail=False``); self- and
    family-preference are None when the judge has no own model or family, and
    score-vs-pairwise when it graded no answer of its pairs.
    """

    n_judgments: int
    n_matches: int
    consistency: Estimate  # same verdict in both orders
    preference: PositionPreference  # primacy / recency on inconsistent pairs
    first_slot: FirstSlotTest
    first_slot_design: str  # which verdicts the first-slot test could use
    stability: Estimate  # modal verdict share over repeats
    agreement: Estimate  # with the human (crowd's) majority, ties included
    agreement_no_ties: Estimate
    kappa: Estimate  # Cohen's kappa with the human majority
    annotator_agreement: Estimate  # with the annotators' majority (their labels), ties included
    annotator_agreement_no_ties: Estimate
    annotator_kappa: Estimate
    length: LengthBias
    transitivity: Transitivity
    gold: Estimate  # per-match verdict vs gold label
    gold_a_first: Estimate  # each presentation order on its own
    gold_b_first: Estimate
    length_slope: Estimate | None = None
    human_length_slope: Estimate | None = None
    self_preference: SelfPreference | None = None
    family_preference: SelfPreference | None = None
    score_pairwise: ScorePairwise | None = None
    trustjudge: TrustJudgeAudit | None = None  # pairs judged in both orders only

    @property
    def flagged(self) -> bool:
        """Position bias: the first-slot win rate's 95% interval excludes 1/2."""
        return bool(self.first_slot.win_rate.excludes(0.5))


@dataclass(frozen=True, eq=False)
class PerMatch:
    """One row per judged match (a weighted match repeated ``weight`` times): the judge's
    verdict, the crowd's majority and A's share of their votes, the annotators' majority,
    and the match's columns."""

    match: np.ndarray
    verdict: np.ndarray
    majority: np.ndarray
    human_score: np.ndarray
    annotator_majority: np.ndarray
    prompt: np.ndarray
    gold: np.ndarray
    contestant_a: np.ndarray
    contestant_b: np.ndarray
    len_a: np.ndarray
    len_b: np.ndarray


def judge_metrics(
    rows: queries.Verdicts,
    humans: HumanConsensus,
    judge: queries.JudgeInfo,
    owners: dict[int, tuple[str, str]],
    scores: queries.Scores,
    detail: bool = True,
    repeats: queries.Verdicts | None = None,
    annotators: HumanConsensus | None = None,
) -> JudgeMetrics:
    """Every audit metric of one judge on its (untagged) rows.

    ``detail=False`` skips the logistic length fits (the slowest part), for tables.
    ``repeats`` are the judge's verdicts in repeat runs: they count for repeat stability
    (with the untagged re-runs) and for nothing else. ``humans`` is the crowd's consensus
    (every human comparison: length, self-preference), ``annotators`` the annotators'
    (their labels: agreement only).
    """
    per_match = _per_match(rows, humans, annotators)
    stability_rows = rows if repeats is None else queries.Verdicts.concat(rows, repeats)
    return JudgeMetrics(
        n_judgments=int(rows.weight.sum()),
        n_matches=int(np.unique(rows.match).size),
        **_position_metrics(rows),
        stability=repeat_stability(_repeat_matrix(stability_rows), n_boot=n_boot()),
        **_agreement_metrics(per_match),
        **_length_metrics(per_match, detail),
        **_preference_metrics(per_match, judge, owners),
        **_consistency_metrics(rows, per_match, judge, scores),
        **_gold_metrics(rows, per_match),
    )


# Each helper returns some of JudgeMetrics' fields, by name.


def _per_match(
    rows: queries.Verdicts, humans: HumanConsensus, annotators: HumanConsensus | None
) -> PerMatch:
    """The judge's per-match verdicts beside the crowd's and the annotators' consensus and
    the match columns."""
    mv = match_verdicts(rows)
    matches = np.repeat(mv.match, mv.weight)  # a weighted row is that many matches
    uniq, first = np.unique(rows.match, return_index=True)
    src = first[np.maximum(align(matches, uniq), 0)]
    majority, human_score = humans.at(matches)
    labelled = (
        annotators.at(matches)[0] if annotators is not None else np.full(matches.shape, MISSING)
    )
    return PerMatch(
        match=matches,
        verdict=np.repeat(mv.verdict, mv.weight),
        majority=majority,
        human_score=human_score,
        annotator_majority=labelled,
        prompt=rows.prompt[src],
        gold=rows.gold[src],
        contestant_a=rows.contestant_a[src],
        contestant_b=rows.contestant_b[src],
        len_a=rows.len_a[src],
        len_b=rows.len_b[src],
    )


def _position_metrics(rows: queries.Verdicts) -> dict:
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


def first_slot_design(rows: queries.Verdicts) -> tuple[np.ndarray, str]:
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
    designs = (("both orders", both.any()), ("randomised order", randomised))
    return testable, " and ".join(label for label, present in designs if present)


def _agreement_metrics(m: PerMatch) -> dict:
    """Agreement with the crowd's majority, and apart with the annotators'."""
    out = {}
    for prefix, majority in (("", m.majority), ("annotator_", m.annotator_majority)):
        out[f"{prefix}agreement"] = raw_agreement(m.verdict, majority, ties=True)
        out[f"{prefix}agreement_no_ties"] = raw_agreement(m.verdict, majority, ties=False)
        out[f"{prefix}kappa"] = cohen_kappa(
            tie_merged(m.verdict), tie_merged(majority), n_boot=n_boot()
        )
    return out


def _length_metrics(m: PerMatch, detail: bool) -> dict:
    """Judge vs humans on the same matches (those with a human verdict, if any exist)."""
    same = (m.len_a > 0) & (m.len_b > 0)
    if np.any(m.majority != MISSING):
        same &= m.majority != MISSING
    verdict, majority, la, lb = m.verdict[same], m.majority[same], m.len_a[same], m.len_b[same]
    out = {"length": longer_wins(verdict, majority, la, lb, n_boot=n_boot())}
    if detail:
        out["length_slope"] = length_coefficient(verdict, la, lb, n_boot=n_boot()).slope
        out["human_length_slope"] = length_coefficient(majority, la, lb, n_boot=n_boot()).slope
    return out


def _preference_metrics(m: PerMatch, judge: queries.JudgeInfo, owners: dict) -> dict:
    """Self-preference (the judge's model by name) and family preference (by family)."""
    out = {}
    judge_score = verdict_score(m.verdict)
    for key, owner, part in (
        ("self_preference", judge.model or judge.name, 0),  # owners: (name, family)
        ("family_preference", judge.family, 1),
    ):
        if owner:
            side_a = queries.lookup(owners, m.contestant_a, pick=lambda o, p=part: o[p])
            side_b = queries.lookup(owners, m.contestant_b, pick=lambda o, p=part: o[p])
            out[key] = self_preference(
                judge_score, m.human_score, side_a, side_b, owner, n_boot=n_boot()
            )
    return out


def _consistency_metrics(
    rows: queries.Verdicts, m: PerMatch, judge: queries.JudgeInfo, scores: queries.Scores
) -> dict:
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
    scorer = scores.scorer(judge)
    if scorer is not None:
        score_a = scores.lookup(scorer, m.prompt, m.contestant_a)
        score_b = scores.lookup(scorer, m.prompt, m.contestant_b)
        if np.any(np.isfinite(score_a) & np.isfinite(score_b)):
            out["score_pairwise"] = score_pairwise_inconsistency(score_a, score_b, m.verdict)
    out["trustjudge"] = _trustjudge(rows, scores, scorer)
    return out


def _trustjudge(
    rows: queries.Verdicts, scores: queries.Scores, scorer: int | None
) -> TrustJudgeAudit | None:
    """TrustJudge's side by side on the (match, repeat)s judged in both orders: the two
    verdicts, their probabilities and perplexities, and the judge's (or its model's
    single-score judge's) scores of both answers; None without such pairs."""
    rows = rows.take(rows.prompt >= 0)
    (_, _), g = group_index(rows.match, rows.repeat)
    n = int(g.max()) + 1 if g.size else 0
    a_first = np.full(n, -1)
    b_first = np.full(n, -1)
    a_first[g[~rows.b_first]] = np.flatnonzero(~rows.b_first)
    b_first[g[rows.b_first]] = np.flatnonzero(rows.b_first)
    both = (a_first >= 0) & (b_first >= 0)
    if not both.any():
        return None
    one, two = a_first[both], b_first[both]
    probs = np.stack([rows.p_a, rows.p_b, rows.p_tie], axis=1)
    prompt, ca, cb = rows.prompt[one], rows.contestant_a[one], rows.contestant_b[one]
    graded = {}
    if scorer is not None:
        for key, trust in (("scores", False), ("trust_scores", True)):
            graded[key] = (
                scores.lookup(scorer, prompt, ca, trust=trust),
                scores.lookup(scorer, prompt, cb, trust=trust),
            )
    return trustjudge_audit(
        prompt,
        ca,
        cb,
        rows.verdict[one],
        rows.verdict[two],
        probs[one],
        probs[two],
        rows.perplexity[one],
        rows.perplexity[two],
        n_boot=n_boot(),
        **graded,
    )


def _gold_metrics(rows: queries.Verdicts, m: PerMatch) -> dict:
    """Accuracy of the per-match verdict, and of each presentation order on its own."""
    gold = np.repeat(rows.gold, rows.weight)
    verdict = np.repeat(rows.verdict, rows.weight)
    b_first = np.repeat(rows.b_first, rows.weight)
    return {
        "gold": accuracy(m.verdict, m.gold),
        "gold_a_first": accuracy(verdict[~b_first], gold[~b_first]),
        "gold_b_first": accuracy(verdict[b_first], gold[b_first]),
    }


def _repeat_matrix(rows: queries.Verdicts) -> np.ndarray:
    """(match, presentation) x repeat verdicts (slot terms), MISSING-padded."""
    (_, _), g = group_index(rows.match, rows.b_first)
    if g.size == 0:
        return np.zeros((0, 2), np.int64)
    width = max(2, int(rows.repeat.max()) + 1)
    out = np.full((int(g.max()) + 1, width), MISSING, np.int64)
    out[g, rows.repeat] = rows.slot_verdict
    return out


# -- the overview table -------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A column of the overview table: its key (also the CSV column prefix), heading, the
    Estimate it shows (None when the judge has none) and its help text."""

    key: str
    title: str
    get: Callable[[JudgeMetrics], Estimate | None]
    help: str


def _part(name: str, attr: str) -> Callable[[JudgeMetrics], Estimate | None]:
    """Read ``metrics.<name>.<attr>``, None when the optional result ``name`` is absent."""

    def get(m: JudgeMetrics) -> Estimate | None:
        result = getattr(m, name)
        return None if result is None else getattr(result, attr)

    return get


METRICS: list[Metric] = [
    Metric(
        "consistency",
        "Position consistency",
        lambda m: m.consistency,
        "Share of pairs judged in both orders that get the same verdict in both (Wilson 95% CI).",
    ),
    Metric(
        "first_slot",
        "First-slot win rate",
        _part("first_slot", "win_rate"),
        "P(the answer shown first wins | decisive) on comparisons judged in both orders or in "
        "random order (a fixed order cannot separate position from quality); Clopper-Pearson "
        "CI, flagged when it excludes 0.5.",
    ),
    Metric(
        "stability",
        "Repeat stability",
        lambda m: m.stability,
        "Mean share of the modal verdict over identical re-runs (bootstrap CI).",
    ),
    Metric(
        "agreement",
        "Agreement with humans",
        lambda m: m.agreement,
        "Share of matches where the judge's verdict equals the majority of the crowd's votes "
        "(people's votes the public boards count), ties included.",
    ),
    Metric(
        "agreement_no_ties",
        "… without ties",
        lambda m: m.agreement_no_ties,
        "The same, over matches where neither the judge nor the majority says tie.",
    ),
    Metric(
        "kappa",
        "Cohen's κ vs humans",
        lambda m: m.kappa,
        "Chance-corrected agreement with the human majority (bootstrap CI).",
    ),
    Metric(
        "annotator_agreement",
        "Agreement with annotators",
        lambda m: m.annotator_agreement,
        "Share of matches where the judge's verdict equals the majority of the annotators' "
        "labels (annotation campaigns on run matches), ties included; never mixed with the "
        "crowd's votes above.",
    ),
    Metric(
        "annotator_kappa",
        "Cohen's κ vs annotators",
        lambda m: m.annotator_kappa,
        "Chance-corrected agreement with the annotators' majority (bootstrap CI).",
    ),
    Metric(
        "length",
        "Length bias",
        _part("length", "difference"),
        "P(longer answer wins) for the judge minus for humans on the same matches.",
    ),
    Metric(
        "self",
        "Self-preference",
        _part("self_preference", "difference"),
        "Judge's score of its own model's answers minus the humans' on the same pairs.",
    ),
    Metric(
        "family",
        "Family preference",
        _part("family_preference", "difference"),
        "Judge's score of its family's answers minus the humans' on the same pairs.",
    ),
    Metric(
        "cycles",
        "3-cycles",
        _part("transitivity", "cycle_share"),
        "Share of strictly decided answer triples (same prompt) that form a cycle.",
    ),
    Metric(
        "score_conflict",
        "Score vs pairwise",
        _part("score_pairwise", "conflict"),
        "TrustJudge: share of pairs whose single-answer scores disagree with the pairwise verdict.",
    ),
    Metric(
        "tj_score",
        "Score vs pairwise, TrustJudge",
        lambda m: m.trustjudge.score_trust if m.trustjudge else None,
        "The same with TrustJudge on both sides: its distribution-sensitive scores (the "
        "rating's expectation over its token probabilities) against its likelihood-aware "
        "pair relation, pairs judged in both orders.",
    ),
    Metric(
        "tj_transitivity_discrete",
        "Non-transitive triples",
        lambda m: m.trustjudge.transitivity_discrete.share if m.trustjudge else None,
        "TrustJudge's pairwise transitivity inconsistency: share of answer triples whose "
        "both-order relations (disagreement = tie) fit no order (cycles, A = B = C ≠ A).",
    ),
    Metric(
        "tj_transitivity",
        "Non-transitive, TrustJudge",
        lambda m: m.trustjudge.transitivity_trust.share if m.trustjudge else None,
        "The same with TrustJudge's likelihood-aware relations (both orders' verdict "
        "probabilities summed, else the lower-perplexity order's verdict).",
    ),
    Metric(
        "gold",
        "Gold accuracy",
        lambda m: m.gold,
        "Share of gold-labelled matches where the (both-order) verdict is right.",
    ),
]


def metric_headings() -> list[dict]:
    """The overview's columns for the page: key, title and help of each metric."""
    return [{"key": m.key, "title": m.title, "help": m.help} for m in METRICS]


def metric_cells(metrics: JudgeMetrics) -> dict[str, dict | None]:
    """Each overview metric as a JSON-ready estimate; None where the judge has no value."""
    cells = {}
    for metric in METRICS:
        est = metric.get(metrics)
        cells[metric.key] = (
            None if est is None or est.n == 0 or np.isnan(est.value) else estimate_dict(est)
        )
    return cells
