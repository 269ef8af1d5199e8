"""Self- and family-preference against human votes."""

import numpy as np
import pytest

from judges.audit_metrics import TIE, A, B, self_preference, verdict_score
from judges.audit_metrics.preference import own_side


def test_own_side():
    side = own_side(["gpt", "claude", "gpt", "llama"], ["llama", "gpt", "gpt", "qwen"], "gpt")
    assert side.tolist() == [0, 1, -1, -1]


def test_self_preference_by_hand():
    judge = verdict_score(np.array([A, A, B, TIE, A]))
    human = np.array([1.0, 0.0, 0.0, 0.5, np.nan])  # share of human votes won by A
    family_a = np.array(["gpt", "llama", "gpt", "gpt", "gpt"])
    family_b = np.array(["llama", "gpt", "llama", "llama", "llama"])
    pref = self_preference(judge, human, family_a, family_b, "gpt", n_boot=200, rng=0)
    # Eligible: items 0-3 (item 4 has no human score). Own-side scores:
    #   judge: 1, 0 (B is own, A won), 0, 0.5 -> mean 0.375
    #   human: 1, 1 (B is own, B won), 0, 0.5 -> mean 0.625
    assert pref.judge.value == pytest.approx(0.375)
    assert pref.human.value == pytest.approx(0.625)
    assert pref.difference.value == pytest.approx(-0.25)
    assert pref.difference.n == 4


def test_a_judge_that_favours_its_family_is_caught():
    rng = np.random.default_rng(11)
    n = 1000
    family_a = np.where(rng.random(n) < 0.5, "gpt", "llama")
    family_b = np.where(family_a == "gpt", "llama", "gpt")
    a_quality = rng.normal(size=n)
    p_a = 1 / (1 + np.exp(-2 * a_quality))
    human = (rng.random(n) < p_a).astype(float)
    boost = np.where(family_a == "gpt", 0.8, -0.8)  # the judge adds 0.8 logits to gpt
    judge = (rng.random(n) < 1 / (1 + np.exp(-(2 * a_quality + boost)))).astype(float)
    pref = self_preference(judge, human, family_a, family_b, "gpt", rng=1)
    assert pref.difference.low > 0.05
    fair = (rng.random(n) < p_a).astype(float)
    unbiased = self_preference(fair, human, family_a, family_b, "gpt", rng=1)
    assert unbiased.difference.low < 0 < unbiased.difference.high
