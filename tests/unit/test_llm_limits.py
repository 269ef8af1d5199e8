"""Endpoint limits (llm.limits): in flight, requests and tokens per minute, on a fake clock;
the same rules in the process and in Redis; two processes share one Redis budget.

The Redis cases run when REDIS_URL is set (CI), on keys of their own.
"""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from llm import limits
from llm.limits import FULL, Gate, Limits, LocalStore, RedisStore

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (REDIS_URL); CI sets it")


class FakeClock:
    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _redis_store(clock):
    return RedisStore(REDIS_URL, clock=clock, prefix=f"test-limits-{uuid.uuid4().hex[:8]}:")


STORES = [
    pytest.param(LocalStore, id="process"),
    pytest.param(_redis_store, id="redis", marks=needs_redis),
]


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.mark.parametrize("make_store", STORES)
def test_no_more_than_max_in_flight_leases_and_a_release_frees_one(make_store):
    clock = FakeClock()
    store = make_store(clock)
    rule = Limits(max_in_flight=3)

    async def scenario():
        answers = [await store.try_acquire("e", f"l{i}", 10, rule, ttl=30) for i in range(5)]
        await store.release("e", "l1", answers[1][1], 10, None)
        again = await store.try_acquire("e", "l5", 10, rule, ttl=30)
        return [a[0] for a in answers], again[0], await store.in_flight("e")

    waits, again, held = run(scenario())
    assert waits == [None, None, None, FULL, FULL]
    assert again is None and held == 3


@pytest.mark.parametrize("make_store", STORES)
def test_a_lease_expires_after_its_ttl(make_store):
    """A worker that dies mid-call never releases: its slot comes back after the ttl."""
    clock = FakeClock()
    store = make_store(clock)
    rule = Limits(max_in_flight=1)

    async def scenario():
        first = await store.try_acquire("e", "dead", 0, rule, ttl=20)
        clock.now += 19.9
        before = await store.try_acquire("e", "x", 0, rule, ttl=20)
        clock.now += 0.2
        after = await store.try_acquire("e", "y", 0, rule, ttl=20)
        return first[0], before[0], after[0]

    assert run(scenario()) == (None, FULL, None)


@pytest.mark.parametrize("make_store", STORES)
def test_requests_per_minute_is_a_sliding_window(make_store):
    """5 per minute: 5 at t=0..4, the 6th waits until the first is 60 s old, and so on."""
    clock = FakeClock(0.0)
    store = make_store(clock)
    rule = Limits(max_in_flight=100, requests_per_minute=5)

    async def scenario():
        sent = []
        for i in range(12):
            while True:
                wait, _ = await store.try_acquire("e", f"l{i}", 1, rule, ttl=1)
                if wait is None:
                    break
                await clock.sleep(wait)
            sent.append(clock.now)
            await clock.sleep(1.0)
        return sent

    sent = run(scenario())
    assert sent == pytest.approx([0, 1, 2, 3, 4, 60, 61, 62, 63, 64, 120, 121], abs=1e-3)
    # whatever the window, never more than 5 in 60 s
    assert all(sum(s <= t < s + 60 for t in sent) <= 5 for s in sent)


@pytest.mark.parametrize("make_store", STORES)
def test_tokens_per_minute_count_what_was_used_once_given_back(make_store):
    clock = FakeClock(0.0)
    store = make_store(clock)
    rule = Limits(max_in_flight=100, tokens_per_minute=1000)

    async def scenario():
        a, _ = await store.try_acquire("e", "a", 600, rule, ttl=5)
        b, _ = await store.try_acquire("e", "b", 600, rule, ttl=5)  # 1200 > 1000: wait
        clock.now = 10.0
        await store.release("e", "a", 0.0, 600, 100)  # used 100 of the 600 reserved
        c, _ = await store.try_acquire("e", "c", 600, rule, ttl=5)  # 100 + 600 fits
        d, _ = await store.try_acquire("e", "d", 400, rule, ttl=5)  # 1100: wait for a's 100
        return a, b, c, d

    a, b, c, d = run(scenario())
    assert a is None and b == pytest.approx(60.0, abs=1e-3) and c is None
    assert d == pytest.approx(50.0, abs=1e-3)  # a (t=0) leaves the window at t=60


