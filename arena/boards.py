"""Leaderboard scopes and the database aggregation that feeds the rating engine.

A scope says which judgments a leaderboard is fitted on: one prompt set, whose verdicts
(human votes, all LLM judges, one judge, everything), optionally one category. Human
boards read the running PairOutcomeCount cells (bumped with every vote, rebuilt from raw
judgments after imports): a refit reads O(models^2) cells, never one row per vote.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, F, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Length

from arena.errors import BAD_REQUEST, NOT_FOUND, Refusal
from arena.importers.records import JudgmentRecord
from arena.models import (
    Contestant,
    EvaluationRun,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    PairOutcomeCount,
    Prompt,
    PromptSet,
    Rubric,
    Voter,
)
from arena.ratings.counts import BOTH_BAD, FIRST, SECOND, TIE, PairwiseCounts, counts_from_arrays
from arena.ratings.jury import jury_verdicts
from arena.ratings.plackett_luce import Rankings
from arena.ratings.style import StyleVotes
from arena.rubrics import NAME as CRITERION_NAME
from arena.vocabulary import (
    A_CODE,
    B_CODE,
    TIE_CODE,
    WINNERS,
    slot_zero_first,
    slot_zero_first_array,
    winner_codes,
)

# Slot-relative winner code -> outcome relative to the order shown.
_WHEN_A_FIRST = np.array([FIRST, SECOND, TIE, BOTH_BAD])
_WHEN_B_FIRST = np.array([SECOND, FIRST, TIE, BOTH_BAD])
HUMAN_SOURCE = "human"  # PairOutcomeCount.source of human votes (the public, robust board)
# PairOutcomeCount.source of the votes of flagged voters (arena.trust): off the public
# board, on the raw one. A voter's votes move between the two with move_voter_counts.
FLAGGED_SOURCE = "human:flagged"
# PairOutcomeCount.source of side-by-side votes (names shown, Match.Origin.SIDE_BY_SIDE):
# no board reads it; the model pages never read it either.
NAMED_SOURCE = "human:named"


def human_source(counted_flagged: bool) -> str:
    """The running-count source of a human vote: where its voter's votes are counted."""
    return FLAGGED_SOURCE if counted_flagged else HUMAN_SOURCE


def judge_source(judge_id: int) -> str:
    """PairOutcomeCount.source of one LLM judge's verdicts."""
    return f"judge:{judge_id}"


_BY = re.compile(r"(humans|judges|all|(judge|run):([0-9]+))")
_STYLE = {"": False, "0": False, "false": False, "no": False, "off": False}
_STYLE |= {"1": True, "true": True, "yes": True, "on": True}
_MAX_ID_DIGITS = 18  # a longer id is past every database's integer range: no such row
# Control characters (C0, DEL, C1) and lone surrogates: never part of a scope.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# A scope key is "set=<slug>|by=<by>|cat=<category>|style=<0|1>". Each value's "%", "|"
# and "=" are percent-escaped, so no value can add or replace a field
# ("a|by=judges" is "a%7Cby%3Djudges"); a plain value is written as it is, so the keys
# of stored snapshots and board states keep their meaning.
_ESCAPED = str.maketrans({"%": "%25", "|": "%7C", "=": "%3D"})
_ESCAPE = re.compile("%(25|7C|3D)", re.IGNORECASE)


def _escape(value: str) -> str:
    return value.translate(_ESCAPED)


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda found: chr(int(found.group(1), 16)), value)


def _parse_key(key: str, strict: bool = True) -> dict[str, str]:
    """A scope key's fields, unescaped; ValueError if it is not one we write.

    Not ``strict``: the first of a repeated field counts and unknown fields are skipped
    (keys stored before values were escaped, e.g. a category "a|by=judges")."""
    parts: dict[str, str] = {}
    for part in key.split("|"):
        name, sep, value = part.partition("=")
        known = sep and name in ("set", "by", "cat", "style", "crit")
        if strict and (not known or name in parts):
            raise ValueError(key)
        if known and name not in parts:
            parts[name] = _unescape(value)
    if "set" not in parts:
        raise ValueError(key)
    return parts


def _bad_scope(field: str, message: str, status: int = BAD_REQUEST) -> Refusal:
    """A malformed leaderboard scope (400), or one naming nothing that exists (404)."""
    return Refusal(message, field=field, status=status)


@dataclass(frozen=True)
class BoardScope:
    prompt_set: str
    by: str = "humans"  # humans | judges | all | judge:<id> | run:<id>
    category: str = ""
    style_control: bool = False
    # One rubric criterion or ballot aspect (issue 15): the board of its verdicts
    # (``Judgment.criteria``); empty: the overall verdicts (a rubric's weighted total).
    criterion: str = ""

    @property
    def key(self) -> str:
        crit = f"|crit={_escape(self.criterion)}" if self.criterion else ""
        return (
            f"set={_escape(self.prompt_set)}|by={_escape(self.by)}"
            f"|cat={_escape(self.category)}|style={int(self.style_control)}{crit}"
        )

    @classmethod
    def from_key(cls, key: str) -> BoardScope:
        """Parse a key and check its scope like :meth:`validated` (400 if malformed)."""
        try:
            parts = _parse_key(key)
        except ValueError:
            raise _bad_scope("scope", f"malformed scope key {key!r}") from None
        return cls.validated(
            parts["set"],
            parts.get("by", "humans"),
            parts.get("cat", ""),
            parts.get("style", "0"),
            parts.get("crit", ""),
        )

    @classmethod
    def from_key_unchecked(cls, key: str) -> BoardScope:
        """Parse a key we wrote ourselves, without checking that its scope exists."""
        parts = _parse_key(key, strict=False)
        return cls(
            parts["set"],
            parts.get("by", "humans"),
            parts.get("cat", ""),
            parts.get("style") == "1",
            parts.get("crit", ""),
        )

    @classmethod
    def validated(
        cls,
        prompt_set: str,
        by: str = "humans",
        category: str = "",
        style_control="0",
        criterion: str = "",
    ) -> BoardScope:
        """The scope of a request's values, checked against what exists; reads only.

        Malformed values are refused with 400 (control characters, an unknown ``by``
        form, a ``style`` other than 0/1); values naming nothing that exists with 404:
        the prompt set, the judge of ``judge:<id>``, the run of ``run:<id>`` (a run of
        this prompt set), the category (one of the set's matches or prompts have), the
        criterion (``crit``: a criterion of one of the set's rubrics, or a ballot aspect of
        ``ARENA_BALLOT_ASPECTS``; not with style control). An id is written canonically
        (``judge:007`` is ``judge:7``): one key per board.
        """
        style = str(style_control)
        values = {"set": prompt_set, "by": by, "category": category, "style": style}
        values["crit"] = criterion
        for field, value in values.items():
            if _CONTROL.search(value or ""):
                raise _bad_scope(field, "control characters are not allowed")
        if not prompt_set:
            raise _bad_scope("set", "required")
        set_id = PromptSet.objects.filter(slug=prompt_set).values_list("id", flat=True).first()
        if set_id is None:
            raise _bad_scope("set", f"no prompt set {prompt_set!r}", NOT_FOUND)
        found = _BY.fullmatch(by or "")
        if found is None:
            raise _bad_scope(
                "by", f"expected humans, judges, all, judge:<id> or run:<id>; got {by!r}"
            )
        if found.group(2):
            by = _checked_source(set_id, prompt_set, found.group(2), found.group(3))
        if category and not _has_category(set_id, category):
            raise _bad_scope(
                "category", f"prompt set {prompt_set!r} has no category {category!r}", NOT_FOUND
            )
        if style.lower() not in _STYLE:
            raise _bad_scope("style", f"expected 0 or 1; got {style_control!r}")
        if criterion:
            _check_criterion(set_id, prompt_set, criterion, _STYLE[style.lower()])
        return cls(prompt_set, by, category, _STYLE[style.lower()], criterion or "")

    @property
    def judge_id(self) -> int | None:
        return int(self.by.split(":", 1)[1]) if self.by.startswith("judge:") else None

    @property
    def run_id(self) -> int | None:
        return int(self.by.split(":", 1)[1]) if self.by.startswith("run:") else None

    @property
    def llm_only(self) -> bool:
        """Boards of LLM verdicts only: their units are whole comparisons (both orders)."""
        return self.by == "judges" or self.judge_id is not None or self.run_id is not None


