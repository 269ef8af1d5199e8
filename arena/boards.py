"""Leaderboard scopes and the database aggregation that feeds the rating engine.

A scope says which judgments a leaderboard is fitted on: one prompt set, whose verdicts
(human votes, all LLM judges, one judge, everything), optionally one category. Human
boards read the running PairOutcomeCount cells (bumped with every vote, rebuilt from raw
judgments after imports): a refit reads O(models^2) cells, never one row per vote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from django.db.models import Q, Sum

from arena.errors import BAD_REQUEST, NOT_FOUND, Refusal
from arena.models import Contestant, Judgment, Match, MatchSlot, PairOutcomeCount, PromptSet
from arena.ratings.counts import BOTH_BAD, FIRST, SECOND, TIE, PairwiseCounts, counts_from_arrays
from arena.ratings.style import StyleVotes
from arena.vocabulary import slot_zero_first, slot_zero_first_array, winner_codes

# Slot-relative winner code -> outcome relative to the order shown.
_WHEN_A_FIRST = np.array([FIRST, SECOND, TIE, BOTH_BAD])
_WHEN_B_FIRST = np.array([SECOND, FIRST, TIE, BOTH_BAD])
HUMAN_SOURCE = "human"  # PairOutcomeCount.source of human votes


def judge_source(judge_id: int) -> str:
    """PairOutcomeCount.source of one LLM judge's verdicts."""
    return f"judge:{judge_id}"


_BY = re.compile(r"^(humans|judges|all|judge:\d+|run:\d+)$")


def _bad_scope(field: str, message: str) -> Refusal:
    """A leaderboard scope that does not exist (404) or is malformed (400)."""
    return Refusal(message, field=field, status=NOT_FOUND if field == "set" else BAD_REQUEST)


@dataclass(frozen=True)
class BoardScope:
    prompt_set: str
    by: str = "humans"  # humans | judges | all | judge:<id> | run:<id>
    category: str = ""
    style_control: bool = False

    @property
    def key(self) -> str:
        return f"set={self.prompt_set}|by={self.by}|cat={self.category}|style={int(self.style_control)}"

    @classmethod
    def from_key(cls, key: str) -> BoardScope:
        try:
            parts = dict(part.split("=", 1) for part in key.split("|"))
            return cls.validated(
                parts["set"],
                parts.get("by", "humans"),
                parts.get("cat", ""),
                parts.get("style", "0"),
            )
        except (KeyError, ValueError):
            raise _bad_scope("scope", f"malformed scope key {key!r}") from None

    @classmethod
    def from_key_unchecked(cls, key: str) -> BoardScope:
        """Parse a key we wrote ourselves, without checking that the prompt set exists."""
        parts = dict(part.split("=", 1) for part in key.split("|"))
        return cls(
            parts["set"], parts.get("by", "humans"), parts.get("cat", ""), parts.get("style") == "1"
        )

    @classmethod
    def validated(
        cls, prompt_set: str, by: str = "humans", category: str = "", style_control="0"
    ) -> BoardScope:
        if not prompt_set:
            raise _bad_scope("set", "required")
        if not PromptSet.objects.filter(slug=prompt_set).exists():
            raise _bad_scope("set", f"no prompt set {prompt_set!r}")
        if not _BY.match(by or ""):
            raise _bad_scope(
                "by", f"expected humans, judges, all, judge:<id> or run:<id>; got {by!r}"
            )
        if len(category) > 100:
            raise _bad_scope("category", "too long")
        style = str(style_control).lower()
        if style not in ("0", "1", "true", "false", "yes", "no", "on", "off", ""):
            raise _bad_scope("style", f"expected 0 or 1; got {style_control!r}")
        return cls(prompt_set, by, category, style in ("1", "true", "yes", "on"))

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


def _source_filter(scope: BoardScope) -> Q:
    if scope.by == "humans":
        return Q(source=HUMAN_SOURCE)
    if scope.by == "judges":
        return Q(source__startswith="judge:")
    if scope.judge_id is not None:
        return Q(source=judge_source(scope.judge_id))
    return Q()


def scope_counts(
    scope: BoardScope, *, exclude_flagged: bool = False, model_ids: list[int] | None = None
) -> PairwiseCounts:
    """The scope's votes as rating-engine counts (see :func:`scope_counts_and_ids`)."""
    return scope_counts_and_ids(scope, exclude_flagged=exclude_flagged, model_ids=model_ids)[0]


