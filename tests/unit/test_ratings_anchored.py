"""Human-anchored Bradley-Terry (PPI++) and the anchor selector: the maths on simulated runs."""

import numpy as np
import pytest
from scipy.special import expit, logit

from arena.matchmaking.anchors import (
    BOUNDARY,
    CONFIDENT,
    SPLIT,
    STRATA,
    UNCERTAIN,
    draw_anchors,
    inclusion_probabilities,
    select_anchors,
    strata,
)
from arena.ratings.anchored import AnchoredMatches, anchored_bt
from arena.ratings.bt import fit_bt
from arena.ratings.counts import FIRST, SECOND, PairwiseCounts


def run(seed, n_models=6, prompts=40, bias=0.8, concentration=0.7):
    """A judged run: true strengths, every pair on ``prompts`` prompts, one human label per
    match ~ Bernoulli(p_k) with E p_k = σ(θ_a - θ_b) (so θ is the human BT truth), and a
    judge whose probability is biased +``bias`` logits toward model 0."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 0.6, n_models)
    theta -= theta.mean()
    a, b = np.triu_indices(n_models, 1)
    first, second = np.repeat(a, prompts), np.repeat(b, prompts)
    mu = expit(theta[first] - theta[second])
    p = np.clip(rng.beta(mu * concentration, (1 - mu) * concentration), 1e-3, 1 - 1e-3)
    human = (rng.random(p.size) < p).astype(float)
    shift = np.where(first == 0, bias, 0.0) - np.where(second == 0, bias, 0.0)
    judge = expit(logit(p) + shift + rng.normal(0, 0.5, p.size))
    return theta, first, second, human, judge


def matches(first, second, judge, human, chosen, inclusion, n_models=6):
    models = tuple(f"m{i}" for i in range(n_models))
    labels = np.where(chosen, human, np.nan)
    return AnchoredMatches(models, first, second, judge, labels, inclusion)


def uniform_labels(n, share, rng):
    chosen = np.zeros(n, bool)
    chosen[rng.choice(n, int(share * n), replace=False)] = True
    return chosen, np.full(n, chosen.mean())


def test_it_is_human_only_bt_at_lambda_0():
    theta, first, second, human, judge = run(1)
    rng = np.random.default_rng(0)
    chosen, inclusion = uniform_labels(first.size, 0.3, rng)
    fit = anchored_bt(matches(first, second, judge, human, chosen, inclusion), lam=0.0)
    # the project's BT on the labelled matches alone
    idx = np.flatnonzero(chosen)
    counts = PairwiseCounts.from_cells(
        [f"m{i}" for i in range(6)],
        first[idx],
        second[idx],
        np.where(human[idx] > 0.5, FIRST, SECOND),
        np.ones(idx.size),
    )
    reference = fit_bt(counts).scores
    np.testing.assert_allclose(fit.scores, reference - reference.mean(), atol=1e-7)
    # and the judge's verdicts change nothing at λ = 0
    other = anchored_bt(matches(first, second, 1 - judge, human, chosen, inclusion), lam=0.0)
    np.testing.assert_allclose(other.scores, fit.scores, atol=1e-9)
    np.testing.assert_allclose(other.covariance, fit.covariance, atol=1e-12)


def test_every_match_labelled_for_sure_tunes_lambda_to_0():
    theta, first, second, human, judge = run(2, prompts=10)
    n = first.size
    fit = anchored_bt(matches(first, second, judge, human, np.ones(n, bool), np.ones(n)))
    assert fit.lam == 0.0
    alone = anchored_bt(matches(first, second, judge, human, np.ones(n, bool), np.ones(n)), lam=0)
    np.testing.assert_allclose(fit.scores, alone.scores)


def test_the_estimating_equation_holds_at_the_estimate():
    theta, first, second, human, judge = run(3)
    rng = np.random.default_rng(3)
    chosen, inclusion = uniform_labels(first.size, 0.2, rng)
    fit = anchored_bt(matches(first, second, judge, human, chosen, inclusion))
    ipw = np.where(chosen, 1 / inclusion, 0.0)
    h = np.where(chosen, human, 0.0)
    lam = fit.lam
    p = expit(fit.scores[first] - fit.scores[second])
    score = lam * (p - judge) + ipw * ((p - h) - lam * (p - judge))
    grad = np.bincount(first, score, 6) - np.bincount(second, score, 6)
    np.testing.assert_allclose(grad, 0, atol=1e-7)
    assert 0 <= lam <= 1


def test_it_is_unbiased_where_the_judge_is_not():
    """Over seeds, every anchored estimate centres on the truth (labels drawn unequally by
    the selector, weighted back), while the judge's own fit of its favourite sits far off."""
    errors, judge_errors = [], []
    for seed in range(120):
        theta, first, second, human, judge = run(seed)
        rng = np.random.default_rng(seed + 99)
        plan = select_anchors(
            first, second, judge, np.zeros(first.size), theta, 0.15 * first.size, rng
        )
        fit = anchored_bt(matches(first, second, judge, human, plan.chosen, plan.inclusion))
        errors.append(fit.scores - theta)
        everything = matches(
            first, second, judge, judge, np.ones(first.size, bool), np.ones(first.size)
        )
        judge_errors.append(anchored_bt(everything, lam=0).scores - theta)
    errors, judge_errors = np.array(errors), np.array(judge_errors)
    se = errors.std(axis=0) / np.sqrt(len(errors))
    assert np.all(np.abs(errors.mean(axis=0)) < 4 * se + 0.01)
    assert judge_errors.mean(axis=0)[0] > 0.2  # the judge's favourite (+0.8 logits on p_k)