def _checked_source(set_id: int, slug: str, kind: str, digits: str) -> str:
    """``judge:<id>`` of an existing judge or ``run:<id>`` of a run of the set, canonical."""
    pk = int(digits) if len(digits) <= _MAX_ID_DIGITS else None
    if kind == "judge":
        if pk is None or not Judge.objects.filter(pk=pk).exists():
            raise _bad_scope("by", f"no judge {digits}", NOT_FOUND)
    elif pk is None or not EvaluationRun.objects.filter(pk=pk, prompt_set_id=set_id).exists():
        raise _bad_scope("by", f"no evaluation run {digits} of prompt set {slug!r}", NOT_FOUND)
    return f"{kind}:{pk}"


def _check_criterion(set_id: int, slug: str, criterion: str, style_control: bool) -> None:
    """A criterion board's ``crit``: well formed (400), a rubric criterion of the set or a
    ballot aspect (404), without style control (400: a style fit reads the overall verdicts)."""
    if not CRITERION_NAME.fullmatch(criterion):
        raise _bad_scope(
            "crit", "expected a criterion name: 1-40 lower-case letters, digits, '-' or '_'"
        )
    if style_control:
        raise _bad_scope("style", "a criterion's board has no style control")
    if criterion not in settings.ARENA_BALLOT_ASPECTS and criterion not in (
        Rubric.objects.criterion_names(set_id)
    ):
        raise _bad_scope(
            "crit",
            f"prompt set {slug!r} has no rubric criterion or aspect {criterion!r}",
            NOT_FOUND,
        )


def _has_category(set_id: int, category: str) -> bool:
    """Whether a prompt, a running count or a match of the set has this category (cheapest
    first: prompts are indexed by category, counts are few; a set's matches many)."""
    if len(category) > Match._meta.get_field("category").max_length:
        return False
    return (
        Prompt.objects.filter(prompt_set_id=set_id, category=category).exists()
        or PairOutcomeCount.objects.filter(prompt_set_id=set_id, category=category).exists()
        or Match.objects.filter(prompt_set_id=set_id, category=category).exists()
    )


def _source_filter(scope: BoardScope, raw: bool = False) -> Q:
    """The running-count sources of a scope: flagged voters' votes only on ``raw`` boards."""
    humans = Q(source__in=(HUMAN_SOURCE, FLAGGED_SOURCE)) if raw else Q(source=HUMAN_SOURCE)
    judges = Q(source__startswith="judge:")
    if scope.by == "humans":
        return humans
    if scope.by == "judges":
        return judges
    if scope.judge_id is not None:
        return Q(source=judge_source(scope.judge_id))
    return humans | judges  # all: never the side-by-side votes (NAMED_SOURCE)


def scope_counts(
    scope: BoardScope,
    *,
    exclude_flagged: bool = False,
    raw: bool = False,
    model_ids: list[int] | None = None,
) -> PairwiseCounts:
    """The scope's votes as rating-engine counts (see :func:`scope_counts_and_ids`)."""
    return scope_counts_and_ids(
        scope, exclude_flagged=exclude_flagged, raw=raw, model_ids=model_ids
    )[0]


def scope_counts_and_ids(
    scope: BoardScope,
    *,
    exclude_flagged: bool = False,
    raw: bool = False,
    model_ids: list[int] | None = None,
) -> tuple[PairwiseCounts, list[int]]:
    """The scope's votes as rating-engine counts, and the contestant id of each model index.

    The one aggregation behind every board and the audit's vote-integrity panel. Human
    pairwise votes come from the running PairOutcomeCount cells (every vote its own
    bootstrap unit), or, with ``exclude_flagged``, from one GROUP BY over the judgments of
    unflagged voters (the cells do not know voters); K-wise human rankings add their
    pairwise breakdown, each ranking one unit. LLM-judge and run boards read their
    judgments per match so that both presentation orders of one comparison (and its
    repeats) form one bootstrap unit.

    The public (robust) board leaves out the votes counted as flagged (the
    ``"human:flagged"`` cells, the rankings of voters counted as flagged); ``raw`` keeps
    them. ``exclude_flagged`` reads the voters' flags themselves (the panel's view, equal
    to the public board once the trust pass has moved the counts).

    ``model_ids`` fixes the model index (so that two boards share it; votes of other
    contestants are left out); by default every model in the votes, sorted by name.
    """
    if scope.criterion:
        return counts_from_rows(_criterion_rows(scope, exclude_flagged, raw), model_ids)
    if scope.llm_only:
        rows = concat_rows(_pairwise_rows(scope), _score_pair_rows(scope))
    elif exclude_flagged:
        rows = _grouped_rows(Judgment.objects.in_scope(scope).filter(voter__flagged=False))
    else:
        rows = _table_rows(scope, raw)
    rows = concat_rows(rows, _ranking_rows(scope, exclude_flagged, raw))
    return counts_from_rows(rows, model_ids)


def counts_from_rows(
    rows, model_ids: list[int] | None = None, amount=None
) -> tuple[PairwiseCounts, list[int]]:
    """Row arrays (below) as rating-engine counts, and the contestant id of each model.
    ``amount`` is each row's likelihood weight (1 each by default; soft outcomes: a
    fraction, :func:`scope_soft_counts`)."""
    if rows is None:
        rows = tuple(np.zeros(0, np.int64) for _ in range(6))
    amount = np.ones(len(rows[0])) if amount is None else np.asarray(amount, np.float64)
    unit, a_ids, b_ids, code, a_first, mult = rows
    if model_ids is not None:
        keep = np.isin(a_ids, model_ids) & np.isin(b_ids, model_ids)
        unit, a_ids, b_ids, code, a_first, mult = (x[keep] for x in rows)
        amount = amount[keep]
        _, unit = np.unique(unit, return_inverse=True)
    models, ids, index = _model_index(np.concatenate([a_ids, b_ids]), model_ids)
    a, b = index(a_ids), index(b_ids)
    first, second = np.where(a_first, a, b), np.where(a_first, b, a)
    outcome = np.where(a_first, _WHEN_A_FIRST[code], _WHEN_B_FIRST[code])
    counts = counts_from_arrays(models, unit.ravel(), first, second, outcome, amount, amount, mult)
    return counts, ids


