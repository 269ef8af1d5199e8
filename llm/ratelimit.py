"""Per-endpoint rate limits (requests and tokens per minute) as token buckets.

A bucket holds at most ``capacity`` units and refills at ``rate`` units per second::

    level(t) = min(capacity, level(t0) + rate * (t - t0))

:meth:`TokenBucket.reserve` takes ``n`` units *now*, letting the level go negative, and
returns how long the caller must wait before using them: ``max(0, -level / rate)``. The
debt makes later callers wait longer, so reservations queue up fairly without any
per-loop primitive: the critical section is a few arithmetic operations under a
``threading.Lock``, which makes one bucket safe to share between threads and between
event loops (Celery threads and the background loop of the sync wrapper). The caller
sleeps outside the lock with whatever sleep it likes (``asyncio.sleep`` or a fake).

:class:`RateLimiter` combines a request bucket and a token bucket; the wait is the longer
of the two. :func:`limiter_for` keeps one limiter per endpoint key in the process.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]


class TokenBucket:
    """A token bucket that allows debt (see the module docstring).

    Parameters
    ----------
    rate : float
        Refill rate in units per second (> 0).
    capacity : float
        Maximum level (the burst), >= 1.
    clock : callable, optional
        Monotonic time in seconds; ``time.monotonic`` by default (tests pass a fake).
    """

    def __init__(self, rate: float, capacity: float, clock: Clock = time.monotonic):
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._level = float(capacity)
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._level = min(self.capacity, self._level + self.rate * (now - self._stamp))
        self._stamp = now

    def reserve(self, n: float = 1.0) -> float:
        """Take ``n`` units (at most ``capacity``) and return the seconds to wait first."""
        n = min(float(n), self.capacity)  # a request larger than the bucket waits for a full one
        with self._lock:
            self._refill(self._clock())
            self._level -= n
            return max(0.0, -self._level / self.rate)

    def refund(self, n: float) -> None:
        """Give back ``n`` units (e.g. an over-estimate of the tokens a call used)."""
        with self._lock:
            self._refill(self._clock())
            self._level = min(self.capacity, self._level + float(n))

    def configure(self, rate: float, capacity: float) -> None:
        """Change the rate and capacity, keeping the current level (clipped)."""
        if rate <= 0 or capacity < 1:
            raise ValueError(f"bad bucket rate {rate} / capacity {capacity}")
        with self._lock:
            self._refill(self._clock())
            self.rate, self.capacity = float(rate), float(capacity)
            self._level = min(self._level, self.capacity)

    @property
    def level(self) -> float:
        with self._lock:
            self._refill(self._clock())
            return self._level


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits for one endpoint.

    Parameters
    ----------
    requests_per_minute, tokens_per_minute : int or None
        None or 0 disables that limit.
    burst_seconds : float
        Bucket capacity as this many seconds of the rate (providers enforce per-minute
        limits over shorter windows, so a full minute's burst is risky). At least 1 unit.
    clock : callable
        Monotonic clock in seconds.
    """

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        burst_seconds: float = 10.0,
        clock: Clock = time.monotonic,
    ):
        self.burst_seconds = burst_seconds
        self._clock = clock
        self.limits = (requests_per_minute, tokens_per_minute)
        self.requests = self._bucket(requests_per_minute)
        self.tokens = self._bucket(tokens_per_minute)

    def _bucket(self, per_minute: int | None) -> TokenBucket | None:
        if not per_minute:
            return None
        rate = per_minute / 60.0
        return TokenBucket(rate, max(1.0, rate * self.burst_seconds), self._clock)

    def configure(self, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        """Apply new limits (a model config was edited) without losing the current debt."""
        self.limits = (requests_per_minute, tokens_per_minute)
        for name, per_minute in (("requests", requests_per_minute), ("tokens", tokens_per_minute)):
            bucket = getattr(self, name)
            if not per_minute:
                setattr(self, name, None)
            elif bucket is None:
                setattr(self, name, self._bucket(per_minute))
            else:
                rate = per_minute / 60.0
                bucket.configure(rate, max(1.0, rate * self.burst_seconds))

    def reserve(self, tokens: int = 0) -> float:
        """Reserve one request and ``tokens`` tokens; the seconds to wait before sending."""
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.reserve(1)
        if self.tokens is not None and tokens > 0:
            wait = max(wait, self.tokens.reserve(tokens))
        return wait

    def settle(self, reserved_tokens: int, used_tokens: int) -> None:
        """Refund the tokens reserved but not used (estimates are upper bounds)."""
        if self.tokens is not None and reserved_tokens > used_tokens:
            self.tokens.refund(reserved_tokens - used_tokens)

    async def acquire(
        self, tokens: int = 0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> float:
        """Wait until one request of ``tokens`` tokens may be sent; returns the wait."""
        wait = self.reserve(tokens)
        if wait > 0:
            await sleep(wait)
        return wait


_limiters: dict[tuple, RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(
    key: tuple, requests_per_minute: int | None, tokens_per_minute: int | None
) -> RateLimiter:
    """The process-wide limiter of endpoint ``key``, created or re-configured on demand."""
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(requests_per_minute, tokens_per_minute)
        elif limiter.limits != (requests_per_minute, tokens_per_minute):
            limiter.configure(requests_per_minute, tokens_per_minute)
        return limiter


def reset_limiters() -> None:
    """Forget every limiter (tests; after a fork)."""
    with _limiters_lock:
        _limiters.clear()
