"""Judge-effects Bradley-Terry: one fit of the models and of each judge's position and tie terms.

Several judges' verdicts on the same models, fitted together (a Davidson model with judge
effects). For judge ``j`` shown ``f`` first and ``s`` second::

    P(f wins)  ∝ exp(θ_f + γ_j)
    P(s wins)  ∝ exp(θ_s)
    P(tie)     ∝ exp(ν_j + (θ_f + γ_j + θ_s) / 2)

``θ`` are the models' strengths (sum zero), ``γ_j`` judge ``j``'s first-slot advantage
(its position bias, in logits: ``σ(γ_j)`` is how often it picks the first of two equal
answers when it does not call a tie) and ``ν_j`` its tie propensity (its leniency: how
readily it calls two answers equal; ``P(tie)`` between equals is ``e^ν / (2 cosh(γ/2)
+ e^ν)``). One pooled fit gives every model the information of all judges while each
judge's bias is taken out instead of flowing into the ratings. "Both bad" counts as a
tie.

The negative log-likelihood of the aggregated cells (judge, first, second, outcome) is
minimised by L-BFGS with its analytic gradient, accumulated with ``bincount``; a small
ridge (``prior``) keeps a disconnected board finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .counts import BOTH_BAD, FIRST, SECOND, TIE
from .leaderboard import Leaderboard, ranked_rows
from .scale import ELO_OFFSET, ELO_SCALE

DEFAULT_PRIOR = 1e-3


@dataclass(frozen=True)
class JudgeEffects:
    """The fit: ``strength`` per model (logits, sum zero), ``position`` (γ) and ``tie`` (ν)
    per judge, ``votes`` per model, ``n_votes``, and whether the solver ``converged``."""

    strength: np.ndarray
    position: np.ndarray
    tie: np.ndarray
    votes: np.ndarray
    n_votes: float
    converged: bool

    def first_share(self) -> np.ndarray:
        """Per judge: P(first wins | two equal answers, no tie) = σ(γ)."""
        return 1.0 / (1.0 + np.exp(-self.position))

    def tie_rate(self) -> np.ndarray:
        """Per judge: P(tie) between two equal answers."""
        g = self.position
        return np.exp(self.tie) / (np.exp(g / 2) + np.exp(-g / 2) + np.exp(self.tie))


def fit_judge_effects(
    n_models: int,
    n_judges: int,
    judge,
    first,
    second,
    outcome,
    weight=None,
    *,
    prior: float = DEFAULT_PRIOR,
) -> JudgeEffects:
    """Fit strengths and per-judge position and tie terms (see the module docstring).

    Parameters
    ----------
    judge, first, second, outcome : int arrays
        One row per verdict (or cell with ``weight`` verdicts): the judge's index, the
        models shown first and second, and the outcome code of
        :mod:`arena.ratings.counts` (FIRST, SECOND, TIE, BOTH_BAD) in shown order.
    """
    judge, first, second, outcome = (
        np.asarray(x, np.int64) for x in (judge, first, second, outcome)
    )
    w = np.ones(len(judge)) if weight is None else np.asarray(weight, np.float64)
    if np.any((outcome < FIRST) | (outcome > BOTH_BAD)):
        raise ValueError("outcome codes must be FIRST, SECOND, TIE or BOTH_BAD")
    outcome = np.where(outcome == BOTH_BAD, TIE, outcome)
    n, m = n_models, n_judges
    for name, x, top in (("judge", judge, m), ("first", first, n), ("second", second, n)):
        if x.size and (x.min() < 0 or x.max() >= top):
            raise ValueError(f"{name} indices must be in 0..{top - 1}")
    # one row per cell (judge, first, second, outcome): a 1-D key sorts fast
    key = ((judge * n + first) * n + second) * 3 + outcome
    cells, inverse = np.unique(key, return_inverse=True)
    w = np.bincount(inverse.ravel(), w, minlength=len(cells))
    j, f, s, o = cells // (3 * n * n), (cells // (3 * n)) % n, (cells // 3) % n, cells % 3
    is_first, is_second, is_tie = (o == FIRST), (o == SECOND), (o == TIE)

    def objective(x):
        theta, gamma, nu = x[:n], x[n : n + m], x[n + m :]
        u1 = theta[f] + gamma[j]
        u2 = theta[s]
        u3 = nu[j] + 0.5 * (u1 + u2)
        top = np.maximum(np.maximum(u1, u2), u3)
        e1, e2, e3 = np.exp(u1 - top), np.exp(u2 - top), np.exp(u3 - top)
        z = e1 + e2 + e3
        log_z = top + np.log(z)
        chosen = np.where(is_first, u1, np.where(is_second, u2, u3))
        nll = float(np.sum(w * (log_z - chosen))) + 0.5 * prior * float(theta @ theta)
        # d nll / d u_k = w (p_k - 1[o = k])
        g1 = w * (e1 / z - is_first)
        g2 = w * (e2 / z - is_second)
        g3 = w * (e3 / z - is_tie)
        g_theta = (
            np.bincount(f, g1 + 0.5 * g3, minlength=n)
            + np.bincount(s, g2 + 0.5 * g3, minlength=n)
            + prior * theta
        )
        g_gamma = np.bincount(j, g1 + 0.5 * g3, minlength=m)
        g_nu = np.bincount(j, g3, minlength=m)
        return nll, np.concatenate([g_theta, g_gamma, g_nu])

    x0 = np.zeros(n + 2 * m)
    x0[n + m :] = -1.0
    result = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    theta = result.x[:n] - result.x[:n].mean()
    votes = np.bincount(f, w, minlength=n) + np.bincount(s, w, minlength=n)
    return JudgeEffects(
        strength=theta,
        position=result.x[n : n + m],
        tie=result.x[n + m :],
        votes=votes,
        n_votes=float(w.sum()),
        converged=bool(result.success),
    )


def judge_effects_leaderboard(
    models, judges, judge, first, second, outcome, weight=None
) -> Leaderboard:
    """The board option: models ranked by the judge-effects strengths (rating scale, no
    interval), each judge's first-slot share and tie rate between equals in
    ``coefficients`` (``position:<judge>``, ``tie:<judge>``)."""
    if len(models) == 0 or len(judge) == 0:
        return Leaderboard(method="judge-effects", rows=(), notes=("no verdicts yet",))
    fit = fit_judge_effects(len(models), len(judges), judge, first, second, outcome, weight)
    ratings = ELO_SCALE * fit.strength + ELO_OFFSET
    coefficients = {}
    for name, share, tie in zip(judges, fit.first_share(), fit.tie_rate(), strict=True):
        coefficients[f"position:{name}"] = float(share)
        coefficients[f"tie:{name}"] = float(tie)
    notes = [
        "one Bradley-Terry (Davidson) fit of every judge's verdicts with a first-slot and a "
        "tie term per judge; no interval"
    ]
    if not fit.converged:
        notes.append("the solver stopped before converging")
    return Leaderboard(
        method="judge-effects",
        rows=ranked_rows(list(models), ratings, fit.votes),
        n_votes=fit.n_votes,
        coefficients=coefficients,
        notes=tuple(notes),
    )