# Row arrays: (unit, slot-0 contestant id, slot-1 contestant id, slot winner code, slot 0
# shown first, unit multiplicity)


def _table_rows(scope: BoardScope, raw: bool = False):
    cells = PairOutcomeCount.objects.filter(
        _source_filter(scope, raw), prompt_set__slug=scope.prompt_set, count__gt=0
    )
    if scope.category:
        cells = cells.filter(category=scope.category)
    rows = list(
        cells.filter(
            contestant_a__kind=Contestant.Kind.MODEL, contestant_b__kind=Contestant.Kind.MODEL
        )
        .values_list("contestant_a_id", "contestant_b_id", "winner", "a_first")
        .annotate(n=Sum("count"))
        .order_by()
    )
    return _cell_rows(rows)


def _grouped_rows(judgments, winner: str = "winner"):
    """Pairwise judgments of models grouped into cells, as :func:`_table_rows` reads them
    (``winner`` names the column of the verdict: a criterion's, :func:`_criterion_rows`)."""
    rows = (
        judgments.with_slots(models_only=True)
        .values_list("s0__contestant_id", "s1__contestant_id", winner, "presentation")
        .annotate(n=Sum("weight"))
        .order_by()
    )
    return _cell_rows([(a, b, w, slot_zero_first(p), n) for a, b, w, p, n in rows])


def _cell_rows(rows):
    """(contestant a, contestant b, winner, a first, votes) cells: one unit per cell, its
    multiplicity the votes (every vote its own bootstrap unit)."""
    if not rows:
        return None
    a_ids, b_ids, winners, a_first, counts = (np.asarray(col) for col in zip(*rows, strict=True))
    return (
        np.arange(len(rows)),
        a_ids.astype(np.int64),
        b_ids.astype(np.int64),
        winner_codes(winners),
        a_first.astype(bool),
        counts.astype(np.int64),
    )


def _pairwise_rows(scope: BoardScope, judgments=None, winner: str = "winner"):
    """LLM verdicts one per row (both orders of a comparison one unit); ``judgments`` and
    ``winner`` as :func:`_criterion_rows` gives them, else the scope's overall verdicts (a
    jury run's board: its jurors' verdicts pooled, :func:`_jury_rows`)."""
    if judgments is None and (jury := _run_jury(scope)):
        return _jury_rows(scope, jury)
    judgments = Judgment.objects.in_scope(scope) if judgments is None else judgments
    rows = list(
        judgments.with_slots(models_only=True)
        .values_list(
            "match_id",
            "judge_id",
            "voter_id",
            "repeat",
            "s0__contestant_id",
            "s1__contestant_id",
            winner,
            "presentation",
            "weight",
        )
        .order_by()
    )
    if not rows:
        return None
    match_ids, judge_ids, voter_ids, repeats, a_ids, b_ids, winners, orders, weights = zip(
        *rows, strict=True
    )
    return (
        _comparison_units(match_ids, judge_ids, voter_ids, repeats),
        np.asarray(a_ids),
        np.asarray(b_ids),
        winner_codes(winners),
        slot_zero_first_array(orders),
        np.asarray(weights, np.int64),
    )


def _score_pair_rows(scope: BoardScope):
    """Single-score judges' verdicts on pairs (TrustJudge's pointwise runs, pointwise rubric
    runs): a match whose two answers a judge graded (slot 0 shown first, and slot 1) in the
    same repeat is a comparison won by the higher score, a tie when equal. The score is the
    distribution-sensitive one (``probabilities["score"]``) when the judgment has it, else
    the grade as stored; on a criterion's board (``scope.criterion``) the grade's level on
    that criterion (``Judgment.criteria``). One bootstrap unit per (match, judge, repeat)."""
    rows = list(
        Judgment.objects.in_scope(scope, kind=Judgment.Kind.SCORE)
        .filter(judge__isnull=False)
        .with_slots(models_only=True)
        .values_list(
            "match_id",
            "judge_id",
            "repeat",
            "s0__contestant_id",
            "s1__contestant_id",
            "presentation",
            "score",
            "criteria" if scope.criterion else "probabilities",
        )
        .order_by()
    )
    graded: dict[tuple, list] = {}
    for match_id, judge_id, repeat, a_id, b_id, shown, score, extra in rows:
        if a_id is None or b_id is None:
            continue
        if scope.criterion:
            value = extra.get(scope.criterion) if isinstance(extra, dict) else None
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue  # a level is a number (a pairwise criterion verdict is not)
        else:
            trust = extra.get("score") if isinstance(extra, dict) else None
            value = trust if trust is not None else score
        value = float(value)
        pair = graded.setdefault((match_id, judge_id, repeat), [a_id, b_id, None, None])
        pair[2 if slot_zero_first(shown) else 3] = value
    done = [(key, p) for key, p in graded.items() if p[2] is not None and p[3] is not None]
    if not done:
        return None
    keys, pairs = zip(*done, strict=True)
    match_ids, judge_ids, repeats = zip(*keys, strict=True)
    a_ids, b_ids, s0, s1 = (np.asarray(c) for c in zip(*pairs, strict=True))
    s0, s1 = s0.astype(np.float64), s1.astype(np.float64)
    code = np.where(s0 > s1, A_CODE, np.where(s0 < s1, B_CODE, TIE_CODE))
    return (
        _comparison_units(match_ids, judge_ids, [None] * len(done), repeats),
        a_ids.astype(np.int64),
        b_ids.astype(np.int64),
        code.astype(np.int64),
        np.ones(len(done), bool),
        np.ones(len(done), np.int64),
    )


