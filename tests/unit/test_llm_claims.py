"""Claims on paid requests (llm.claims): one holder per key, renewed and released by its
owner only, expiring by themselves. The same cases run on the process's claims and on
Redis (when REDIS_URL is set, CI), on keys of their own."""

import os
import time
import uuid

import pytest

from llm import claims as claims_module
from llm.claims import LocalClaims, RedisClaims

REDIS_URL = os.environ.get("REDIS_URL")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (REDIS_URL); CI sets it")


class Clock:
    """The process's claims on a clock the test moves; Redis's on real time."""

    def __init__(self, redis: bool):
        self.redis, self.now = redis, 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if self.redis:
            time.sleep(seconds)
        else:
            self.now += seconds


@pytest.fixture(
    params=[pytest.param(False, id="process"), pytest.param(True, id="redis", marks=needs_redis)]
)
def store(request):
    clock = Clock(redis=request.param)
    if request.param:
        return RedisClaims(REDIS_URL, prefix=f"test-claims-{uuid.uuid4().hex[:8]}:"), clock
    return LocalClaims(clock=clock), clock


def test_a_key_has_one_holder_until_it_lets_go(store):
    claims, _ = store
    assert claims.take(["a", "b"], "first", ttl=30) == {"a", "b"}
    assert claims.take(["b", "c"], "second", ttl=30) == {"c"}
    assert claims.take(["a"], "first", ttl=30) == {"a"}  # its own claim, taken again
    claims.release(["b"], "first")
    assert claims.take(["a", "b"], "second", ttl=30) == {"b"}


def test_only_the_owner_renews_or_releases_a_claim(store):
    claims, _ = store
    claims.take(["a"], "first", ttl=30)
    assert claims.renew(["a"], "second", ttl=30) == set()
    claims.release(["a"], "second")  # not its claim: left alone
    assert claims.take(["a"], "third", ttl=30) == set()
    assert claims.renew(["a", "never-taken"], "first", ttl=30) == {"a"}


def test_a_claim_expires_unless_renewed(store):
    claims, clock = store
    claims.take(["dead", "alive"], "worker", ttl=0.4)
    clock.advance(0.25)
    assert claims.renew(["alive"], "worker", ttl=0.4) == {"alive"}
    clock.advance(0.25)  # past the first ttl: the dead holder's claim is gone, not the renewed
    assert claims.take(["dead", "alive"], "other", ttl=30) == {"dead"}
    assert claims.renew(["dead"], "worker", ttl=30) == set()  # a late holder does not get it back
    claims.release(["dead"], "worker")
    assert claims.take(["dead"], "third", ttl=30) == set()  # still the other's


def test_the_claims_are_in_redis_exactly_when_redis_url_is_set(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    claims_module.use_claims(None)
    assert isinstance(claims_module.claims(), RedisClaims)
    monkeypatch.delenv("REDIS_URL")
    claims_module.use_claims(None)
    assert isinstance(claims_module.claims(), LocalClaims)
    claims_module.use_claims(None)


def test_claims_held_in_a_block_are_renewed_meanwhile_and_released_after():
    claims_module.use_claims(LocalClaims())
    try:
        store = claims_module.claims()
        assert store.take(["answer"], "worker", ttl=0.2) == {"answer"}
        with claims_module.holding(["answer"], "worker", ttl=0.2):
            time.sleep(0.5)  # past the ttl: renewed meanwhile
            assert store.take(["answer"], "other", ttl=30) == set()
        assert store.take(["answer"], "other", ttl=30) == {"answer"}
    finally:
        claims_module.use_claims(None)
