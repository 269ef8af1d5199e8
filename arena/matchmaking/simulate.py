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

from ._fit import fit_scores, laplace_covariance
from .pairing import FLOOR, pair_weights
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


# -- live arenas: votes drawn by a pairing policy ---------------------------------------


@dataclass(frozen=True)
class LivePolicy:
    """A pairing policy (:func:`arena.matchmaking.pairing.pair_weights`) as a live board
    runs it: from the latest fit, refitted every batch of votes.

    ``covariance``: the policy sees the full Laplace covariance of the strengths, else
    only per-contestant variances (its diagonal: what a board's bootstrap intervals
    give :mod:`arena.battles` today).
    """

    policy: str = "uniform"
    covariance: bool = True
    floor: float = FLOOR
    focus: float | None = None  # the policy's default

    def probabilities(self, scores, cov, pairs, pair_votes, seed) -> np.ndarray:
        variances = cov if self.covariance else np.diagonal(cov)
        return pair_weights(
            self.policy,
            scores,
            variances,
            pairs,
            np.zeros(scores.size),
            floor=self.floor,
            pair_votes=pair_votes,
            seed=seed,
            focus=self.focus,
        )


@dataclass(frozen=True, eq=False)
class LiveRun:
    """A simulated live board at each checkpoint.

    ``tau[c]``: Kendall τ between the fit after ``checkpoints[c]`` votes and the true
    strengths; ``top_right[c]``: the fitted top-``top`` set is the true one;
    ``propensity``: the probability each vote's pair was drawn with (as stored on a Match).
    """

    checkpoints: np.ndarray
    tau: np.ndarray
    top_right: np.ndarray
    propensity: np.ndarray


def simulate_live(
    policy: LivePolicy,
    strengths: np.ndarray,
    rng: np.random.Generator,
    *,
    checkpoints: np.ndarray,
    batch: int,
    growth: float = 0.0,
    tie_nu: float = 0.0,
    top: int = 10,
    tau_target: float = 0.9,
    settle: int | None = None,
) -> LiveRun:
    """Votes on all pairs of ``n`` contestants of known strength, drawn by ``policy``.

    Each round draws ``max(batch, growth × votes so far)`` pairs at once (never past the
    next checkpoint) from the policy's probabilities, computed from the fit after the
    previous round (a board refits every few seconds; ``growth`` > 0 refits less often
    than that on a large board, which can only hurt the adaptive policies), shows
    each in a random order and draws the verdict from Davidson's model with the true
    strengths (``tie_nu``; ties are half a win each way in the fit). Then the board is
    refitted (:func:`fit_scores`, warm-started) with its Laplace covariance. The
    ``checkpoints`` are vote counts. With ``settle``, the
    run stops early once τ ≥ ``tau_target`` and the right top set have held together at
    ``settle`` checkpoints in a row (:func:`first_stable` then has what it needs).
    """
    s_true = np.asarray(strengths, dtype=np.float64)
    n = s_true.size
    first, second = np.triu_indices(n, k=1)
    pairs = np.column_stack([first, second])
    checkpoints = np.unique(np.asarray(checkpoints, dtype=np.int64))
    true_top = set(np.argsort(-s_true, kind="stable")[:top].tolist())
    wins = np.zeros(n * n)
    pair_votes = np.zeros(len(pairs))
    scores, cov = np.zeros(n), np.diag(np.full(n, np.inf))
    adaptive = policy.policy != "uniform"
    tau, top_right, propensity = [], [], []
    votes, c = 0, 0
    while c < checkpoints.size:
        prob = (
            policy.probabilities(scores, cov, pairs, pair_votes, seed=votes)
            if adaptive
            else np.full(len(pairs), 1.0 / len(pairs))
        )
        m = min(max(batch, int(growth * votes)), int(checkpoints[c]) - votes)
        k = rng.choice(len(pairs), size=m, p=prob)
        propensity.append(prob[k])
        i, j = first[k], second[k]
        score = _verdicts(s_true[i] - s_true[j], tie_nu, rng)  # i's score; order is moot
        wins += np.bincount(i * n + j, score, minlength=n * n)
        wins += np.bincount(j * n + i, 1.0 - score, minlength=n * n)
        pair_votes += np.bincount(k, minlength=len(pairs))
        votes += m
        at_checkpoint = votes == checkpoints[c]
        if adaptive or at_checkpoint:
            w = wins.reshape(n, n)
            scores = fit_scores(n, w, start=scores)
            if adaptive:
                cov = laplace_covariance(scores, w + w.T)
        if at_checkpoint:
            tau.append(kendalltau(s_true, scores).statistic)
            top_right.append(set(np.argsort(-scores, kind="stable")[:top].tolist()) == true_top)
            c += 1
            both = (np.array(tau) >= tau_target) & np.array(top_right)
            if settle and np.isfinite(first_stable(checkpoints[:c], both, settle)):
                break
    return LiveRun(checkpoints[:c], np.array(tau), np.array(top_right), np.concatenate(propensity))


def _verdicts(diff: np.ndarray, tie_nu: float, rng: np.random.Generator) -> np.ndarray:
    """Score of the first model (1, ½, 0) per vote under Davidson's model."""
    prob = _davidson(diff, tie_nu)
    u = rng.random(diff.size)
    return np.where(u < prob[:, 0], 1.0, np.where(u < prob[:, 0] + prob[:, 2], 0.5, 0.0))


def first_stable(checkpoints: np.ndarray, ok: np.ndarray, settle: int | None = None) -> float:
    """Votes at the first checkpoint where ``ok`` starts to hold at ``settle`` checkpoints
    in a row (``None``: at every later one); inf if there is none."""
    ok = np.asarray(ok, dtype=bool)
    if settle is None:
        if not ok.size or not ok[-1]:
            return float("inf")
        bad = np.flatnonzero(~ok)
        return float(checkpoints[0 if bad.size == 0 else bad[-1] + 1])
    run = np.convolve(ok.astype(int), np.ones(settle, dtype=int), mode="valid")
    hits = np.flatnonzero(run == settle)
    return float(checkpoints[hits[0]]) if hits.size else float("inf")