def scope_soft_counts(scope: BoardScope) -> PairwiseCounts | None:
    """An LLM board's pairwise verdicts as soft outcomes (TrustJudge): a verdict whose
    judge gave ``P(a)``, ``P(b)``, ``P(tie)`` (``Judgment.probabilities["winner"]``,
    logprobs) counts ``p = (P(a) + P(tie)/2) / (P(a) + P(b) + P(tie))`` for slot 0 and
    ``1 - p`` for slot 1 (:func:`arena.ratings.counts.soft_outcome_counts`); a verdict
    without them counts as written (ties half). None when no verdict of the board has
    probabilities (the option would be the BT board again).

    A jury run's board counts one verdict per call (:func:`_jury_rows`): here each juror's
    soft outcome on it weighs ``1 / jurors on the call``, so the call counts the mean of
    its jurors' probabilities (the likelihood is linear in the weights), one bootstrap
    unit per match."""
    if not scope.llm_only or scope.criterion:
        return None
    judgments = Judgment.objects.in_scope(scope)
    jury = _run_jury(scope)
    if jury:
        judgments = judgments.filter(judge_id__in=jury["jurors"])
    rows = list(
        judgments.with_slots(models_only=True)
        .values_list(
            "match_id",
            "judge_id",
            "voter_id",
            "repeat",
            "s0__contestant_id",
            "s1__contestant_id",
            "winner",
            "presentation",
            "weight",
            "probabilities__winner__a",  # three numbers, not the stored dict
            "probabilities__winner__b",
            "probabilities__winner__tie",
        )
        .order_by()
    )
    if not rows:
        return None
    match_ids, judge_ids, voter_ids, repeats, a_ids, b_ids, winners, orders, weights, *p = zip(
        *rows, strict=True
    )
    pa, pb, pt = (_numbers(column) for column in p)
    total = pa + pb + pt
    soft = np.isfinite(total) & (total > 0)
    if not soft.any():
        return None
    hard = np.array([1.0, 0.0, 0.5, 0.5])[winner_codes(np.asarray(winners, dtype=object))]
    with np.errstate(invalid="ignore", divide="ignore"):
        p_a = np.where(soft, (pa + 0.5 * pt) / total, hard)
    n = len(rows)
    unit = _comparison_units(match_ids, judge_ids, voter_ids, repeats)
    share = np.ones(n)
    if jury:
        a_first = slot_zero_first_array(orders)
        call = np.unique(
            np.stack([np.asarray(match_ids, np.int64), a_first, np.asarray(repeats, np.int64)]),
            axis=1,
            return_inverse=True,
        )[1].ravel()
        share = 1.0 / np.bincount(call)[call]
        unit = np.unique(np.asarray(match_ids, np.int64), return_inverse=True)[1].ravel()
    both = (
        np.concatenate([unit, unit]),
        np.tile(np.asarray(a_ids, np.int64), 2),
        np.tile(np.asarray(b_ids, np.int64), 2),
        np.r_[np.full(n, A_CODE), np.full(n, B_CODE)].astype(np.int64),
        np.tile(slot_zero_first_array(orders), 2),
        np.tile(np.asarray(weights, np.int64), 2),
    )
    return counts_from_rows(both, amount=np.r_[p_a * share, (1 - p_a) * share])[0]


def _numbers(values) -> np.ndarray:
    """A column of JSON numbers (None where missing) as floats, NaN for None."""
    return np.asarray([np.nan if v is None else float(v) for v in values], np.float64)


def _run_jury(scope: BoardScope) -> dict:
    """The jury of a run's board (``run:<id>``), else {}."""
    if scope.run_id is None:
        return {}
    jury = EvaluationRun.objects.filter(pk=scope.run_id).values_list("jury", flat=True).first()
    return jury or {}


def _criterion_rows(scope: BoardScope, exclude_flagged: bool = False, raw: bool = False):
    """A criterion board's rows: the verdicts on ``scope.criterion`` (``Judgment.criteria``,
    read in the database as a text column) in place of the overall ones; LLM verdicts one
    per row as :func:`_pairwise_rows` (a pointwise rubric judge's two levels of a match as
    :func:`_score_pair_rows`), human aspect ballots grouped into cells (one GROUP BY:
    no running counts hold aspects), flagged voters as on the other human boards."""
    judgments = (
        Judgment.objects.in_scope(scope)
        # as plain text: a JSON key's own lookups would read the winners as JSON (SQLite)
        .annotate(criterion_winner=Cast(KeyTextTransform(scope.criterion, "criteria"), CharField()))
        .filter(criterion_winner__in=WINNERS)
    )
    if scope.llm_only:  # pairwise criterion verdicts, and pairs of pointwise levels
        return concat_rows(
            _pairwise_rows(scope, judgments, "criterion_winner"), _score_pair_rows(scope)
        )
    if exclude_flagged:
        judgments = judgments.exclude(voter__flagged=True)
    elif not raw:
        judgments = judgments.exclude(voter__counted_flagged=True)
    return _grouped_rows(judgments, "criterion_winner")


@dataclass(frozen=True, eq=False)
class JurorVerdicts:
    """A jury run's OK juror verdicts (one row each, columns): the call each belongs to
    (0..calls-1: a match's presentation and repeat), its match, the juror's index in the
    jury's ``jurors``, the winner code in slot terms, slot 0's probability from logprobs
    (NaN without them), the slot contestants, whether slot 0 was shown first, the answers'
    token lengths, the judgment's id and ``created_at`` (the order verdicts were written),
    the match's prompt (-1 without one) and the answers' lengths in characters (NaN where
    an answer has no stored text, or where they were not asked for)."""

    call: np.ndarray
    match: np.ndarray
    juror: np.ndarray
    winner: np.ndarray
    slot0_probability: np.ndarray
    contestant_a: np.ndarray
    contestant_b: np.ndarray
    a_first: np.ndarray
    len_a: np.ndarray
    len_b: np.ndarray
    judgment: np.ndarray
    created_at: np.ndarray
    prompt: np.ndarray
    chars_a: np.ndarray
    chars_b: np.ndarray


_JUROR_COLUMNS = (
    "match_id",
    "presentation",
    "repeat",
    "judge_id",
    "winner",
    "probabilities",
    "s0__contestant_id",
    "s1__contestant_id",
    "s0__output__token_length",
    "s1__output__token_length",
    "id",
    "created_at",
    "match__prompt_id",
)


def juror_verdicts(scope: BoardScope, jury: dict, *, answer_chars: bool = False) -> JurorVerdicts:
    """The OK verdicts of a jury run's board scope (``run:<id>``) in the order written
    (``created_at``, then id), in one query whatever the number of jurors;
    ``answer_chars`` also reads both answers' lengths in characters (AlpacaEval's length
    control, :func:`scope_verdict_records`)."""
    judgments = (
        Judgment.objects.in_scope(scope)
        .with_slots(models_only=True)
        .filter(judge_id__in=jury["jurors"])
    )
    columns = _JUROR_COLUMNS
    if answer_chars:
        judgments = judgments.annotate(
            chars0=Length("s0__output__text"), chars1=Length("s1__output__text")
        )
        columns = (*columns, "chars0", "chars1")
    rows = list(judgments.values_list(*columns).order_by("created_at", "id"))
    n = len(rows)
    found = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    match, presentation, repeat, judge, winner, probabilities, a, b, len_a, len_b = found[:10]
    ids, created_at, prompt = found[10:13]
    chars = found[13:] if answer_chars else [(None,) * n] * 2
    match = np.asarray(match, np.int64)
    a_first = slot_zero_first_array(presentation)
    key = np.stack([match, (~a_first).astype(np.int64), np.asarray(repeat, np.int64)])
    call = np.unique(key, axis=1, return_inverse=True)[1].ravel() if rows else key[0]
    index = {judge_id: i for i, judge_id in enumerate(jury["jurors"])}
    return JurorVerdicts(
        call=call,
        match=match,
        juror=np.fromiter((index[j] for j in judge), np.int64, n),
        winner=winner_codes(winner),
        slot0_probability=np.fromiter(map(_slot0_probability, probabilities), float, n),
        contestant_a=np.asarray(a, np.int64),
        contestant_b=np.asarray(b, np.int64),
        a_first=a_first,
        len_a=np.asarray([x or 0 for x in len_a], np.float64),
        len_b=np.asarray([x or 0 for x in len_b], np.float64),
        judgment=np.asarray(ids, np.int64),
        created_at=np.asarray(created_at, dtype=object),
        prompt=np.asarray([-1 if p is None else p for p in prompt], np.int64),
        chars_a=_numbers(chars[0]),
        chars_b=_numbers(chars[1]),
    )


