"""Aggregated pairwise votes: the only input the pairwise solvers read.

A vote is never a solver row. Votes collapse to *cells* keyed by (model shown first,
model shown second, outcome), each with a weight, and to *unit types* for the
bootstrap: a unit is what the bootstrap resamples as a whole (one vote; both
presentation orders of one LLM comparison; every pair inside one K-wise ranking).
Identical units are stored once with a multiplicity, so 1.67M Chatbot Arena battles
become about 14k unit types and a multinomial draw over them is an exact bootstrap of
the battles.

Outcomes are relative to the presentation order (:data:`FIRST`, :data:`SECOND`,
:data:`TIE`, :data:`BOTH_BAD`), which is what a position term needs. Data that does
not record the order (the Chatbot Arena counts file) simply puts the slot shown left
first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from arena.vocabulary import WINNER_CODE

FIRST, SECOND, TIE, BOTH_BAD = 0, 1, 2, 3
OUTCOMES: tuple[str, ...] = ("first", "second", "tie", "bothbad")


@dataclass(frozen=True, eq=False)
class Units:
    """Bootstrap units, aggregated.

    Attributes
    ----------
    members : scipy.sparse.csr_matrix, shape (U, C)
        ``members[u, c]`` is the weight unit type ``u`` adds to cell ``c``.
    multiplicity : ndarray of int64, shape (U,)
        How many times unit type ``u`` occurred.

    The cell weights are ``multiplicity @ members``.
    """

    members: sp.csr_matrix
    multiplicity: np.ndarray

    @property
    def n_units(self) -> int:
        return int(self.multiplicity.sum())


@dataclass(frozen=True, eq=False)
class PairwiseCounts:
    """Pairwise votes aggregated into cells.

    Attributes
    ----------
    models : tuple of str, length n
    first, second : ndarray of intp, shape (C,)
        Index of the model shown first / second in the cell.
    outcome : ndarray of int8, shape (C,)
        :data:`FIRST`, :data:`SECOND`, :data:`TIE` or :data:`BOTH_BAD`.
    weight : ndarray of float64, shape (C,)
        Likelihood weight of the cell (votes, a strong verdict counting ``strong_weight``
        times, fractional for soft preferences).
    votes : ndarray of float64, shape (C,)
        Votes in the cell, unweighted (what a leaderboard shows as "votes").
    units : Units or None
        Bootstrap units. ``None`` means every vote is its own unit, so the cells are the
        unit types (their weights must then be whole numbers).
    """

    models: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    outcome: np.ndarray
    weight: np.ndarray
    votes: np.ndarray = field(default=None)  # type: ignore[assignment]
    units: Units | None = None

    def __post_init__(self):
        object.__setattr__(self, "models", tuple(self.models))
        for name, dtype in (("first", np.intp), ("second", np.intp), ("outcome", np.int8)):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=dtype))
        object.__setattr__(self, "weight", np.asarray(self.weight, dtype=np.float64))
        votes = self.weight if self.votes is None else self.votes
        object.__setattr__(self, "votes", np.asarray(votes, dtype=np.float64))
        _validate(self)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_cells(
        cls,
        models: Sequence[str],
        first,
        second,
        outcome,
        weight,
        votes=None,
    ) -> PairwiseCounts:
        """Aggregate possibly repeated cells (one per vote is fine) into unique cells."""
        n = len(models)
        first, second = np.asarray(first, np.intp), np.asarray(second, np.intp)
        outcome = np.asarray(outcome, np.int64)
        weight = np.asarray(weight, np.float64)
        votes = weight if votes is None else np.asarray(votes, np.float64)
        key = (first * n + second) * 4 + outcome
        uniq, inverse = np.unique(key, return_inverse=True)
        agg_w = np.bincount(inverse, weight, minlength=uniq.size)
        agg_v = np.bincount(inverse, votes, minlength=uniq.size)
        keep = agg_w > 0
        uniq = uniq[keep]
        pair, out = np.divmod(uniq, 4)
        return cls(models, pair // n, pair % n, out, agg_w[keep], agg_v[keep])

    @classmethod
    def from_table(cls, models: Sequence[str], pairs, table) -> PairwiseCounts:
        """Build from a table of outcome counts per pair.

        Parameters
        ----------
        pairs : array_like of int, shape (P, 2)
            ``(first, second)`` model indices.
        table : array_like, shape (P, 4)
            Counts of (first wins, second wins, tie, both bad) — the layout of the
            Chatbot Arena aggregate file (``X`` and ``Y``).
        """
        pairs = np.asarray(pairs, np.intp).reshape(-1, 2)
        table = np.asarray(table, np.float64).reshape(-1, 4)
        first = np.repeat(pairs[:, 0], 4)
        second = np.repeat(pairs[:, 1], 4)
        outcome = np.tile(np.arange(4), len(pairs))
        return cls.from_cells(models, first, second, outcome, table.ravel())

    # -- views ----------------------------------------------------------------------------

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_cells(self) -> int:
        return self.first.size

    @property
    def total_votes(self) -> float:
        return float(self.votes.sum())

    def votes_per_model(self) -> np.ndarray:
        """Votes each model took part in, shape (n,)."""
        n = self.n_models
        return np.bincount(self.first, self.votes, n) + np.bincount(self.second, self.votes, n)

    def unit_types(self) -> Units:
        """The bootstrap units, materialising the one-vote-per-unit default."""
        if self.units is not None:
            return self.units
        multiplicity = np.rint(self.weight)
        if not np.allclose(multiplicity, self.weight):
            raise ValueError("weight: cells with fractional weights need explicit bootstrap units")
        members = sp.identity(self.n_cells, format="csr", dtype=np.float64)
        return Units(members, multiplicity.astype(np.int64))

    def subset(self, keep_models) -> PairwiseCounts:
        """Counts restricted to the models in ``keep_models`` (indices or a boolean mask).

        Cells with a dropped model are removed; so are units left without any cell.
        """
        mask = np.zeros(self.n_models, bool)
        mask[np.asarray(keep_models)] = True
        new_index = np.cumsum(mask) - 1
        keep = mask[self.first] & mask[self.second]
        units = None
        if self.units is not None:
            members = self.units.members[:, keep]
            alive = members.getnnz(axis=1) > 0
            units = Units(members[alive].tocsr(), self.units.multiplicity[alive])
        return PairwiseCounts(
            tuple(m for m, k in zip(self.models, mask, strict=True) if k),
            new_index[self.first[keep]],
            new_index[self.second[keep]],
            self.outcome[keep],
            self.weight[keep],
            self.votes[keep],
            units,
        )


def _validate(counts: PairwiseCounts) -> None:
    c = counts.first.size
    for name in ("second", "outcome", "weight", "votes"):
        if getattr(counts, name).shape != (c,):
            raise ValueError(f"{name}: expected shape ({c},)")
    n = len(counts.models)
    if c and (
        min(counts.first.min(), counts.second.min()) < 0
        or max(counts.first.max(), counts.second.max()) >= n
    ):
        raise ValueError("first/second: model index out of range")
    if np.any(counts.first == counts.second):
        raise ValueError("first/second: a model cannot be compared with itself")
    if c and (counts.outcome.min() < 0 or counts.outcome.max() > 3):
        raise ValueError("outcome: must be 0 (first), 1 (second), 2 (tie) or 3 (both bad)")
    if np.any(counts.weight < 0) or not np.all(np.isfinite(counts.weight)):
        raise ValueError("weight: must be finite and non-negative")
    if counts.units is not None and counts.units.members.shape[1] != c:
        raise ValueError("units: members must have one column per cell")


# -- from importer records --------------------------------------------------------------


def soft_outcome_counts(
    models: Sequence[str], first, second, p_first, weight=None
) -> PairwiseCounts:
    """Counts of soft outcomes: a verdict that the first model wins with probability ``p``
    counts ``p`` as a win of the first and ``1 - p`` as a win of the second (TrustJudge's
    likelihood-aware verdicts, a judge's verdict probabilities), times its ``weight``.

    The BT likelihood is linear in the cell weights, so a fit of these counts is the fit
    of the same verdicts with weights ``p`` and ``1 - p``; verdicts with ``p`` in {0, 1}
    are hard verdicts. Fractional cells need explicit bootstrap units
    (:meth:`PairwiseCounts.unit_types` refuses them).
    """
    p = np.asarray(p_first, np.float64)
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("p_first: probabilities must be finite and in [0, 1]")
    w = np.ones_like(p) if weight is None else np.asarray(weight, np.float64)
    first, second = np.asarray(first, np.intp), np.asarray(second, np.intp)
    return PairwiseCounts.from_cells(
        models,
        np.concatenate([first, first]),
        np.concatenate([second, second]),
        np.concatenate([np.full(p.size, FIRST), np.full(p.size, SECOND)]),
        np.concatenate([w * p, w * (1 - p)]),
    )


def counts_from_records(
    records: Iterable, *, strong_weight: float = 1.0, group_by_match: bool = True
) -> PairwiseCounts:
    """Aggregate :class:`arena.importers.records.JudgmentRecord` objects into counts.

    Parameters
    ----------
    records : iterable
        Records of any kind; only judgments are used. A pairwise judgment names the
        winning *slot* (``"a"`` = slot 0) and its ``presentation`` order; a soft
        ``preference`` in [1, 2] (AlpacaEval: 1 = slot 0 better) splits one vote into
        fractional wins; a K-wise ``ranking`` adds every pair it orders.
    strong_weight : float
        Likelihood weight of a strong verdict (``strength == 2``, "A>>B"). Arena-Hard
        uses 3.
    group_by_match : bool
        Records sharing ``match_id`` and judge/voter form one bootstrap unit (both
        orders of an LLM comparison). False makes every record its own unit (files of
        independent votes, such as aggregated counts).

    Returns
    -------
    PairwiseCounts
        Cells plus bootstrap units. Records sharing a ``match_id`` and judge/voter form
        one unit (both orders of an LLM comparison); a record with ``weight = w > 1``
        stands for ``w`` separate identical votes.
    """
    names: dict[str, int] = {}
    unit_of: dict[tuple, int] = {}
    rec_unit: list[int] = []
    rec_first: list[int] = []
    rec_second: list[int] = []
    rec_outcome: list[int] = []
    rec_amount: list[float] = []
    rec_votes: list[float] = []
    rec_mult: list[int] = []

    def index(name: str) -> int:
        return names.setdefault(name, len(names))

    def emit(unit, first, second, outcome, amount, votes, mult):
        rec_unit.append(unit)
        rec_first.append(first)
        rec_second.append(second)
        rec_outcome.append(outcome)
        rec_amount.append(amount)
        rec_votes.append(votes)
        rec_mult.append(mult)

    for rec in records:
        contestants = getattr(rec, "contestants", None)
        kind = getattr(rec, "kind", None)
        if contestants is None or kind not in ("pairwise", "ranking"):
            continue
        weight = int(rec.weight)
        if weight <= 0:
            continue
        if weight > 1 or not group_by_match:
            unit = len(unit_of)
            unit_of[("__record__", unit)] = unit
        else:
            key = (rec.match_id, rec.judge, rec.voter)
            unit = unit_of.setdefault(key, len(unit_of))
        idx = [index(c) for c in contestants]
        order = tuple(rec.presentation) if rec.presentation else tuple(range(len(idx)))
        if kind == "ranking":
            if rec.ranking is None:
                continue
            _emit_ranking(emit, unit, idx, order, rec.ranking, weight)
            continue
        shown_first, shown_second = order[0], order[1]
        f, s = idx[shown_first], idx[shown_second]
        amount = strong_weight if rec.strength == 2 else 1.0
        if rec.winner is not None:
            code = WINNER_CODE[rec.winner]
            if code < 2 and shown_first == 1:
                code = 1 - code  # winner names a slot; the cell is relative to the order shown
            emit(unit, f, s, code, amount, 1.0, weight)
        elif rec.preference is not None and 1.0 <= rec.preference <= 2.0:
            p_slot1 = rec.preference - 1.0
            p_first = p_slot1 if shown_first == 1 else 1.0 - p_slot1
            emit(unit, f, s, 0, amount * p_first, p_first, weight)
            emit(unit, f, s, 1, amount * (1.0 - p_first), 1.0 - p_first, weight)
    models = tuple(names)
    return counts_from_arrays(
        models,
        np.array(rec_unit, np.int64),
        np.array(rec_first, np.intp),
        np.array(rec_second, np.intp),
        np.array(rec_outcome, np.int64),
        np.array(rec_amount, np.float64),
        np.array(rec_votes, np.float64),
        np.array(rec_mult, np.int64),
    )


def _emit_ranking(emit, unit, idx, order, ranking, weight):
    """Break one K-wise ranking into its pairs (ordered as shown), all in one unit."""
    position = {slot: pos for pos, slot in enumerate(order)}
    slots = sorted(range(len(idx)), key=lambda s: position.get(s, s))
    for a_pos, a in enumerate(slots):
        for b in slots[a_pos + 1 :]:
            ra, rb = ranking[a], ranking[b]
            outcome = 0 if ra < rb else 1 if rb < ra else 2
            emit(unit, idx[a], idx[b], outcome, 1.0, 1.0, weight)


def counts_from_arrays(models, unit, first, second, outcome, amount, votes, mult) -> PairwiseCounts:
    """Counts and bootstrap units from flat per-vote arrays (the vectorised path).

    Parameters
    ----------
    models : sequence of str
    unit : ndarray of int, shape (V,)
        Bootstrap unit of each row (rows of one unit are resampled together).
    first, second, outcome : ndarray, shape (V,)
        Cell of each row (model shown first, model shown second, outcome code).
    amount : ndarray of float, shape (V,)
        Likelihood weight the row adds to its cell (strong verdicts > 1).
    votes : ndarray of float, shape (V,)
        Votes the row counts for (1, or a fraction for soft preferences).
    mult : ndarray of int, shape (V,)
        Multiplicity of the row's unit (identical votes), constant within a unit.

    Returns
    -------
    PairwiseCounts
        With identical units merged (:class:`Units`).
    """
    n = len(models)
    if unit.size == 0:
        empty = np.zeros(0)
        return PairwiseCounts(models, empty, empty, empty, empty, empty, None)
    cell_key = (first * n + second) * 4 + outcome
    cell_keys, cell = np.unique(cell_key, return_inverse=True)
    n_cells = cell_keys.size
    # One row per (unit, cell): a unit can hit the same cell twice (both orders agree).
    pair_key = unit * n_cells + cell
    uk, inv = np.unique(pair_key, return_inverse=True)
    amt = np.bincount(inv, amount, uk.size)
    unit_of_row = uk // n_cells
    cell_of_row = uk % n_cells
    mult_of_unit = np.zeros(unit.max() + 1, np.int64)
    mult_of_unit[unit] = mult
    members = sp.csr_matrix((amt, (unit_of_row, cell_of_row)), shape=(unit.max() + 1, n_cells))
    units = _dedupe_units(members, mult_of_unit)
    weight = units.multiplicity @ units.members
    vote_rows = np.bincount(cell, votes * mult, n_cells)
    pair, out = np.divmod(cell_keys, 4)
    keep = np.asarray(weight).ravel() > 0
    units = Units(units.members[:, keep].tocsr(), units.multiplicity)
    return PairwiseCounts(
        models,
        pair[keep] // n,
        pair[keep] % n,
        out[keep],
        np.asarray(weight).ravel()[keep],
        vote_rows[keep],
        units,
    )


_assemble = counts_from_arrays  # earlier private name, still imported by arena.boards


def _dedupe_units(members: sp.csr_matrix, multiplicity: np.ndarray) -> Units:
    """Merge identical unit types (same cells, same amounts), summing multiplicities.

    Rows are grouped by their number of non-zeros, so each group is a dense
    (units, 2·k) array of (cell, amount) that ``np.unique(axis=0)`` can merge.
    """
    members = members.tocsr()
    members.sum_duplicates()
    members.eliminate_zeros()
    members.sort_indices()
    nnz = np.diff(members.indptr)
    out_rows, out_mult = [], []
    for k in np.unique(nnz):
        if k == 0:
            continue
        rows = np.flatnonzero(nnz == k)
        starts = members.indptr[rows][:, None] + np.arange(k)
        sig = np.concatenate(
            [members.indices[starts].astype(np.float64), members.data[starts]], axis=1
        )
        uniq, inv = np.unique(sig, axis=0, return_inverse=True)
        mult = np.bincount(inv.ravel(), multiplicity[rows], uniq.shape[0])
        cols = uniq[:, :k].astype(np.intp)
        data = uniq[:, k:]
        indptr = np.arange(uniq.shape[0] + 1) * k
        out_rows.append(
            sp.csr_matrix(
                (data.ravel(), cols.ravel(), indptr), shape=(uniq.shape[0], members.shape[1])
            )
        )
        out_mult.append(mult.astype(np.int64))
    if not out_rows:
        return Units(sp.csr_matrix((0, members.shape[1])), np.zeros(0, np.int64))
    return Units(sp.vstack(out_rows, format="csr"), np.concatenate(out_mult))
