"""The backoff schedule of retries (the endpoint limits: test_llm_limits.py)."""

import random

import numpy as np

from llm.retry import RetryPolicy, backoff_delay


# --- backoff ------------------------------------------------------------------------------
def test_full_jitter_is_uniform_below_the_exponential_ceiling():
    policy = RetryPolicy(base_delay=0.5, max_delay=6.0)
    rng = random.Random(7)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 6.0), (9, 6.0)]:
        draws = np.array([backoff_delay(retry, policy, rng) for _ in range(4000)])
        assert draws.min() >= 0 and draws.max() <= ceiling
        # U(0, c): mean c/2, sd c/sqrt(12); 4 standard errors
        assert abs(draws.mean() - ceiling / 2) < 4 * ceiling / np.sqrt(12 * 4000)


def test_retry_after_is_a_floor_and_is_capped():
    policy = RetryPolicy(base_delay=0.01, max_delay=0.02, max_retry_after=30)
    rng = random.Random(0)
    assert backoff_delay(0, policy, rng, retry_after=5.0) == 5.0
    assert backoff_delay(0, policy, rng, retry_after=3600) == 30
    assert backoff_delay(0, policy, rng, retry_after=0.0) <= 0.01