def _slot0_probability(probabilities) -> float:
    """P(slot 0 wins) + ½ P(tie), from a reply's logprob distribution (NaN without one)."""
    found = (probabilities or {}).get("winner") or {}
    a, b, tie = (float(found.get(k, 0.0)) for k in ("a", "b", "tie"))
    total = a + b + tie
    return (a + tie / 2) / total if total > 0 else float("nan")


def pool_jury(v: JurorVerdicts, jury: dict):
    """The jury's verdict per call by its rule (:func:`arena.ratings.jury.jury_verdicts`,
    the stored weights for ``weighted``), and a row of ``v`` for each call (its match,
    slots and lengths)."""
    weights = None
    if jury.get("rule") == "weighted":
        stored = jury.get("weights") or {}
        weights = np.array([float(stored.get(str(j), 1.0)) for j in jury["jurors"]])
    pooled = jury_verdicts(
        v.call,
        v.juror,
        v.winner,
        rule=jury.get("rule", "majority"),
        weights=weights,
        slot0_probability=v.slot0_probability,
    )
    first = np.zeros(len(pooled.winner), np.int64)
    first[v.call[::-1]] = np.arange(len(v.call))[::-1]  # a row of each call
    return pooled, first


def _jury_calls_in_order(scope: BoardScope, jury: dict, *, answer_chars: bool = False):
    """A jury run's verdicts (:func:`juror_verdicts`, one query), the jury's verdict per
    call (:func:`pool_jury`) and the calls in the order their verdicts were complete: a
    call's place is its last juror verdict's (the rows come in the order written)."""
    v = juror_verdicts(scope, jury, answer_chars=answer_chars)
    pooled, _ = pool_jury(v, jury)
    last = np.full(len(pooled.winner), -1, np.int64)
    np.maximum.at(last, v.call, np.arange(len(v.call)))
    order = np.argsort(last, kind="stable")
    return v, pooled.winner[order], last[order]


def _jury_rows(scope: BoardScope, jury: dict):
    """A jury run's board: one verdict per call, its jurors' pooled by the jury's rule
    (:func:`arena.ratings.jury.jury_verdicts`); one bootstrap unit per match."""
    v = juror_verdicts(scope, jury)
    if not v.call.size:
        return None
    pooled, first = pool_jury(v, jury)
    match = v.match[first]
    return (
        np.unique(match, return_inverse=True)[1].ravel(),
        v.contestant_a[first],
        v.contestant_b[first],
        pooled.winner,
        v.a_first[first],
        np.ones(len(first), np.int64),
    )


@dataclass(frozen=True, eq=False)
class JudgeVerdicts:
    """A board's LLM verdicts for the judge-effects fit: the model names and the judges
    (ids, names), then per verdict the judge's index, the models shown first and second
    (indices) and the outcome code in shown order (:mod:`arena.ratings.counts`)."""

    models: list
    judge_ids: list
    judge_names: list
    judge: np.ndarray
    first: np.ndarray
    second: np.ndarray
    outcome: np.ndarray


def scope_judge_verdicts(scope: BoardScope) -> JudgeVerdicts | None:
    """The scope's LLM verdicts for the judge-effects fit, in one query; None without any."""
    rows = list(
        Judgment.objects.in_scope(scope)
        .with_slots(models_only=True)
        .filter(judge__isnull=False)
        .values_list("judge_id", "s0__contestant_id", "s1__contestant_id", "winner", "presentation")
        .order_by()
    )
    if not rows:
        return None
    judge, a_ids, b_ids, winners, orders = zip(*rows, strict=True)
    models, _, index = _model_index(np.concatenate([a_ids, b_ids]).astype(np.int64))
    a, b = index(np.asarray(a_ids, np.int64)), index(np.asarray(b_ids, np.int64))
    a_first = slot_zero_first_array(orders)
    code = winner_codes(winners)
    judge_ids, judge_index = np.unique(np.asarray(judge, np.int64), return_inverse=True)
    names = dict(Judge.objects.filter(pk__in=judge_ids.tolist()).values_list("pk", "name"))
    return JudgeVerdicts(
        models=models,
        judge_ids=judge_ids.tolist(),
        judge_names=[f"{names.get(int(j), j)} (#{int(j)})" for j in judge_ids],
        judge=judge_index.ravel(),
        first=np.where(a_first, a, b),
        second=np.where(a_first, b, a),
        outcome=np.where(a_first, _WHEN_A_FIRST[code], _WHEN_B_FIRST[code]),
    )


def _comparison_units(match_ids, judge_ids, voter_ids, repeats) -> np.ndarray:
    """One bootstrap unit per (match, judge or voter, repeat): the two presentation orders
    of one comparison are resampled together."""
    who = [j if j is not None else -v for j, v in zip(judge_ids, voter_ids, strict=True)]
    key = np.stack(
        [np.asarray(match_ids, np.int64), np.asarray(who, np.int64), np.asarray(repeats, np.int64)]
    )
    return np.unique(key, axis=1, return_inverse=True)[1].ravel()


def scope_rankings(scope: BoardScope) -> Rankings | None:
    """The scope's K-wise rankings for a Plackett-Luce fit, when the scope holds nothing
    else: a K-wise run's board, a listwise judge's. None when it has no ranking, or also
    pairwise verdicts (that board stays Bradley-Terry on the pairs the rankings order:
    :func:`scope_counts`). Human votes counted as flagged stay off, as on the public board.

    Two queries (the rankings, their slots), O(rankings)."""
    judgments = Judgment.objects.in_scope(scope, Judgment.Kind.RANKING)
    if not scope.llm_only:
        judgments = judgments.exclude(voter__counted_flagged=True)
    rows = list(judgments.values_list("match_id", "ranking", "weight").order_by())
    if not rows or Judgment.objects.in_scope(scope).exists():
        return None
    slots = _model_slots({r[0] for r in rows})
    kept = [
        (slots[match_id], ranking, weight)
        for match_id, ranking, weight in rows
        if len(slots.get(match_id, ())) == len(ranking)
    ]
    if not kept:
        return None
    names = model_names({c for contestants, _, _ in kept for c in contestants})
    models = sorted(set(names.values()))
    index = {cid: models.index(name) for cid, name in names.items()}
    return Rankings.from_lists(
        models,
        [([index[c] for c in contestants], ranking) for contestants, ranking, _ in kept],
        [weight for _, _, weight in kept],
    )


def _model_slots(match_ids) -> dict[int, list[int]]:
    """Each match's model contestants in slot order (one query)."""
    slots: dict[int, list[int]] = {}
    for match_id, contestant_id in (
        MatchSlot.objects.filter(match_id__in=match_ids, contestant__kind=Contestant.Kind.MODEL)
        .order_by("match_id", "position")
        .values_list("match_id", "contestant_id")
    ):
        slots.setdefault(match_id, []).append(contestant_id)
    return slots


