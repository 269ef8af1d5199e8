"""Human-anchored Bradley-Terry: many judge verdicts, few human labels, valid intervals.

Prediction-powered inference (Angelopoulos et al. 2023, PPI++; Boyeau et al. 2024,
"AutoEval Done Right", which applies it to Bradley-Terry) with inverse-probability
weights for labels drawn with unequal probabilities (Zrnic & Candès 2024, "Active
statistical inference"), on the BT M-estimator (the logistic loss).

Model
-----
Every match ``k`` of a run compares ``first[k]`` with ``second[k]``. The LLM judge gave
its soft verdict ``Ŷ_k`` in [0, 1] on every match (1 = ``first`` better, ties half,
averaged over both orders, repeats and jurors). Humans labelled some matches: ``Y_k``
in [0, 1] (the mean of the human verdicts), chosen independently with known probability
``π_k`` (``ξ_k`` = 1 if labelled). The target is the human Bradley-Terry strengths
``θ*``, the minimiser of the human loss over the run's matches,
``ℓ(θ; k, y) = softplus(d_k) - y d_k`` with ``d_k = θ[first] - θ[second]``.

The PPI++ loss with power ``λ`` is, for every λ, an unbiased estimate of the human loss::

    L_λ(θ) = Σ_k  λ ℓ(θ; k, Ŷ_k) + (ξ_k / π_k) (ℓ(θ; k, Y_k) - λ ℓ(θ; k, Ŷ_k))
           = Σ_k  w_k softplus(d_k) - c_k d_k,
    w_k = λ + (ξ_k / π_k)(1 - λ),   c_k = λ Ŷ_k + (ξ_k / π_k)(Y_k - λ Ŷ_k).

It is linear in (w, c), so it aggregates over the matches of each ordered pair and is
solved by Newton's method on O(pairs) rows (strengths sum to 0, as on every board).
λ = 1 is plain PPI; λ = 0 ignores the judge (human labels only, IPW); λ in [0, 1] keeps
every ``w_k`` ≥ 0, so the loss stays convex.

Intervals: the sandwich ``Cov = H⁺ V H⁺`` with ``H = Σ_k p_k (1 - p_k) x_k x_kᵀ`` (the BT
Hessian needs no labels: every match counts) and ``V = Σ_k s_k² x_k x_kᵀ`` where
``s_k = w_k p_k - c_k`` is match k's score (``x_k = e_first - e_second``). Under
independent (Poisson) sampling ``V`` estimates the score variance without bias; a
stratified draw of fixed size has a smaller one, so the interval is then conservative.

Power tuning: ``λ̂`` minimises the trace of that covariance. With ``u_k = (p_k - Ŷ_k) x_k``
and ``v_k = (p_k - Y_k) x_k``, ``E[s sᵀ] = vvᵀ/π + λ(1 - 1/π)(uvᵀ + vuᵀ) + λ²(1/π - 1)uuᵀ``,
so ``λ̂ = Σ (ξ/π)(1/π - 1) ⟨u, v⟩ / Σ (1/π - 1) |u|²`` with ``⟨a, b⟩ = aᵀ H⁺² b``
(the numerator is estimated on the labelled matches, weighted by 1/π), clipped to
[0, 1]. As in ppi_py, the estimate is first made with λ = 1, λ̂ computed there, then
the estimate made again with λ̂.

Effective sample size: a human-only board from ``n`` labels drawn uniformly has
covariance ``(N/n) H⁺ V_h H⁺`` with ``V_h = Σ_k (p_k - Y_k)² x_k x_kᵀ`` (estimated from
the labels with 1/π weights); the gain is the ratio of the traces, and ``n × gain`` the
human labels the anchored board is worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

from .blas import one_blas_thread
from .leaderboard import ranked_rows
from .scale import ELO_SCALE, Anchor, to_rating

Z95 = 1.959963984540054
MAX_STRENGTH = 40.0  # |θ| beyond this: the loss has no finite minimum (diverging)


@dataclass(frozen=True, eq=False)
class AnchoredMatches:
    """A run's matches with the judge's verdicts and the human labels, one entry a match.

    Attributes
    ----------
    models : tuple of str, length m
    first, second : ndarray of intp, shape (N,)
        The two models of each match (slot 0, slot 1).
    judge : ndarray of float, shape (N,)
        The judge's soft verdict for ``first``, in [0, 1].
    human : ndarray of float, shape (N,)
        The human label for ``first`` in [0, 1], NaN where no human labelled the match.
    inclusion : ndarray of float, shape (N,)
        Probability in (0, 1] with which the match was drawn for human labels.
    """

    models: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    judge: np.ndarray
    human: np.ndarray
    inclusion: np.ndarray

    def __post_init__(self):
        n = len(self.first)
        m = len(self.models)
        for name in ("second", "judge", "human", "inclusion"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries, one per match")
        if n and (
            min(self.first.min(), self.second.min()) < 0
            or max(self.first.max(), self.second.max()) >= m
        ):
            raise ValueError("first/second: a model index outside the models")
        if (self.first == self.second).any():
            raise ValueError("first/second: a match compares a model with itself")
        if not np.all((self.judge >= 0) & (self.judge <= 1)):
            raise ValueError("judge: verdicts must lie in [0, 1]")
        labelled = ~np.isnan(self.human)
        if not np.all((self.human[labelled] >= 0) & (self.human[labelled] <= 1)):
            raise ValueError("human: labels must lie in [0, 1] (NaN = unlabelled)")
        if not np.all((self.inclusion > 0) & (self.inclusion <= 1)):
            raise ValueError("inclusion: probabilities must lie in (0, 1]")

    @property
    def labelled(self) -> np.ndarray:
        return ~np.isnan(self.human)


@dataclass(frozen=True, eq=False)
class AnchoredFit:
    """The human-anchored strengths and their covariance.

    ``scores`` sum to 0 (natural-log strengths); ``covariance`` is theirs (m x m);
    ``human_only_covariance`` is that of a human-only board from as many labels drawn
    uniformly; ``lam`` the power used; ``ess_gain`` the ratio of the two traces.
    """

    models: tuple[str, ...]
    scores: np.ndarray
    covariance: np.ndarray
    human_only_covariance: np.ndarray
    lam: float
    n_matches: int
    n_labelled: int
    matches_per_model: np.ndarray
    labels_per_model: np.ndarray

    @property
    def standard_errors(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.covariance), 0, None))

    @property
    def ess_gain(self) -> float:
        anchored = float(np.trace(self.covariance))
        return float(np.trace(self.human_only_covariance)) / anchored if anchored > 0 else 1.0

    @property
    def effective_labels(self) -> float:
        """Human labels a human-only board would need for the same precision."""
        return self.n_labelled * self.ess_gain

    def ratings(self, anchor: Anchor | None = None, ci: float = 0.95):
        """Ratings on the board scale and their interval ends: (rating, lower, upper, se).

        With ``anchor=(model, rating)`` the ratings are differences from that model, whose
        own interval is then a point."""
        z = _z(ci)
        ratings = to_rating(self.scores, self.models, anchor)
        cov = self.covariance
        if anchor is not None:
            k = list(self.models).index(anchor[0])
            var = np.diag(cov) + cov[k, k] - 2 * cov[:, k]
        else:
            var = np.diag(cov)
        se = ELO_SCALE * np.sqrt(np.clip(var, 0, None))
        return ratings, ratings - z * se, ratings + z * se, se

    def option(self, anchor: Anchor | None = None, notes: Sequence[str] = ()) -> dict:
        """The board option as stored with a snapshot (``arena.fitting``): rows like a
        board's, with ``standard_error`` and the human labels per model, and the
        effective-sample-size figures under ``coefficients``."""
        ratings, lower, upper, se = self.ratings(anchor)
        rows = ranked_rows(
            self.models,
            ratings,
            self.matches_per_model,
            lower=lower,
            upper=upper,
            standard_error=se,
        )
        labels = dict(zip(self.models, self.labels_per_model.tolist(), strict=True))
        out = []
        for row in rows:
            out.append(
                {
                    "model": row.model,
                    "rating": row.rating,
                    "ci_lower": row.ci_lower,
                    "ci_upper": row.ci_upper,
                    "rank_ub": row.rank_ub,
                    "votes": row.votes,
                    "standard_error": row.standard_error,
                    "human_labels": int(labels[row.model]),
                }
            )
        human_trace = float(np.trace(self.human_only_covariance))
        return {
            "method": "anchored",
            "value": "rating",
            "n_votes": self.n_matches,
            "rows": out,
            "coefficients": {
                "lambda": self.lam,
                "human_labels": self.n_labelled,
                "judged_matches": self.n_matches,
                "ess_gain": self.ess_gain,
                "effective_labels": self.effective_labels,
                "human_only_mean_se": float(
                    ELO_SCALE * np.sqrt(max(human_trace, 0.0) / len(self.models))
                ),
                "anchored_mean_se": float(
                    ELO_SCALE * np.sqrt(max(np.trace(self.covariance), 0.0) / len(self.models))
                ),
            },
            "notes": list(notes),
        }


def anchored_bt(matches: AnchoredMatches, *, lam: float | None = None) -> AnchoredFit:
    """The human-anchored Bradley-Terry fit (module docstring): PPI++ with power ``lam``
    (None: tuned, λ̂), inverse-probability weights for the labels' inclusion.

    Raises ValueError without any human label, or when the weighted loss has no finite
    minimum (a model whose labels push it to infinity).
    """
    labelled = matches.labelled
    n_labelled = int(labelled.sum())
    if n_labelled == 0:
        raise ValueError("no human labels: a human-anchored board needs some")
    m = len(matches.models)
    pairs = _Pairs(m, matches.first, matches.second)
    if not pairs.connected():
        raise ValueError("the judged matches do not connect every model")
    ipw = np.where(labelled, 1.0 / matches.inclusion, 0.0)
    human = np.nan_to_num(matches.human)
    judge = matches.judge
    with one_blas_thread():
        if lam is None:
            # λ̂ where the judge's verdicts alone put the strengths (a fit that always
            # exists when the judge's comparison graph is connected), then the estimate
            start = _fit(pairs, np.ones_like(judge), judge)
            lam = _tuned_lambda(pairs, start, ipw, judge, human, matches.inclusion)
            theta = _fit(pairs, *_weights(lam, ipw, judge, human), theta0=start)
        else:
            if not 0.0 <= lam <= 1.0:
                raise ValueError("lam: the power must lie in [0, 1]")
            theta = _fit(pairs, *_weights(lam, ipw, judge, human))
        w, c = _weights(lam, ipw, judge, human)
        p = expit(pairs.d(theta))
        h_inv = pairs.pinv(p * (1 - p))
        score = w * p - c
        covariance = h_inv @ pairs.laplacian(score**2) @ h_inv
        human_v = pairs.laplacian(ipw * (p - human) ** 2)
        human_only = (len(judge) / n_labelled) * (h_inv @ human_v @ h_inv)
    per_model = np.bincount(matches.first, minlength=m) + np.bincount(matches.second, minlength=m)
    labels = np.bincount(matches.first[labelled], minlength=m) + np.bincount(
        matches.second[labelled], minlength=m
    )
    return AnchoredFit(
        models=tuple(matches.models),
        scores=theta,
        covariance=covariance,
        human_only_covariance=human_only,
        lam=float(lam),
        n_matches=len(judge),
        n_labelled=n_labelled,
        matches_per_model=per_model.astype(np.float64),
        labels_per_model=labels,
    )


def judge_strengths(n_models: int, first, second, judge) -> np.ndarray:
    """The judge's own Bradley-Terry strengths on its soft verdicts (sum 0): what the
    anchor selector reads for the rank boundaries."""
    pairs = _Pairs(n_models, np.asarray(first), np.asarray(second))
    if not pairs.connected():
        raise ValueError("the judged matches do not connect every model")
    judge = np.asarray(judge, np.float64)
    with one_blas_thread():
        return _fit(pairs, np.ones_like(judge), judge)


def _weights(lam, ipw, judge, human):
    """Per-match loss weights ``w_k`` and pseudo-outcomes ``c_k`` at power ``lam``."""
    return lam + ipw * (1.0 - lam), lam * judge + ipw * (human - lam * judge)


def _tuned_lambda(pairs, theta, ipw, judge, human, inclusion) -> float:
    """λ̂ minimising the trace of the covariance (module docstring), clipped to [0, 1]."""
    p = expit(pairs.d(theta))
    h_inv = pairs.pinv(p * (1 - p))
    # ⟨x_k, x_k⟩ under H⁺²: |H⁺ x_k|², one value per ordered pair
    cols = h_inv[:, pairs.first_of_pair] - h_inv[:, pairs.second_of_pair]
    q = (cols**2).sum(axis=0)[pairs.index]
    excess = 1.0 / inclusion - 1.0
    u = p - judge
    num = float((ipw * excess * u * (p - human) * q).sum())
    den = float((excess * u * u * q).sum())
    if den <= 0:
        return 0.0  # every match labelled for sure: the judge adds nothing
    return float(np.clip(num / den, 0.0, 1.0))


class _Pairs:
    """The matches' ordered pairs: aggregation (bincount) and the Laplacians over them."""

    def __init__(self, m: int, first: np.ndarray, second: np.ndarray):
        self.m = m
        self.first, self.second = first, second
        keys, self.index = np.unique(first * m + second, return_inverse=True)
        self.first_of_pair, self.second_of_pair = np.divmod(keys, m)
        self.n_pairs = keys.size

    def connected(self) -> bool:
        graph = sp.coo_matrix(
            (np.ones(self.n_pairs), (self.first_of_pair, self.second_of_pair)),
            shape=(self.m, self.m),
        )
        return connected_components(graph, directed=False)[0] == 1

    def d(self, theta: np.ndarray) -> np.ndarray:
        return theta[self.first] - theta[self.second]

    def sum(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.index, values, self.n_pairs)

    def laplacian(self, per_match: np.ndarray) -> np.ndarray:
        """``Σ_k per_match[k] x_k x_kᵀ`` (m x m)."""
        weight = self.sum(per_match)
        a, b, m = self.first_of_pair, self.second_of_pair, self.m
        lap = np.zeros((m, m))
        np.add.at(lap, (a, b), -weight)
        np.add.at(lap, (b, a), -weight)
        lap[np.diag_indices(m)] -= lap.sum(axis=1)
        return lap

    def pinv(self, per_match: np.ndarray) -> np.ndarray:
        """Pseudo-inverse of the Laplacian on strengths that sum to 0: ``(L + J)⁻¹ - J``
        with ``J = 11ᵀ/m`` (exact for a connected graph; no eigenvalue cut-off to guess)."""
        m = self.m
        j = np.full((m, m), 1.0 / m)
        try:
            return np.linalg.inv(self.laplacian(per_match) + j) - j
        except np.linalg.LinAlgError:
            raise ValueError("the judged matches do not connect every model") from None


