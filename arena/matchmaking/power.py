"""How many prompts an anchor evaluation needs to tell two models apart.

Against an anchor, each prompt gives model ``A`` a score ``X ∈ {1, ½, 0}`` (win, tie,
loss); its win rate is ``p = P(win) + t/2`` with ``t`` the tie rate, and

.. math:: \\operatorname{Var} X = P(\\text{win}) + t/4 - p^2 = p(1 - p) - t/4,

so ties shrink the variance. Two models whose win rates against the anchor are
``p_A = p̄ + Δ/2`` and ``p_B = p̄ - Δ/2`` are compared with a two-sided z test of
``H0: p_A = p_B`` on ``n`` prompts each. With correlation ``ρ`` between their
per-prompt scores (same prompts: the *paired* test; ``ρ = 0``: the unpooled two-sample
test of proportions) the variance of the mean difference is ``σ_D² / n`` with
``σ_D² = σ_A² + σ_B² - 2 ρ σ_A σ_B``, and the prompts needed are

.. math:: n = \\left\\lceil \\frac{(z_{1-α/2} + z_{1-β})^2\\, σ_D^2}{Δ^2} \\right\\rceil,

(Wald/normal approximation; ``1 - β`` is the power). Example: ``Δ = 0.1`` at
``p̄ = 0.5`` without ties needs 389 prompts unpaired; the usual Arena-Hard set of 500
resolves about ``Δ ≈ 0.088``.

**A run's power** (:func:`run_power`) asks the same question of any design, in rating
points: the smallest rating difference between two of its models that its comparisons
detect. A design sends ``g_ij`` comparisons to each pair (:func:`comparison_graph`); at
equal strengths each carries Fisher information ``1/4`` (less ``t/4`` for ties), so the
strengths' covariance is the pseudo-inverse of the graph Laplacian with edge weights
``g_ij (1 - t) / 4`` (:func:`arena.matchmaking.laplace_covariance`), and the rating
difference of the least-informed pair is detected when it exceeds
``(z_{1-α/2} + z_{1-β}) · sd(s_i - s_j)``. Against an anchor this is the formula above
(``Var = 8/n`` either way for two models at ``p̄ = 0.5``). Designs that choose their pairs
from the verdicts (adaptive, Swiss, single elimination) are taken as spreading their
calls evenly over all pairs: an approximation, said so in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtri  # norm.ppf (scipy.stats took half a second to import)

from arena.ratings.scale import ELO_SCALE

from ._fit import laplace_covariance


def score_variance(win_rate: float, tie_rate: float = 0.0) -> float:
    """Variance of one prompt's score (1 / ½ / 0) at this win rate and tie rate."""
    wins = win_rate - tie_rate / 2.0
    losses = 1.0 - win_rate - tie_rate / 2.0
    if not 0.0 <= tie_rate <= 1.0 or wins < -1e-12 or losses < -1e-12:
        raise ValueError(
            f"win_rate {win_rate:.3g} with tie_rate {tie_rate:.3g}: needs P(win), P(loss) >= 0"
        )
    return max(win_rate * (1.0 - win_rate) - tie_rate / 4.0, 0.0)


def prompts_needed(
    win_rate_difference: float,
    alpha: float = 0.05,
    power: float = 0.8,
    tie_rate: float = 0.0,
    *,
    win_rate: float = 0.5,
    correlation: float = 0.0,
) -> int:
    """Prompts needed to detect a win-rate difference against an anchor (module doc).

    Parameters
    ----------
    win_rate_difference : float
        ``Δ = p_A - p_B`` in (0, 1).
    alpha : float
        Two-sided significance level.
    power : float
        ``1 - β``, the probability of detecting ``Δ``.
    tie_rate : float
        Share of ties (each half a win), the same for both models.
    win_rate : float
        ``p̄``, the mean of the two win rates (0.5 for a mid-ranked anchor: the
        mediocrity rule is what makes the variance, hence ``n``, largest per prompt but
        the comparisons most informative for *every* model).
    correlation : float
        ``ρ`` between the two models' per-prompt scores (0 = unpaired).

    Returns
    -------
    int
    """
    delta = float(win_rate_difference)
    if not 0.0 < delta < 1.0:
        raise ValueError("win_rate_difference: expected a value in (0, 1)")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha, power: expected probabilities in (0, 1)")
    if not -1.0 <= correlation <= 1.0:
        raise ValueError("correlation: expected a value in [-1, 1]")
    z = ndtri(1.0 - alpha / 2.0) + ndtri(power)
    return max(
        1,
        math.ceil(
            z * z * _difference_variance(delta, win_rate, tie_rate, correlation) / delta**2 - 1e-9
        ),
    )


