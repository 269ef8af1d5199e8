"""Repeat stability and flip rates."""

import numpy as np
import pytest
from scipy.stats import binom

from judges.audit_metrics import BOTH_BAD, INVALID, MISSING, TIE, A, B, flip_rate, repeat_stability
from judges.audit_metrics.stability import modal_share


def test_modal_share_by_hand():
    verdicts = np.array(
        [
            [A, A, A, A],
            [A, B, A, MISSING],
            [TIE, INVALID, B, A],
            [B, MISSING, MISSING, MISSING],
        ]
    )
    share, m = modal_share(verdicts)
    assert m.tolist() == [4, 3, 4, 1]
    assert share.tolist() == pytest.approx([1.0, 2 / 3, 0.25, 1.0])
    est = repeat_stability(verdicts, n_boot=200, rng=0)
    # Items with fewer than two repeats are left out.
    assert est.n == 3
    assert est.value == pytest.approx((1 + 2 / 3 + 0.25) / 3)
    assert est.low <= est.value <= est.high


def test_stability_of_a_noisy_judge_is_near_its_theoretical_value():
    rng = np.random.default_rng(0)
    n, r = 500, 5
    # Each repeat keeps the item's verdict with probability 0.9, else the other answer.
    base = rng.integers(0, 2, n)
    flip = rng.random((n, r)) < 0.1
    verdicts = np.where(flip, 1 - base[:, None], base[:, None])
    est = repeat_stability(verdicts, rng=1)
    # E[max(k, 5 - k) / 5] with k ~ Binomial(5, 0.9)

    k = np.arange(6)
    theory = np.sum(binom.pmf(k, 5, 0.9) * np.maximum(k, 5 - k) / 5)
    assert est.low < theory < est.high


def test_flip_rate():
    before = np.array([A, A, B, TIE, BOTH_BAD, A, MISSING])
    after = np.array([A, B, A, BOTH_BAD, TIE, TIE, A])
    assert (flip_rate(before, after).n, flip_rate(before, after).value) == (6, 0.5)
    decisive = flip_rate(before, after, ties_flip=False)
    assert (decisive.n, decisive.value) == (3, pytest.approx(2 / 3))
