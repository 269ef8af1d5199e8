"""Placement: put one new model on an existing board with few judge calls.

The board's models keep the strengths it gave them (``strengths``, logits, frozen when
the run is created); only the newcomer's strength ``θ`` is unknown. Its posterior is kept
as a Gaussian ``N(θ̂, 1/I)``: ``θ̂`` the MAP of the newcomer's verdicts against the
anchors, with the anchors held fixed and a weak prior centred on the board (mean of the
anchors, variance ``var(anchors) + 1``), and ``I = prior + Σ_j n_j σ(θ̂ - s_j)(1 - σ(θ̂ - s_j))``
the Fisher information of those verdicts.

Each batch judges the newcomer against the ``batch_size`` anchors whose comparison is
expected to be most informative *under the current posterior*,
``E[σ(θ - s_j)(1 - σ(θ - s_j))]`` with ``θ ~ N(θ̂, 1/I)`` (Gauss-Hermite): while ``θ̂``
is uncertain the chosen anchors spread over the board, and as it firms up they close in
on the newcomer's neighbours, narrowing like a binary search. Each comparison uses the
prompt the anchor has played the newcomer on least (random among equals).

The plan stops once the 95% interval of ``θ`` is narrower than ``ci_width`` rating
points (full width) or holds at most one anchor (the newcomer's place is then known to
within one rank: a newcomer far above or below the board settles fast), when ``budget`` calls are spent (default: the newcomer against every
anchor on every prompt, i.e. never more than all pairs would take for it), or when every
(anchor, prompt) comparison has been made. Its scores are the anchors' strengths with
``θ̂`` for the newcomer; the run's verdicts then join the board's own in one fit over
everything (an incomplete comparison graph: the newcomer meets only some anchors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arena.ratings.scale import ELO_SCALE

from ._fit import _sigmoid
from .plan import Plan, orders, size_of

Z95 = 1.959963984540054
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(24)  # E[f(x)], x ~ N(0, 1)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class Placement:
    """Place ``newcomer`` among models of known ``strengths`` (logits, one per model;
    the newcomer's own entry is ignored).

    Parameters
    ----------
    newcomer : int
        Index of the new model.
    strengths : tuple of float
        The existing board's strengths of every model, in the run's model order.
    ci_width : float, optional
        Stop when the newcomer's 95% interval is narrower than this (rating points).
        Default: the median gap between neighbouring anchors on the board (narrow enough
        to tell the newcomer's neighbours apart).
    batch_size : int
        Anchors judged per batch (one comparison each, or two with both orders).
    budget : int, optional
        Most judge calls (default: the newcomer against every anchor on every prompt).
    """

    newcomer: int = 0
    strengths: tuple[float, ...] = ()
    ci_width: float | None = None
    batch_size: int = 8
    budget: int | None = None
    name: str = "placement"

    def interval_width(self, strengths, newcomer: int) -> float:
        """The target width of the newcomer's 95% interval, rating points."""
        if self.ci_width is not None:
            return float(self.ci_width)
        anchors = np.sort(np.delete(np.asarray(strengths, np.float64), newcomer))
        gaps = np.diff(anchors) * ELO_SCALE
        return float(2 * np.median(gaps)) if gaps.size else 50.0

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        """The most calls the plan may issue (it usually stops well before)."""
        all_pairs = (n_models - 1) * n_prompts * orders(both_orders)
        return all_pairs if self.budget is None else min(int(self.budget), all_pairs)

    def start(self, models, prompts, rng, both_orders=False) -> Plan:
        n, n_prompts = size_of(models), size_of(prompts)
        if not 0 <= self.newcomer < n:
            raise ValueError(f"newcomer: expected a model index in 0..{n - 1}")
        if len(self.strengths) != n:
            raise ValueError(f"strengths: expected one per model ({n}), got {len(self.strengths)}")
        if not all(math.isfinite(s) for s in self.strengths):
            raise ValueError("strengths: expected finite numbers")
        if self.ci_width is not None and not self.ci_width > 0:
            raise ValueError("ci_width: expected a positive number of rating points")
        if self.batch_size < 1:
            raise ValueError("batch_size: expected at least 1")
        if self.budget is not None and self.budget < 1:
            raise ValueError("budget: expected at least 1 call")
        return _PlacementPlan(
            n,
            n_prompts,
            rng,
            both_orders,
            newcomer=self.newcomer,
            strengths=np.asarray(self.strengths, np.float64),
            half_width=self.interval_width(self.strengths, self.newcomer) / 2 / ELO_SCALE,
            batch=self.batch_size,
            budget=self.planned_calls(n, n_prompts, both_orders),
        )


class _PlacementPlan(Plan):
    def __init__(
        self,
        n_models,
        n_prompts,
        rng,
        both_orders,
        *,
        newcomer,
        strengths,
        half_width,
        batch,
        budget,
    ):
        super().__init__(n_models, n_prompts, rng, both_orders)
        self.newcomer, self.budget, self.batch = newcomer, budget, batch
        self.half_width = half_width
        self.anchors = np.delete(np.arange(n_models), newcomer)
        self.anchor_strengths = strengths[self.anchors]
        self.prior_mean = float(self.anchor_strengths.mean())
        self.prior_precision = 1.0 / (float(self.anchor_strengths.var()) + 1.0)
        self.strengths = strengths.copy()
        # Comparisons made per (anchor, prompt): an anchor plays each prompt once first.
        self.used = np.zeros((self.anchors.size, n_prompts), dtype=np.int32)
        self.theta = self.prior_mean
        self.information = self.prior_precision

    # -- the newcomer's posterior ----------------------------------------------------------

    def _fit_newcomer(self) -> None:
        """Newton on the newcomer's log-posterior, the anchors fixed."""
        won = self.wins[self.newcomer, self.anchors]
        lost = self.wins[self.anchors, self.newcomer]
        games = won + lost
        theta = self.theta
        for _ in range(50):
            p = _sigmoid(theta - self.anchor_strengths)
            grad = np.sum(won - games * p) - self.prior_precision * (theta - self.prior_mean)
            hess = np.sum(games * p * (1 - p)) + self.prior_precision
            step = grad / hess
            theta += float(np.clip(step, -2.0, 2.0))
            if abs(step) < 1e-10:
                break
        p = _sigmoid(theta - self.anchor_strengths)
        self.theta = theta
        self.information = float(np.sum(games * p * (1 - p)) + self.prior_precision)

    @property
    def interval_half_width(self) -> float:
        """Half the 95% interval of the newcomer's strength (logits)."""
        return Z95 / math.sqrt(self.information)

    @property
    def settled(self) -> bool:
        """The interval is narrower than the target, or holds at most one anchor (the
        newcomer's place is then known to one rank)."""
        half = self.interval_half_width
        inside = np.count_nonzero(np.abs(self.anchor_strengths - self.theta) < half)
        return half < self.half_width or (self.calls_issued > 0 and inside <= 1)

    def expected_information(self) -> np.ndarray:
        """Per anchor: E[p(1 - p)] of one comparison, θ ~ N(θ̂, 1/I)."""
        theta = self.theta + _NODES / math.sqrt(self.information)  # (nodes,)
        p = _sigmoid(theta[:, None] - self.anchor_strengths[None, :])
        return _WEIGHTS @ (p * (1 - p))

    # -- the plan ----------------------------------------------------------------------------

    def _plan_matches(self):
        per_match = orders(self.both_orders)
        left = (self.budget - self.calls_issued) // per_match
        if left <= 0 or self.settled:
            return None
        open_anchor = (self.used == 0).any(axis=1)
        if not open_anchor.any():
            return None  # every (anchor, prompt) comparison made
        gain = np.where(open_anchor, self.expected_information(), -np.inf)
        take = min(self.batch, left, int(open_anchor.sum()))
        chosen = np.argsort(-gain, kind="stable")[:take]
        prompts = np.empty(take, dtype=np.intp)
        for r, a in enumerate(chosen.tolist()):  # at most batch_size anchors per batch
            free = np.flatnonzero(self.used[a] == 0)
            prompts[r] = free[self.rng.integers(free.size)]
        self.used[chosen, prompts] += 1
        newcomer = np.full(take, self.newcomer)
        return np.column_stack([prompts, newcomer, self.anchors[chosen]])

    def _learn(self, matches, score_i) -> None:
        if len(matches):
            self._fit_newcomer()

    def report(self) -> dict:
        """Where the newcomer stands now (logits) and whom it has met (model indices)."""
        games = self.wins[self.newcomer] + self.wins[:, self.newcomer]
        met = np.flatnonzero(games > 0)
        return {
            "newcomer": self.newcomer,
            "score": float(self.theta),
            "half_width": float(self.interval_half_width),
            "settled": bool(self.settled),
            "met": [{"model": int(m), "games": float(games[m])} for m in met.tolist()],
        }

    def scores(self, prior: float = 0.0) -> np.ndarray:
        """The board's strengths, the newcomer at its estimate."""
        out = self.strengths.copy()
        out[self.newcomer] = self.theta
        return out