def detectable_difference(
    n_prompts: int,
    alpha: float = 0.05,
    power: float = 0.8,
    tie_rate: float = 0.0,
    *,
    win_rate: float = 0.5,
    correlation: float = 0.0,
) -> float:
    """The smallest ``Δ`` that ``n_prompts`` detect (the inverse of :func:`prompts_needed`)."""
    if n_prompts < 1:
        raise ValueError("n_prompts: expected at least 1")
    z = ndtri(1.0 - alpha / 2.0) + ndtri(power)
    hi = 2.0 * min(win_rate - tie_rate / 2.0, 1.0 - win_rate - tie_rate / 2.0)

    def gap(delta: float) -> float:
        var = _difference_variance(delta, win_rate, tie_rate, correlation)
        return z * math.sqrt(var / n_prompts) - delta

    if gap(hi) > 0:
        return float("nan")  # not even the largest possible difference is detectable
    return float(brentq(gap, 1e-12, hi, xtol=1e-12))


def _difference_variance(delta: float, win_rate: float, tie_rate: float, rho: float) -> float:
    var_a = score_variance(win_rate + delta / 2.0, tie_rate)
    var_b = score_variance(win_rate - delta / 2.0, tie_rate)
    return var_a + var_b - 2.0 * rho * math.sqrt(var_a * var_b)


# Designs whose comparison graph is known before the verdicts (the rest: calls spread evenly).
# K-wise random groups are drawn before any verdict: their graph is the groups' expected one.
EXACT_GRAPHS = ("round-robin", "anchor", "mediocre-anchor", "kwise-groups")


def comparison_graph(design, n_models: int, n_prompts: int, both_orders: bool = False):
    """Comparisons per pair, ``(n_models, n_models)`` symmetric, that ``design`` plans.

    Round robin: every pair on every prompt. Anchor designs: every model against the
    anchor (model 0: by symmetry its index does not matter); the mediocre anchor also
    screens all pairs on ``screen_prompts`` prompts first. K-wise designs: their own
    ``pair_comparisons`` (a ranking of K counted as the pairwise comparisons its
    Plackett-Luce information is worth). Others: ``planned_calls`` spread evenly over all pairs.
    """
    m, per_call = n_models, 2 if both_orders else 1
    if hasattr(design, "pair_comparisons"):  # K-wise designs: a ranking's worth per pair
        return design.pair_comparisons(n_models, n_prompts, both_orders)
    graph = np.zeros((m, m))
    if design.name in ("anchor", "mediocre-anchor"):
        screen = min(int(getattr(design, "screen_prompts", 0)), n_prompts)
        graph += screen * per_call
        graph[0, :] = graph[:, 0] = (n_prompts - screen) * per_call + screen * per_call
    else:
        calls = design.planned_calls(m, n_prompts, both_orders)
        graph += calls / max(math.comb(m, 2), 1)
    np.fill_diagonal(graph, 0.0)
    return graph


