"""AlpacaEval 2.0's length-controlled win rate (Dubois et al. 2024, arXiv:2404.04475).

The GLM (``length_controlled_v1`` of ``alpaca_eval.metrics.glm_winrate``)
------------------------------------------------------------------------
For one model against the baseline, over its annotations ``i``::

    P(model preferred on i) = σ( θ_len · tanh(Δ_i / sd(Δ)) + θ_diff · d_i + θ_model )

where ``Δ_i = len(baseline's output) - len(model's output)`` in characters (``sd``: pandas'
``std``, ddof 1, over all the model's annotations), ``d_i`` the instruction's difficulty and
``θ_model`` the coefficient of AlpacaEval's ``not_gamed_baseline`` column (1 on the model's
rows); no intercept. The target is the soft preference ``p - 1`` in [0, 1] (cross-entropy
against a probability, not a rounded label), failed annotations (no preference) left out.

Regularised toward the baseline: the fit also sees the annotations of the *gamed
baselines* (the baseline prompted to be verbose, and to be concise, judged against
itself), with ``not_gamed_baseline = 0`` and weight ``λ / 2`` per row (λ = 0.2, two gamed
baselines). They tie ``θ_len`` and ``θ_diff`` to what length alone does to the judge.
Without them (no ``<baseline>_verbose`` / ``_concise`` in the data) the fit is
AlpacaEval's ``length_controlled_noreg``, and the board says so.

The fit is scikit-learn's ``LogisticRegressionCV`` as AlpacaEval calls it: an L1 penalty,
``min ‖θ‖₁ + C · Σ wᵢ · CE(pᵢ, σ(xᵢθ))``, with ``C`` chosen among ``logspace(-4, 4, 10)`` by
5-fold cross-validation (folds of whole annotations, assigned as ``GroupKFold`` assigns
equal groups; score: the mean weighted log loss on the held-out fold) and refitted on all
rows. Here the L1 problem is solved with L-BFGS-B on ``θ = u - v``, ``u, v ≥ 0`` (liblinear
stops at a tolerance of 1e-4; this solves to ~1e-9).

Length-controlled win rate: the GLM's prediction with the length term at 0 (as if both
outputs had the same length), ``LC = 100 · mean_i σ(θ_diff · d_i + θ_model)`` over all the
model's annotations (failed ones included, as AlpacaEval's test matrix does), and
``lc_standard_error = 100 · sem`` of those predictions (ddof 1). The baseline against
itself is 50 with standard error 0, by construction.

Instruction difficulty (``notebooks/instruction_difficulty.ipynb``)
-----------------------------------------------------------------
AlpacaEval downloads ``d_i``; they were estimated by one joint fit over all models'
annotations: a bias and a length slope per model, one term per instruction (the first
instruction the reference, 0), and the ``not_gamed_baseline`` column, fitted by the same
cross-validated L1 logistic regression. The instruction terms are the difficulties.
:func:`instruction_difficulty` does that fit (the notebook adds ±5e-5 noise to the length
differences so that the baseline's own annotations, all of length difference 0, have a
non-zero spread; here a model whose spread is 0 simply gets a length feature of 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from .blas import one_blas_thread

CS = np.logspace(-4, 4, 10)  # LogisticRegressionCV's default grid (Cs=10)
N_SPLITS = 5
REGULARIZE_TO_BASELINE = 0.2  # AlpacaEval's regularize_to_baseline_lambda
FALLBACK_C = 100.0  # AlpacaEval's C when it does not cross-validate
FEATURES = ("length", "difficulty", "model")  # tanh(std Δlen), d_i, not_gamed_baseline
_EPS = 1e-15  # AlpacaEval's log-loss clip


@dataclass(frozen=True)
class LengthControlled:
    """One model's length-controlled win rate against the baseline (percentages)."""

    win_rate: float
    standard_error: float
    weights: dict  # FEATURES -> coefficient (AlpacaEval's saved weights)
    C: float  # the inverse penalty cross-validation chose
    regularized: bool  # gamed baselines were in the fit


@dataclass(frozen=True)
class GamedRows:
    """The gamed baselines' annotations against the baseline: the regulariser."""

    preference: np.ndarray  # in [1, 2] (NaN = failed), about the gamed baseline
    std_delta_len: np.ndarray  # (len baseline - len gamed) / sd, per gamed model
    difficulty: np.ndarray


def standardized_length_difference(len_baseline, len_model) -> np.ndarray:
    """``(len_baseline - len_model) / sd`` (ddof 1); 0 where the spread is 0 or undefined."""
    delta = np.asarray(len_baseline, float) - np.asarray(len_model, float)
    sd = delta.std(ddof=1) if delta.size > 1 else 0.0
    return delta / sd if sd > 0 else np.zeros_like(delta)


