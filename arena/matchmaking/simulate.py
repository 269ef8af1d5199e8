"""Simulated evaluations: models of known strength, a simulated judge, any design.

World
-----
``N`` models with latent strengths ``s_i`` (logits; drawn ``N(0, strength_sd²)`` unless
given) and ``P`` prompts. A model's quality on a prompt is ``q_pi = s_i + e_pi`` with
``e_pi ~ N(0, prompt_sd²)`` fixed per (prompt, model): some prompts suit some models.

Judge
-----
For a call with ``i`` shown first and ``j`` second on prompt ``p``:
``z = q_pi - q_pj + γ + ε`` (``γ`` = position bias, ``ε ~ N(0, noise²)`` per call), and
the verdict follows Davidson's model: ``P(first) = e^{z/2}/Z``, ``P(second) = e^{-z/2}/Z``,
``P(tie) = ν/Z``, ``Z = e^{z/2} + e^{-z/2} + ν`` (``ν = 0``: plain Bradley-Terry,
``P(first) = σ(z)``). A share ``failure_rate`` of calls never returns a verdict.

:func:`run_design` plays a design to completion against this judge and reports the judge
calls used and Kendall's τ between the fitted and the latent strengths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau

from .plan import Call, Design, Verdict


@dataclass(frozen=True, eq=False)
class World:
    """Latent strengths (n,) and per-prompt qualities (P, n)."""

    strengths: np.ndarray
    quality: np.ndarray

    @property
    def n_models(self) -> int:
        return self.strengths.size

    @property
    def n_prompts(self) -> int:
        return self.quality.shape[0]


def make_world(
    n_models: int,
    n_prompts: int,
    rng: np.random.Generator,
    *,
    strength_sd: float = 1.0,
    prompt_sd: float = 0.5,
    strengths: np.ndarray | None = None,
) -> World:
    """Draw a world (module docstring); ``strengths`` overrides the drawn ones."""
    s = (
        rng.normal(0.0, strength_sd, n_models)
        if strengths is None
        else np.asarray(strengths, float)
    )
    if s.shape != (n_models,):
        raise ValueError(f"strengths: expected shape ({n_models},)")
    quality = s[None, :] + rng.normal(0.0, prompt_sd, (n_prompts, n_models))
    return World(strengths=s, quality=quality)


@dataclass(frozen=True)
class SimulatedJudge:
    """A judge with known behaviour (module docstring)."""

    position_bias: float = 0.0
    noise: float = 0.0
    tie_nu: float = 0.0
    failure_rate: float = 0.0

    def probabilities(self, world: World, calls: np.ndarray) -> np.ndarray:
        """``(P(first), P(second), P(tie))`` per call, shape (m, 3); no per-call noise."""
        p, a, b = calls.T
        z = world.quality[p, a] - world.quality[p, b] + self.position_bias
        return _davidson(z, self.tie_nu)

    def __call__(self, world: World, batch: list[Call], rng: np.random.Generator) -> list[Verdict]:
        calls = np.asarray(batch, dtype=np.intp).reshape(-1, 3)
        p, a, b = calls.T
        z = world.quality[p, a] - world.quality[p, b] + self.position_bias
        if self.noise > 0:
            z = z + rng.normal(0.0, self.noise, z.size)
        prob = _davidson(z, self.tie_nu)
        u = rng.random(z.size)
        score = np.where(u < prob[:, 0], 1.0, np.where(u < prob[:, 0] + prob[:, 2], 0.5, 0.0))
        answered = rng.random(z.size) >= self.failure_rate
        return [
            Verdict(*row)
            for row in zip(
                p[answered].tolist(),
                a[answered].tolist(),
                b[answered].tolist(),
                score[answered].tolist(),
                strict=True,
            )
        ]


def _davidson(z: np.ndarray, nu: float) -> np.ndarray:
    half = np.exp(-np.abs(z) / 2.0)  # scale by e^{-|z|/2} to avoid overflow
    up = np.where(z >= 0, 1.0, half * half)
    down = np.where(z >= 0, half * half, 1.0)
    tie = nu * half
    total = up + down + tie
    return np.column_stack([up, down, tie]) / total[:, None]


@dataclass(frozen=True, eq=False)
class SimulationResult:
    design: str
    planned_calls: int
    calls: int
    batches: int
    scores: np.ndarray
    ranking: np.ndarray
    tau: float


def run_design(
    design: Design,
    world: World,
    judge: SimulatedJudge,
    rng: np.random.Generator,
    *,
    both_orders: bool = False,
    max_batches: int = 100_000,
) -> SimulationResult:
    """Play ``design`` to completion; Kendall τ of the fitted vs the latent strengths."""
    plan = design.start(world.n_models, world.n_prompts, rng, both_orders=both_orders)
    batches = 0
    while not plan.done:
        batch = plan.next_batch()
        plan.observe(judge(world, batch, rng))
        batches += 1
        if batches > max_batches:
            raise RuntimeError(f"{design.name}: did not finish in {max_batches} batches")
    scores = plan.scores()
    return SimulationResult(
        design=design.name,
        planned_calls=design.planned_calls(world.n_models, world.n_prompts, both_orders),
        calls=plan.calls_issued,
        batches=batches,
        scores=scores,
        ranking=np.argsort(-scores, kind="stable"),
        tau=float(kendalltau(world.strengths, scores).statistic),
    )
