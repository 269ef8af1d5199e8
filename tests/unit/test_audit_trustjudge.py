"""TrustJudge: distribution-sensitive scores, pair relations, the paper's two inconsistency
measures on hand cases, and soft outcomes in the BT fit."""

import math

import numpy as np
import pytest

from arena.ratings.bt import fit_bt
from arena.ratings.counts import PairwiseCounts, soft_outcome_counts
from judges import prompts
from judges.audit_metrics import INVALID, MISSING, TIE, A, B
from judges.audit_metrics.score_pairwise import score_pairwise_inconsistency
from judges.audit_metrics.trustjudge import (
    both_orders_relation,
    distribution_score,
    expected_scores,
    likelihood_relation,
    perplexity,
    perplexity_relation,
    scale_temperature,
    transitivity_inconsistency,
)
from judges.clients.judge import parse_reply, reply_probabilities
from judges.clients.simulation import JudgeBehaviour, Scenario, SimModel, Simulator


def test_expected_score_is_renormalised_over_valid_ratings():
    # 0.5 on 7, 0.3 on 8, 0.2 on a non-rating token left out before: (3.5 + 2.4) / 0.8
    p = np.zeros((1, 10))
    p[0, 6], p[0, 7] = 0.5, 0.3
    assert expected_scores(p, np.arange(1, 11))[0] == pytest.approx(5.9 / 0.8)
    assert distribution_score({"7": 0.5, "8": 0.3, "x": 0.2, "11": 0.4}, 1, 10) == pytest.approx(
        5.9 / 0.8
    )
    assert distribution_score({"x": 1.0}, 1, 10) is None
    assert math.isnan(expected_scores(np.zeros((1, 3)), [1, 2, 3])[0])


def test_fine_scale_uses_the_papers_softmax_over_logits():
    assert scale_temperature(1, 10) is None
    assert scale_temperature(1, 100) == 0.2
    p = {"70": 0.5, "80": 0.25}
    logits = np.log(np.array([0.5, 0.25]) / np.array([0.5, 0.75])) / 0.2
    w = np.exp(logits) / np.exp(logits).sum()
    assert distribution_score(p, 1, 100) == pytest.approx(70 * w[0] + 80 * w[1])
    # a lone rating is itself
    assert distribution_score({"42": 0.9}, 1, 100) == pytest.approx(42)


def test_both_orders_relation_is_a_winner_only_when_both_agree():
    first = [A, A, B, TIE, A, INVALID]
    second = [A, B, B, A, MISSING, A]
    assert both_orders_relation(first, second).tolist() == [A, TIE, B, TIE, MISSING, MISSING]


def test_likelihood_relation_sums_both_orders_and_takes_the_argmax():
    first = [[0.6, 0.1, 0.3], [0.4, 0.5, 0.1], [0.3, 0.3, 0.4], [np.nan] * 3]
    second = [[0.1, 0.6, 0.3], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0]]
    # (0.7, 0.7, 0.6): equal top -> tie; (1.1, 0.7, 0.2) -> A; ties win; missing
    assert likelihood_relation(first, second).tolist() == [TIE, A, TIE, MISSING]
    # margin (1.1 - 0.7) / 2 = 0.2 below a tolerance of 0.25: a tie
    assert likelihood_relation(first[1:2], second[1:2], tolerance=0.25).tolist() == [TIE]


def test_perplexity_relation_keeps_the_surer_order():
    assert perplexity_relation([A, A, B], [B, B, A], [1.1, 1.5, 1.2], [1.3, 1.2, 1.2]).tolist() == [
        A,
        B,
        TIE,
    ]
    assert perplexity([-0.1, -0.3]) == pytest.approx(math.exp(0.2))