def scope_counts_and_ids(
    scope: BoardScope, *, exclude_flagged: bool = False, model_ids: list[int] | None = None
) -> tuple[PairwiseCounts, list[int]]:
    """The scope's votes as rating-engine counts, and the contestant id of each model index.

    The one aggregation behind every board and the audit's vote-integrity panel. Human
    pairwise votes come from the running PairOutcomeCount cells (every vote its own
    bootstrap unit), or, with ``exclude_flagged``, from one GROUP BY over the judgments of
    unflagged voters (the cells do not know voters); K-wise human rankings add their
    pairwise breakdown, each ranking one unit. LLM-judge and run boards read their
    judgments per match so that both presentation orders of one comparison (and its
    repeats) form one bootstrap unit.

    ``model_ids`` fixes the model index (so that two boards share it; votes of other
    contestants are left out); by default every model in the votes, sorted by name.
    """
    if scope.llm_only:
        rows = _pairwise_rows(scope)
    elif exclude_flagged:
        rows = _grouped_rows(Judgment.objects.in_scope(scope).filter(voter__flagged=False))
    else:
        rows = _table_rows(scope)
    rows = _concat(rows, _ranking_rows(scope, exclude_flagged))
    if rows is None:
        rows = tuple(np.zeros(0, np.int64) for _ in range(6))
    unit, a_ids, b_ids, code, a_first, mult = rows
    if model_ids is not None:
        keep = np.isin(a_ids, model_ids) & np.isin(b_ids, model_ids)
        unit, a_ids, b_ids, code, a_first, mult = (x[keep] for x in rows)
        _, unit = np.unique(unit, return_inverse=True)
    models, ids, index = _model_index(np.concatenate([a_ids, b_ids]), model_ids)
    a, b = index(a_ids), index(b_ids)
    first, second = np.where(a_first, a, b), np.where(a_first, b, a)
    outcome = np.where(a_first, _WHEN_A_FIRST[code], _WHEN_B_FIRST[code])
    ones = np.ones(len(unit))
    counts = counts_from_arrays(models, unit.ravel(), first, second, outcome, ones, ones, mult)
    return counts, ids


# Row arrays: (unit, slot-0 contestant id, slot-1 contestant id, slot winner code, slot 0
# shown first, unit multiplicity)


def _table_rows(scope: BoardScope):
    cells = PairOutcomeCount.objects.filter(
        _source_filter(scope), prompt_set__slug=scope.prompt_set, count__gt=0
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


def _grouped_rows(judgments):
    """Pairwise judgments of models grouped into cells, as :func:`_table_rows` reads them."""
    rows = (
        judgments.with_slots(models_only=True)
        .values_list("s0__contestant_id", "s1__contestant_id", "winner", "presentation")
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


def _pairwise_rows(scope: BoardScope):
    rows = list(
        Judgment.objects.in_scope(scope)
        .with_slots(models_only=True)
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


def _comparison_units(match_ids, judge_ids, voter_ids, repeats) -> np.ndarray:
    """One bootstrap unit per (match, judge or voter, repeat): the two presentation orders
    of one comparison are resampled together."""
    who = [j if j is not None else -v for j, v in zip(judge_ids, voter_ids, strict=True)]
    key = np.stack(
        [np.asarray(match_ids, np.int64), np.asarray(who, np.int64), np.asarray(repeats, np.int64)]
    )
    return np.unique(key, axis=1, return_inverse=True)[1].ravel()


def _ranking_rows(scope: BoardScope, exclude_flagged: bool = False):
    """K-wise rankings broken into the pairs they order; one bootstrap unit per ranking."""
    rankings = Judgment.objects.in_scope(scope, Judgment.Kind.RANKING)
    if exclude_flagged:
        rankings = rankings.exclude(voter__flagged=True)
    rankings = list(rankings.values_list("id", "match_id", "ranking", "weight").order_by())
    if not rankings:
        return None
    slots: dict[int, list[int]] = {}
    for match_id, contestant_id in (
        MatchSlot.objects.filter(
            match_id__in={r[1] for r in rankings}, contestant__kind=Contestant.Kind.MODEL
        )
        .order_by("match_id", "position")
        .values_list("match_id", "contestant_id")
    ):
        slots.setdefault(match_id, []).append(contestant_id)
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


def _concat(first, second):
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


def rebuild_pair_counts(prompt_set: PromptSet) -> int:
    """Recompute a prompt set's running counts from its raw judgments (one GROUP BY)."""
    PairOutcomeCount.objects.filter(prompt_set=prompt_set).delete()
    rows = (
        Judgment.objects.filter(
            match__prompt_set=prompt_set,
            match__k=2,
            kind=Judgment.Kind.PAIRWISE,
            status=Judgment.Status.OK,
        )
        .with_slots()
        .values_list(
            "judge_id",
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
    for judge_id, category, a, b, winner, shown, n in rows.iterator():
        source = HUMAN_SOURCE if judge_id is None else judge_source(judge_id)
        key = (source, category, a, b, winner, slot_zero_first(shown))
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


def count_judgment(judgment: Judgment, match: Match, contestant_a_id: int, contestant_b_id: int):
    """Add one stored OK pairwise judgment to the running counts (inside its transaction)."""
    PairOutcomeCount.objects.bump(
        prompt_set_id=match.prompt_set_id,
        source=HUMAN_SOURCE if judgment.judge_id is None else judge_source(judgment.judge_id),
        category=match.category,
        contestant_a_id=contestant_a_id,
        contestant_b_id=contestant_b_id,
        winner=judgment.winner,
        a_first=slot_zero_first(judgment.presentation),
        count=judgment.weight,
    )


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
