"""Matchmaking: live pairing policies and evaluation designs. Pure numpy, no Django.

- :mod:`.pairing` — probability of each eligible pair for human battles and adaptive
  runs ("uniform", "boost-new", "info-gain", "thompson", "ucb"): :func:`pair_weights`,
  :func:`draw_pair`.
- Evaluation designs, each a planner with ``planned_calls(n_models, n_prompts,
  both_orders)`` and ``start(models, prompts, rng) -> Plan`` (see :mod:`.plan`):
  :class:`RoundRobin`, :class:`FixedAnchor`, :class:`MediocreAnchor` (:mod:`.designs`),
  :class:`SingleElimination`, :class:`Swiss` (:mod:`.tournament`), :class:`Adaptive`
  (:mod:`.adaptive`), :class:`Placement` (one newcomer on an existing board,
  :mod:`.placement`), :class:`PRP` (per-prompt PRP sorting of the answers, :mod:`.prp`).
- :mod:`.power` — prompts needed to detect a win-rate difference against an anchor.
- :mod:`.simulate` — known-strength worlds and a simulated judge, to compare designs;
  live boards voted on by a pairing policy (:func:`.simulate.simulate_live`).
- :mod:`._fit` — the one BT fit every design ends with (switch solvers here).
"""

from ._fit import PRIOR, fit_scores, laplace_covariance
from .adaptive import Adaptive
from .designs import FixedAnchor, MediocreAnchor, RoundRobin
from .pairing import POLICIES, draw_pair, expected_information, pair_weights
from .placement import Placement
from .plan import Call, Design, Plan, Verdict
from .power import detectable_difference, prompts_needed, score_variance
from .prp import PRP
from .tournament import SingleElimination, Swiss, bracket_order, swiss_pairing

DESIGNS = {
    d.name: d
    for d in (
        RoundRobin,
        FixedAnchor,
        MediocreAnchor,
        SingleElimination,
        Swiss,
        Adaptive,
        Placement,
        PRP,
    )
}
"""Design classes by name (the ``design`` field of an EvaluationRun): construct with
keyword parameters, e.g. ``DESIGNS["adaptive"](fraction=0.2)``."""

__all__ = [
    "DESIGNS",
    "POLICIES",
    "PRIOR",
    "Adaptive",
    "Placement",
    "PRP",
    "Call",
    "Design",
    "FixedAnchor",
    "MediocreAnchor",
    "Plan",
    "RoundRobin",
    "SingleElimination",
    "Swiss",
    "Verdict",
    "bracket_order",
    "detectable_difference",
    "draw_pair",
    "expected_information",
    "fit_scores",
    "laplace_covariance",
    "pair_weights",
    "prompts_needed",
    "score_variance",
    "swiss_pairing",
]
