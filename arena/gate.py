"""Who may take battles on the public board: ``ARENA_VOTER_GATE``.

- ``none``: anyone (a new anonymous voter costs only the rate limits of :mod:`arena.ratelimit`).
- ``login``: logged-in users only; anonymous requests get a 403 that says so.
- ``pow``: a new anonymous voter first solves a hashcash challenge (:func:`issue_challenge`):
  find a nonce such that SHA-256(``challenge:nonce``) starts with ``bits`` zero bits. The
  challenge is signed and expires after ``ARENA_POW_TTL_SECONDS``; each one mints at most one
  voter (it is spent in the shared cache). A voter whose cookie names a session pays once.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core import signing
from django.core.cache import cache

from arena.errors import BAD_REQUEST, FORBIDDEN, Refusal

SALT = "arena.pow"
MAX_NONCE_CHARS = 64


def issue_challenge() -> dict:
    """A fresh signed challenge and its difficulty in leading zero bits."""
    bits = settings.ARENA_POW_BITS
    challenge = signing.TimestampSigner(salt=SALT).sign(f"{secrets.token_hex(12)}.{bits}")
    return {"challenge": challenge, "bits": bits, "expires_in": settings.ARENA_POW_TTL_SECONDS}


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solve(challenge: str, bits: int) -> str:
    """The nonce a browser would find (tests, benches): the first counter that works."""
    nonce = 0
    while leading_zero_bits(hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()) < bits:
        nonce += 1
    return str(nonce)


def admit(
    is_anonymous: bool,
    is_new: bool,
    challenge: str | None,
    nonce: str | None,
    spend: bool = False,
) -> None:
    """Refuse a request the gate does not let through (403); with ``spend``, spend its
    proof of work (a challenge mints one voter).

    ``is_new``: serving the request would mint a new voter. Check first (before the rate
    limits, so a request without a proof is not counted), spend last (just before the
    voter is made, so a refused request does not cost the caller its proof)."""
    gate = settings.ARENA_VOTER_GATE
    if gate == "login" and is_anonymous:
        raise Refusal(
            "this arena takes votes from logged-in users only: log in to take a battle",
            status=FORBIDDEN,
        )
    if gate != "pow" or not (is_anonymous and is_new):
        return
    if not challenge or nonce is None:
        raise Refusal(
            "a new voter first solves a proof-of-work challenge: GET /api/battles/challenge",
            field="pow_nonce",
            status=FORBIDDEN,
        )
    if len(nonce) > MAX_NONCE_CHARS:
        raise Refusal(
            f"at most {MAX_NONCE_CHARS} characters", field="pow_nonce", status=BAD_REQUEST
        )
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(
            challenge, max_age=settings.ARENA_POW_TTL_SECONDS
        )
        bits = int(value.rsplit(".", 1)[1])
    except signing.SignatureExpired:
        raise Refusal(
            "the challenge has expired: ask for a new one", field="pow_challenge", status=FORBIDDEN
        ) from None
    except (signing.BadSignature, ValueError, IndexError):
        raise Refusal(
            "not a challenge of this arena", field="pow_challenge", status=FORBIDDEN
        ) from None
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    if leading_zero_bits(digest) < bits:
        raise Refusal(
            "the proof of work does not solve the challenge", field="pow_nonce", status=FORBIDDEN
        )
    spent = "arena:pow:" + hashlib.sha256(challenge.encode()).hexdigest()
    if not spend:
        if cache.get(spent) is not None:
            raise Refusal(
                "this challenge was used already: ask for a new one",
                field="pow_challenge",
                status=FORBIDDEN,
            )
        return
    if not cache.add(spent, 1, timeout=settings.ARENA_POW_TTL_SECONDS + 5):
        raise Refusal(
            "this challenge was used already: ask for a new one",
            field="pow_challenge",
            status=FORBIDDEN,
        )
