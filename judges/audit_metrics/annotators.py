"""Annotator quality in an annotation campaign: gold accuracy, agreement with the others,
time per item, flags, and Krippendorff's alpha of the whole pool.

Input is one row per answer: the item, the annotator, the verdict's nominal code (the
same code means the same verdict on that item, in slot terms), the item's gold code
(-1 for a regular item) and the seconds the answer took. Vectorised: per-item code
counts come from one ``np.add.at``; no loop over answers.

Agreement with the others is pairwise: for an answer on an item that ``m`` annotators
answered, of which ``s`` (itself included) gave the same code, it agrees with ``s - 1`` of
the ``m - 1`` others. An annotator's agreement is ``Σ (s - 1) / Σ (m - 1)`` over their
answers on regular items (the chance two answers picked at random agree, the observed
agreement of Krippendorff's alpha restricted to their pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimate import proportion
from .krippendorff import krippendorff_alpha

# Flags: an annotator is flagged, with the reasons, when one of these holds.
MIN_GOLD = 4  # gold answers before gold accuracy can flag
GOLD_FLOOR = 0.6  # ... and the Wilson interval's upper end below this
MIN_PAIRS = 10  # answer pairs with others before agreement can flag
AGREEMENT_FLOOR = 0.35  # ... and agreement below this
FAST_SECONDS = 3.0  # median seconds per item below this: not reading the answers


@dataclass(frozen=True)
class AnnotatorQuality:
    member: int
    answers: int
    gold_answers: int
    gold_correct: int
    gold_accuracy: float  # NaN without gold answers
    gold_low: float  # Wilson interval of the gold accuracy
    gold_high: float
    agreement_pairs: int
    agreement: float  # NaN without pairs
    median_seconds: float
    flags: tuple[str, ...]

    def as_dict(self) -> dict:
        out = {key: getattr(self, key) for key in self.__dataclass_fields__}
        out["flags"] = list(self.flags)
        return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()}


def annotator_quality(item, member, code, gold, seconds) -> list[AnnotatorQuality]:
    """Per annotator (sorted by member id), from parallel arrays of shape (n,)."""
    item, member, code, gold = (np.asarray(a, dtype=np.int64) for a in (item, member, code, gold))
    seconds = np.asarray(seconds, dtype=np.float64)
    members, m_idx = np.unique(member, return_inverse=True)
    regular = gold < 0
    same, others = _pairs(item[regular], code[regular])
    agree_num = np.bincount(m_idx[regular], weights=same, minlength=members.size)
    agree_den = np.bincount(m_idx[regular], weights=others, minlength=members.size)
    is_gold = ~regular
    gold_n = np.bincount(m_idx[is_gold], minlength=members.size)
    gold_ok = np.bincount(
        m_idx[is_gold], weights=code[is_gold] == gold[is_gold], minlength=members.size
    )
    answers = np.bincount(m_idx, minlength=members.size)
    out = []
    for j, who in enumerate(members):
        mine = seconds[m_idx == j]
        mine = mine[~np.isnan(mine)]
        median = float(np.median(mine)) if mine.size else float("nan")
        n_gold, n_ok = int(gold_n[j]), int(gold_ok[j])
        gold_est = proportion(n_ok, n_gold) if n_gold else None
        pairs = int(agree_den[j])
        agreement = float(agree_num[j] / pairs) if pairs else float("nan")
        flags = []
        if gold_est is not None and n_gold >= MIN_GOLD and gold_est.high < GOLD_FLOOR:
            flags.append(f"gold accuracy {n_ok}/{n_gold}")
        if pairs >= MIN_PAIRS and agreement < AGREEMENT_FLOOR:
            flags.append(f"agrees with the others {agreement:.0%} of the time")
        if mine.size >= 3 and median < FAST_SECONDS:
            flags.append(f"median {median:.1f} s per item")
        out.append(
            AnnotatorQuality(
                member=int(who),
                answers=int(answers[j]),
                gold_answers=n_gold,
                gold_correct=n_ok,
                gold_accuracy=n_ok / n_gold if n_gold else float("nan"),
                gold_low=gold_est.low if gold_est else float("nan"),
                gold_high=gold_est.high if gold_est else float("nan"),
                agreement_pairs=pairs,
                agreement=agreement,
                median_seconds=median,
                flags=tuple(flags),
            )
        )
    return out


def _pairs(item: np.ndarray, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per answer: how many others on its item gave the same code, and how many others."""
    if item.size == 0:
        return np.zeros(0), np.zeros(0)
    items, i_idx = np.unique(item, return_inverse=True)
    codes, c_idx = np.unique(code, return_inverse=True)
    counts = np.zeros((items.size, codes.size), dtype=np.int64)
    np.add.at(counts, (i_idx, c_idx), 1)
    per_item = counts.sum(axis=1)
    return (counts[i_idx, c_idx] - 1).astype(float), (per_item[i_idx] - 1).astype(float)


def pool_alpha(item, member, code, rng=None, n_boot: int = 200):
    """Krippendorff's alpha (nominal) of the answers on regular items, units = items,
    coders = annotators (:func:`judges.audit_metrics.krippendorff.krippendorff_alpha`)."""
    item, member, code = (np.asarray(a, dtype=np.int64) for a in (item, member, code))
    items, i_idx = np.unique(item, return_inverse=True)
    members, m_idx = np.unique(member, return_inverse=True)
    data = np.full((items.size, members.size), np.nan)
    data[i_idx, m_idx] = code
    return krippendorff_alpha(data, "nominal", rng=rng, n_boot=n_boot)
