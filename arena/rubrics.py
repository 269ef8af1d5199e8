"""Rubrics: criteria with weights and level descriptions, and their weighted total (pure).

A rubric (``arena.models.Rubric``, attached to a prompt set or one prompt) lists criteria;
a rubric judge gives one pairwise verdict per criterion (``judges.verdicts.
parse_rubric_pairwise``), a voter may give one per aspect. Verdicts are slot winner names
of :mod:`arena.vocabulary` (``a`` = slot 0). This module checks a rubric's criteria, makes
the weighted total of criterion verdicts and says which criteria decided the wins, all on
numpy arrays of winner codes (one row per judgment, one column per criterion).

Weighted total
--------------
A criterion's verdict counts ``+1`` for slot 0 (``a``), ``-1`` for slot 1 (``b``), ``0``
for a tie or both bad; a missing verdict (NaN code) counts for nothing and its weight is
left out::

    T = sum_c w_c v_c / sum_{c given} w_c          (in [-1, 1])

The total's winner is ``a`` if ``T > 0``, ``b`` if ``T < 0``; at ``T = 0`` it is
``bothbad`` when every given criterion said both bad, else a tie. A criterion *decided* a
decisive total (it is pivotal) when, with its own verdict turned into a tie, the total
would no longer name that winner.

Pointwise grades
----------------
A pointwise rubric judge (mode ``rubric_single``) gives the graded answer a level per
criterion, ``l_c`` in ``1 .. L_c`` (``L_c`` the criterion's number of levels). Each level
is normalised to ``x_c = (l_c - 1) / (L_c - 1)`` in ``[0, 1]``, and the grade is their
weighted mean (:func:`grade_totals`)::

    G = sum_c w_c x_c / sum_{c given} w_c          (in [0, 1])

Two grades of one match make its pair verdict: the higher ``G`` wins, per criterion the
higher level. Which criteria decided such a win is the rule above with ``v_c = x_c(a) -
x_c(b)`` in place of ``+1/-1/0`` (:func:`grade_deciders`): the total is then ``G(a) -
G(b)``, and a criterion is pivotal when equal levels on it would not leave that winner.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from arena.vocabulary import A_CODE, B_CODE, BOTH_BAD_CODE, TIE_CODE, WINNER_CODE, WINNERS

NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
MAX_CRITERIA = 12
MAX_LEVELS = 10
MAX_TEXT = 1000
MAX_WEIGHT = 100.0


@dataclass(frozen=True)
class Criterion:
    """One criterion: a name (lower case), a weight > 0, what it asks, its levels (lowest first)."""

    name: str
    weight: float
    description: str
    levels: tuple[str, ...]


def parse_criteria(data) -> tuple[Criterion, ...]:
    """Check a rubric's criteria (the JSON stored on ``Rubric.criteria``); ValueError says
    which criterion and field is wrong."""
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_CRITERIA:
        raise ValueError(f"expected a list of 1 to {MAX_CRITERIA} criteria")
    out, seen = [], set()
    for i, item in enumerate(data):
        where = f"criterion {i + 1}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected an object with name, weight, description, levels")
        name = item.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(
                f"{where}: name must be 1-40 lower-case letters, digits, '-' or '_', "
                f"starting with a letter; got {name!r}"
            )
        if name in seen:
            raise ValueError(f"{where}: name {name!r} is used twice")
        seen.add(name)
        weight = item.get("weight", 1)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or not 0 < weight <= MAX_WEIGHT
        ):
            raise ValueError(f"{where} ({name}): weight must be a number in (0, {MAX_WEIGHT:g}]")
        description = item.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_TEXT:
            raise ValueError(f"{where} ({name}): description must be text of at most {MAX_TEXT}")
        levels = item.get("levels", [])
        if (
            not isinstance(levels, list)
            or not 2 <= len(levels) <= MAX_LEVELS
            or not all(isinstance(x, str) and x.strip() and len(x) <= MAX_TEXT for x in levels)
        ):
            raise ValueError(
                f"{where} ({name}): levels must be 2 to {MAX_LEVELS} non-empty texts, lowest first"
            )
        out.append(Criterion(name, float(weight), description.strip(), tuple(levels)))
    return tuple(out)


def verdict_codes(verdicts: Sequence[Mapping[str, str] | None], names: Sequence[str]) -> np.ndarray:
    """``(n, C)`` float winner codes of per-criterion verdicts (NaN where a criterion has none)."""
    codes = np.full((len(verdicts), len(names)), np.nan)
    column = {name: j for j, name in enumerate(names)}
    for i, given in enumerate(verdicts):
        for name, winner in (given or {}).items():
            j = column.get(name)
            if j is not None and winner in WINNER_CODE:
                codes[i, j] = WINNER_CODE[winner]
    return codes


def _values(codes: np.ndarray) -> np.ndarray:
    """+1 for slot 0, -1 for slot 1, 0 for tie / both bad, NaN where missing."""
    return np.select(
        [codes == A_CODE, codes == B_CODE, np.isnan(codes)], [1.0, -1.0, np.nan], default=0.0
    )


def weighted_totals(codes: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """The weighted total ``T`` of each row (module docstring); NaN for a row with no verdict."""
    return _weighted_mean(_values(np.asarray(codes, float)), weights)


def _weighted_mean(values: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Each row's weighted mean over its given (non-NaN) values; NaN for a row with none."""
    w = np.asarray(weights, float)
    given = ~np.isnan(values)
    mass = (given * w).sum(axis=1)
    total = np.where(given, values, 0.0) @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mass > 0, total / np.where(mass > 0, mass, 1.0), np.nan)


