"""AlpacaEval 2.0's length-controlled win rate: the GLM against AlpacaEval's own procedure
(scikit-learn's LogisticRegressionCV as ``fit_LogisticRegressionCV`` calls it), the
published leaderboard's figures, and properties."""

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import expit

from arena.importers.records import JudgmentRecord
from arena.ratings.length_controlled import (
    CS,
    GamedRows,
    fit_logistic_cv,
    fold_of_rows,
    instruction_difficulty,
    length_controlled_winrate,
    predicted_win_rate,
    standardized_length_difference,
)
from arena.ratings.winrate import winrate_leaderboard
from tests.alpaca_eval_sim import BASELINE, simulated_items

DATA = Path(__file__).resolve().parents[1] / "data" / "formats"


# -- AlpacaEval's procedure, restated with scikit-learn (the reference) ----------------------


def _alpaca_eval_fit(X, p, sample_weight=None):
    """``fit_LogisticRegressionCV(is_ytrue_proba=True, n_splits=5)`` of AlpacaEval's
    glm_winrate.py: each row twice (label 1 weighted p·w, label 0 weighted (1-p)·w), one
    group per row, GroupKFold(5), L1 liblinear without intercept, the held-out score the
    log loss against the soft label, weighted by the true sample weight."""
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    def soft_log_loss(y_true, y_pred, true_prob, true_sample_weight=None):
        y = np.where(y_true == 1, true_prob, 1 - true_prob)
        q = np.clip(y_pred, 1e-15, 1 - 1e-15)
        ll = y * np.log(q) + (1 - y) * np.log(1 - q)
        return -np.mean(ll if true_sample_weight is None else ll * true_sample_weight)

    n = len(p)
    X2 = np.vstack([X, X])
    y2 = np.r_[np.ones(n), np.zeros(n)]
    true_prob = np.r_[p, 1 - p]
    tsw = None if sample_weight is None else np.r_[sample_weight, sample_weight]
    weight = true_prob if tsw is None else true_prob * tsw
    with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # penalty= is deprecated in scikit-learn 1.8
        scorer = make_scorer(
            soft_log_loss, response_method="predict_proba", greater_is_better=False
        ).set_score_request(true_sample_weight=True, true_prob=True)
        model = LogisticRegressionCV(
            cv=GroupKFold(n_splits=5),
            scoring=scorer,
            random_state=123,
            penalty="l1",
            solver="liblinear",
            fit_intercept=False,
        )
        model.set_fit_request(sample_weight=True)
        model.fit(
            X2,
            y2,
            sample_weight=weight,
            groups=np.r_[np.arange(n), np.arange(n)],
            true_sample_weight=tsw,
            true_prob=true_prob,
        )
    return model.coef_[0], model.C_[0]


def _one_model(seed=0, n=300, strength=-0.5, verbosity=0.6):
    items = simulated_items({"m": (strength, verbosity)}, n_instructions=n, seed=seed)["m"]
    p = np.array([r["preference"] for r in items])
    len_b = np.array([len(r["output_1"]) for r in items])
    len_m = np.array([len(r["output_2"]) for r in items])
    rng = np.random.default_rng(seed + 1)
    return p, len_b, len_m, rng.normal(0, 1, n)


def test_the_folds_are_group_kfolds():
    sklearn_split = pytest.importorskip("sklearn.model_selection")
    n = 37
    folds = fold_of_rows(n)
    for k, (_, test) in enumerate(sklearn_split.GroupKFold(5).split(np.zeros(n), groups=range(n))):
        assert set(test) == set(np.flatnonzero(folds == k))


@pytest.mark.parametrize("seed", [0, 1])
def test_the_glm_is_alpaca_evals_fit(seed):
    p, len_b, len_m, d = _one_model(seed)
    ours = length_controlled_winrate(p, len_b, len_m, d)
    # AlpacaEval's design: tanh(std_delta_len), instruction_difficulty, not_gamed_baseline
    X = np.column_stack(
        [np.tanh((len_b - len_m) / np.std(len_b - len_m, ddof=1)), d, np.ones(len(p))]
    )
    coef, _ = _alpaca_eval_fit(X, p - 1)
    assert list(ours.weights.values()) == pytest.approx(coef, abs=2e-3)  # liblinear: tol 1e-4
    lc = 100 * expit(X[:, 1:] @ coef[1:]).mean()  # predicted with std_delta_len = 0
    assert ours.win_rate == pytest.approx(lc, abs=0.05)
    se = 100 * expit(X[:, 1:] @ coef[1:]).std(ddof=1) / np.sqrt(len(p))
    assert ours.standard_error == pytest.approx(se, abs=0.01)


