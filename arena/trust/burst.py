"""The vote-time trust check: where this vote is counted, decided in the vote's transaction.

A vote is counted where its voter's votes are counted (``Voter.counted_flagged``: the
public "human" cells, or the "human:flagged" ones). A session voter whose address minted
more than ``ARENA_TRUST_BURST_SESSIONS`` session voters in the last hour is flagged here
and counted as flagged at once, so a burst of fresh cookies never reaches the public
board. One query (the voter's row, locked, with the count of its address's new sessions):
the trust pass that moves a voter's votes takes the same lock, so a vote is counted
either before the move (and moved with the others) or after it (where they went).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from arena.boards import move_voter_counts
from arena.models import Voter
from arena.trust.scores import BURST_REASON

BURST_WINDOW = timedelta(hours=1)


def minted_since(since) -> Subquery:
    """Session voters created since ``since`` with the outer voter's address hash."""
    return Subquery(
        Voter.objects.filter(
            ip_hash=OuterRef("ip_hash"), kind=Voter.Kind.SESSION, created_at__gte=since
        )
        .order_by()
        .values("ip_hash")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )


def counted_flagged_now(voter_id: int | None, logged_in: bool) -> bool:
    """Whether the vote being stored counts as flagged (inside the vote's transaction).

    Locks the voter's row (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL). A logged-in
    voter's address is not counted: logging in is the track record a burst lacks.
    """
    if voter_id is None:
        return False
    voters = Voter.objects.select_for_update(no_key=True).filter(pk=voter_id)
    if logged_in:
        return bool(voters.values_list("counted_flagged", flat=True).first())
    row = (
        voters.annotate(minted=minted_since(timezone.now() - BURST_WINDOW))
        .values_list("counted_flagged", "ip_hash", "minted")
        .first()
    )
    if row is None:
        return False
    counted, address, minted = row
    if counted:
        return True
    if not address or (minted or 0) <= settings.ARENA_TRUST_BURST_SESSIONS:
        return False
    Voter.objects.filter(pk=voter_id).update(
        flagged=True,
        flag_reason=f"{BURST_REASON}{minted} new sessions from one address in 1 h (at vote)",
    )
    move_voter_counts([voter_id], flagged=True)  # its earlier votes, usually none
    return True