def _ranking_rows(scope: BoardScope, exclude_flagged: bool = False, raw: bool = False):
    """K-wise rankings broken into the pairs they order; one bootstrap unit per ranking."""
    rankings = Judgment.objects.in_scope(scope, Judgment.Kind.RANKING)
    if exclude_flagged:
        rankings = rankings.exclude(voter__flagged=True)
    elif not raw:
        rankings = rankings.exclude(voter__counted_flagged=True)
    rankings = list(rankings.values_list("id", "match_id", "ranking", "weight").order_by())
    if not rankings:
        return None
    slots = _model_slots({r[1] for r in rankings})
    unit, a_ids, b_ids, code, mult = [], [], [], [], []
    for k, (_, match_id, ranking, weight) in enumerate(rankings):
        contestants = slots.get(match_id, [])
        if len(contestants) != len(ranking):
            continue
        for i in range(len(ranking)):
            for j in range(i + 1, len(ranking)):
                unit.append(k)
                a_ids.append(contestants[i])
                b_ids.append(contestants[j])
                code.append(0 if ranking[i] < ranking[j] else 1 if ranking[j] < ranking[i] else 2)
                mult.append(weight)
    if not unit:
        return None
    n = len(unit)
    return (
        np.asarray(unit),
        np.asarray(a_ids),
        np.asarray(b_ids),
        np.asarray(code),
        np.ones(n, bool),
        np.asarray(mult, np.int64),
    )


def concat_rows(first, second):
    """Two row-array tuples as one (their units kept apart)."""
    if first is None or second is None:
        return first if second is None else second
    offset = first[0].max() + 1
    return (
        np.concatenate([first[0], second[0] + offset]),
        *(np.concatenate([x, y]) for x, y in zip(first[1:], second[1:], strict=True)),
    )


STYLE_FIELDS = ("token_length", "header_count", "list_count", "bold_count")


def scope_style_votes(scope: BoardScope) -> StyleVotes:
    """Pairwise votes of the scope with both answers' style counts (a scan of the scope's votes).

    Raises ValueError when no vote has both answers stored (e.g. aggregated counts).
    """
    fields = [f"s{slot}__output__{name}" for slot in (0, 1) for name in STYLE_FIELDS]
    rows = list(
        Judgment.objects.in_scope(scope)
        .with_slots(models_only=True)
        .filter(s0__output__isnull=False, s1__output__isnull=False)
        .values_list(
            "match_id",
            "judge_id",
            "voter_id",
            "repeat",
            "s0__contestant_id",
            "s1__contestant_id",
            "winner",
            "weight",
            *fields,
        )
        .order_by()
    )
    if not rows:
        raise ValueError("style control needs votes whose answers are stored; this board has none")
    cols = list(zip(*rows, strict=True))
    a_ids, b_ids = np.asarray(cols[4]), np.asarray(cols[5])
    models, _, index = _model_index(np.concatenate([a_ids, b_ids]))
    style = np.asarray(cols[8:], dtype=np.float64).T  # (N, 8)
    weights = np.asarray(cols[7], np.int64)
    unit = _comparison_units(*cols[:4]) if scope.llm_only else np.arange(len(rows))
    return StyleVotes(
        models=tuple(models),
        a=index(a_ids),
        b=index(b_ids),
        outcome=winner_codes(cols[6]).astype(np.int8),
        style_a=style[:, :4],
        style_b=style[:, 4:],
        weight=weights,
        unit=unit.astype(np.int64),
    )


# Slot 0's points per winner code (a, b, tie, both bad): what the online Elo reads.
SLOT_ZERO_SCORE = np.array([1.0, 0.0, 0.5, 0.5])


@dataclass(frozen=True)
class VotesInOrder:
    """A scope's pairwise votes one by one, in the order cast (``created_at``, then id):
    judgment ``ids``, their ``created_at``, slot 0 and slot 1 ``contestant_a``/``_b``,
    ``winner`` codes (as :func:`arena.vocabulary.winner_codes`) and ``weights``."""

    ids: np.ndarray
    created_at: list
    contestant_a: np.ndarray
    contestant_b: np.ndarray
    winner: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def fingerprint(self) -> int:
        """:func:`vote_fingerprint` of these votes."""
        return vote_fingerprint(self.contestant_a, self.contestant_b, self.winner, self.weights)


def scope_votes_in_order(scope: BoardScope, after_id: int = 0) -> VotesInOrder:
    """The scope's pairwise votes with a judgment id above ``after_id``, one by one in the
    order they were cast, for the online Elo.

    One query of six columns over the scope's judgments (``created_at``, then id): unlike
    :func:`scope_counts`, its cost grows with the votes read, which is why the refit
    replays only the votes after the ones its last board replayed (``after_id``, a range
    of the primary key; ``arena.fitting``). Human votes counted as flagged stay off, as on
    the public board; K-wise rankings are left out (Elo takes pairs in order).
    """
    jury = _run_jury(scope)
    if jury:
        return _jury_votes_in_order(scope, jury, after_id)
    judgments = Judgment.objects.in_scope(scope)
    if not scope.llm_only:
        judgments = judgments.exclude(voter__counted_flagged=True)
    if after_id:
        judgments = judgments.filter(id__gt=after_id)
    rows = list(
        judgments.with_slots(models_only=True)
        .order_by("created_at", "id")
        .values_list(
            "id", "created_at", "s0__contestant_id", "s1__contestant_id", "winner", "weight"
        )
    )
    if not rows:
        empty = np.zeros(0, np.int64)
        return VotesInOrder(empty, [], empty, empty, empty, empty)
    ids, created_at, a_ids, b_ids, winners, weights = zip(*rows, strict=True)
    return VotesInOrder(
        np.asarray(ids, np.int64),
        list(created_at),
        np.asarray(a_ids, np.int64),
        np.asarray(b_ids, np.int64),
        winner_codes(winners),
        np.asarray(weights, np.int64),
    )


def _jury_votes_in_order(scope: BoardScope, jury: dict, after_id: int = 0) -> VotesInOrder:
    """A jury run's board replays the jury's verdicts, one per call, each in the place of
    its call's last juror verdict (its id and ``created_at``), with a call's last verdict
    id above ``after_id``. Every juror verdict is read (one query): a call's verdict is
    pooled from all of them."""
    v, winner, last = _jury_calls_in_order(scope, jury)
    keep = v.judgment[last] > after_id
    winner, last = winner[keep], last[keep]
    return VotesInOrder(
        v.judgment[last],
        list(v.created_at[last]),
        v.contestant_a[last],
        v.contestant_b[last],
        winner,
        np.ones(len(last), np.int64),
    )


def scope_verdict_records(scope: BoardScope) -> list[JudgmentRecord]:
    """The scope's pairwise verdicts between two models as rating-engine records, each with
    its prompt and both answers' lengths in characters (``meta["output_chars"]``, empty
    when an answer has no stored text), for the methods that need each verdict: AlpacaEval's
    win rates and length control (``arena.fitting.board_winrate``).

    One query, O(verdicts): only a board whose every comparison includes one model (a
    baseline) reads it. Human votes counted as flagged stay off, as on the public board.
    """
    jury = _run_jury(scope)
    if jury:
        return _jury_verdict_records(scope, jury)
    judgments = Judgment.objects.in_scope(scope)
    if not scope.llm_only:
        judgments = judgments.exclude(voter__counted_flagged=True)
    rows = (
        judgments.with_slots(models_only=True)
        .annotate(chars0=Length("s0__output__text"), chars1=Length("s1__output__text"))
        .values_list(
            "match_id",
            "s0__contestant__name",
            "s1__contestant__name",
            "winner",
            "preference",
            "weight",
            "match__prompt_id",
            "chars0",
            "chars1",
        )
        .order_by("id")
    )
    return [
        JudgmentRecord(
            match_id=str(match_id),
            contestants=(first, second),
            winner=winner,
            preference=preference,
            weight=weight,
            prompt_id=None if prompt_id is None else str(prompt_id),
            meta={} if chars0 is None or chars1 is None else {"output_chars": (chars0, chars1)},
        )
        for match_id, first, second, winner, preference, weight, prompt_id, chars0, chars1 in rows
    ]