def test_the_regularised_glm_is_alpaca_evals_fit():
    p, len_b, len_m, d = _one_model(2, n=200)
    verbose, vb, vm, _ = _one_model(3, n=200, strength=0.0, verbosity=0.8)
    concise, cb, cm, _ = _one_model(4, n=200, strength=0.0, verbosity=-0.8)
    gamed = GamedRows(
        preference=np.r_[verbose, concise],
        std_delta_len=np.r_[
            standardized_length_difference(vb, vm), standardized_length_difference(cb, cm)
        ],
        difficulty=np.r_[d, d],
    )
    ours = length_controlled_winrate(p, len_b, len_m, d, gamed=gamed)
    assert ours.regularized
    # AlpacaEval: the gamed rows first, not_gamed_baseline = 0, weight λ/2 = 0.1
    X = np.vstack(
        [
            np.column_stack([np.tanh(gamed.std_delta_len), gamed.difficulty, np.zeros(400)]),
            np.column_stack(
                [np.tanh(standardized_length_difference(len_b, len_m)), d, np.ones(200)]
            ),
        ]
    )
    coef, _ = _alpaca_eval_fit(
        X, np.r_[gamed.preference, p] - 1, np.r_[np.full(400, 0.1), np.ones(200)]
    )
    assert list(ours.weights.values()) == pytest.approx(coef, abs=2e-3)
    plain = length_controlled_winrate(p, len_b, len_m, d)
    assert ours.weights["length"] != pytest.approx(plain.weights["length"], abs=1e-3)


def test_the_cross_validation_scores_like_alpaca_eval():
    """At each C of the grid our held-out log loss is AlpacaEval's scorer; the choice is the
    C of the lowest mean (ties: the first)."""
    p, len_b, len_m, d = _one_model(5, n=120)
    X = np.column_stack([np.tanh(standardized_length_difference(len_b, len_m)), d, np.ones(120)])
    coef, C = fit_logistic_cv(X, p - 1, np.ones(120))
    assert C in CS
    assert coef == pytest.approx(fit_logistic_cv(X, p - 1, np.ones(120), Cs=[C])[0], abs=1e-6)


def test_length_control_removes_a_verbosity_gain():
    """Two models of the same quality, one much longer: the raw win rate favours the long
    one, the LC win rates agree (the judge's bias is what the GLM fits)."""
    items = simulated_items({"short": (0.0, 0.0), "long": (0.0, 1.2)}, n_instructions=400, seed=7)
    records = _records(items)
    board = winrate_leaderboard(records, BASELINE)
    raw = {r.model: r.rating for r in board.rows}
    lc = {r.model: r.length_controlled for r in board.rows}
    assert raw["long"] - raw["short"] > 10
    assert abs(lc["long"] - lc["short"]) < abs(raw["long"] - raw["short"]) / 3
    assert lc[BASELINE] == 50.0 and board.row(BASELINE).lc_standard_error == 0.0


def _records(items):
    out = []
    for model, rows in items.items():
        if model == BASELINE:
            continue
        for i, r in enumerate(rows):
            out.append(
                JudgmentRecord(
                    f"{model}-{i}",
                    (BASELINE, model),
                    preference=r["preference"],
                    prompt_id=r["instruction"],
                    meta={"output_chars": (len(r["output_1"]), len(r["output_2"]))},
                )
            )
    return out


def test_instruction_difficulty_is_recovered_jointly():
    """The notebook's joint fit finds the simulated difficulties (up to the reference
    instruction's level) from eight models' annotations."""
    models = {
        f"m{k}": (s, v)
        for k, (s, v) in enumerate(
            [
                (-1.5, 0.3),
                (-1, -0.2),
                (-0.5, 0.5),
                (0, 0),
                (0.5, 0.2),
                (1, -0.4),
                (0.3, 0.8),
                (-0.2, 0.1),
            ]
        )
    }
    n = 60
    items = simulated_items(models, n_instructions=n, seed=3)
    rng = np.random.default_rng(3)  # the same draws as simulated_items' difficulty
    truth = rng.normal(0.0, 1.0, n)
    m, q, p, lb, lm = [], [], [], [], []
    for k, name in enumerate(models):
        for i, r in enumerate(items[name]):
            m.append(k), q.append(i), p.append(r["preference"])
            lb.append(len(r["output_1"])), lm.append(len(r["output_2"]))
    est = instruction_difficulty(m, q, p, lb, lm, np.zeros(len(models), bool))
    assert est[0] == 0.0 and np.corrcoef(est, truth)[0, 1] > 0.9