@pytest.mark.parametrize("lam", [0.0, None])
def test_labels_drawn_by_the_judges_verdict_are_weighted_back(lam):
    """Labels drawn 10 x more often where the judge favours the first model would pull an
    unweighted fit toward first models; 1 / probability weights undo it."""
    errors = []
    for seed in range(100):
        theta, first, second, human, judge = run(seed)
        rng = np.random.default_rng(seed + 3)
        inclusion = np.where(judge > 0.5, 0.6, 0.06)
        chosen = rng.random(first.size) < inclusion  # independent (Poisson) draws
        fit = anchored_bt(matches(first, second, judge, human, chosen, inclusion), lam=lam)
        errors.append(fit.scores - theta)
    errors = np.array(errors)
    se = errors.std(axis=0) / np.sqrt(len(errors))
    assert np.all(np.abs(errors.mean(axis=0)) < 4 * se + 0.01), (errors.mean(axis=0), se)


def test_its_95_percent_intervals_cover_the_truth():
    hits, judge_hits = [], []
    for seed in range(150):
        theta, first, second, human, judge = run(seed, bias=0.8)
        rng = np.random.default_rng(seed + 7)
        plan = select_anchors(
            first, second, judge, np.zeros(first.size), theta, 0.15 * first.size, rng
        )
        fit = anchored_bt(matches(first, second, judge, human, plan.chosen, plan.inclusion))
        se = fit.standard_errors
        hits.append(np.abs(fit.scores - theta) <= 1.96 * se)
        everything = matches(
            first, second, judge, judge, np.ones(first.size, bool), np.ones(first.size)
        )
        judge_only = anchored_bt(everything, lam=0)
        judge_hits.append(np.abs(judge_only.scores - theta) <= 1.96 * judge_only.standard_errors)
    coverage = np.mean(hits)
    assert 0.92 <= coverage <= 0.99, coverage  # 900 intervals: ±1.5 % Monte-Carlo sd
    assert np.mean(judge_hits) < 0.8


def test_the_effective_sample_size_beats_human_only_with_a_good_judge():
    theta, first, second, human, judge = run(5, bias=0.0, prompts=80)
    rng = np.random.default_rng(5)
    chosen, inclusion = uniform_labels(first.size, 0.1, rng)
    fit = anchored_bt(matches(first, second, judge, human, chosen, inclusion))
    assert fit.ess_gain > 1.3
    assert fit.effective_labels == pytest.approx(fit.n_labelled * fit.ess_gain)
    option = fit.option()
    assert option["method"] == "anchored"
    assert [r["rating"] for r in option["rows"]] == sorted(
        (r["rating"] for r in option["rows"]), reverse=True
    )
    assert sum(r["human_labels"] for r in option["rows"]) == 2 * fit.n_labelled
    assert option["coefficients"]["ess_gain"] == pytest.approx(fit.ess_gain)


