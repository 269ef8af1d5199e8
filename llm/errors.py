"""Model call errors, split by what the caller should do, and secret redaction.

- :class:`LLMTransientError`: try again later (HTTP 408/409/429/5xx, timeouts,
  connection errors); carries ``retry_after`` seconds when the server gave one.
- :class:`LLMPermanentError`: retrying cannot help (other 4xx: bad auth, bad request,
  unknown model; a missing API-key variable; a malformed response).
- :class:`LLMRetriesExhausted`: the retry helper gave up; ``reason`` says why.

Messages never contain the API key: every text that leaves this package goes through
:func:`redact`, and errors keep no reference to the SDK exception (whose request object
holds the ``Authorization`` header).
"""

from __future__ import annotations

import re

_SECRETISH = re.compile(r"[A-Za-z0-9_\-]{6,}")


class LLMError(Exception):
    """Base class: a model call that produced no reply."""

    def __init__(self, message: str, *, status: int | None = None, kind: str = "error"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind

    def __reduce__(self):  # picklable (Celery result backends) without the SDK objects
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls, message, state):
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class LLMTransientError(LLMError):
    """Worth retrying: rate limit, server error, timeout, connection error."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str = "transient",
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, kind=kind)
        self.retry_after = retry_after


class LLMPermanentError(LLMError):
    """Not worth retrying: the request or the configuration is wrong."""


class LLMRetriesExhausted(LLMError):
    """Every attempt failed with a transient error.

    Attributes
    ----------
    attempts : int
        Calls made (1 + retries).
    last_error : LLMTransientError
        The final failure; ``reason`` is its message.
    """

    def __init__(self, attempts: int, last_error: LLMTransientError):
        self.attempts = attempts
        self.last_error = last_error
        self.reason = last_error.message
        super().__init__(
            f"gave up after {attempts} attempts: {last_error.message}",
            status=last_error.status,
            kind=last_error.kind,
        )


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` and any 6+ character run copied from it replaced by ``***``.

    Providers echo parts of a wrong key ("Incorrect API key provided: sk-abc***xyz"), so
    substrings are redacted as well as the whole key.
    """
    if not secret or not text:
        return text
    text = text.replace(secret, "***")

    def mask(match: re.Match) -> str:
        return "***" if match.group(0) in secret else match.group(0)

    return _SECRETISH.sub(mask, text)