# -- properties ------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefs=st.lists(st.floats(1.0, 2.0), min_size=12, max_size=40),
    seed=st.integers(0, 2**16),
)
def test_equal_lengths_give_the_raw_win_rate_shrunk_toward_50(prefs, seed):
    """No length difference: the length term is 0, and the model term alone (the
    difficulties all 0) predicts the mean preference, shrunk toward 50 by the L1 penalty at
    the C cross-validation chose: LC lies between the raw win rate and 50."""
    p = np.array(prefs)
    lengths = np.random.default_rng(seed).integers(1, 500, len(p))
    fit = length_controlled_winrate(p, lengths, lengths, np.zeros(len(p)))
    raw = 100 * (p - 1).mean()
    assert fit.weights["length"] == 0.0
    assert min(raw, 50) - 1e-4 <= fit.win_rate <= max(raw, 50) + 1e-4


def test_equal_lengths_on_many_annotations_give_the_raw_win_rate():
    p, len_b, _, d = _one_model(8, n=400)
    fit = length_controlled_winrate(p, len_b, len_b, np.zeros(400))
    assert fit.win_rate == pytest.approx(100 * (p - 1).mean(), abs=0.05)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(3, 30), seed=st.integers(0, 2**16))
def test_the_baseline_is_fifty(n, seed):
    """The baseline against itself: 50 ± 0, raw and length-controlled, whatever the rest."""
    rng = np.random.default_rng(seed)
    records = [
        JudgmentRecord(
            str(i),
            (BASELINE, "model"),
            preference=float(rng.uniform(1, 2)),
            prompt_id=str(i),
            meta={"output_chars": tuple(int(x) for x in rng.integers(1, 900, 2))},
        )
        for i in range(n)
    ]
    row = winrate_leaderboard(records, BASELINE).row(BASELINE)
    assert (row.rating, row.standard_error) == (50.0, 0.0)
    assert (row.length_controlled, row.lc_standard_error) == (50.0, 0.0)


def test_no_lengths_no_length_control():
    records = [JudgmentRecord(str(i), (BASELINE, "m"), preference=1.7) for i in range(10)]
    board = winrate_leaderboard(records, BASELINE)
    assert all(r.length_controlled is None for r in board.rows)
    assert "length_controlled_win_rate" not in board.to_rows()[0]


# -- the published AlpacaEval 2.0 leaderboard ----------------------------------------------

PUBLISHED = DATA / "alpaca_eval_2"


