"""Who is voting: anonymous cookie sessions (or logged-in users) mapped to Voter rows."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import IntegrityError

from arena.models import Voter

COOKIE = "arena_voter"
SALT = "arena.voter"
MAX_AGE = 365 * 24 * 3600


def ip_hash(request) -> str:
    """A keyed hash of the client address: enough to rate-limit and audit, not to identify."""
    address = request.META.get("REMOTE_ADDR", "")
    return hashlib.sha256(f"{settings.SECRET_KEY}|{address}".encode()).hexdigest()[:32]


def current_voter(request, create: bool = False) -> Voter | None:
    """The request's voter: the logged-in user's, else the signed cookie's session voter."""
    if request.user.is_authenticated:
        label = user_label(request.user)
        voter = Voter.objects.filter(label=label).first()
        if voter is None and create:
            voter = _create(label, Voter.Kind.USER, request, user=request.user)
        return voter
    token = request.get_signed_cookie(COOKIE, default=None, salt=SALT)
    if token:
        voter = Voter.objects.filter(label=token, kind=Voter.Kind.SESSION).first()
        if voter is not None or not create:
            return voter
    if not create:
        return None
    return _create(secrets.token_urlsafe(24), Voter.Kind.SESSION, request)


def voter_label(request) -> str | None:
    """The label of the request's voter, without a query for an anonymous voter: the
    logged-in user's, else the signed cookie's (None: no voter yet). Only a logged-in
    user's session is read from the database."""
    if request.user.is_authenticated:
        return user_label(request.user)
    return request.get_signed_cookie(COOKIE, default=None, salt=SALT)


def user_label(user) -> str:
    """The Voter label of a logged-in user."""
    return f"user:{user.pk}"


def _create(label: str, kind: str, request, user=None) -> Voter:
    try:
        return Voter.objects.create(label=label, kind=kind, user=user, ip_hash=ip_hash(request))
    except IntegrityError:  # two first requests of one user at once
        return Voter.objects.get(label=label)


def remember(response, voter: Voter) -> None:
    if voter.kind == Voter.Kind.SESSION:
        response.set_signed_cookie(
            COOKIE,
            voter.label,
            salt=SALT,
            max_age=MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=not settings.DEBUG and settings.SESSION_COOKIE_SECURE,
        )
