"""Retry with exponential backoff and full jitter, honouring Retry-After.

The delay before retry ``n`` (n = 0 for the first retry) is "full jitter" (AWS
Architecture Blog, "Exponential Backoff and Jitter", 2015)::

    delay_n = U(0, min(max_delay, base_delay * 2**n))

and never less than the server's ``Retry-After``: ``max(retry_after, delay_n)``.
Full jitter spreads the retries of many workers that failed together, so they do not hit
the endpoint again in lockstep.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import LLMRetriesExhausted, LLMTransientError

log = logging.getLogger("llm")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient errors.

    Attributes
    ----------
    max_retries : int
        Retries after the first attempt (so at most ``max_retries + 1`` calls).
    base_delay, max_delay : float
        Seconds; see the module docstring.
    max_retry_after : float
        A ``Retry-After`` longer than this is capped (a misconfigured server must not
        park a worker for an hour).
    """

    max_retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0


def backoff_delay(
    retry: int,
    policy: RetryPolicy,
    rng: random.Random | None = None,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (0-based); see the module docstring."""
    rng = rng or random
    ceiling = min(policy.max_delay, policy.base_delay * (2.0**retry))
    delay = rng.uniform(0.0, ceiling)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(float(retry_after), policy.max_retry_after))
    return delay


async def call_with_retry(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[int, LLMTransientError, float], None] | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds, retrying :class:`LLMTransientError`.

    Any other exception (including :class:`LLMPermanentError`) propagates at once.

    Parameters
    ----------
    attempt : callable returning an awaitable
        One call; made again for every retry.
    policy : RetryPolicy
    rng : random.Random, optional
        Jitter source (seed it for reproducible tests).
    sleep : coroutine function
        ``asyncio.sleep`` by default; tests pass a recorder.
    on_retry : callable, optional
        ``on_retry(retry_number, error, delay)`` before each sleep (progress, metrics).

    Raises
    ------
    LLMRetriesExhausted
        After ``policy.max_retries`` retries, with the last error as ``last_error``.
    """
    retry = 0
    while True:
        try:
            return await attempt()
        except LLMTransientError as error:
            if retry >= policy.max_retries:
                raise LLMRetriesExhausted(retry + 1, error) from None
            delay = backoff_delay(retry, policy, rng, error.retry_after)
            log.info(
                "model call failed (%s), retry %d/%d in %.2fs",
                error.message,
                retry + 1,
                policy.max_retries,
                delay,
            )
            if on_retry is not None:
                on_retry(retry, error, delay)
            await sleep(delay)
            retry += 1