def detectable_rating_difference(
    comparisons, tie_rate: float = 0.0, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest rating difference (rating points) between the least-informed pair of
    models that these comparisons per pair detect (module doc); inf if the graph does
    not connect every model."""
    games = np.asarray(comparisons, np.float64) * (score_variance(0.5, tie_rate) / 0.25)
    m = games.shape[0]
    if m < 2:
        return float("nan")
    connected = np.linalg.matrix_rank(np.diag(games.sum(axis=1)) - games) == m - 1
    if not connected:
        return float("inf")
    cov = laplace_covariance(np.zeros(m), games, prior=0.0)
    d = np.diag(cov)
    worst = float(np.max(d[:, None] + d[None, :] - 2 * cov))
    z = ndtri(1.0 - alpha / 2.0) + ndtri(power)
    return float(z * math.sqrt(max(worst, 0.0)) * ELO_SCALE)


@dataclass(frozen=True)
class RunPower:
    """What a planned run can tell apart, and what a target difference would take."""

    design: str
    n_models: int
    n_prompts: int
    planned_calls: int
    detectable: float  # rating points, this plan
    target: float  # rating points asked for
    prompts_needed: int | None  # for the target (None: more than MAX_PROMPTS)
    calls_needed: int | None
    budget_calls: int | None
    budget_detectable: float | None  # rating points, with the budget's most prompts
    approximate: bool  # the design picks its pairs from the verdicts (calls spread evenly)

    @property
    def under_powered(self) -> bool:
        return not self.detectable <= self.target

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items()}
        out["under_powered"] = self.under_powered
        out["summary"] = self.summary()
        for key in ("detectable", "budget_detectable"):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = None  # JSON has no infinity: None = nothing detectable
        return out

    def summary(self) -> str:
        """One line for people: both figures, and a warning when under-powered."""

        def points(x):
            return "nothing" if x is None or not math.isfinite(x) else f"{x:.0f} rating points"

        parts = [
            f"{self.planned_calls} calls on {self.n_prompts} prompts detect a difference of "
            f"{points(self.detectable)} between two models (80% power, 5% level)"
        ]
        if self.prompts_needed is None:
            parts.append(f"{self.target:g} points would need more than {MAX_PROMPTS} prompts")
        else:
            parts.append(
                f"{self.target:g} points need {self.prompts_needed} prompts "
                f"({self.calls_needed} calls)"
            )
        if self.budget_calls is not None:
            parts.append(
                f"the budget of {self.budget_calls} calls detects {points(self.budget_detectable)}"
            )
        text = "; ".join(parts) + "."
        if self.approximate:
            text += " (Approximate: this design picks its pairs as verdicts arrive.)"
        if self.under_powered:
            text = "Under-powered: " + text
        return text


MAX_PROMPTS = 1_000_000


def run_power(
    design,
    n_models: int,
    n_prompts: int,
    *,
    target: float,
    both_orders: bool = False,
    repeats: int = 1,
    panel: int = 1,
    budget_calls: int | None = None,
    tie_rate: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.8,
) -> RunPower:
    """The two planning figures of a run (module doc): the rating difference its plan
    detects, and the prompts (and calls) a ``target`` difference needs; with a budget,
    the difference the budget's most prompts detect. Repeats count as more comparisons;
    a jury's ``panel`` of jurors makes each comparison cost that many calls for one
    pooled verdict."""
    if not target > 0:
        raise ValueError("target: expected a positive rating difference")

    def detectable(prompts: int) -> float:
        graph = comparison_graph(design, n_models, prompts, both_orders) * max(repeats, 1)
        return detectable_rating_difference(graph, tie_rate, alpha, power)

    def calls(prompts: int) -> int:
        comparisons = design.planned_calls(n_models, prompts, both_orders) * max(repeats, 1)
        return comparisons * max(panel, 1)

    def smallest(ok, low: int, high: int) -> int | None:
        """The smallest prompt count in [low, high] where ``ok`` holds (monotone)."""
        if not ok(high):
            return None
        while low < high:
            mid = (low + high) // 2
            low, high = (low, mid) if ok(mid) else (mid + 1, high)
        return low

    low = max(int(getattr(design, "screen_prompts", 1)), 1)
    needed = smallest(lambda k: detectable(k) <= target, low, MAX_PROMPTS)
    budget_detectable = None
    if budget_calls is not None:
        most = smallest(lambda k: calls(k + 1) > budget_calls, low, MAX_PROMPTS)
        budget_detectable = (
            detectable(most) if most is not None and calls(most) <= budget_calls else float("inf")
        )
    return RunPower(
        design=design.name,
        n_models=n_models,
        n_prompts=n_prompts,
        planned_calls=calls(n_prompts),
        detectable=detectable(n_prompts),
        target=float(target),
        prompts_needed=needed,
        calls_needed=None if needed is None else calls(needed),
        budget_calls=budget_calls,
        budget_detectable=budget_detectable,
        approximate=design.name not in EXACT_GRAPHS,
    )
