"""Streaming aggregation of judgments into pair x outcome counts, as they are read.

:func:`arena.ratings.counts.counts_from_records` needs every record at once; a
:class:`Tally` takes them one at a time (or as already-counted votes) and keeps only
what the counts need:

- a vote that is a bootstrap unit of its own (an aggregated record, a file of
  independent votes, a battle of a battle log) is folded at once into its *unit type*
  (the cells it adds to, with their amounts) and a multiplicity, so 1.67M battles keep
  about 14k entries;
- records that share a unit (both presentation orders of one LLM comparison: same
  ``match_id`` and judge/voter) are kept, as a few numbers each, until the end.

:meth:`Tally.counts` gives exactly what ``counts_from_records`` gives for the same
records in the same order: the same models in the same order, cells, weights and
bootstrap units (votes summed in another order may differ in the last bit).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from arena.vocabulary import WINNER_CODE

from .counts import PairwiseCounts, counts_from_arrays

Row = tuple[int, int, int, float, float]  # (first, second, outcome, amount, votes)


class Tally:
    """Pairwise counts built up vote by vote; see the module docstring.

    Parameters
    ----------
    strong_weight, group_by_match
        As in :func:`arena.ratings.counts.counts_from_records`.
    """

    def __init__(self, *, strong_weight: float = 1.0, group_by_match: bool = True):
        self.strong_weight = float(strong_weight)
        self.group_by_match = group_by_match
        self.names: dict[str, int] = {}  # model -> index, in order of first appearance
        self.alone: dict[tuple[Row, ...], int] = {}  # unit type -> multiplicity
        self.shared: dict[tuple, list[Row]] = {}  # (match, judge, voter) -> its rows

    def index(self, name: str) -> int:
        return self.names.setdefault(name, len(self.names))

    def add_votes(self, first: str, second: str, outcome: int, n: int = 1) -> None:
        """``n`` votes, each its own unit: ``first`` shown first, ``outcome`` relative to it
        (0 first wins, 1 second wins, 2 tie, 3 both bad)."""
        unit = ((self.index(first), self.index(second), outcome, 1.0, 1.0),)
        self.alone[unit] = self.alone.get(unit, 0) + n

    def add_records(self, records: Iterable) -> None:
        """Judgment records (anything else is skipped), as ``counts_from_records`` reads them."""
        for rec in records:
            self.add(rec)

    def add(self, rec) -> None:
        contestants = getattr(rec, "contestants", None)
        kind = getattr(rec, "kind", None)
        if contestants is None or kind not in ("pairwise", "ranking"):
            return
        weight = int(rec.weight)
        if weight <= 0:
            return
        idx = [self.index(c) for c in contestants]
        order = tuple(rec.presentation) if rec.presentation else tuple(range(len(idx)))
        rows: list[Row] = []
        if kind == "ranking":
            if rec.ranking is not None:
                _ranking_rows(rows, idx, order, rec.ranking)
        else:
            shown_first, shown_second = order[0], order[1]
            f, s = idx[shown_first], idx[shown_second]
            amount = self.strong_weight if rec.strength == 2 else 1.0
            if rec.winner is not None:
                code = WINNER_CODE[rec.winner]
                if code < 2 and shown_first == 1:
                    code = 1 - code  # winner names a slot; the cell is relative to the order
                rows.append((f, s, code, amount, 1.0))
            elif rec.preference is not None and 1.0 <= rec.preference <= 2.0:
                p_slot1 = rec.preference - 1.0
                p_first = p_slot1 if shown_first == 1 else 1.0 - p_slot1
                rows.append((f, s, 0, amount * p_first, p_first))
                rows.append((f, s, 1, amount * (1.0 - p_first), 1.0 - p_first))
        if weight > 1 or not self.group_by_match:
            if rows:
                unit = tuple(rows)
                self.alone[unit] = self.alone.get(unit, 0) + weight
        else:
            self.shared.setdefault((rec.match_id, rec.judge, rec.voter), []).extend(rows)

    def counts(self) -> PairwiseCounts:
        """The counts of everything added so far (the tally can go on after)."""
        unit, rows, mult = [], [], []
        for k, unit_rows in enumerate(self.shared.values()):
            unit.extend([k] * len(unit_rows))
            rows.extend(unit_rows)
            mult.extend([1] * len(unit_rows))
        k0 = len(self.shared)
        for k, (unit_rows, n) in enumerate(self.alone.items(), k0):
            unit.extend([k] * len(unit_rows))
            rows.extend(unit_rows)
            mult.extend([n] * len(unit_rows))
        table = np.array(rows, np.float64).reshape(-1, 5)
        return counts_from_arrays(
            tuple(self.names),
            np.array(unit, np.int64),
            table[:, 0].astype(np.intp),
            table[:, 1].astype(np.intp),
            table[:, 2].astype(np.int64),
            table[:, 3].copy(),
            table[:, 4].copy(),
            np.array(mult, np.int64),
        )


def _ranking_rows(rows: list, idx, order, ranking) -> None:
    """One K-wise ranking's pairs, ordered as shown (as ``counts._emit_ranking``)."""
    position = {slot: pos for pos, slot in enumerate(order)}
    slots = sorted(range(len(idx)), key=lambda s: position.get(s, s))
    for a_pos, a in enumerate(slots):
        for b in slots[a_pos + 1 :]:
            ra, rb = ranking[a], ranking[b]
            outcome = 0 if ra < rb else 1 if rb < ra else 2
            rows.append((idx[a], idx[b], outcome, 1.0, 1.0))