def total_winner_codes(codes: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """The total's winner code of each row (a, b, tie, bothbad); -1 for a row with no verdict."""
    codes = np.asarray(codes, float)
    total = weighted_totals(codes, weights)
    given = ~np.isnan(codes)
    all_bad = given.any(axis=1) & ((codes == BOTH_BAD_CODE) | ~given).all(axis=1)
    out = np.where(all_bad, BOTH_BAD_CODE, TIE_CODE)
    out = np.where(total > 0, A_CODE, np.where(total < 0, B_CODE, out))
    return np.where(np.isnan(total), -1, out).astype(np.int64)


def total_winner(verdicts: Mapping[str, str], criteria: Sequence[Criterion]) -> str:
    """The winner name of one judgment's criterion verdicts under the rubric's weights."""
    names = [c.name for c in criteria]
    code = total_winner_codes(verdict_codes([verdicts], names), [c.weight for c in criteria])[0]
    if code < 0:
        raise ValueError("no criterion verdict to total")
    return WINNERS[code]


@dataclass(frozen=True)
class Deciders:
    """Per criterion, over the judgments whose total named a winner.

    ``agreed``: its verdict named the total's winner; ``against``: it named the loser;
    ``pivotal``: the total would not name that winner with this criterion's verdict
    turned into a tie (it decided the win). ``decisive`` counts those judgments."""

    names: tuple[str, ...]
    agreed: np.ndarray
    against: np.ndarray
    pivotal: np.ndarray
    decisive: int


def deciders(codes: np.ndarray, weights: Sequence[float], names: Sequence[str]) -> Deciders:
    """Which criteria decided the wins (vectorised over judgments and criteria)."""
    codes = np.asarray(codes, float).reshape(-1, len(names))
    return _decided(_values(codes), weights, names)


def _decided(values: np.ndarray, weights: Sequence[float], names: Sequence[str]) -> Deciders:
    """:func:`deciders` on each row's per-criterion values (positive: for slot 0)."""
    w = np.asarray(weights, float)
    total = _weighted_mean(values, w)
    sign = np.sign(np.round(np.nan_to_num(total), 9))  # equal grades tie, whatever rounding
    decisive = sign != 0
    present = np.where(np.isnan(values), 0.0, values)
    given = ~np.isnan(values)
    mass = (given * w).sum(axis=1, keepdims=True)
    # the total with criterion c tied: (T * mass - w_c v_c) / mass; same sign test
    without = total[:, None] * mass - present * w
    agreed = (present * sign[:, None] > 0) & decisive[:, None]
    against = (present * sign[:, None] < 0) & decisive[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        tied = np.round(np.nan_to_num(without / mass), 9)  # the total with c tied
    pivotal = agreed & (tied * sign[:, None] <= 0)
    return Deciders(
        names=tuple(names),
        agreed=agreed.sum(axis=0),
        against=against.sum(axis=0),
        pivotal=pivotal.sum(axis=0),
        decisive=int(decisive.sum()),
    )


# --- pointwise grades (module docstring) ---------------------------------------------------
def normalised_levels(
    grades: Sequence[Mapping[str, int] | None], criteria: Sequence[Criterion]
) -> np.ndarray:
    """``(n, C)`` levels of pointwise grades as ``(l - 1) / (L - 1)`` in ``[0, 1]`` (NaN where
    a grade has no level for a criterion, or one outside its levels)."""
    levels = np.full((len(grades), len(criteria)), np.nan)
    column = {c.name: j for j, c in enumerate(criteria)}
    for i, given in enumerate(grades):
        for name, level in (given or {}).items():
            j = column.get(name)
            if j is not None and isinstance(level, int | float) and not isinstance(level, bool):
                levels[i, j] = level
    top = np.asarray([len(c.levels) for c in criteria], float)
    x = (levels - 1) / (top - 1)
    return np.where((x >= 0) & (x <= 1), x, np.nan)


def grade_totals(
    grades: Sequence[Mapping[str, int] | None], criteria: Sequence[Criterion]
) -> np.ndarray:
    """Each pointwise grade's weighted total ``G`` in ``[0, 1]`` (NaN with no level given)."""
    x = normalised_levels(grades, criteria)
    return _weighted_mean(x, [c.weight for c in criteria])


def grade_deciders(
    slot0: Sequence[Mapping[str, int] | None],
    slot1: Sequence[Mapping[str, int] | None],
    criteria: Sequence[Criterion],
) -> Deciders:
    """Which criteria decided the wins of matches graded pointwise (row i: the grades of
    slot 0 and slot 1 of one match), the module docstring's rule on level differences."""
    names = [c.name for c in criteria]
    values = normalised_levels(slot0, criteria) - normalised_levels(slot1, criteria)
    return _decided(values.reshape(-1, len(names)), [c.weight for c in criteria], names)