@pytest.mark.parametrize("make_store", STORES)
def test_a_request_waiting_for_the_rate_takes_no_slot(make_store):
    clock = FakeClock(0.0)
    store = make_store(clock)
    rule = Limits(max_in_flight=2, requests_per_minute=1)

    async def scenario():
        first, _ = await store.try_acquire("e", "a", 1, rule, ttl=100)
        second, _ = await store.try_acquire("e", "b", 1, rule, ttl=100)
        return first, second, await store.in_flight("e")

    first, second, held = run(scenario())
    assert first is None and second == pytest.approx(60.0, abs=1e-3) and held == 1


def test_a_gate_keeps_at_most_max_in_flight_and_serves_every_waiter():
    store = LocalStore()
    gate = Gate(store, "e")
    rule = Limits(max_in_flight=4)
    live, peak, done = 0, 0, 0

    async def call():
        nonlocal live, peak, done
        lease = await gate.acquire(rule, 1, ttl=30)
        live += 1
        peak = max(peak, live)
        await asyncio.sleep(0.002)
        live -= 1
        await gate.release(lease)
        done += 1

    async def scenario():
        await asyncio.gather(*(call() for _ in range(60)))

    run(scenario())
    assert (peak, done) == (4, 60)


def test_a_gate_sleeps_out_a_per_minute_wait_on_the_given_clock():
    clock = FakeClock(0.0)
    gate = Gate(LocalStore(clock), "e", sleep=clock.sleep)
    rule = Limits(max_in_flight=10, requests_per_minute=2)

    async def scenario():
        times = []
        for _ in range(5):
            lease = await gate.acquire(rule, 1, ttl=1)
            times.append(clock.now)
            await gate.release(lease)
        return times

    assert run(scenario()) == pytest.approx([0, 0, 60, 60, 120])


def test_the_store_is_redis_exactly_when_redis_url_is_set(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    limits.use_store(None)
    assert isinstance(limits.store(), RedisStore)
    monkeypatch.delenv("REDIS_URL")
    limits.use_store(None)
    assert isinstance(limits.store(), LocalStore)
    limits.use_store(None)


def test_endpoint_ids_are_stable_and_tell_endpoints_apart():
    a = limits.endpoint_id(("http://x/v1", "KEY", "m"))
    assert a == limits.endpoint_id(("http://x/v1", "KEY", "m")) and len(a) == 20
    assert a != limits.endpoint_id(("http://x/v1", "KEY", "n"))


# --- two processes, one budget -------------------------------------------------------------------
GRAB = """
import asyncio, json, sys
from llm.limits import Limits, RedisStore
url, prefix, name, mode = sys.argv[1:5]
clock = (lambda: 5000.0) if mode == "rate" else None
store = RedisStore(url, clock=clock, prefix=prefix)
rule = Limits(50, 40, None) if mode == "rate" else Limits(30)

async def main():
    granted = 0
    for i in range(200):  # a frozen clock: nothing leaves the window or expires
        wait, _ = await store.try_acquire("shared", f"{name}-{i}", 1, rule, ttl=600)
        granted += wait is None
    print(json.dumps(granted))

asyncio.run(main())
"""


def _in_two_processes(mode: str) -> list[int]:
    prefix = f"test-limits-{uuid.uuid4().hex[:8]}:"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", GRAB, REDIS_URL, prefix, name, mode],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    granted = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        granted.append(json.loads(out))
    return granted


@needs_redis
def test_two_processes_share_one_in_flight_budget():
    granted = _in_two_processes("in_flight")
    assert sum(granted) == 30, granted


@needs_redis
def test_two_processes_share_one_requests_per_minute_budget():
    """40 per minute on a frozen clock: the two together get exactly 40 (in flight allows 50)."""
    granted = _in_two_processes("rate")
    assert sum(granted) == 40, granted


@pytest.mark.parametrize("make_store", STORES)
def test_many_requests_are_granted_in_order_in_one_ask_until_a_limit_binds(make_store):
    clock = FakeClock(0.0)
    store = make_store(clock)

    async def scenario():
        asks = [(f"l{i}", 10) for i in range(6)]
        slots = await store.try_acquire_many("s", asks, Limits(4), ttl=9)
        rate = await store.try_acquire_many("r", asks, Limits(9, requests_per_minute=2), ttl=9)
        tokens = await store.try_acquire_many("t", asks, Limits(9, None, 35), ttl=9)
        return slots, rate, tokens

    slots, rate, tokens = run(scenario())
    assert slots[:2] == (4, FULL)
    assert rate[:2] == (2, pytest.approx(60.0, abs=1e-3))
    assert tokens[:2] == (3, pytest.approx(60.0, abs=1e-3))