def length_controlled_winrate(
    preference,
    len_baseline,
    len_model,
    difficulty,
    *,
    gamed: GamedRows | None = None,
    regularize: float = REGULARIZE_TO_BASELINE,
) -> LengthControlled:
    """AlpacaEval's LC win rate of one model (see the module doc).

    ``preference`` per annotation in [1, 2] (2 = model better; 0 = old draw = 1.5; NaN =
    failed), ``len_*`` the outputs' lengths in characters, ``difficulty`` the instruction's.
    """
    p = np.asarray(preference, float).copy()
    p[p == 0.0] = 1.5
    y = p - 1.0
    d = np.asarray(difficulty, float)
    x_len = np.tanh(standardized_length_difference(len_baseline, len_model))
    X = np.column_stack([x_len, d, np.ones_like(d)])
    w = np.ones_like(y)
    if gamed is not None:
        gy = np.asarray(gamed.preference, float).copy()
        gy[gy == 0.0] = 1.5
        gX = np.column_stack([np.tanh(gamed.std_delta_len), gamed.difficulty, np.zeros(len(gy))])
        # AlpacaEval stacks the gamed rows first (this fixes the folds)
        X_train = np.vstack([gX, X])
        y_train = np.concatenate([gy - 1.0, y])
        w_train = np.concatenate([np.full(len(gy), regularize / 2.0), w])
    else:
        X_train, y_train, w_train = X, y, w
    keep = np.isfinite(y_train) & (y_train >= 0) & (y_train <= 1)
    if not keep[-len(y) :].any():
        raise ValueError("length control: the model has no scored annotation")
    coef, C = fit_logistic_cv(X_train[keep], y_train[keep], w_train[keep])
    weights = dict(zip(FEATURES, map(float, coef), strict=True))
    win_rate, sem = predicted_win_rate(weights, d)
    return LengthControlled(win_rate, sem, weights, float(C), regularized=gamed is not None)


def predicted_win_rate(weights: dict, difficulty) -> tuple[float, float]:
    """The LC win rate and its standard error from a model's GLM weights: the prediction
    with the length term at 0 on each annotation, ``100 · mean`` and ``100 · sem``."""
    d = np.asarray(difficulty, float)
    predicted = expit(weights["model"] + weights["difficulty"] * d)
    sem = predicted.std(ddof=1) / np.sqrt(predicted.size) if predicted.size > 1 else np.nan
    return float(predicted.mean() * 100.0), float(sem * 100.0)


def baseline_against_itself() -> LengthControlled:
    """The baseline's own row: every prediction is 0.5 (AlpacaEval's ``is_baseline``)."""
    return LengthControlled(50.0, 0.0, dict.fromkeys(FEATURES, 0.0), float("nan"), False)


# -- the fit --------------------------------------------------------------------------------


def fold_of_rows(n: int, n_splits: int = N_SPLITS) -> np.ndarray:
    """The fold of each row as ``GroupKFold(n_splits)`` assigns one group per row: groups
    of equal size taken last first (a stable argsort, reversed), each to the lightest
    (first) fold, i.e. round-robin from the last row."""
    return (n - 1 - np.arange(n)) % n_splits


def fit_logistic_cv(
    X, y, weight, *, Cs=CS, n_splits: int = N_SPLITS, folds=None
) -> tuple[np.ndarray, float]:
    """AlpacaEval's ``fit_LogisticRegressionCV`` (soft labels, L1, no intercept): the
    coefficients refitted on all rows at the ``C`` of the best mean held-out log loss."""
    n = X.shape[0]
    with one_blas_thread():  # small products: BLAS threads only wait on each other
        if n < 2 * n_splits:
            return fit_logistic_l1(X, y, weight, FALLBACK_C), FALLBACK_C
        folds = fold_of_rows(n, n_splits) if folds is None else folds
        scores = np.zeros(len(Cs))
        for k in range(n_splits):
            test = folds == k
            train = ~test
            coef = None  # along the path of growing C, each fit starts from the last
            for j in np.argsort(Cs):
                coef = fit_logistic_l1(X[train], y[train], weight[train], Cs[j], start=coef)
                scores[j] += _held_out_log_loss(X[test] @ coef, y[test], weight[test])
        j = int(np.argmin(scores))  # the first of equal scores, as sklearn's argmax
        return fit_logistic_l1(X, y, weight, float(Cs[j])), float(Cs[j])


def _held_out_log_loss(z, y, weight) -> float:
    q = np.clip(expit(z), _EPS, 1 - _EPS)
    return float(-np.mean(weight * (y * np.log(q) + (1 - y) * np.log(1 - q))))


