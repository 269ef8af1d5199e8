"""Who is voting: anonymous cookie sessions (or logged-in users) mapped to Voter rows.

Reading who the request is never writes (:func:`current_voter`, :func:`voter_label`,
:func:`caller`); a Voter row is made only by :func:`voter_for`, which the battle use case
calls in the transaction that stores the battle, after every check has passed.

The client's address (:func:`client_address`) is ``REMOTE_ADDR``, or, when that is one of
``ARENA_TRUSTED_PROXIES``, the right-most ``X-Forwarded-For`` address that is not itself a
trusted proxy. It is kept only as keyed hashes: of the address (:func:`ip_hash`) and of its
network, the /24 of an IPv4 address or the /64 of an IPv6 one (:func:`network_hash`).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from arena.models import Voter
from arena.trust.burst import burst_reason

USER_PREFIX = "user:"  # a logged-in user's label: user:<id>
ANNOTATOR_PREFIX = "annotator:"  # a campaign annotator's (judges.campaigns.annotator_label)
EXPORTED_PREFIX = "voter:"  # an exported pseudonym (exported_label)
COOKIE = "arena_voter"
SALT = "arena.voter"
MAX_AGE = 365 * 24 * 3600

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def trusted_proxies(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``ARENA_TRUSTED_PROXIES`` ("10.0.0.1, 10.1.0.0/16, ::1") as networks.

    Raises ValueError naming the bad entry."""
    networks = []
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"ARENA_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
            ) from None
    return tuple(networks)


def _parse(address: str) -> IPAddress | None:
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _is_trusted(address: IPAddress | None) -> bool:
    if address is None:
        return False
    return any(address in network for network in trusted_proxies(settings.ARENA_TRUSTED_PROXIES))


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind a trusted proxy the right-most
    X-Forwarded-For address that is not a trusted proxy itself.

    X-Forwarded-For is read only when REMOTE_ADDR is in ``ARENA_TRUSTED_PROXIES``: anyone
    can send the header, only a proxy we run appends the real address to it. Entries left
    of the first untrusted one were written by the client and are ignored.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    if not _is_trusted(_parse(remote)):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        parsed = _parse(hop)
        if parsed is None:
            return remote  # not an address a proxy of ours wrote
        if not _is_trusted(parsed):
            return str(parsed)
    return remote


def network_of(address: str) -> str:
    """The network an address is grouped in: its /24 (IPv4) or /64 (IPv6)."""
    parsed = _parse(address)
    if parsed is None:
        return address
    prefix = 24 if parsed.version == 4 else 64
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def _keyed(value: str) -> str:
    return hashlib.sha256(f"{settings.SECRET_KEY}|{value}".encode()).hexdigest()[:32]


def ip_hash(request) -> str:
    """A keyed hash of the client address: enough to rate-limit and audit, not to identify."""
    return _keyed(client_address(request))


def network_hash(request) -> str:
    """A keyed hash of the client's /24 (IPv4) or /64 (IPv6) network."""
    return _keyed("net|" + network_of(client_address(request)))


@dataclass(frozen=True)
class Caller:
    """Who sent a request, read without writing: the voter if one exists already."""

    voter: Voter | None
    label: str | None  # the voter's label, also when it has no row yet (a logged-in user)
    user: object | None  # the logged-in user, else None
    address_hash: str
    network_hash: str

    @property
    def is_new(self) -> bool:
        """True when serving this request would mint a new voter identity."""
        return self.voter is None


def caller(request) -> Caller:
    """The request's voter (if any), label and address hashes; writes nothing."""
    user = request.user if request.user.is_authenticated else None
    return Caller(
        voter=current_voter(request),
        label=voter_label(request),
        user=user,
        address_hash=ip_hash(request),
        network_hash=network_hash(request),
    )


def current_voter(request) -> Voter | None:
    """The request's existing voter: the logged-in user's, else the signed cookie's."""
    if request.user.is_authenticated:
        return Voter.objects.filter(label=user_label(request.user)).first()
    token = request.get_signed_cookie(COOKIE, default=None, salt=SALT)
    if not token:
        return None
    return Voter.objects.filter(label=token, kind=Voter.Kind.SESSION).first()


def voter_for(who: Caller) -> Voter:
    """The caller's Voter, made now if it has none: call it only once the request is valid,
    inside the transaction that stores what the voter asked for."""
    if who.voter is not None:
        return who.voter
    reason = None
    if who.user is not None:
        label, kind = user_label(who.user), Voter.Kind.USER
    else:
        label, kind = secrets.token_urlsafe(24), Voter.Kind.SESSION
        reason = burst_reason(who.address_hash)  # one session too many from its address
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a race
            return Voter.objects.create(
                label=label,
                kind=kind,
                user=who.user,
                ip_hash=who.address_hash,
                network_hash=who.network_hash,
                flagged=reason is not None,
                counted_flagged=reason is not None,  # it has no votes to move yet
                flag_reason=reason or "",
            )
    except IntegrityError:  # two first requests of one user at once
        return Voter.objects.get(label=label)


def voter_label(request) -> str | None:
    """The label of the request's voter, without a query for an anonymous voter: the
    logged-in user's, else the signed cookie's (None: no voter yet). Only a logged-in
    user's session is read from the database."""
    if request.user.is_authenticated:
        return user_label(request.user)
    return request.get_signed_cookie(COOKIE, default=None, salt=SALT)


def user_label(user) -> str:
    """The Voter label of a logged-in user."""
    return f"{USER_PREFIX}{user.pk}"


def own_label(label: str) -> bool:
    """Whether ``label`` has the form this arena names its own users and annotators by. An
    import may not give a voter such a label: the user of that id would vote as the
    imported voter, its flag and votes theirs."""
    return label.startswith((USER_PREFIX, ANNOTATOR_PREFIX))


def exported_label(label: str, kind: str) -> str:
    """The label an export gives a voter. An imported voter keeps its own: it came from a
    file and goes back by name. The arena's own people (a session, a user, an annotator) get
    a keyed pseudonym, the same in every export of this arena (so a second export imports
    as the first did): a session's label is its cookie's token and a user's their id,
    neither of which is for sharing, and one arena's ``user:5`` is another's user 5."""
    if kind == Voter.Kind.IMPORTED:
        return label
    return EXPORTED_PREFIX + _keyed("export|" + label)[:20]


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
