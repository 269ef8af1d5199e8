"""Stored judgments as numpy columns: the database side of the judge audit.

Every loader here is one aggregate or ``values_list`` query (never one ORM object per
judgment, never a query per judge or per match); the pure metrics of
:mod:`judges.audit_metrics` then run on the arrays. Verdicts use the codes of
:mod:`judges.audit_metrics.verdicts` (the winner codes of :mod:`arena.vocabulary`, plus
INVALID and MISSING):

- ``verdict`` is in **answer terms**: ``A`` means the match's slot 0 won, whatever order
  the judge saw (this is how ``Judgment.winner`` is stored);
- ``b_first`` is True where slot 1 was shown first (``arena.vocabulary.SWAPPED``), so the
  **slot-terms** verdict (which *position* won) is ``to_slot_terms(verdict, b_first)``;
- a reply that could not be parsed is ``INVALID``; a call that failed outright is no
  verdict at all and is not loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Max,
    Q,
    QuerySet,
    When,
)

from arena.models import Contestant, Judge, Judgment, Match, PromptSet, Voter
from arena.vocabulary import SWAPPED, WINNER_CODE, slot_zero_first_array, winner_codes
from judges.audit_metrics import INVALID, MISSING, to_slot_terms


@dataclass(frozen=True, eq=False)
class Verdicts:
    """Pairwise judgments of a prompt set, one row per stored judgment (columns).

    Attributes
    ----------
    match, prompt : ndarray of int64
        Match id; prompt id (-1 when the match has no prompt).
    category : ndarray of str
    gold : ndarray of int64
        The match's gold verdict (A, B or TIE; MISSING when it has none).
    tag : ndarray of str
        ``EvaluationRun.tag`` of the match's run ("" for untagged runs and no run).
    judge, voter : ndarray of int64
        Exactly one of them is >= 0 per row (-1 for the other).
    annotation : ndarray of bool
        The row is an annotator's label: a person's verdict on a run's match (an
        annotation campaign's answer, ``judges.campaigns``), which no public board counts.
        A person's other verdicts (``voter >= 0`` and not ``annotation``) are crowd votes.
    b_first : ndarray of bool
        Slot 1 was shown first.
    repeat, weight : ndarray of int64
    verdict : ndarray of int64
        Answer-terms verdict code (INVALID for a parse failure).
    contestant_a, contestant_b : ndarray of int64
        Contestant ids in slots 0 and 1.
    len_a, len_b : ndarray of float64
        Token lengths of the two answers (NaN where the answer is not stored).
    seconds : ndarray of float64
        Time to vote, ``voted_at - shown_at`` (NaN where unknown).
    p_a, p_b, p_tie : ndarray of float64
        The judge's verdict probabilities from logprobs, answer terms (``a`` = slot 0;
        ``Judgment.probabilities["winner"]``), NaN where the reply had none.
    perplexity : ndarray of float64
        The reply's perplexity where it had token logprobs but no verdict probabilities.
    """

    match: np.ndarray
    prompt: np.ndarray
    category: np.ndarray
    gold: np.ndarray
    tag: np.ndarray
    judge: np.ndarray
    voter: np.ndarray
    annotation: np.ndarray
    b_first: np.ndarray
    repeat: np.ndarray
    weight: np.ndarray
    verdict: np.ndarray
    contestant_a: np.ndarray
    contestant_b: np.ndarray
    len_a: np.ndarray
    len_b: np.ndarray
    seconds: np.ndarray
    p_a: np.ndarray
    p_b: np.ndarray
    p_tie: np.ndarray
    perplexity: np.ndarray

    def __len__(self) -> int:
        return len(self.match)

    def take(self, rows) -> Verdicts:
        """The rows selected by a boolean mask or an index array."""
        return Verdicts(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    @classmethod
    def concat(cls, *parts: Verdicts) -> Verdicts:
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )

    @property
    def slot_verdict(self) -> np.ndarray:
        """Verdicts in slot terms: FIRST where the answer shown first won."""
        return to_slot_terms(self.verdict, self.b_first)

    @property
    def rater(self) -> np.ndarray:
        """One id per rater: the judge id, or minus the voter id for a person."""
        return np.where(self.judge >= 0, self.judge, -self.voter)

    @classmethod
    def empty(cls) -> Verdicts:
        i = np.zeros(0, np.int64)
        f = np.zeros(0, np.float64)
        s = np.zeros(0, dtype="<U1")
        b = np.zeros(0, bool)
        return cls(i, i, s, i, s, i, i, b, b, i, i, i, i, i, f, f, f, f, f, f, f)


def _codes(values, table: dict, default: int) -> np.ndarray:
    """Map a column of labels to integer codes, ``default`` for a label not in ``table``
    (vectorised over the distinct labels)."""
    labels, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    lookup = np.array([table.get(label, default) for label in labels], dtype=np.int64)
    return lookup[inverse.ravel()] if len(labels) else np.zeros(0, np.int64)


def _ints(values) -> np.ndarray:
    """A column of ints that may hold None, with None as -1."""
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-1).astype(np.int64)


def pairwise_judgments(prompt_set: str, category: str = "") -> QuerySet[Judgment]:
    """Pairwise judgments of two-answer matches that produced a verdict or a parse failure:
    judges' verdicts, crowd votes and annotators' labels (people's verdicts on a run's
    matches), told apart by :func:`load_verdicts` (``who``, ``Verdicts.annotation``)."""
    qs = Judgment.objects.filter(
        match__prompt_set__slug=prompt_set,
        match__k=2,
        kind=Judgment.Kind.PAIRWISE,
        status__in=[Judgment.Status.OK, Judgment.Status.PARSE_FAILED],
    ).exclude(match__origin="side_by_side")  # named votes are on no board
    return qs.filter(match__category=category) if category else qs


_COLUMNS = (
    "match_id",
    "match__prompt_id",
    "match__category",
    "match__gold_winner",
    "match__run__tag",
    "match__origin",
    "judge_id",
    "voter_id",
    "presentation",
    "repeat",
    "weight",
    "status",
    "winner",
    "s0__contestant_id",
    "s1__contestant_id",
    "s0__output__token_length",
    "s1__output__token_length",
    "time_to_vote",
    "probabilities__winner__a",
    "probabilities__winner__b",
    "probabilities__winner__tie",
    "probabilities__perplexity",
)


def load_verdicts(
    prompt_set: str, category: str = "", who: str = "all", judge_id: int | None = None
) -> Verdicts:
    """Every pairwise verdict of a prompt set (optionally one category) as columns.

    Parameters
    ----------
    who : {"all", "judges", "humans", "annotators"}
        ``humans``: the crowd's votes (people's verdicts the public boards count);
        ``annotators``: annotators' labels (people's verdicts on a run's matches, on no
        public board); ``all``: everything, the labels marked (``Verdicts.annotation``).
    judge_id : int, optional
        Only this judge's verdicts (and, with ``who="all"``, every person's).
    """
    qs = pairwise_judgments(prompt_set, category)
    if who == "judges":
        qs = qs.filter(judge__isnull=False)
    elif who == "humans":
        qs = qs.filter(voter__isnull=False).exclude(match__origin=Match.Origin.RUN)
    elif who == "annotators":
        qs = qs.filter(voter__isnull=False, match__origin=Match.Origin.RUN)
    if judge_id is not None:
        qs = qs.filter(Q(judge_id=judge_id) | Q(voter__isnull=False))
    rows = list(
        qs.with_slots()
        .annotate(time_to_vote=ExpressionWrapper(F("voted_at") - F("shown_at"), DurationField()))
        .values_list(*_COLUMNS)
        .order_by()
    )
    if not rows:
        return Verdicts.empty()
    cols = dict(zip(_COLUMNS, zip(*rows, strict=True), strict=True))
    parsed = np.asarray(cols["status"], dtype=object) == Judgment.Status.OK
    verdict = np.full(len(rows), INVALID, np.int64)
    verdict[parsed] = winner_codes(np.asarray(cols["winner"], dtype=object)[parsed])
    seconds = np.asarray(cols["time_to_vote"], dtype="timedelta64[us]") / np.timedelta64(1, "s")
    voter = _ints(cols["voter_id"])
    return Verdicts(
        match=np.asarray(cols["match_id"], np.int64),
        prompt=_ints(cols["match__prompt_id"]),
        category=np.asarray(cols["match__category"], dtype=str),
        gold=_codes(cols["match__gold_winner"], WINNER_CODE, MISSING),
        tag=np.asarray([t or "" for t in cols["match__run__tag"]], dtype=str),
        judge=_ints(cols["judge_id"]),
        voter=voter,
        annotation=(voter >= 0) & (np.asarray(cols["match__origin"]) == Match.Origin.RUN),
        b_first=~slot_zero_first_array(cols["presentation"]),
        repeat=np.asarray(cols["repeat"], np.int64),
        weight=np.asarray(cols["weight"], np.int64),
        verdict=verdict,
        contestant_a=_ints(cols["s0__contestant_id"]),
        contestant_b=_ints(cols["s1__contestant_id"]),
        len_a=np.asarray(cols["s0__output__token_length"], dtype=np.float64),
        len_b=np.asarray(cols["s1__output__token_length"], dtype=np.float64),
        seconds=seconds.astype(np.float64),
        p_a=_floats(cols["probabilities__winner__a"]),
        p_b=_floats(cols["probabilities__winner__b"]),
        p_tie=_floats(cols["probabilities__winner__tie"]),
        perplexity=_floats(cols["probabilities__perplexity"]),
    )


def _floats(values) -> np.ndarray:
    """A column of numbers that may hold None (or anything else), with NaN for those."""
    return np.asarray(
        [float(v) if isinstance(v, int | float) else np.nan for v in values], np.float64
    )


@dataclass(frozen=True, eq=False)
class Scores:
    """Mean single-answer score per (judge, prompt, graded contestant): the ratings as
    written (``score``) and TrustJudge's distribution-sensitive ones (``trust``, NaN where
    the judgments had no rating probabilities); ``model`` is the judge's model name."""

    judge: np.ndarray
    prompt: np.ndarray
    contestant: np.ndarray
    score: np.ndarray
    trust: np.ndarray
    model: np.ndarray

    def scorer(self, judge: JudgeInfo) -> int | None:
        """Whose scores go with a judge's pairwise verdicts: its own, else those of the
        single-score judge of the same model that graded the most answers (TrustJudge
        asks one model both ways; one judge, so that one scale)."""
        if np.any(self.judge == judge.id):
            return judge.id
        if not judge.model:
            return None
        same = self.judge[self.model == judge.model]
        if same.size == 0:
            return None
        ids, counts = np.unique(same, return_counts=True)
        return int(ids[np.argmax(counts)])

    def lookup(self, judge: int, prompt, contestant, trust: bool = False) -> np.ndarray:
        """The judge's score of each (prompt, contestant) pair; NaN where it gave none
        (``trust``: the distribution-sensitive score)."""
        mine = self.judge == judge
        if not mine.any():
            return np.full(np.shape(prompt), np.nan)
        keys = self.prompt[mine] * (1 << 32) + self.contestant[mine]
        order = np.argsort(keys)
        keys, values = keys[order], (self.trust if trust else self.score)[mine][order]
        wanted = np.asarray(prompt, np.int64) * (1 << 32) + np.asarray(contestant, np.int64)
        at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
        return np.where(keys[at] == wanted, values[at], np.nan)