def _fit(pairs: _Pairs, w, c, *, theta0=None, tol=1e-10, max_iter=100) -> np.ndarray:
    """Minimise ``Σ w softplus(d) - c d`` over strengths summing to 0 (damped Newton)."""
    m = pairs.m
    weight, target = pairs.sum(w), pairs.sum(c)
    a, b = pairs.first_of_pair, pairs.second_of_pair
    theta = np.zeros(m) if theta0 is None else np.asarray(theta0, np.float64).copy()
    ones = np.full((m, m), 1.0 / m)

    def loss(t):
        d = t[a] - t[b]
        return float((weight * -log_expit(-d) - target * d).sum())

    current = loss(theta)
    for _ in range(max_iter):
        d = theta[a] - theta[b]
        p = expit(d)
        r = weight * p - target
        grad = np.bincount(a, r, m) - np.bincount(b, r, m)
        hw = weight * p * (1 - p)
        hess = np.zeros((m, m))
        np.add.at(hess, (a, b), -hw)
        np.add.at(hess, (b, a), -hw)
        hess[np.diag_indices(m)] -= hess.sum(axis=1)
        step = np.linalg.lstsq(hess + ones, grad, rcond=None)[0]
        step -= step.mean()
        t = 1.0
        while True:
            candidate = theta - t * step
            value = loss(candidate)
            if value <= current + 1e-12 * abs(current) or t < 1e-8:
                break
            t *= 0.5
        theta, current = candidate, value
        if np.abs(theta).max() > MAX_STRENGTH:
            raise ValueError(
                "the weighted loss has no finite minimum: a model's human labels and the "
                "judge's verdicts pull it apart (too few labels on its matches)"
            )
        if np.abs(t * step).max() < tol:
            break
    return theta - theta.mean()


def _z(ci: float) -> float:
    if ci == 0.95:
        return Z95
    from scipy.stats import norm  # only for another level than 95%

    return float(norm.ppf(0.5 + ci / 2))
