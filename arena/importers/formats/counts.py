"""Aggregated pair counts, as in the Chatbot Arena file from ``suquark/leaderbot``.

``{"models": [names], "X": [[i, j], ...], "Y": [[wins_i, wins_j, ties, both_bad], ...]}``.
Each non-zero (pair, outcome) cell becomes ONE weighted judgment (``weight`` = the
count), so 1.67M battles are ~14k rows. The file does not say which side was shown
first; model ``i`` is put in slot a.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TextIO

from arena.importers.formats._common import INT_MAX, load_json
from arena.importers.records import ImportRowError, JudgmentRecord
from arena.vocabulary import WINNERS

OUTCOMES = WINNERS  # the counts file's columns, in this order


def parse(path, voter: str = "chatbot-arena:crowd", **options) -> Iterator[JudgmentRecord]:
    data = load_json(path)
    if not isinstance(data, dict):
        raise ImportRowError(path, 1, "document", "expected an object with models, X and Y")
    models, pairs, table = data.get("models"), data.get("X"), data.get("Y")
    for field, value in (("models", models), ("X", pairs), ("Y", table)):
        if not isinstance(value, list):
            raise ImportRowError(path, 1, field, "missing or not a list")
    if not all(isinstance(m, str) and m for m in models) or len(set(models)) != len(models):
        raise ImportRowError(path, 1, "models", "expected distinct non-empty names")
    if len(pairs) != len(table):
        raise ImportRowError(path, 1, "Y", f"has {len(table)} rows but X has {len(pairs)}")
    n = len(models)
    for k, (pair, counts) in enumerate(zip(pairs, table, strict=True)):
        item = k + 1
        if not (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
        ):
            raise ImportRowError(
                path, item, "X", f"pair {item}: expected [i, j] integers, got {pair!r}"
            )
        i, j = pair
        if not (0 <= i < n and 0 <= j < n):
            raise ImportRowError(
                path, item, "X", f"pair {item}: index out of range 0..{n - 1}: {pair!r}"
            )
        if i == j:
            raise ImportRowError(path, item, "X", f"pair {item}: a model cannot battle itself")
        if not (
            isinstance(counts, list)
            and len(counts) == 4
            and all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= INT_MAX for c in counts
            )
        ):
            raise ImportRowError(
                path,
                item,
                "Y",
                f"pair {item}: expected 4 integer counts from 0 to {INT_MAX}, got {counts!r}",
            )
        for outcome, count in zip(OUTCOMES, counts, strict=True):
            if count:
                yield JudgmentRecord(
                    match_id=f"{models[i]}|{models[j]}|{outcome}",
                    contestants=(models[i], models[j]),
                    winner=outcome,
                    weight=count,
                    voter=voter,
                    verdict_label=outcome,
                    line=item,
                )


def export(records: Iterable, out: TextIO, **options) -> None:
    """Aggregate pairwise judgments into the counts layout (presentation order is dropped)."""
    cells: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    names: set[str] = set()
    for r in records:
        if (
            isinstance(r, JudgmentRecord)
            and r.kind == "pairwise"
            and r.winner is not None
            and len(r.contestants) == 2
        ):
            a, b = r.contestants
            names.update((a, b))
            outcome = OUTCOMES.index(r.winner)
            if a > b:  # store each unordered pair once, i < j in the sorted model list
                a, b = b, a
                outcome = {0: 1, 1: 0}.get(outcome, outcome)
            cells[(a, b)][outcome] += r.weight
    if not cells:
        raise ValueError("counts: nothing to export (no pairwise judgments)")
    models = sorted(names)
    index = {m: k for k, m in enumerate(models)}
    keys = sorted(cells, key=lambda p: (index[p[0]], index[p[1]]))
    json.dump(
        {
            "models": models,
            "X": [[index[a], index[b]] for a, b in keys],
            "Y": [cells[k] for k in keys],
        },
        out,
    )