def test_anchored_ratings_move_with_an_anchor():
    theta, first, second, human, judge = run(6)
    chosen, inclusion = uniform_labels(first.size, 0.2, np.random.default_rng(6))
    fit = anchored_bt(matches(first, second, judge, human, chosen, inclusion))
    ratings, lower, upper, se = fit.ratings(anchor=("m2", 1200.0))
    assert ratings[2] == pytest.approx(1200.0)
    assert se[2] == pytest.approx(0.0, abs=1e-6)
    assert np.all(lower <= ratings) and np.all(ratings <= upper)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(judge=1.5), "judge"),
        (dict(inclusion=0.0), "inclusion"),
        (dict(human=2.0), "human"),
    ],
)
def test_bad_input_is_refused(change, message):
    theta, first, second, human, judge = run(7, prompts=5)
    n = first.size
    arrays = dict(judge=judge.copy(), inclusion=np.full(n, 0.5), human=human.copy())
    for key, value in change.items():
        arrays[key][3] = value
    with pytest.raises(ValueError, match=message):
        AnchoredMatches(
            tuple(f"m{i}" for i in range(6)),
            first,
            second,
            arrays["judge"],
            arrays["human"],
            arrays["inclusion"],
        )


def test_no_labels_or_a_disconnected_run_is_refused():
    theta, first, second, human, judge = run(8, prompts=5)
    n = first.size
    with pytest.raises(ValueError, match="no human labels"):
        anchored_bt(matches(first, second, judge, human, np.zeros(n, bool), np.ones(n)))
    keep = (first < 3) & (second < 3) | (first >= 3) & (second >= 3)
    with pytest.raises(ValueError, match="connect"):
        anchored_bt(
            matches(
                first[keep],
                second[keep],
                judge[keep],
                human[keep],
                np.ones(keep.sum(), bool),
                np.ones(keep.sum()),
            )
        )


# -- the anchor selector ----------------------------------------------------------------


def test_strata_follow_the_judge():
    first = np.array([0, 0, 1, 0])
    second = np.array([1, 2, 2, 3])
    judge = np.array([0.5, 0.6, 1.0, 0.95])
    spread = np.array([1.0, 0.0, 0.0, 0.0])
    scores = np.array([2.0, 1.0, 0.95, -1.0])  # ranks 0, 1, 2, 3; models 1 and 2 close
    out = strata(first, second, judge, spread, scores)
    assert [STRATA[h] for h in out] == ["split", "uncertain", "boundary", "confident"]
    assert (SPLIT, UNCERTAIN, BOUNDARY, CONFIDENT) == (0, 1, 2, 3)


def test_inclusion_probabilities_spend_the_budget_and_keep_a_uniform_floor():
    rng = np.random.default_rng(0)
    n = 1000
    stratum = rng.integers(0, 4, n).astype(np.int8)
    judge = np.where(stratum == SPLIT, 0.5, rng.random(n))
    pi = inclusion_probabilities(stratum, judge, 100, uniform_share=0.3)
    assert pi.sum() == pytest.approx(100)
    assert pi.min() >= 0.3 * 100 / n - 1e-12
    assert pi[stratum == SPLIT][0] > pi[stratum == CONFIDENT][0]
    # a budget larger than a stratum can take moves the excess to the others
    pi = inclusion_probabilities(stratum, judge, 900, uniform_share=0.0)
    assert pi.max() <= 1.0 and pi.sum() == pytest.approx(900)
    with pytest.raises(ValueError, match="budget"):
        inclusion_probabilities(stratum, judge, 0)


def test_each_match_is_drawn_with_its_inclusion_probability():
    rng = np.random.default_rng(1)
    stratum = np.repeat(np.arange(4), [50, 30, 15, 5]).astype(np.int8)
    pi = inclusion_probabilities(stratum, np.full(100, 0.7), 20, uniform_share=0.5)
    draws = np.array([draw_anchors(stratum, pi, rng) for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(axis=0), pi, atol=0.03)
    sizes = draws.sum(axis=1)
    assert abs(sizes.mean() - 20) < 0.2 and sizes.std() < 2  # fixed size, up to rounding
