"""Bradley-Terry / Davidson on counts: the maths against independent implementations."""

import choix
import numpy as np
import pytest
import statsmodels.api as sm
from scipy.optimize import approx_fprime, check_grad, minimize
from sklearn.linear_model import LogisticRegression

from arena.ratings.bt import PairDesign, build_design, fit_bt, gradient, hessian, objective
from arena.ratings.counts import BOTH_BAD, FIRST, SECOND, TIE, PairwiseCounts
from arena.ratings.scale import ELO_SCALE, parse_anchor, to_rating


def simulate(n=5, votes=2000, seed=0, tie_rate=0.2, gamma=0.0):
    """Random first/second/outcome cells from known strengths (one cell per vote)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 1, n)
    first = rng.integers(0, n, votes)
    second = (first + rng.integers(1, n, votes)) % n
    p_first = 1 / (1 + np.exp(-(s[first] - s[second] + gamma)))
    u = rng.random(votes)
    outcome = np.where(
        u < tie_rate / 2,
        TIE,
        np.where(u < tie_rate, BOTH_BAD, np.where(rng.random(votes) < p_first, FIRST, SECOND)),
    )
    models = [f"m{i}" for i in range(n)]
    return s, PairwiseCounts.from_cells(models, first, second, outcome, np.ones(votes))


def designs():
    _, counts = simulate(n=4, votes=600, seed=3)
    rng = np.random.default_rng(1)
    plain = build_design(counts)
    yield "half", plain, plain.row_stats(counts.weight)
    yield "prior", build_design(counts, prior=0.7), plain.row_stats(counts.weight)
    pos = build_design(counts, position=True)
    yield "position", pos, pos.row_stats(counts.weight)
    dav = build_design(counts, ties="davidson", position=True)
    yield "davidson", dav, dav.row_stats(counts.weight)
    cov = PairDesign(
        **{**pos.__dict__, "covariates": rng.normal(size=(pos.n_rows, 2)), "covariate_prior": 0.3}
    )
    yield "covariates", cov, pos.row_stats(counts.weight)


@pytest.mark.parametrize(
    "name,design,stats", list(designs()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_gradient_and_hessian_match_finite_differences(name, design, stats):
    theta = np.random.default_rng(7).normal(0, 0.5, design.n_params)
    err = check_grad(objective, gradient, theta, design, stats)
    assert err < 1e-5 * max(1.0, np.linalg.norm(gradient(theta, design, stats)))
    numeric = np.array(
        [
            approx_fprime(theta, lambda t, k=k: gradient(t, design, stats)[k], 1e-6)
            for k in range(design.n_params)
        ]
    )
    np.testing.assert_allclose(hessian(theta, design, stats), numeric, atol=2e-3, rtol=1e-4)


def test_matches_choix_on_win_loss_data():
    rng = np.random.default_rng(11)
    data = choix.generate_pairwise(rng.normal(size=6), 3000)
    winners, losers = np.array(data).T
    counts = PairwiseCounts.from_cells(
        [str(i) for i in range(6)], winners, losers, np.zeros(len(data)), np.ones(len(data))
    )
    fit = fit_bt(counts)
    ref = choix.ilsr_pairwise(6, data, tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(fit.scores, ref - ref.mean(), atol=1e-8)
    assert fit.converged and fit.n_iter < 15


def test_prior_matches_choix_map_estimate():
    # choix minimises alpha * ||θ||² + NLL, i.e. our prior/2 = alpha.
    rng = np.random.default_rng(2)
    data = choix.generate_pairwise(rng.normal(size=5), 400)
    winners, losers = np.array(data).T
    counts = PairwiseCounts.from_cells(
        [str(i) for i in range(5)], winners, losers, np.zeros(len(data)), np.ones(len(data))
    )
    fit = fit_bt(counts, prior=0.2)
    ref = choix.opt_pairwise(5, data, alpha=0.1, tol=1e-10)
    np.testing.assert_allclose(fit.scores, ref, atol=1e-6)


def test_half_ties_match_weighted_logistic_regression():
    """A tie is half a win each way: sklearn with tie rows split 0.5/0.5, no penalty."""
    s, counts = simulate(n=5, votes=3000, seed=4)
    n = counts.n_models
    X = np.zeros((counts.n_cells, n))
    X[np.arange(counts.n_cells), counts.first] = 1
    X[np.arange(counts.n_cells), counts.second] = -1
    win = np.select([counts.outcome == FIRST, counts.outcome == SECOND], [1.0, 0.0], 0.5)
    Xd = np.vstack([X, X])
    yd = np.r_[np.ones(counts.n_cells), np.zeros(counts.n_cells)]
    wd = np.r_[counts.weight * win, counts.weight * (1 - win)]
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-12, max_iter=10_000)
    lr.fit(Xd[wd > 0], yd[wd > 0], sample_weight=wd[wd > 0])
    ref = lr.coef_[0] - lr.coef_[0].mean()
    np.testing.assert_allclose(fit_bt(counts).scores, ref, atol=1e-5)


def test_position_term_matches_statsmodels_glm():
    s, counts = simulate(n=4, votes=4000, seed=5, gamma=0.4)
    fit = fit_bt(counts, position=True)
    design = build_design(counts, position=True)
    stats = design.row_stats(counts.weight)
    X = design.incidence().toarray()[:, 1:]  # drop model 0: s_0 = 0 identifies the fit
    X = np.column_stack([X, np.ones(design.n_rows)])
    glm = sm.GLM(
        stats[:, 0] / stats[:, 1], X, family=sm.families.Binomial(), var_weights=stats[:, 1]
    ).fit(tol=1e-12)
    ref = np.r_[0.0, glm.params[:-1]]
    np.testing.assert_allclose(fit.scores, ref - ref.mean(), atol=1e-6)
    assert fit.position == pytest.approx(glm.params[-1], abs=1e-6)
    assert fit.position == pytest.approx(0.4, abs=0.15)  # and it recovers the truth


def test_davidson_matches_direct_likelihood():
    """Maximise Davidson's likelihood written out cell by cell with scipy."""
    _, counts = simulate(n=4, votes=1500, seed=6, tie_rate=0.3)
    fit = fit_bt(counts, ties="davidson")

    def nll(theta):
        s, log_nu = np.r_[theta[:3], -theta[:3].sum()], theta[3]
        total = 0.0
        for f, g, o, w in zip(
            counts.first, counts.second, counts.outcome, counts.weight, strict=True
        ):
            pi_f, pi_g, nu = np.exp(s[f]), np.exp(s[g]), np.exp(log_nu)
            denom = pi_f + pi_g + nu * np.sqrt(pi_f * pi_g)
            num = {FIRST: pi_f, SECOND: pi_g}.get(o, nu * np.sqrt(pi_f * pi_g))
            total -= w * np.log(num / denom)
        return total

    ref = minimize(nll, np.zeros(4), method="BFGS", options={"gtol": 1e-9}).x
    np.testing.assert_allclose(fit.scores, np.r_[ref[:3], -ref[:3].sum()], atol=1e-4)
    assert fit.tie_log_nu == pytest.approx(ref[3], abs=1e-4)


