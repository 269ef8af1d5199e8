"""Fixed-window rate limits on the shared cache (Redis in the full stack)."""

import time

from django.conf import settings
from django.core.cache import cache

TOO_MANY_REQUESTS = 429  # the HTTP status of a request over its rate limit


def parse_rate(rate: str) -> tuple[int, int]:
    """'30/60' -> (30 hits, 60 seconds)."""
    try:
        hits, seconds = rate.split("/")
        return int(hits), int(seconds)
    except ValueError:
        raise ValueError(f"rate {rate!r}: expected HITS/SECONDS, e.g. 30/60") from None


def allow(key: str, rate: str) -> bool:
    """Count one hit for ``key``; False once the window's budget is spent."""
    limit, window = parse_rate(rate)
    if limit <= 0:
        return True
    bucket = f"rl:{key}:{int(time.time() // window)}"
    if cache.add(bucket, 1, timeout=window + 1):
        return True
    try:
        return cache.incr(bucket) <= limit
    except ValueError:  # expired between add and incr
        cache.add(bucket, 1, timeout=window + 1)
        return True


def vote_allowed(voter_label: str, address_hash: str) -> bool:
    """The per-session and per-address vote rate limits (one hit each)."""
    return allow(f"vote:s:{voter_label}", settings.ARENA_VOTE_RATE_SESSION) and allow(
        f"vote:ip:{address_hash}", settings.ARENA_VOTE_RATE_IP
    )