def test_transitivity_inconsistency_counts_cycles_and_equivalence_contradictions():
    # prompt 0: a > b, b > c, c > a (a cycle)
    # prompt 1: a = b, b = c, a > c (an equivalence contradiction)
    # prompt 2: a > b, b = c, a > c (consistent: a > b = c)
    # prompt 3: a > b, b > c, a = c (equivalence contradiction), plus a fourth answer d
    #           below everything: triples abd, acd, bcd are consistent
    group = [0, 0, 0, 1, 1, 1, 2, 2, 2] + [3] * 6
    i = ["a", "b", "c", "a", "b", "a", "a", "b", "a", "a", "b", "a", "a", "b", "c"]
    j = ["b", "c", "a", "b", "c", "c", "b", "c", "c", "b", "c", "c", "d", "d", "d"]
    rel = [A, A, A, TIE, TIE, A, A, TIE, A, A, A, TIE, A, A, A]
    out = transitivity_inconsistency(group, i, j, rel, n_boot=0)
    assert (out.n_triples, out.n_circular, out.n_equivalence) == (7, 1, 2)
    assert out.share.value == pytest.approx(3 / 7)
    # a > b = c with c > a is circular through the tie
    out = transitivity_inconsistency(
        [0] * 3, ["a", "b", "c"], ["b", "c", "a"], [A, TIE, A], n_boot=0
    )
    assert (out.n_circular, out.n_equivalence) == (1, 0)
    # an unjudged pair leaves the triple out
    out = transitivity_inconsistency([0, 0], ["a", "b"], ["b", "c"], [A, A], n_boot=0)
    assert out.n_triples == 0


def test_transitivity_matches_a_brute_force_weak_order_check():
    rng = np.random.default_rng(3)
    k, n_groups = 5, 20
    group, i, j, rel = [], [], [], []
    for g in range(n_groups):
        for a in range(k):
            for b in range(a + 1, k):
                group.append(g)
                i.append(a)
                j.append(b)
                rel.append(int(rng.choice([A, B, TIE])))
    out = transitivity_inconsistency(group, i, j, rel, n_boot=0)
    table = {(g, a, b): r for g, a, b, r in zip(group, i, j, rel, strict=True)}
    sign = {A: 1, B: -1, TIE: 0}
    bad = total = 0
    orders = [np.array(o) for o in np.ndindex(3, 3, 3)]  # every weak order of three levels
    for g in range(n_groups):
        for a in range(k):
            for b in range(a + 1, k):
                for c in range(b + 1, k):
                    total += 1
                    want = (sign[table[g, a, b]], sign[table[g, b, c]], sign[table[g, a, c]])
                    fits = any(
                        (np.sign(s[0] - s[1]), np.sign(s[1] - s[2]), np.sign(s[0] - s[2])) == want
                        for s in orders
                    )
                    bad += not fits
    assert out.n_triples == total
    assert out.n_circular + out.n_equivalence == bad


def test_score_comparison_with_distribution_scores_breaks_discrete_ties():
    # both answers rated 7, but one had most of its mass on 8: the pair says A
    score_a = distribution_score({"7": 0.5, "8": 0.5}, 1, 10)
    score_b = distribution_score({"7": 0.8, "6": 0.2}, 1, 10)
    discrete = score_pairwise_inconsistency([7.0], [7.0], [A]).conflict.value
    trust = score_pairwise_inconsistency([score_a], [score_b], [A]).conflict.value
    assert (discrete, trust) == (1.0, 0.0)


def test_soft_outcomes_fit_is_the_weighted_fit():
    models = ["x", "y", "z"]
    first, second = np.array([0, 0, 1, 2]), np.array([1, 2, 2, 0])
    p = np.array([0.75, 0.6, 0.9, 0.2])
    soft = fit_bt(soft_outcome_counts(models, first, second, p))
    # the same verdicts as weighted cells: p for the first, 1 - p for the second
    weighted = PairwiseCounts.from_cells(
        models,
        np.r_[first, first],
        np.r_[second, second],
        np.r_[np.zeros(4, int), np.ones(4, int)],
        np.r_[p, 1 - p],
    )
    np.testing.assert_allclose(soft.scores, fit_bt(weighted).scores, atol=1e-9)
    # p = 0.75 on each of four verdicts is three wins and one loss
    four = fit_bt(soft_outcome_counts(["x", "y"], [0] * 4, [1] * 4, [0.75] * 4))
    hard = fit_bt(PairwiseCounts.from_cells(["x", "y"], [0, 0], [1, 1], [0, 1], [3.0, 1.0]))
    np.testing.assert_allclose(four.scores, hard.scores, atol=1e-9)
    assert four.scores[0] - four.scores[1] == pytest.approx(math.log(3))
    with pytest.raises(ValueError, match="p_first"):
        soft_outcome_counts(models, [0], [1], [1.5])


