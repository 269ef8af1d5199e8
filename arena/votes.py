"""Votes: check a ballot against its battle and voter, store it once, reveal the contestants.

``cast_vote`` is the one way a human vote enters the arena (the API's vote view calls it,
anonymous and logged-in voters alike). It takes the battle's facts (cached when it was
served, :func:`arena.battles.battle_facts`), refuses with :class:`arena.errors.Refusal`
before anything is written, then stores the judgment and bumps the running count in one
transaction, and asks for the debounced refit of the boards the vote belongs to once that
transaction commits.

Plain synchronous ORM code, called by a sync view: ``config.http`` runs each request's
sync part on a pooled thread, so one process has many votes in flight.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from arena.battles import BattleFacts, battle_facts, battle_ttl, stored_answers_revealed
from arena.boards import NAMED_SOURCE, BoardScope, human_source
from arena.errors import BAD_REQUEST, CONFLICT, FORBIDDEN, GONE, NOT_FOUND, Refusal
from arena.models import BoardState, Judgment, Match, PairOutcomeCount
from arena.ratelimit import enforce_vote_limits
from arena.services import request_refit
from arena.trust.burst import counted_flagged_now
from arena.vocabulary import WINNERS, A, B, in_order

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
# Battles people vote on: anonymous ones, and side by side (names shown, counted apart).
VOTED_ORIGINS = (Match.Origin.ARENA, Match.Origin.SIDE_BY_SIDE)


@dataclass(frozen=True)
class Ballot:
    """A checked vote: a pairwise winner or a K-wise ranking, and its idempotency key."""

    kind: str
    winner: str | None
    ranking: tuple[int, ...] | None
    idempotency_key: str
    aspects: dict[str, str] | None = None  # per-aspect winners of a 2-way vote (optional)


def cast_vote(
    voter_label: str | None,
    address_hash: str,
    public_id: uuid.UUID,
    payload: dict,
    *,
    network_hash: str | None = None,
) -> dict:
    """Check and store one vote of the voter labelled ``voter_label``; return the reveal
    (:func:`reveal`: ``{"reveal": [...], "withheld": None | why}``).

    ``address_hash`` and ``network_hash`` are the client's keyed address and network
    hashes (rate limits). Raises Refusal (with its HTTP status) for anything the arena
    refuses; a refused vote writes nothing.
    """
    if voter_label is None:
        raise Refusal("no voter session: open a battle first", status=FORBIDDEN)
    enforce_vote_limits(voter_label, address_hash, network_hash)
    battle = battle_facts(public_id)
    if battle is None:
        raise Refusal("no such battle", status=NOT_FOUND)
    if battle.origin not in VOTED_ORIGINS or battle.owner_label != voter_label:
        raise Refusal("this battle was served to someone else", status=FORBIDDEN)
    if timezone.now() - battle.created_at > battle_ttl():
        raise Refusal("this battle has expired; start a new one", status=GONE)
    if not battle.complete:
        raise Refusal(
            "the answers are still being written; vote when they are complete", status=CONFLICT
        )
    store_vote(battle, parse_ballot(battle.k, payload))
    return reveal(battle)


def parse_ballot(k: int, payload: dict) -> Ballot:
    """Validate a vote on a k-way battle (pure); raises Refusal naming the field."""
    key = payload.get("idempotency_key")
    if not isinstance(key, str) or not IDEMPOTENCY_KEY.match(key):
        raise _bad("expected 8-64 letters, digits, '-' or '_'", "idempotency_key")
    winner, ranking, best = payload.get("winner"), payload.get("ranking"), payload.get("best")
    given = [value for value in (winner, ranking, best) if value is not None]
    if len(given) != 1:
        raise _bad("give exactly one of winner, ranking or best", "vote")
    if k == 2:
        if best is not None:
            if not _is_int(best) or best not in (0, 1):
                raise _bad("expected 0 or 1", "best")
            winner = (A, B)[best]
        if ranking is not None:
            raise _bad("a 2-way battle takes a winner", "ranking")
        if winner not in WINNERS:
            raise _bad(f"expected one of {', '.join(WINNERS)}", "winner")
        return Ballot(
            Judgment.Kind.PAIRWISE, winner, None, key, parse_aspects(payload.get("aspects"))
        )
    if payload.get("aspects") is not None:
        raise _bad("only a 2-way battle takes aspect votes", "aspects")
    if winner is not None:
        raise _bad(f"a {k}-way battle takes a ranking or best", "winner")
    if best is not None:
        if not _is_int(best) or not 0 <= best < k:
            raise _bad(f"expected a slot 0..{k - 1}", "best")
        ranking = [1 if slot == best else 2 for slot in range(k)]
    if (
        not isinstance(ranking, list)
        or len(ranking) != k
        or not all(_is_int(rank) and 1 <= rank <= k for rank in ranking)
        or min(ranking) != 1
    ):
        raise _bad(f"expected {k} ranks from 1 (best) to {k}, ties sharing a rank", "ranking")
    return Ballot(Judgment.Kind.RANKING, None, tuple(ranking), key)


def parse_aspects(aspects) -> dict[str, str] | None:
    """Optional per-aspect verdicts (``{"correctness": "a", ...}``, slot terms) of the
    aspects ``ARENA_BALLOT_ASPECTS`` offers; an empty object is none. Refusal names the field."""
    if aspects is None:
        return None
    if not isinstance(aspects, dict):
        raise _bad("expected an object of aspect: winner", "aspects")
    offered = settings.ARENA_BALLOT_ASPECTS
    for name, winner in aspects.items():
        if name not in offered:
            raise _bad(
                f"unknown aspect; expected some of {', '.join(offered) or '(none offered)'}",
                "aspects",
            )
        if winner not in WINNERS:
            raise _bad(f"aspect {name}: expected one of {', '.join(WINNERS)}", "aspects")
    return dict(aspects) or None


def store_vote(battle: BattleFacts, ballot: Ballot) -> None:
    """Insert the judgment and bump the running count in one transaction; queue the refit.

    The judgment's unique keys refuse a second vote on the battle and a second use of the
    idempotency key: the transaction rolls back (nothing is counted) and Refusal(409) says
    which of the two it was.

    The count goes to the public cells, or to the flagged ones when the voter's votes are
    counted as flagged (:func:`arena.trust.burst.counted_flagged_now`, in the same
    transaction; a burst of fresh sessions is born flagged). A side-by-side vote (names
    shown) goes to its own cells (``"human:named"``), which no board reads, and asks for
    no refit.
    """
    named = battle.origin == Match.Origin.SIDE_BY_SIDE
    # A side-by-side vote is on no board: it asks for no refit.
    scopes = (
        []
        if named
        else scopes_touched_by(
            battle.prompt_set_id, battle.prompt_set, battle.category, ballot.aspects or ()
        )
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            flagged = counted_flagged_now(battle.owner_id)
            Judgment.objects.create(
                match_id=battle.match_id,
                voter_id=battle.owner_id,
                kind=ballot.kind,
                winner=ballot.winner,
                ranking=list(ballot.ranking) if ballot.ranking else None,
                criteria=ballot.aspects,
                presentation=in_order(battle.k),  # the slots were shown in slot order
                idempotency_key=ballot.idempotency_key,
                shown_at=battle.created_at,
                voted_at=now,
            )
            if ballot.kind == Judgment.Kind.PAIRWISE:
                (slot_zero, _), (slot_one, _) = battle.contestants
                PairOutcomeCount.objects.bump(
                    prompt_set_id=battle.prompt_set_id,
                    source=NAMED_SOURCE if named else human_source(flagged),
                    category=battle.category,
                    contestant_a_id=slot_zero,
                    contestant_b_id=slot_one,
                    winner=ballot.winner,
                    a_first=True,  # in slot order: slot 0 was shown first
                )
            if scopes:
                request_refit(scopes)  # once the vote is committed
    except IntegrityError:
        mine = Judgment.objects.filter(voter_id=battle.owner_id)
        if mine.filter(idempotency_key=ballot.idempotency_key).exists():
            raise Refusal(
                "this vote was already recorded (duplicate submission)", status=CONFLICT
            ) from None
        if mine.filter(match_id=battle.match_id).exists():
            raise Refusal("you already voted on this battle", status=CONFLICT) from None
        if not Match.objects.filter(pk=battle.match_id).exists():  # deleted since it was cached
            raise Refusal("no such battle", status=NOT_FOUND) from None
        raise


REVEAL_POLICIES = ("fresh", "trusted", "always", "never")
WITHHELD = {
    "fresh": "stored answers are not revealed: the same texts come back in other battles, "
    "so their authors would let anyone recognise a model before voting",
    "trusted": "stored answers are revealed only to logged-in voters and voters with a "
    "track record: the same texts come back in other battles, so their authors would let "
    "anyone recognise a model before voting",
    "never": "this arena does not reveal the contestants",
}


def reveal(battle: BattleFacts) -> dict:
    """Who wrote each slot, once the vote is stored, as ``ARENA_REVEAL`` allows.

    A stored answer is served in many battles: revealing its author makes the reveal an
    oracle (a client maps texts to models with throwaway votes, then recognises a model
    before voting). So by default ("fresh") only answers written for this battle (a typed
    prompt's live answers) are revealed; "trusted" also reveals stored answers to
    logged-in voters and voters whose trust (:mod:`arena.trust`) reaches
    ``ARENA_REVEAL_TRUST``; "always" reveals every vote; "never" none.
    """
    policy = settings.ARENA_REVEAL
    shown = (
        battle.origin == Match.Origin.SIDE_BY_SIDE  # the voter picked them by name
        or (policy in ("fresh", "trusted") and battle.fresh)
        or stored_answers_revealed(battle.owner_kind, battle.owner_id)
    )
    if not shown:
        return {"reveal": [], "withheld": WITHHELD[policy]}
    return {
        "reveal": [
            {"slot": position, "model": name}
            for position, (_, name) in enumerate(battle.contestants)
        ],
        "withheld": None,
    }


OPEN_BOARDS_TTL = 10  # seconds a vote may miss a board that someone has just opened
_open_boards: dict[int, tuple[float, list[str]]] = {}  # prompt set id -> (read at, scope keys)


def scopes_touched_by(
    prompt_set_id: int, prompt_set: str, category: str, aspects=(), any_aspect: bool = False
) -> list[str]:
    """The default human board of the set, plus every open board a vote in it belongs to
    (an aspect's board, ``crit=<aspect>``, when the vote gives that aspect a verdict; with
    ``any_aspect``, every open aspect board: votes moved whose aspects are not read).

    Open boards are read from the database at most every ``OPEN_BOARDS_TTL`` seconds per
    process (a per-process memo: no round trip per vote).
    """
    read_at, open_keys = _open_boards.get(prompt_set_id, (-OPEN_BOARDS_TTL, []))
    if time.monotonic() - read_at >= OPEN_BOARDS_TTL:
        open_keys = list(
            BoardState.objects.filter(scope__startswith=f"set={prompt_set}|").values_list(
                "scope", flat=True
            )
        )
        _open_boards[prompt_set_id] = (time.monotonic(), open_keys)
    keys = {BoardScope(prompt_set, "humans").key}
    keys.update(BoardScope(prompt_set, "humans", criterion=aspect).key for aspect in aspects)
    for key in open_keys:
        scope = BoardScope.from_key_unchecked(key)
        if scope.by in ("humans", "all") and scope.category in ("", category):
            if not scope.criterion or any_aspect or scope.criterion in aspects:
                keys.add(key)
    return sorted(keys)


def forget_open_boards() -> None:
    """Drop the per-process memo of open boards (tests: module state between tests)."""
    _open_boards.clear()


def _bad(message: str, field: str) -> Refusal:
    return Refusal(message, field=field, status=BAD_REQUEST)


def _is_int(value) -> bool:
    """A JSON integer (True and False are not ranks or slots)."""
    return isinstance(value, int) and not isinstance(value, bool)
