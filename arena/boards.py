"""Leaderboard scopes and the database aggregation that feeds the rating engine.

A scope says which judgments a leaderboard is fitted on: one prompt set, whose verdicts
(human votes, all LLM judges, one judge, everything), optionally one category. The
aggregation is a single GROUP BY over (slot-0 contestant, slot-1 contestant, winner,
presentation): a refit reads O(models^2) cells, never one Python object per vote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from django.db.models import FilteredRelation, Q, QuerySet, Sum

from arena.models import Contestant, Judgment, PromptSet

WINNER_CODES = {"a": 0, "b": 1, "tie": 2, "bothbad": 3}
_BY = re.compile(r"^(humans|judges|all|judge:\d+)$")


class ScopeError(ValueError):
    """A leaderboard scope that does not exist or is malformed; names the field."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class BoardScope:
    prompt_set: str
    by: str = "humans"  # humans | judges | all | judge:<id>
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
        except (KeyError, ValueError) as exc:
            if isinstance(exc, ScopeError):
                raise
            raise ScopeError("scope", f"malformed scope key {key!r}") from None

    @classmethod
    def validated(
        cls, prompt_set: str, by: str = "humans", category: str = "", style_control="0"
    ) -> BoardScope:
        if not prompt_set:
            raise ScopeError("set", "required")
        if not PromptSet.objects.filter(slug=prompt_set).exists():
            raise ScopeError("set", f"no prompt set {prompt_set!r}")
        if not _BY.match(by or ""):
            raise ScopeError("by", f"expected humans, judges, all or judge:<id>; got {by!r}")
        if len(category) > 100:
            raise ScopeError("category", "too long")
        style = str(style_control).lower()
        if style not in ("0", "1", "true", "false", "yes", "no", "on", "off", ""):
            raise ScopeError("style", f"expected 0 or 1; got {style_control!r}")
        return cls(prompt_set, by, category, style in ("1", "true", "yes", "on"))

    @property
    def judge_id(self) -> int | None:
        return int(self.by.split(":", 1)[1]) if self.by.startswith("judge:") else None


def scope_judgments(scope: BoardScope) -> QuerySet[Judgment]:
    """Pairwise, successfully parsed judgments of the scope (failures never enter a fit)."""
    qs = Judgment.objects.filter(
        match__prompt_set__slug=scope.prompt_set,
        match__k=2,
        kind=Judgment.Kind.PAIRWISE,
        status=Judgment.Status.OK,
    )
    if scope.by == "humans":
        qs = qs.filter(voter__isnull=False)
    elif scope.by == "judges":
        qs = qs.filter(judge__isnull=False)
    elif scope.judge_id is not None:
        qs = qs.filter(judge_id=scope.judge_id)
    if scope.category:
        qs = qs.filter(match__category=scope.category)
    return qs


@dataclass
class PairCells:
    """Aggregated pairwise outcomes: one entry per (slot 0, slot 1, winner, order) cell.

    ``a``, ``b``: model indices of slot 0 and slot 1 (into ``models``);
    ``winner``: 0 a, 1 b, 2 tie, 3 both bad; ``a_first``: True when slot 0 was shown first;
    ``count``: number of votes in the cell (weights summed).
    """

    models: list[str]
    a: np.ndarray
    b: np.ndarray
    winner: np.ndarray
    a_first: np.ndarray
    count: np.ndarray

    @property
    def n_votes(self) -> int:
        return int(self.count.sum())


def pair_cells(scope: BoardScope) -> PairCells:
    rows = list(
        scope_judgments(scope)
        .annotate(
            s0=FilteredRelation("match__slots", condition=Q(match__slots__position=0)),
            s1=FilteredRelation("match__slots", condition=Q(match__slots__position=1)),
        )
        .filter(
            s0__contestant__kind=Contestant.Kind.MODEL, s1__contestant__kind=Contestant.Kind.MODEL
        )
        .values_list("s0__contestant_id", "s1__contestant_id", "winner", "presentation")
        .annotate(n=Sum("weight"))
        .order_by()
    )
    if not rows:
        return PairCells(
            [],
            *(np.zeros(0, dtype=int) for _ in range(3)),
            np.zeros(0, dtype=bool),
            np.zeros(0, dtype=np.int64),
        )
    a_ids, b_ids, winners, orders, counts = zip(*rows, strict=True)
    ids = sorted(set(a_ids) | set(b_ids))
    names = dict(Contestant.objects.filter(id__in=ids).values_list("id", "name"))
    order = sorted(ids, key=lambda i: names[i])
    index = {cid: k for k, cid in enumerate(order)}
    return PairCells(
        models=[names[i] for i in order],
        a=np.fromiter((index[i] for i in a_ids), dtype=np.int64, count=len(rows)),
        b=np.fromiter((index[i] for i in b_ids), dtype=np.int64, count=len(rows)),
        winner=np.fromiter((WINNER_CODES[w] for w in winners), dtype=np.int64, count=len(rows)),
        a_first=np.fromiter((o.startswith("0") for o in orders), dtype=bool, count=len(rows)),
        count=np.asarray(counts, dtype=np.int64),
    )
