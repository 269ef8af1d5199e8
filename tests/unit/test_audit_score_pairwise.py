"""Score-vs-pairwise inconsistency (TrustJudge's conflict rule)."""

import numpy as np
import pytest

from judges.audit_metrics import BOTH_BAD, INVALID, MISSING, TIE, A, B, score_pairwise_inconsistency
from judges.audit_metrics.score_pairwise import expected_verdict


def test_expected_verdict_with_tolerance():
    sa = np.array([8, 7, 5, 6.5, np.nan])
    sb = np.array([6, 7, 9, 6.0, 3])
    assert expected_verdict(sa, sb).tolist() == [A, TIE, B, A, MISSING]
    assert expected_verdict(sa, sb, tolerance=1).tolist() == [A, TIE, B, TIE, MISSING]


def test_conflicts_and_reversals_by_hand():
    sa = np.array([8, 8, 7, 5, 6, 9, 9])
    sb = np.array([6, 6, 7, 9, 6, 2, 2])
    v = np.array([A, B, A, TIE, TIE, BOTH_BAD, INVALID])
    r = score_pairwise_inconsistency(sa, sb, v)
    # valid: first six. expected A, A, TIE, B, TIE, A; observed A, B, A, TIE, TIE, TIE.
    # conflicts: items 1, 2, 3, 5 -> 4 / 6.
    assert (r.conflict.n, r.conflict.value) == (6, pytest.approx(4 / 6))
    # reversals: decisive verdict and decisive expectation: items 0, 1 -> item 1 reversed.
    assert (r.reversal.n, r.reversal.value) == (2, 0.5)


def test_consistent_judge_has_no_conflicts():
    rng = np.random.default_rng(0)
    sa, sb = rng.integers(1, 11, 200), rng.integers(1, 11, 200)
    v = np.where(sa > sb, A, np.where(sa < sb, B, TIE))
    r = score_pairwise_inconsistency(sa, sb, v)
    assert r.conflict.value == 0 and r.conflict.high < 0.03