def load_scores(prompt_set: str, category: str = "") -> Scores:
    """Single-answer grades (``Judgment.score`` of the slot shown first) averaged per judge,
    prompt, answer; and the distribution-sensitive scores (``probabilities["score"]``)
    averaged over the judgments that have one. One query."""
    qs = Judgment.objects.filter(
        match__prompt_set__slug=prompt_set,
        kind=Judgment.Kind.SCORE,
        status=Judgment.Status.OK,
        judge__isnull=False,
        match__prompt__isnull=False,
    )
    if category:
        qs = qs.filter(match__category=category)
    graded = Case(  # the slot shown first is the one graded
        When(presentation=SWAPPED, then=F("s1__contestant_id")), default=F("s0__contestant_id")
    )
    rows = list(
        qs.with_slots()
        .annotate(graded=graded)
        .values_list(
            "judge_id",
            "match__prompt_id",
            "graded",
            "score",
            "weight",
            "probabilities__score",
            "judge__model",
        )
        .order_by()
    )
    if not rows:
        z = np.zeros(0, np.int64)
        return Scores(z, z, z, np.zeros(0), np.zeros(0), np.zeros(0, dtype=str))
    judge, prompt, contestant, score, weight, trust, model = zip(*rows, strict=True)
    (judge, prompt, contestant), g = _groups(judge, prompt, contestant)
    w = np.asarray(weight, np.float64)
    n = judge.size
    score = np.bincount(g, w * np.asarray(score, np.float64), n) / np.bincount(g, w, n)
    t = _floats(trust)
    has = ~np.isnan(t)
    t_sum = np.bincount(g[has], (w * t)[has], n)
    t_n = np.bincount(g[has], w[has], n)
    with np.errstate(invalid="ignore", divide="ignore"):
        trust = np.where(t_n > 0, t_sum / t_n, np.nan)
    names = np.empty(n, dtype=object)
    names[g] = np.asarray(model, dtype=object)
    return Scores(judge, prompt, contestant, score, trust, names.astype(str))