def _jury_verdict_records(scope: BoardScope, jury: dict) -> list[JudgmentRecord]:
    """A jury run's board as records: the jury's verdict per call (as its BT board counts
    it), in the order the calls were complete; two queries whatever the jurors."""
    v, winner, last = _jury_calls_in_order(scope, jury, answer_chars=True)
    names = model_names(np.union1d(v.contestant_a, v.contestant_b))
    chars = np.stack([v.chars_a[last], v.chars_b[last]], axis=1)
    return [
        JudgmentRecord(
            match_id=str(match_id),
            contestants=(names[a], names[b]),
            winner=WINNERS[code],
            prompt_id=None if prompt < 0 else str(prompt),
            meta={} if np.isnan(c).any() else {"output_chars": (int(c[0]), int(c[1]))},
        )
        for match_id, a, b, code, prompt, c in zip(
            v.match[last].tolist(),
            v.contestant_a[last].tolist(),
            v.contestant_b[last].tolist(),
            winner.tolist(),
            v.prompt[last].tolist(),
            chars,
            strict=True,
        )
    ]


def scope_vote_tally(scope: BoardScope) -> tuple[int, int]:
    """The number of the votes :func:`scope_votes_in_order` reads (without ``after_id``)
    and their :func:`vote_fingerprint`, from the running counts: one GROUP BY of
    O(models²) rows, whatever the number of votes. A run's board has no running counts:
    its judgments are grouped instead (one GROUP BY over the run's verdicts), a jury run's
    pooled per call (every juror verdict read, one query)."""
    jury = _run_jury(scope)
    if jury:
        votes = _jury_votes_in_order(scope, jury)
        return len(votes), votes.fingerprint
    if scope.run_id is not None:
        rows = list(
            Judgment.objects.in_scope(scope)
            .with_slots(models_only=True)
            .values_list("s0__contestant_id", "s1__contestant_id", "winner")
            .annotate(n=Sum("weight"))
            .order_by()
        )
    else:
        cells = PairOutcomeCount.objects.filter(
            _source_filter(scope),
            prompt_set__slug=scope.prompt_set,
            count__gt=0,
            contestant_a__kind=Contestant.Kind.MODEL,
            contestant_b__kind=Contestant.Kind.MODEL,
        ).exclude(source=NAMED_SOURCE)
        if scope.category:
            cells = cells.filter(category=scope.category)
        rows = list(
            cells.values_list("contestant_a_id", "contestant_b_id", "winner")
            .annotate(n=Sum("count"))
            .order_by()
        )
    if not rows:
        return 0, 0
    a_ids, b_ids, winners, n = zip(*rows, strict=True)
    n = np.asarray(n, np.int64)
    return int(n.sum()), vote_fingerprint(a_ids, b_ids, winner_codes(winners), n)


@contextmanager
def one_snapshot():
    """The reads inside see the database as of one moment, so that a vote committed
    between two of them is in both or in neither (the Elo's new votes and its tally).

    A read-only REPEATABLE READ transaction on PostgreSQL; on SQLite a transaction's reads
    already see one state. Inside a caller's transaction, that transaction's isolation
    holds.
    """
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


_MASK64 = (1 << 64) - 1


def vote_fingerprint(contestant_a, contestant_b, winner, counts) -> int:
    """A sum over votes of a 64-bit hash of each vote's (slot 0, slot 1, winner), mod
    2**64: additive, so the fingerprint of some votes is the board's minus the others'.
    Two sets of votes of the same size share it only if they hold the same votes per
    (pair, winner) (or by a 2**-64 chance): what the online Elo's state checks that the
    votes it replayed are still the board's (``arena.fitting``)."""
    a = np.asarray(contestant_a, np.uint64)
    b = np.asarray(contestant_b, np.uint64)
    x = (a << np.uint64(34)) ^ (b << np.uint64(4)) ^ np.asarray(winner, np.uint64)
    x = x + np.uint64(0x9E3779B97F4A7C15)  # splitmix64's finaliser
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return int((x * np.asarray(counts, np.uint64)).sum(dtype=np.uint64)) & _MASK64


def model_names(contestant_ids) -> dict[int, str]:
    """Contestant id -> name (one query)."""
    return dict(
        Contestant.objects.filter(id__in=[int(i) for i in contestant_ids]).values_list("id", "name")
    )


def _model_index(contestant_ids: np.ndarray, model_ids: list[int] | None = None):
    """Model names, their contestant ids, and a vectorised contestant id -> index map.

    The models are ``model_ids`` in that order, else every contestant in
    ``contestant_ids`` in alphabetical order of name."""
    if model_ids is None:
        ids = np.unique(contestant_ids).astype(np.int64)
        names = dict(Contestant.objects.filter(id__in=ids.tolist()).values_list("id", "name"))
        ids = ids[np.argsort([names[i] for i in ids.tolist()], kind="stable")]
    else:
        ids = np.asarray(model_ids, np.int64)
        names = dict(Contestant.objects.filter(id__in=ids.tolist()).values_list("id", "name"))
    order = np.argsort(ids)

    def index(values: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(ids[order], values)]

    return [names[i] for i in ids.tolist()], ids.tolist(), index


# --- running counts ------------------------------------------------------------------------


def pairwise_cells(judgments, *leading: str) -> dict[tuple, int]:
    """OK pairwise ``judgments`` summed into running-count cells, one GROUP BY:
    ``(*leading fields, category, contestant_a, contestant_b, winner, a_first) -> votes``."""
    rows = (
        judgments.filter(match__k=2, kind=Judgment.Kind.PAIRWISE, status=Judgment.Status.OK)
        .with_slots()
        .values_list(
            *leading,
            "match__category",
            "s0__contestant_id",
            "s1__contestant_id",
            "winner",
            "presentation",
        )
        .annotate(n=Sum("weight"))
        .order_by()
    )
    cells: dict[tuple, int] = {}
    for *cell, shown, n in rows.iterator():
        key = (*cell, slot_zero_first(shown))
        cells[key] = cells.get(key, 0) + n
    return cells


def rebuild_pair_counts(prompt_set: PromptSet) -> int:
    """Recompute a prompt set's running counts from its raw judgments (one GROUP BY)."""
    PairOutcomeCount.objects.filter(prompt_set=prompt_set).delete()
    cells: dict[tuple, int] = {}
    by_judge = pairwise_cells(
        Judgment.objects.filter(match__prompt_set=prompt_set),
        "judge_id",
        "voter__counted_flagged",
        "match__origin",
    )
    for (judge_id, flagged, origin, *cell), n in by_judge.items():
        if judge_id is None and origin == Match.Origin.RUN:
            continue  # annotators' labels on a run's matches (judges.campaigns): no cells
        if origin == Match.Origin.SIDE_BY_SIDE:
            source = NAMED_SOURCE
        elif judge_id is None:
            source = human_source(bool(flagged))
        else:
            source = judge_source(judge_id)
        key = (source, *cell)
        cells[key] = cells.get(key, 0) + n
    PairOutcomeCount.objects.bulk_create(
        (
            PairOutcomeCount(
                prompt_set=prompt_set,
                source=source,
                category=category,
                contestant_a_id=a,
                contestant_b_id=b,
                winner=winner,
                a_first=a_first,
                count=n,
            )
            for (source, category, a, b, winner, a_first), n in cells.items()
        ),
        batch_size=2000,
    )
    return len(cells)


