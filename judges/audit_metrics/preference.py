"""Self- and family-preference of a judge, measured against human votes.

A judge built by a model family may favour that family's answers. Raw win rates can't
show it (the family may simply be good), so the judge's win rate for its own side is
compared with the humans' win rate for the same side *on the same pairs*.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimate import LEVEL, N_BOOT, Estimate, bootstrap_estimates, patterns


@dataclass(frozen=True)
class SelfPreference:
    """Own-side win rates and their difference.

    Attributes
    ----------
    judge : Estimate
        Mean score the judge gives the owner's answer (1 win, 0.5 tie, 0 loss).
    human : Estimate
        Mean score humans give the same answers on the same pairs.
    difference : Estimate
        ``judge - human``; positive means the judge favours its own side.
    """

    judge: Estimate
    human: Estimate
    difference: Estimate

    def as_dict(self) -> dict:
        return {k: getattr(self, k).as_dict() for k in ("judge", "human", "difference")}


def own_side(owner_a, owner_b, owner) -> np.ndarray:
    """Per pair: 0 if only answer A is the owner's, 1 if only B is, -1 otherwise.

    ``owner_a``/``owner_b`` are the model (self-preference) or family (family
    preference) of each answer; ``owner`` is the judge's.
    """
    oa = np.asarray(owner_a) == owner
    ob = np.asarray(owner_b) == owner
    return np.where(oa & ~ob, 0, np.where(ob & ~oa, 1, -1))


def self_preference(
    judge_score,
    human_score,
    owner_a,
    owner_b,
    owner,
    rng=None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
) -> SelfPreference:
    """Judge's own-side win rate minus the humans', on the pairs with one own answer.

    With ``s`` the score of answer A (1 = A won, 0 = B won, 0.5 = tie; for several
    human votes, the share won by A), the owner's score on a pair is ``s`` if A is the
    owner's and ``1 - s`` if B is. Over the ``n`` pairs where exactly one answer is the
    owner's and both scores exist::

        judge = mean(own judge score),  human = mean(own human score),
        difference = judge - human

    with a paired bootstrap over pairs.

    Parameters
    ----------
    judge_score, human_score : array_like of float, shape (n,)
        Scores of answer A in [0, 1]; NaN where missing. ``verdict_score`` turns
        answer-terms verdict codes into scores.
    owner_a, owner_b : array_like, shape (n,)
        Model or family of each answer.
    owner
        The judge's model (self-preference) or family (family preference).
    """
    sj = np.asarray(judge_score, dtype=np.float64)
    sh = np.asarray(human_score, dtype=np.float64)
    side = own_side(owner_a, owner_b, owner)
    keep = (side >= 0) & np.isfinite(sj) & np.isfinite(sh)
    flip = side[keep] == 1
    oj = np.where(flip, 1 - sj[keep], sj[keep])
    oh = np.where(flip, 1 - sh[keep], sh[keep])
    (pj, ph), counts = patterns(oj, oh)
    values = np.stack([pj, ph, pj - ph], axis=1)  # (P, 3)

    def means(w: np.ndarray) -> np.ndarray:
        return (w @ values) / w.sum(axis=1, keepdims=True)

    judge, human, difference = bootstrap_estimates(means, counts, rng, n_boot, level)
    return SelfPreference(judge=judge, human=human, difference=difference)