def _groups(*columns) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct rows of integer columns, and each row's group."""
    stacked = np.stack([np.asarray(c, np.int64) for c in columns])
    uniq, inverse = np.unique(stacked, axis=1, return_inverse=True)
    return tuple(uniq), inverse.ravel()


# -- names --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeInfo:
    id: int
    name: str
    version: str
    model: str
    family: str

    @property
    def label(self) -> str:
        return f"{self.name} [{self.version[:7]}]"


def judge_info(ids) -> dict[int, JudgeInfo]:
    rows = Judge.objects.filter(id__in=[int(i) for i in ids]).values_list(
        "id", "name", "version", "model", "family"
    )
    return {r[0]: JudgeInfo(*r) for r in rows}


def contestant_info(ids) -> dict[int, tuple[str, str]]:
    """Contestant id -> (name, family)."""
    rows = Contestant.objects.filter(id__in=[int(i) for i in ids]).values_list(
        "id", "name", "family"
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def voter_info(ids) -> dict[int, tuple[str, bool]]:
    """Voter id -> (label, flagged)."""
    rows = Voter.objects.filter(id__in=[int(i) for i in ids]).values_list("id", "label", "flagged")
    return {r[0]: (r[1], r[2]) for r in rows}


def lookup(mapping: dict, ids, pick=lambda v: v, default="") -> np.ndarray:
    """Vectorised ``mapping[id]`` over an id column (one dict access per distinct id)."""
    uniq, inverse = np.unique(np.asarray(ids), return_inverse=True)
    values = [pick(mapping[i]) if i in mapping else default for i in uniq.tolist()]
    return np.asarray(values, dtype=object)[inverse.ravel()] if len(uniq) else np.zeros(0, object)


# -- filters and cache keys ---------------------------------------------------------------


def prompt_sets_with(who: str = "judges", judge: int | None = None) -> list[PromptSet]:
    """Prompt sets holding pairwise verdicts of judges, humans, anyone ("any") or one judge."""
    qs = Judgment.objects.filter(kind=Judgment.Kind.PAIRWISE)
    if judge is not None:
        qs = qs.filter(judge_id=judge)
    elif who in ("judges", "humans"):
        qs = qs.filter(**{f"{'judge' if who == 'judges' else 'voter'}__isnull": False})
    ids = qs.values("match__prompt_set_id").distinct()
    return list(PromptSet.objects.filter(id__in=ids).order_by("slug"))


def categories(prompt_set: str) -> list[str]:
    return list(
        Match.objects.filter(prompt_set__slug=prompt_set)
        .exclude(category="")
        .values_list("category", flat=True)
        .distinct()
        .order_by("category")
    )


def fingerprint(prompt_set: str) -> str:
    """Changes whenever a judgment of the set is added or removed, or a voter is (un)flagged."""
    stats = Judgment.objects.filter(match__prompt_set__slug=prompt_set).aggregate(
        n=Count("id"), last=Max("id"), flagged=Count("voter", filter=Q(voter__flagged=True))
    )
    return f"{stats['n']}-{stats['last']}-{stats['flagged']}"
