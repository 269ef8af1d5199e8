"""The one BT fit of arena.matchmaking, checked against choix and statsmodels."""

import choix
import numpy as np
import pytest
import statsmodels.api as sm

from arena.matchmaking._fit import PRIOR, difference_variance, fit_scores, laplace_covariance


def random_wins(n, comparisons, seed):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    i = rng.integers(0, n, comparisons)
    j = (i + rng.integers(1, n, comparisons)) % n
    i_wins = rng.random(comparisons) < 1 / (1 + np.exp(-(s[i] - s[j])))
    winner, loser = np.where(i_wins, i, j), np.where(i_wins, j, i)
    wins = np.zeros((n, n))
    np.add.at(wins, (winner, loser), 1)
    return wins, list(zip(winner.tolist(), loser.tolist(), strict=True))


@pytest.mark.parametrize("prior", [PRIOR, 1.0])
def test_it_matches_choix_opt_pairwise(prior):
    wins, data = random_wins(8, 400, seed=1)
    ours = fit_scores(8, wins, prior=prior)
    theirs = choix.opt_pairwise(8, data, alpha=prior / 2)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_it_matches_choix_without_prior_up_to_a_shift():
    wins, data = random_wins(6, 600, seed=2)
    ours = fit_scores(6, wins, prior=0.0)
    theirs = choix.ilsr_pairwise(6, data, tol=1e-12)
    np.testing.assert_allclose(ours - ours.mean(), theirs - theirs.mean(), atol=1e-6)


def test_ties_count_half_a_win_each_way():
    wins = np.array([[0, 3.5], [1.5, 0]])  # 3 wins, 1 loss, 1 tie for model 0
    s = fit_scores(2, wins, prior=0.0)
    assert s[0] - s[1] == pytest.approx(np.log(3.5 / 1.5))


def test_no_data_gives_zero_strengths_and_bad_input_is_refused():
    np.testing.assert_array_equal(fit_scores(3, np.zeros((3, 3))), np.zeros(3))
    with pytest.raises(ValueError, match="wins: expected shape"):
        fit_scores(3, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        fit_scores(2, np.array([[0, -1.0], [1, 0]]))


def test_laplace_covariance_matches_statsmodels_glm_at_the_mle():
    """BT is a logistic regression on x = e_i - e_j without intercept (model 0 the
    reference); its covariance of contrasts is gauge-free, so it must equal ours."""
    n = 5
    wins, _ = random_wins(n, 800, seed=3)
    i, j = np.triu_indices(n, 1)
    X = np.zeros((i.size, n))
    X[np.arange(i.size), i] = 1.0
    X[np.arange(i.size), j] = -1.0
    endog = np.column_stack([wins[i, j], wins[j, i]])
    glm = sm.GLM(endog, X[:, 1:], family=sm.families.Binomial()).fit(tol=1e-12)
    ref_scores = np.r_[0.0, glm.params]
    ref_cov = np.zeros((n, n))
    ref_cov[1:, 1:] = glm.cov_params()

    scores = fit_scores(n, wins, prior=0.0)
    cov = laplace_covariance(scores, wins + wins.T, prior=0.0)
    np.testing.assert_allclose(scores - scores[0], ref_scores, atol=1e-6)
    np.testing.assert_allclose(
        difference_variance(cov, i, j), difference_variance(ref_cov, i, j), rtol=1e-6
    )


def test_laplace_covariance_with_a_prior_is_the_inverse_hessian_of_the_posterior():
    wins, _ = random_wins(4, 200, seed=4)
    s = fit_scores(4, wins, prior=PRIOR)

    def neg_log_post(x):
        z = x[:, None] - x[None, :]
        return -(wins * -np.logaddexp(0, -z)).sum() + PRIOR / 2 * x @ x

    h, H = 1e-4, np.zeros((4, 4))
    for a in range(4):
        for b in range(4):
            ea, eb = np.eye(4)[a] * h, np.eye(4)[b] * h
            H[a, b] = (
                neg_log_post(s + ea + eb)
                - neg_log_post(s + ea - eb)
                - neg_log_post(s - ea + eb)
                + neg_log_post(s - ea - eb)
            ) / (4 * h * h)
    np.testing.assert_allclose(laplace_covariance(s, wins + wins.T), np.linalg.inv(H), rtol=1e-4)
