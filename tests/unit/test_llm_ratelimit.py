"""Token buckets, the per-endpoint rate limiter and the backoff schedule, on a fake clock."""

import asyncio
import random
import threading

import numpy as np
import pytest

from llm.ratelimit import RateLimiter, TokenBucket, limiter_for, reset_limiters
from llm.retry import RetryPolicy, backoff_delay


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.now += seconds


def test_a_bucket_allows_its_burst_then_spaces_by_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, capacity=3, clock=clock)
    waits = [bucket.reserve() for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.5, 1.0, 1.5])


def test_a_bucket_refills_only_up_to_its_capacity():
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, capacity=2, clock=clock)
    for _ in range(5):
        bucket.reserve()  # level 2 - 5 = -3
    clock.now += 100
    assert bucket.level == pytest.approx(2)
    assert [bucket.reserve(), bucket.reserve(), bucket.reserve()] == pytest.approx([0, 0, 1])


def test_refunds_shorten_the_queue():
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, capacity=10, clock=clock)
    assert bucket.reserve(10) == 0
    assert bucket.reserve(10) == pytest.approx(1.0)
    bucket.refund(5)
    assert bucket.reserve(1) == pytest.approx(0.6)


def test_requests_per_minute_space_sends_exactly():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=60, burst_seconds=1.0, clock=clock)

    async def send_all():
        times = []
        for _ in range(10):
            await limiter.acquire(sleep=clock.sleep)
            times.append(clock.now)
        return times

    times = asyncio.run(send_all())
    # capacity 1: every send waits for the previous one's second. Intervals are the time
    # between sends, measured on the fake clock.
    assert np.diff(times) == pytest.approx(np.ones(9))


def test_tokens_per_minute_bound_the_token_throughput():
    clock = FakeClock()
    limiter = RateLimiter(tokens_per_minute=600, burst_seconds=1.0, clock=clock)  # 10/s, cap 10

    async def send_all():
        times = []
        for _ in range(8):
            await limiter.acquire(tokens=5, sleep=clock.sleep)
            times.append(clock.now - 100.0)
        return times

    assert asyncio.run(send_all()) == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])


def test_the_stricter_limit_wins():
    clock = FakeClock()
    limiter = RateLimiter(
        requests_per_minute=600, tokens_per_minute=60, burst_seconds=1.0, clock=clock
    )
    assert limiter.reserve(1) == 0  # 1 token of a 1-token bucket
    assert limiter.reserve(1) == pytest.approx(1.0)  # the token bucket, not the 0.1 s rpm


def test_reservations_from_many_threads_never_overlap():
    clock = FakeClock()  # frozen: every reservation queues behind the others
    bucket = TokenBucket(rate=4.0, capacity=1, clock=clock)
    waits, lock = [], threading.Lock()

    def worker():
        mine = [bucket.reserve() for _ in range(50)]
        with lock:
            waits.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == pytest.approx([i / 4.0 for i in range(200)])


def test_one_limiter_per_endpoint_key_reconfigured_on_change():
    reset_limiters()
    key = ("http://x/v1", "", "m")
    first = limiter_for(key, 60, None)
    assert limiter_for(key, 60, None) is first
    assert limiter_for(("http://x/v1", "", "other"), 60, None) is not first
    again = limiter_for(key, 120, 1000)
    assert again is first and again.limits == (120, 1000)
    assert again.requests.rate == pytest.approx(2.0) and again.tokens is not None
    reset_limiters()


def test_unlimited_means_no_wait():
    limiter = RateLimiter(None, 0)
    assert all(limiter.reserve(10**9) == 0 for _ in range(1000))


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