def test_bothbad_drop_ignores_bothbad_votes():
    _, counts = simulate(n=4, votes=800, seed=8, tie_rate=0.4)
    keep = counts.outcome != BOTH_BAD
    without = PairwiseCounts(
        counts.models,
        counts.first[keep],
        counts.second[keep],
        counts.outcome[keep],
        counts.weight[keep],
    )
    np.testing.assert_allclose(
        fit_bt(counts, bothbad="drop").scores, fit_bt(without).scores, atol=1e-10
    )


def test_converges_to_tight_tolerance():
    _, counts = simulate(n=8, votes=5000, seed=9)
    fit = fit_bt(counts, tol=1e-12)
    design = build_design(counts)
    g = gradient(np.r_[fit.scores], design, design.row_stats(counts.weight))
    assert np.abs(g).max() < 1e-8
    assert fit.converged


def test_scale_and_anchor():
    s = np.array([0.0, np.log(10.0)])
    np.testing.assert_allclose(to_rating(s, ["a", "b"]), [1000.0, 1400.0])
    np.testing.assert_allclose(to_rating(s, ["a", "b"], ("b", 1200.0)), [800.0, 1200.0])
    replicas = np.array([[0.0, 1.0], [0.5, 1.0]])
    anchored = to_rating(replicas, ["a", "b"], ("a", 1000.0))
    np.testing.assert_allclose(anchored[:, 0], 1000.0)  # anchored in every replica
    np.testing.assert_allclose(anchored[1, 1], 1000.0 + ELO_SCALE * 0.5)
    assert parse_anchor("mixtral-8x7b=1114") == ("mixtral-8x7b", 1114.0)
    assert parse_anchor("a=b=3") == ("a=b", 3.0)
    with pytest.raises(ValueError, match="anchor"):
        parse_anchor("nonsense")
    with pytest.raises(ValueError, match="not on this leaderboard"):
        to_rating(s, ["a", "b"], ("zzz", 1.0))
