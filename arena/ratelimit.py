"""Fixed-window rate limits on the shared cache (Redis in the full stack).

A rate is ``HITS/SECONDS`` or several of them separated by commas, all enforced
(``"30/60,1000/86400"``: 30 a minute and 1000 a day); ``0/1`` switches a limit off.
:func:`hit` is the one limiter; :func:`enforce` applies several keyed limits and refuses
with a 429 that says when to retry (the end of the exhausted window).

Who is limited: sessions (the voter's label), client addresses and their networks (the
keyed hashes of :mod:`arena.voters`), for battles served, votes, live-answer streams and
new voter identities (sessions minted per address and network: dropping the cookie does
not buy unlimited voters).

While the cache (Redis) is unreachable the limits fail open: a hit is not counted and
the request goes on (a warning is logged), so votes are still stored during a Redis
restart; the trust pass (:mod:`arena.trust`) scores them like any other.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

from arena.errors import SERVICE_DOWN, Refusal

log = logging.getLogger(__name__)

TOO_MANY_REQUESTS = 429  # the HTTP status of a request over its rate limit


def parse_rate(rate: str) -> tuple[int, int]:
    """'30/60' -> (30 hits, 60 seconds)."""
    try:
        hits, seconds = rate.split("/")
        return int(hits), int(seconds)
    except ValueError:
        raise ValueError(f"rate {rate!r}: expected HITS/SECONDS, e.g. 30/60") from None


def parse_rates(spec: str) -> list[tuple[int, int]]:
    """'30/60,1000/86400' -> [(30, 60), (1000, 86400)]; windows with 0 hits are off."""
    rates = [parse_rate(part.strip()) for part in spec.split(",") if part.strip()]
    if any(seconds <= 0 for _, seconds in rates):
        raise ValueError(f"rate {spec!r}: a window is at least one second")
    return [(hits, seconds) for hits, seconds in rates if hits > 0]


def hit(key: str, rate: str) -> int:
    """Count one hit for ``key`` in each window of ``rate``; 0 if every window still had
    budget (or the cache is unreachable: fail open), else the seconds until the
    latest-ending exhausted window ends."""
    now = time.time()
    wait = 0
    for limit, window in parse_rates(rate):
        bucket = f"rl:{key}:{window}:{int(now // window)}"
        try:
            count = _count(bucket, window)
        except SERVICE_DOWN as exc:
            log.warning("rate limit %s not counted, the cache is unreachable: %s", key, exc)
            return 0
        if count > limit:
            wait = max(wait, int(window - now % window) + 1)
    return wait


def _count(bucket: str, window: int) -> int:
    if cache.add(bucket, 1, timeout=window + 1):
        return 1
    try:
        return cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.add(bucket, 1, timeout=window + 1)
        return 1


def enforce(limits: list[tuple[str, str]], message: str) -> None:
    """Count one hit on every ``(key, rate)``; raise a 429 Refusal if any is spent.

    Every limit is counted even when an earlier one refuses, so a client over one limit
    keeps spending the others (a refused request is not free)."""
    wait = max((hit(key, rate) for key, rate in limits), default=0)
    if wait:
        raise Refusal(f"{message}; retry in {wait} s", status=TOO_MANY_REQUESTS, retry_after=wait)


def _vote_limits(
    voter_label: str, address_hash: str, network_hash: str | None
) -> list[tuple[str, str]]:
    limits = [
        (f"vote:s:{voter_label}", settings.ARENA_VOTE_RATE_SESSION),
        (f"vote:ip:{address_hash}", settings.ARENA_VOTE_RATE_IP),
    ]
    if network_hash:
        limits.append((f"vote:net:{network_hash}", settings.ARENA_VOTE_RATE_NET))
    return limits


def enforce_vote_limits(
    voter_label: str, address_hash: str, network_hash: str | None = None
) -> None:
    """The per-session, per-address and (given its hash) per-network vote limits: a 429
    Refusal that says when to retry once one is spent."""
    enforce(_vote_limits(voter_label, address_hash, network_hash), "too many votes")


def enforce_battle_limits(
    voter_label: str | None, address_hash: str, network_hash: str, new_voter: bool
) -> None:
    """The limits on serving a battle: per session (if the request names one), per address
    and per network; and, when serving it mints a new voter, per address and network on
    new identities."""
    limits = [
        (f"battle:ip:{address_hash}", settings.ARENA_BATTLE_RATE_IP),
        (f"battle:net:{network_hash}", settings.ARENA_BATTLE_RATE_NET),
    ]
    if voter_label:
        limits.append((f"battle:s:{voter_label}", settings.ARENA_BATTLE_RATE_SESSION))
    enforce(limits, "too many battles")
    if new_voter:
        enforce(
            [
                (f"voter:ip:{address_hash}", settings.ARENA_NEW_VOTER_RATE_IP),
                (f"voter:net:{network_hash}", settings.ARENA_NEW_VOTER_RATE_NET),
            ],
            "too many new voter sessions from your network; keep your cookie or log in",
        )


def enforce_stream_limits(voter_label: str | None, address_hash: str) -> None:
    """The limits on opening a live-answer stream: per session and per address."""
    limits = [(f"stream:ip:{address_hash}", settings.ARENA_STREAM_RATE_IP)]
    if voter_label:
        limits.append((f"stream:s:{voter_label}", settings.ARENA_STREAM_RATE_SESSION))
    enforce(limits, "too many answer streams")