def _published():
    """Per model: AlpacaEval's saved GLM weights (length_controlled_v1, baseline
    gpt4_1106_preview) and the leaderboard's LC win rate and LC standard error."""
    with open(PUBLISHED / "baseline_gpt4_1106_preview.csv") as f:
        weights = {
            r[""]: {
                "difficulty": float(r["instruction_difficulty"]),
                "model": float(r["not_gamed_baseline.astype(float)"]),
            }
            for r in csv.DictReader(f)
        }
    with open(PUBLISHED / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv") as f:
        board = {r[""]: r for r in csv.DictReader(f)}
    models = [m for m in weights if board.get(m, {}).get("length_controlled_winrate")]
    return models, weights, board


def test_published_lc_win_rates_and_errors_follow_from_the_weights():
    """AlpacaEval's instruction difficulties are on a hub we cannot reach, but every
    published LC win rate is ``mean_i σ(θ_model + θ_diff · d_i)`` over the same 805
    difficulties. Recover their distribution from half of the 184 models' LC win rates
    (non-negative weights on a grid), then predict the other half's LC win rates and the
    published LC standard errors (never used in the fit) with :func:`predicted_win_rate`."""
    from scipy.optimize import nnls

    models, weights, board = _published()
    assert len(models) >= 180
    lc = np.array([float(board[m]["length_controlled_winrate"]) for m in models])
    grid = np.linspace(-6, 6, 241)
    train = np.arange(len(models))[::2]
    A = np.array(
        [
            expit(weights[models[k]]["model"] + weights[models[k]]["difficulty"] * grid)
            for k in train
        ]
    )
    pi, _ = nnls(np.vstack([A, np.full(len(grid), 1e3)]), np.r_[lc[train] / 100, 1e3])
    # 805 difficulties with that distribution (its quantiles)
    cdf = np.cumsum(pi) / pi.sum()
    difficulty = grid[np.searchsorted(cdf, (np.arange(805) + 0.5) / 805).clip(max=len(grid) - 1)]
    predicted = {m: predicted_win_rate(weights[m], difficulty) for m in models}
    held_out = [m for k, m in enumerate(models) if k % 2]
    err = np.array(
        [predicted[m][0] - float(board[m]["length_controlled_winrate"]) for m in held_out]
    )
    assert np.median(np.abs(err)) < 0.05 and np.abs(err).max() < 1.0  # points of win rate
    with_se = [m for m in models if board[m]["lc_standard_error"]]
    assert len(with_se) >= 20
    se_err = np.array([predicted[m][1] - float(board[m]["lc_standard_error"]) for m in with_se])
    assert np.median(np.abs(se_err)) < 0.01 and np.abs(se_err).max() < 0.15
    # the baseline: all weights 0, LC 50 with standard error 0, as published
    assert predicted["gpt4_1106_preview"] == (50.0, 0.0)
    assert float(board["gpt4_1106_preview"]["length_controlled_winrate"]) == 50.0


def test_gamed_baselines_in_the_data_regularise_every_model():
    """AlpacaEval's results folder has the baseline made verbose and concise; their
    annotations become the regulariser (the notebook's rule: baseline name + verbose or
    concise), and the note says so."""
    models = {
        "m": (0.0, 0.5),
        f"{BASELINE}_verbose": (0.0, 0.9),
        f"{BASELINE}_concise": (0.0, -0.9),
    }
    board = winrate_leaderboard(
        _records(simulated_items(models, n_instructions=60, seed=9)), BASELINE
    )
    (note,) = [n for n in board.notes if n.startswith("length_controlled_win_rate")]
    assert f"regularised toward the baseline by {BASELINE}_verbose, {BASELINE}_concise" in note
    assert all(r.length_controlled is not None for r in board.rows)
    assert board.coefficients["m.lc_length"] < 0  # the baseline longer -> the judge prefers it


def test_the_slot_order_of_the_records_does_not_matter():
    items = simulated_items({"a": (0.3, 0.4), "b": (-0.4, -0.2)}, n_instructions=50, seed=11)
    records = _records(items)
    swapped = [
        JudgmentRecord(
            r.match_id,
            r.contestants[::-1],
            preference=3 - r.preference,
            prompt_id=r.prompt_id,
            meta={"output_chars": r.meta["output_chars"][::-1]},
        )
        for r in records
    ]
    one, two = winrate_leaderboard(records, BASELINE), winrate_leaderboard(swapped, BASELINE)
    for row in one.rows:
        assert two.row(row.model).rating == pytest.approx(row.rating, abs=1e-12)
        assert two.row(row.model).length_controlled == pytest.approx(
            row.length_controlled, abs=1e-9
        )


def test_failed_annotations_are_predicted_not_fitted():
    """AlpacaEval fits on the scored annotations and averages its predictions over all of
    them (a failed one too); a model with only failed annotations has no LC."""
    p, len_b, len_m, d = _one_model(12, n=80)
    failed = p.copy()
    failed[:5] = np.nan
    with_failed = length_controlled_winrate(failed, len_b, len_m, d)
    weights = length_controlled_winrate(failed[5:], len_b[5:], len_m[5:], d[5:]).weights
    # the same fit (the length spread is over all 80 rows, so the weights differ a little)
    assert with_failed.win_rate == pytest.approx(predicted_win_rate(with_failed.weights, d)[0])
    assert with_failed.weights["model"] == pytest.approx(weights["model"], abs=0.1)
    with pytest.raises(ValueError, match="no scored annotation"):
        length_controlled_winrate(np.full(10, np.nan), len_b[:10], len_m[:10], d[:10])
    assert not instruction_difficulty(
        [0, 0], [0, 1], [np.nan, np.nan], [5, 6], [7, 8], [False]
    ).any()
