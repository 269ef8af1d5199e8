"""Non-adaptive evaluation designs: round robin, fixed anchor, mediocre anchor.

Calls for ``N`` models, ``P`` prompts, ``o`` orders (1, or 2 with ``both_orders``):

==================  ==========================================  =====================
design              calls                                       N=16, P=100, o=1
==================  ==========================================  =====================
round robin         ``o · N(N-1)/2 · P``                        12 000
fixed anchor        ``o · (N-1) · P``                           1 500
mediocre anchor     ``o · (N(N-1)/2 · s + (N-1)(P - s))``       2 025 (s = 5)
==================  ==========================================  =====================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .plan import Plan, orders, size_of


class StaticPlan(Plan):
    """Plays a list of batches fixed in advance (or built from the previous verdicts)."""

    def __init__(self, n_models, n_prompts, rng, both_orders, batches):
        super().__init__(n_models, n_prompts, rng, both_orders)
        self._batches = list(batches)

    def _plan_matches(self):
        return self._batches.pop(0) if self._batches else None


def all_pairs(models: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """Every pair of ``models`` on every prompt, shape (len(prompts) · C(m, 2), 3)."""
    i, j = np.triu_indices(len(models), k=1)
    p = np.repeat(prompts, i.size)
    return np.column_stack([p, np.tile(models[i], len(prompts)), np.tile(models[j], len(prompts))])


def versus(anchor: int, models: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """Every model other than ``anchor`` against it on every prompt."""
    others = models[models != anchor]
    p = np.repeat(prompts, others.size)
    return np.column_stack([p, np.tile(others, len(prompts)), np.full(p.size, anchor)])


@dataclass(frozen=True)
class RoundRobin:
    """All pairs on every prompt, or on ``prompts`` prompts sampled without replacement."""

    prompts: int | None = None
    name: str = "round-robin"

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        return math.comb(n_models, 2) * self._used(n_prompts) * orders(both_orders)

    def start(self, models, prompts, rng, both_orders=False) -> Plan:
        n, n_prompts = size_of(models), size_of(prompts)
        chosen = np.sort(rng.permutation(n_prompts)[: self._used(n_prompts)])
        batch = all_pairs(np.arange(n), chosen)
        return StaticPlan(n, n_prompts, rng, both_orders, [batch])

    def _used(self, n_prompts: int) -> int:
        return n_prompts if self.prompts is None else min(int(self.prompts), n_prompts)


@dataclass(frozen=True)
class FixedAnchor:
    """Every model against one anchor (baseline) on every prompt — Arena-Hard's design.

    The BT fit over a star graph gives each model ``s_i - s_anchor = logit(w_i)`` with
    ``w_i`` its win rate against the anchor (ties half).
    """

    anchor: int = 0
    name: str = "anchor"

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        return (n_models - 1) * n_prompts * orders(both_orders)

    def start(self, models, prompts, rng, both_orders=False) -> Plan:
        n, n_prompts = size_of(models), size_of(prompts)
        if not 0 <= self.anchor < n:
            raise ValueError(f"anchor: index {self.anchor} is not one of the {n} models")
        batch = versus(self.anchor, np.arange(n), np.arange(n_prompts))
        return StaticPlan(n, n_prompts, rng, both_orders, [batch])


@dataclass(frozen=True)
class MediocreAnchor:
    """Screen, then anchor on a mid-ranked model (the mediocrity rule).

    1. Screening: all pairs on ``screen_prompts`` random prompts, one BT fit.
    2. The anchor is the model at ``quantile`` of that ranking (0.5: the median). A
       mid-ranked anchor keeps every win rate away from 0 and 1, where a comparison
       carries the most Fisher information ``p(1 - p)`` and a win-rate difference needs
       the fewest prompts (:func:`arena.matchmaking.power.prompts_needed`).
    3. Everyone else against the anchor on the remaining prompts.

    The final BT fit uses the screening matches too.
    """

    screen_prompts: int = 5
    quantile: float = 0.5
    name: str = "mediocre-anchor"

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        s = self._screen(n_prompts)
        return (math.comb(n_models, 2) * s + (n_models - 1) * (n_prompts - s)) * orders(both_orders)

    def start(self, models, prompts, rng, both_orders=False) -> Plan:
        n, n_prompts = size_of(models), size_of(prompts)
        if not 0.0 <= self.quantile <= 1.0:
            raise ValueError("quantile: expected a value in [0, 1]")
        return _MediocrePlan(n, n_prompts, rng, both_orders, self._screen(n_prompts), self.quantile)

    def _screen(self, n_prompts: int) -> int:
        if not 1 <= self.screen_prompts <= n_prompts:
            raise ValueError(f"screen_prompts: expected 1..{n_prompts}, got {self.screen_prompts}")
        return int(self.screen_prompts)


class _MediocrePlan(Plan):
    def __init__(self, n_models, n_prompts, rng, both_orders, screen: int, quantile: float):
        super().__init__(n_models, n_prompts, rng, both_orders)
        shuffled = rng.permutation(n_prompts)
        self.screen_prompts = np.sort(shuffled[:screen])
        self.anchor_prompts = np.sort(shuffled[screen:])
        self.quantile = quantile
        self.anchor: int | None = None
        self.screening: np.ndarray | None = None
        self._stage = 0

    def _plan_matches(self):
        self._stage += 1
        if self._stage == 1:
            return all_pairs(np.arange(self.n_models), self.screen_prompts)
        if self._stage == 2:
            ranked = self.ranking()
            self.anchor = int(ranked[math.floor(self.quantile * (self.n_models - 1) + 0.5)])
            self.screening = self.scores()
            return versus(self.anchor, np.arange(self.n_models), self.anchor_prompts)
        return None

    def report(self) -> dict:
        """The anchor it chose and the candidates it considered (model indices; scores
        in logits from the screening fit), once screening is done; {} before."""
        if self.anchor is None:
            return {}
        ranked = np.argsort(-self.screening, kind="stable")
        return {
            "anchor": self.anchor,
            "quantile": self.quantile,
            "screening_prompts": int(self.screen_prompts.size),
            "candidates": [
                {"model": int(i), "rank": r + 1, "score": float(self.screening[i])}
                for r, i in enumerate(ranked.tolist())
            ],
            "why": (
                f"the model at quantile {self.quantile:g} of the screening ranking "
                f"(rank {int(np.flatnonzero(ranked == self.anchor)[0]) + 1} of "
                f"{self.n_models}): win rates against a mid-ranked anchor stay near 50%, "
                "where a comparison carries the most information p(1 - p), so every "
                "model's difference from it needs the fewest prompts"
            ),
        }
