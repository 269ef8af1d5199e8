"""The judgment vocabulary: winner codes and presentation orders, written once.

Pure (no Django): the models, the boards, the importers, the rating engine and the audit
all read these names instead of spelling ``"bothbad"`` or ``"1,0"`` themselves.

Winner
    Which *slot* of a match won, whatever order the judge saw: ``a`` = slot 0, ``b`` =
    slot 1, ``tie``, ``bothbad`` (a tie where both answers are bad). As integer codes
    (for numpy): a=0, b=1, tie=2, bothbad=3, the codes of :mod:`arena.ratings.counts` and
    :mod:`judges.audit_metrics.verdicts`.
Presentation
    The slot order shown to the judge, comma-separated: ``"0,1"`` = slot 0 shown first,
    ``"1,0"`` = slot 1 shown first (the swapped order of a pair).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

A, B, TIE, BOTH_BAD = "a", "b", "tie", "bothbad"
WINNERS: tuple[str, ...] = (A, B, TIE, BOTH_BAD)
WINNER_CODE: dict[str, int] = {winner: code for code, winner in enumerate(WINNERS)}
A_CODE, B_CODE, TIE_CODE, BOTH_BAD_CODE = range(4)

IN_ORDER = "0,1"  # a pair shown in slot order (slot 0 first)
SWAPPED = "1,0"  # a pair shown swapped (slot 1 first)


def winner_codes(winners: Iterable[str]) -> np.ndarray:
    """Winner names -> int64 codes (a=0, b=1, tie=2, bothbad=3); KeyError on anything else."""
    winners = list(winners)
    return np.fromiter((WINNER_CODE[w] for w in winners), dtype=np.int64, count=len(winners))


def winner_of_slot(slot: int | None) -> str:
    """The winner name of a pairwise slot (0 -> a, 1 -> b, None -> tie)."""
    return TIE if slot is None else WINNERS[slot]


def presentation(order: Sequence[int]) -> str:
    """The stored presentation of a slot order: (1, 0) -> "1,0"."""
    return ",".join(str(int(slot)) for slot in order)


def in_order(k: int) -> str:
    """The presentation of a k-way match shown in slot order: "0,1,...,k-1"."""
    return presentation(range(k))


def parse_presentation(text: str) -> tuple[int, ...]:
    """ "1,0" -> (1, 0): the slots in the order they were shown."""
    return tuple(int(part) for part in text.split(","))


def slot_zero_first(text: str) -> bool:
    """Whether slot 0 was shown first in this presentation."""
    return text.split(",", 1)[0] == "0"


def slot_zero_first_array(presentations: Iterable[str]) -> np.ndarray:
    """Vectorised :func:`slot_zero_first` over a column of presentations."""
    values = list(presentations)
    return np.fromiter((slot_zero_first(p) for p in values), dtype=bool, count=len(values))
