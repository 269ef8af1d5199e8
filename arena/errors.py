"""The one error type for requests the domain refuses, and the errors of an outage."""

from __future__ import annotations

from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import ConnectionError as RedisUnavailable
from redis.exceptions import TimeoutError as RedisTimeout

# A shared service that cannot be reached right now (Redis as cache, Celery broker or
# channel layer): what the arena's best-effort steps (rate limits, cached facts, refit
# requests, pushes) ride out, and what the API answers with a 503 otherwise.
SERVICE_DOWN = (RedisUnavailable, RedisTimeout, BrokerUnavailable)


class Refusal(Exception):
    """A request the arena refuses: the field at fault, a message for the user, an HTTP status.

    Raised by the use cases (battles, votes, boards, runs) before anything is written; the
    API answers it as ``{"detail": message, "field": field}`` with ``status``, and with a
    ``Retry-After: <retry_after>`` header when set (seconds; a 429 says when to come back).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        retry_after: int | None = None,
    ):
        self.message, self.field, self.status = message, field, status
        self.retry_after = retry_after
        super().__init__(f"{field}: {message}" if field else message)


# The statuses the domain refuses with, by name (Refusal(..., status=NOT_FOUND)).
BAD_REQUEST, FORBIDDEN, NOT_FOUND, CONFLICT, GONE, UNAVAILABLE = 400, 403, 404, 409, 410, 503
