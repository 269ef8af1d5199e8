"""Bursts of fresh sessions are born flagged, and a vote is counted where its voter's are.

A session voter minted from an address that already minted ``ARENA_TRUST_BURST_SESSIONS``
session voters in the last hour is flagged when it is minted (:func:`burst_reason`, on
the serving path, once per new voter), so a burst of fresh cookies never reaches the
public board; the trust pass then flags the rest of the address's cluster.

At vote time, :func:`counted_flagged_now` reads where the voter's votes are counted
(``Voter.counted_flagged``: the public "human" cells, or the "human:flagged" ones) in one
query that locks the voter's row: the trust pass that moves a voter's votes takes the
same lock, so a vote is counted either before the move (and moved with the others) or
after it (where they went).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from arena.models import Voter
from arena.trust.scores import BURST_REASON

BURST_WINDOW = timedelta(hours=1)


def burst_reason(address_hash: str) -> str | None:
    """The flag reason of a session voter about to be minted from ``address_hash`` if the
    address has already minted ``ARENA_TRUST_BURST_SESSIONS`` session voters in the last
    hour; None otherwise (or without an address)."""
    if not address_hash:
        return None
    minted = Voter.objects.filter(
        ip_hash=address_hash,
        kind=Voter.Kind.SESSION,
        created_at__gte=timezone.now() - BURST_WINDOW,
    ).count()
    if minted < settings.ARENA_TRUST_BURST_SESSIONS:
        return None
    return f"{BURST_REASON}{minted + 1} new sessions from one address in 1 h (when minted)"


def counted_flagged_now(voter_id: int | None) -> bool:
    """Whether the vote being stored counts as flagged (inside the vote's transaction):
    where its voter's votes are counted. Locks the voter's row (``SELECT ... FOR NO KEY
    UPDATE`` on PostgreSQL)."""
    if voter_id is None:
        return False
    return bool(
        Voter.objects.select_for_update(no_key=True)
        .filter(pk=voter_id)
        .values_list("counted_flagged", flat=True)
        .first()
    )