def fit_logistic_l1(X, y, weight, C: float, start=None) -> np.ndarray:
    """``argmin ‖θ‖₁ + C · Σ wᵢ · (−yᵢ log σ(xᵢθ) − (1−yᵢ) log σ(−xᵢθ))`` for soft ``y``.

    liblinear's objective (with the sample weights ``w·y`` on a copy labelled 1 and
    ``w·(1−y)`` on a copy labelled 0, as AlpacaEval feeds it), solved as a smooth bound-
    constrained problem in ``θ = u − v``. The objective is divided by ``C · Σw`` so that
    the solver's tolerances mean the same at every ``C``. ``start``: a first guess (the
    optimum does not depend on it).
    """
    y = np.asarray(y, float)
    w = np.asarray(weight, float)
    # columns rescaled to a comparable weighted norm (the penalty rescaled with them, so the
    # optimum is the same): a model's column spans all its rows, an instruction's a few
    if sparse.issparse(X):
        X = X.tocsr()
        norm = np.sqrt(np.asarray(X.multiply(X).T @ w).ravel() / w.sum())
    else:
        X = np.asarray(X, float)
        norm = np.sqrt((X * X).T @ w / w.sum())
    norm = np.where(norm > 0, norm, 1.0)
    Xs = X @ sparse.diags(1.0 / norm) if sparse.issparse(X) else X / norm
    d = X.shape[1]
    penalty = np.concatenate([1.0 / norm, 1.0 / norm])
    scale = 1.0 / (C * w.sum())
    wy, w1y = w * y, w * (1.0 - y)

    def objective(uv):
        theta = uv[:d] - uv[d:]
        z = Xs @ theta
        loss = -(wy @ log_expit(z) + w1y @ log_expit(-z))
        g = Xs.T @ (w * expit(z) - wy)  # d/dz of the loss: w(σ(z) − y)
        f = scale * (penalty @ uv + C * loss)
        grad = scale * (penalty + C * np.concatenate([g, -g]))
        return f, grad

    start = np.zeros(d) if start is None else np.asarray(start, float) * norm
    res = minimize(
        objective,
        np.concatenate([start.clip(0), (-start).clip(0)]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * (2 * d),
        options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 30},
    )
    return (res.x[:d] - res.x[d:]) / norm


# -- instruction difficulty ---------------------------------------------------------------


def instruction_difficulty(
    model_index,
    instruction_index,
    preference,
    len_baseline,
    len_model,
    gamed_model,
    *,
    Cs=CS,
) -> np.ndarray:
    """Difficulty of each instruction from every model's annotations jointly.

    One row per annotation: ``model_index`` (0..M-1), ``instruction_index`` (0..I-1; 0 is
    the reference instruction, difficulty 0), the preference in [1, 2] about the model,
    the two outputs' lengths, and ``gamed_model`` (per model: a gamed baseline). The
    formula of AlpacaEval's notebook: ``C(model):tanh(Δ/sd_model) + C(model) + C(index) +
    not_gamed_baseline - 1``, fitted by :func:`fit_logistic_cv`. Returns the I terms.
    """
    m = np.asarray(model_index, np.intp)
    ins = np.asarray(instruction_index, np.intp)
    p = np.asarray(preference, float).copy()
    p[p == 0.0] = 1.5
    len_b = np.asarray(len_baseline, float)
    len_m = np.asarray(len_model, float)
    n_models = int(m.max()) + 1
    n_ins = int(ins.max()) + 1
    x_len = np.zeros(len(m))
    for k in range(n_models):  # a loop over models (not rows): each its own spread
        rows = m == k
        x_len[rows] = np.tanh(standardized_length_difference(len_b[rows], len_m[rows]))
    not_gamed = ~np.asarray(gamed_model, bool)[m]
    keep = np.isfinite(p) & (p >= 1) & (p <= 2)
    if not keep.any():
        return np.zeros(n_ins)  # nothing scored: no instruction is harder than another
    n = len(m)
    rows = np.arange(n)
    slope = sparse.csr_matrix((x_len, (rows, m)), shape=(n, n_models))
    bias = sparse.csr_matrix((np.ones(n), (rows, m)), shape=(n, n_models))
    has = ins > 0  # treatment coding: the first instruction is the reference
    inst = sparse.csr_matrix(
        (np.ones(int(has.sum())), (rows[has], ins[has] - 1)), shape=(n, n_ins - 1)
    )
    col = sparse.csr_matrix(not_gamed.astype(float)[:, None])
    X = sparse.hstack([slope, bias, inst, col]).tocsr()[keep]
    coef, _ = fit_logistic_cv(X, p[keep] - 1.0, np.ones(int(keep.sum())), Cs=Cs)
    return np.concatenate([[0.0], coef[2 * n_models : 2 * n_models + n_ins - 1]])
