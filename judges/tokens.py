"""Bearer tokens for the runs API: random, shown once, stored as their sha256.

A token is ``arena_`` + 43 url-safe characters (256 random bits), so a plain sha256 is
enough (no slow hash needed against guessing); lookups go by the hash's unique index.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from judges.models import ApiToken

PREFIX = "arena_"


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(name: str, user=None) -> tuple[ApiToken, str]:
    """A new active token named ``name``; returns the row and the token (never stored).

    Raises
    ------
    ValueError
        If the name is empty or taken.
    """
    name = name.strip()
    if not name:
        raise ValueError("name: required")
    if ApiToken.objects.filter(name=name).exists():
        raise ValueError(f"name: a token named {name!r} exists (revoke it first)")
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, key_hash=_digest(raw), prefix=raw[: len(PREFIX) + 4], user=user
    )
    return token, raw


def assign_new_secret(token: ApiToken) -> str:
    """Give an (unsaved or existing) row a fresh secret; returns the token to show once."""
    raw = PREFIX + secrets.token_urlsafe(32)
    token.key_hash, token.prefix = _digest(raw), raw[: len(PREFIX) + 4]
    return raw


def check_token(raw: str | None) -> ApiToken | None:
    """The active token with this value, or None. Notes when it was last used (once a minute)."""
    if not raw or not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.filter(key_hash=_digest(raw), is_active=True).first()
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def revoke_token(name: str) -> bool:
    return bool(ApiToken.objects.filter(name=name, is_active=True).update(is_active=False))
