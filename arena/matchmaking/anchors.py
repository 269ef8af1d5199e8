"""Anchor selection: which of an LLM-judge run's matches humans should judge.

The human-anchored board (:mod:`arena.ratings.anchored`) is unbiased for any inclusion
probabilities it is told, and most precise when labels go where the human label is
least predictable from the judge's verdict. The matches are split into strata:

- ``split``: the judge's verdicts on the match disagree (the two presentation orders,
  repeats or jurors gave opposite verdicts);
- ``uncertain``: the judge's soft verdict is between 0.25 and 0.75 (its probabilities,
  or a tie, or a win against a tie);
- ``boundary``: the two models are neighbours in the judge's ranking, or within
  ``boundary_gap`` logits of each other: the pairs whose order the board decides;
- ``confident``: the rest.

A share ``uniform_share`` of the budget is spread over every match alike (so every
match has a probability of at least ``uniform_share · budget / N``: a confident but
wrong judge is still caught, and the inverse-probability weights stay bounded); the
rest goes to the strata by Neyman allocation, ``n_h ∝ N_h S_h``, with ``S_h`` the
predicted spread of the human label around the judge's verdict in the stratum:
``sqrt(max(Ŷ(1 - Ŷ), floor))`` averaged, times ``boundary_weight`` on boundary pairs
(their errors move ranks). Every match of a stratum has the same probability ``π_h``
(capped at 1, the excess handed to the other strata), and a stratum's sample is a
simple random sample of ``π_h N_h`` matches, rounded at random so that each match's
inclusion probability is exactly ``π_h``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATA: tuple[str, ...] = ("split", "uncertain", "boundary", "confident")
SPLIT, UNCERTAIN, BOUNDARY, CONFIDENT = range(4)


@dataclass(frozen=True, eq=False)
class AnchorPlan:
    """The anchor selection of a run's matches (one entry a match).

    ``stratum`` indexes :data:`STRATA`; ``inclusion`` is each match's probability of being
    chosen; ``chosen`` the matches drawn. ``summary()`` gives one row per stratum.
    """

    stratum: np.ndarray
    inclusion: np.ndarray
    chosen: np.ndarray
    budget: float
    uniform_share: float

    def summary(self) -> list[dict]:
        rows = []
        for h, name in enumerate(STRATA):
            members = self.stratum == h
            rows.append(
                {
                    "stratum": name,
                    "matches": int(members.sum()),
                    "chosen": int((members & self.chosen).sum()),
                    "probability": float(self.inclusion[members][0]) if members.any() else 0.0,
                }
            )
        return rows


def strata(
    first: np.ndarray,
    second: np.ndarray,
    judge: np.ndarray,
    spread: np.ndarray,
    scores: np.ndarray,
    *,
    boundary_gap: float = 0.2,
) -> np.ndarray:
    """Each match's stratum (module docstring).

    ``judge`` is the judge's soft verdict per match, ``spread`` the range (max - min) of
    its individual verdicts on the match, ``scores`` the judge board's strengths (logits)
    per model.
    """
    scores = np.asarray(scores, np.float64)
    rank = np.empty(scores.size, np.intp)
    rank[np.argsort(-scores, kind="stable")] = np.arange(scores.size)
    near = (np.abs(rank[first] - rank[second]) == 1) | (
        np.abs(scores[first] - scores[second]) < boundary_gap
    )
    out = np.full(len(first), CONFIDENT, np.int8)
    out[near] = BOUNDARY
    out[(judge >= 0.25) & (judge <= 0.75)] = UNCERTAIN
    out[spread >= 1.0] = SPLIT
    return out


def inclusion_probabilities(
    stratum: np.ndarray,
    judge: np.ndarray,
    budget: float,
    *,
    uniform_share: float = 0.3,
    boundary_weight: float = 1.5,
    floor: float = 0.04,
) -> np.ndarray:
    """Each match's probability of being chosen, ``budget`` labels expected in all."""
    n = len(stratum)
    if n == 0:
        return np.zeros(0)
    if not 0 < budget <= n:
        raise ValueError(f"budget: expected between 1 and the {n} matches, got {budget:g}")
    if not 0 <= uniform_share <= 1:
        raise ValueError("uniform_share: expected a share in [0, 1]")
    size = np.bincount(stratum, minlength=len(STRATA)).astype(np.float64)
    spread = np.sqrt(np.maximum(judge * (1 - judge), floor))
    sd = np.bincount(stratum, spread, len(STRATA)) / np.maximum(size, 1)
    sd[BOUNDARY] *= boundary_weight
    # per-stratum rates: a uniform floor plus Neyman allocation of the rest, capped at 1
    rate = np.full(len(STRATA), uniform_share * budget / n)
    rest = (1 - uniform_share) * budget
    open_ = size > 0
    for _ in range(len(STRATA)):
        share = np.where(open_, size * sd, 0.0)
        if share.sum() <= 0:
            share = np.where(open_, size, 0.0)
        extra = np.divide(rest * share / share.sum(), size, out=np.zeros_like(size), where=size > 0)
        over = open_ & (rate + extra > 1)
        if not over.any():
            rate = rate + np.where(open_, extra, 0.0)
            break
        rest -= ((1 - rate) * size)[over].sum()  # these take every match; the rest moves on
        rate[over] = 1.0
        open_ &= ~over
    return np.clip(rate, 0.0, 1.0)[stratum]


def draw_anchors(
    stratum: np.ndarray, inclusion: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A stratified simple random sample with the given per-stratum probabilities: in
    stratum h, ``floor(π_h N_h)`` matches plus one more with probability the fraction."""
    chosen = np.zeros(len(stratum), bool)
    for h in np.unique(stratum):
        members = np.flatnonzero(stratum == h)
        expected = inclusion[members[0]] * members.size
        take = int(np.floor(expected)) + int(rng.random() < expected - np.floor(expected))
        chosen[rng.choice(members, size=min(take, members.size), replace=False)] = True
    return chosen


def select_anchors(
    first: np.ndarray,
    second: np.ndarray,
    judge: np.ndarray,
    spread: np.ndarray,
    scores: np.ndarray,
    budget: float,
    rng: np.random.Generator,
    *,
    uniform_share: float = 0.3,
    boundary_gap: float = 0.2,
    boundary_weight: float = 1.5,
) -> AnchorPlan:
    """Strata, inclusion probabilities and the draw, in one call (module docstring)."""
    stratum = strata(first, second, judge, spread, scores, boundary_gap=boundary_gap)
    inclusion = inclusion_probabilities(
        stratum, judge, budget, uniform_share=uniform_share, boundary_weight=boundary_weight
    )
    return AnchorPlan(
        stratum=stratum,
        inclusion=inclusion,
        chosen=draw_anchors(stratum, inclusion, rng),
        budget=float(budget),
        uniform_share=float(uniform_share),
    )