def move_voter_counts(voter_ids, *, flagged: bool) -> tuple[int, set[tuple[int, str]]]:
    """Count the votes of ``voter_ids`` in the flagged cells (``flagged``) or back in the
    public ones; returns the votes moved and the (prompt set id, category) pairs touched.

    Inside the caller's transaction. The voters' rows are locked first (a vote of one of
    them waits, then reads where its voter is counted now), their OK pairwise votes are
    aggregated into cells with one GROUP BY, and each cell is moved with one UPDATE and
    one upsert: O(cells) statements, never one per vote. Voters already counted where
    asked are left alone, so a move is idempotent.
    """
    ids = list(
        Voter.objects.select_for_update(no_key=True)
        .filter(pk__in=list(voter_ids), counted_flagged=not flagged)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0, set()
    cells = pairwise_cells(
        # Side-by-side votes stay in their own cells ("human:named") whatever the flag.
        Judgment.objects.filter(voter_id__in=ids).exclude(match__origin=Match.Origin.SIDE_BY_SIDE),
        "match__prompt_set_id",
    )
    source, target = human_source(not flagged), human_source(flagged)
    for (prompt_set_id, category, a, b, winner, a_first), n in cells.items():
        cell = dict(
            prompt_set_id=prompt_set_id,
            category=category,
            contestant_a_id=a,
            contestant_b_id=b,
            winner=winner,
            a_first=a_first,
        )
        PairOutcomeCount.objects.filter(source=source, **cell).update(count=F("count") - n)
        PairOutcomeCount.objects.bump(source=target, count=n, **cell)
    Voter.objects.filter(pk__in=ids).update(counted_flagged=flagged)
    return sum(cells.values()), {(key[0], key[1]) for key in cells}


def cluster_rows(scope: BoardScope, voter_ids) -> dict[str, tuple]:
    """The pairwise votes of ``voter_ids`` in a human scope, per address cluster (the
    voters' ``ip_hash``; a voter without one, e.g. imported, is a cluster "voter:<id>"), as
    row arrays for :func:`counts_from_rows`: one GROUP BY."""
    rows = (
        Judgment.objects.in_scope(scope)
        .filter(voter_id__in=list(voter_ids))
        .with_slots(models_only=True)
        .values_list(
            "voter__ip_hash",
            "voter_id",
            "s0__contestant_id",
            "s1__contestant_id",
            "winner",
            "presentation",
        )
        .annotate(n=Sum("weight"))
        .order_by()
    )
    by_cluster: dict[str, list] = {}
    for address, voter_id, a, b, winner, shown, n in rows:
        cluster = address or f"voter:{voter_id}"
        by_cluster.setdefault(cluster, []).append((a, b, winner, slot_zero_first(shown), n))
    return {cluster: _cell_rows(cells) for cluster, cells in by_cluster.items()}


def judgment_counts(judgments, model_ids: list[int] | None = None) -> PairwiseCounts:
    """Rating-engine counts of any queryset of pairwise human judgments (one GROUP BY):
    e.g. a counterfactual board without some voters (bench/rigging.py)."""
    return counts_from_rows(_grouped_rows(judgments), model_ids)[0]


def public_rows(scope: BoardScope, *, exclude_flagged: bool = False):
    """The row arrays behind :func:`scope_counts` (pairwise cells only, no rankings)."""
    if exclude_flagged:
        return _grouped_rows(Judgment.objects.in_scope(scope).filter(voter__flagged=False))
    return _table_rows(scope)


def has_public_human_votes(prompt_set: str) -> bool:
    """Whether the set's public human board (``by=humans``) has a vote to count: a pairwise
    vote between two models or a K-wise ranking that :meth:`JudgmentQuerySet.in_scope` puts
    on it, by a voter not counted as flagged. Annotators' labels on a run's matches and
    side-by-side votes are on no board, so they never make one. At most two EXISTS queries.
    """
    humans = BoardScope(prompt_set, "humans")
    votes = Judgment.objects.in_scope(humans).with_slots(models_only=True)
    rankings = Judgment.objects.in_scope(humans, Judgment.Kind.RANKING)
    return any(
        judgments.exclude(voter__counted_flagged=True).exists() for judgments in (votes, rankings)
    )


def has_annotation_labels(prompt_set: str) -> bool:
    """Whether people labelled matches of the set's runs (annotators' labels,
    ``judges.campaigns``): human judgments that no public board counts. One EXISTS."""
    return Judgment.objects.filter(
        match__prompt_set__slug=prompt_set,
        match__origin=Match.Origin.RUN,
        voter__isnull=False,
        status=Judgment.Status.OK,
    ).exists()


def count_judgment(judgment: Judgment, match: Match, contestant_a_id: int, contestant_b_id: int):
    """Add one stored OK pairwise judgment to the running counts (inside its transaction)."""
    count_judgments([(judgment, match, contestant_a_id, contestant_b_id)])


def count_judgments(rows) -> None:
    """Add stored OK pairwise judgments ``(judgment, match, slot-0 contestant id, slot-1
    contestant id)`` to the running counts (inside their transaction): one upsert of every
    cell, the cells in a fixed order, so that writers of overlapping cells never deadlock."""
    cells: dict[tuple, int] = {}
    for judgment, match, contestant_a_id, contestant_b_id in rows:
        cell = (
            match.prompt_set_id,
            HUMAN_SOURCE if judgment.judge_id is None else judge_source(judgment.judge_id),
            match.category,
            contestant_a_id,
            contestant_b_id,
            judgment.winner,
            slot_zero_first(judgment.presentation),
        )
        cells[cell] = cells.get(cell, 0) + judgment.weight
    PairOutcomeCount.objects.bump_many((*cell, count) for cell, count in sorted(cells.items()))


def pair_matrix(scope: BoardScope) -> dict:
    """Battles and row-beats-column win fractions (ties half) between every two models."""
    counts = scope_counts(scope)
    n = counts.n_models
    battles = np.zeros((n, n))
    first_points = (
        np.select([counts.outcome == FIRST, counts.outcome == SECOND], [1.0, 0.0], 0.5)
        * counts.votes
    )
    np.add.at(battles, (counts.first, counts.second), counts.votes)
    battles = battles + battles.T
    won = np.zeros((n, n))
    np.add.at(won, (counts.first, counts.second), first_points)
    np.add.at(won, (counts.second, counts.first), counts.votes - first_points)
    fraction = np.divide(won, battles, out=np.full((n, n), np.nan), where=battles > 0)
    return {
        "models": list(counts.models),
        "battles": battles.tolist(),
        "win_fraction": [
            [None if np.isnan(x) else round(float(x), 4) for x in row] for row in fraction
        ],
    }