@pytest.mark.parametrize("mode", prompts.SINGLE_MODES)
def test_simulated_ratings_come_back_from_the_logprobs(mode):
    from judges.clients.fake_server import _logprobs_content

    judge = SimModel("judge", judge=JudgeBehaviour(noise=0.0))
    candidate = SimModel("c", quality=1.0)
    sim = Simulator(Scenario("t", (candidate, judge), seed=1))
    answer = sim.generate(candidate, [{"role": "user", "content": "Why is the sky blue?"}]).text
    messages = prompts.render(prompts.get_template(mode), "Why is the sky blue?", [answer])
    reply = sim.chat({"model": "judge", "messages": messages, "temperature": 0}, 0)
    low, high = prompts.score_scale(mode)

    class Reply:
        text = reply.text
        logprobs = _logprobs_content(reply, 20)

    parsed = parse_reply(mode, reply.text)
    assert low <= parsed.value <= high
    found = reply_probabilities(mode, Reply())
    dist = reply.verdict_distribution
    top = sorted(dist, key=dist.get, reverse=True)[:20]
    for label in top[:5]:  # the returned alternatives, renormalised over the top 20
        assert found.by_label[label] == pytest.approx(dist[label] / sum(dist[t] for t in top))
    # the known mean: 1 + (high - 1)/9 (4.5 + 1.5 q) at no noise, the answer's own quality
    quality = sim.answer_info(answer, "Why is the sky blue?").quality
    mean = 1 + (high - 1) / 9 * (4.5 + 1.5 * quality)
    score = distribution_score(found.by_label, low, high)
    assert abs(score - mean) < (0.3 if high == 10 else 3.0)


def test_the_audit_uses_likelihood_then_perplexity_then_the_discrete_relation():
    from judges.audit_metrics.trustjudge import trustjudge_audit

    nan3 = [np.nan] * 3
    # one prompt, answers x, y, z: x-y judged with probabilities (A wins both ways on
    # the sum), y-z with perplexities only (the surer order says B), x-z with neither
    # (orders disagree: a tie). Discrete: x = y (orders disagree), y = z, x = z.
    audit = trustjudge_audit(
        group=[0, 0, 0],
        i=["x", "y", "x"],
        j=["y", "z", "z"],
        first=[A, A, A],
        second=[B, B, B],
        p_first=[[0.9, 0.1, 0.0], nan3, nan3],
        p_second=[[0.4, 0.6, 0.0], nan3, nan3],
        ppl_first=[np.nan, 1.5, np.nan],
        ppl_second=[np.nan, 1.1, np.nan],
        scores=([7.0, 7.0, 7.0], [7.0, 6.0, 6.0]),
        trust_scores=([7.4, 7.1, 7.4], [7.1, 6.2, 6.2]),
        n_boot=0,
    )
    assert (audit.n_pairs, audit.n_likelihood, audit.n_perplexity) == (3, 1, 1)
    # discrete: all ties, consistent; TrustJudge: x > y, y < z, x = z: y lowest, consistent
    assert audit.transitivity_discrete.share.value == 0
    assert audit.transitivity_trust.share.value == 0
    # the ratings against the discrete (all tie) relation: 1 of 3 pairs ties on the
    # ratings; the distribution-sensitive scores (x 7.4 > y 7.1, y 7.1 > z 6.2, x 7.4 >
    # z 6.2) against TrustJudge's own relation (x > y, y < z, x = z): only x-y agrees.
    # Against the discrete ties they would conflict on all three.
    assert audit.score_discrete.value == pytest.approx(2 / 3)
    assert audit.score_trust.value == pytest.approx(2 / 3)


def test_trustjudge_scores_are_measured_against_trustjudges_own_pair_relation():
    """A pair whose orders disagree is a discrete tie; its verdict probabilities break the
    tie for the answer the distribution-sensitive scores prefer: no conflict for
    TrustJudge, while the equal ratings match the discrete tie."""
    from judges.audit_metrics.trustjudge import trustjudge_audit

    audit = trustjudge_audit(
        group=[0],
        i=["x"],
        j=["y"],
        first=[A],
        second=[B],
        p_first=[[0.8, 0.2, 0.0]],
        p_second=[[0.45, 0.55, 0.0]],  # summed: x 1.25, y 0.75
        scores=([7.0], [7.0]),
        trust_scores=([7.3], [6.9]),
        n_boot=0,
    )
    assert audit.score_discrete.value == 0
    assert audit.score_trust.value == 0  # against the discrete tie it would be 1
