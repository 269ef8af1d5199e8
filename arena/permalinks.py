"""A battle's permalink, for sharing it once it is voted on (``/battles/<public id>/``).

A battle that has no vote yet does not exist here, for anyone (its owner too): the page is
a 404, the same as for an id that names nothing, so the link tells nothing before the
vote. After the vote it shows the prompt, the answers, the vote, and the contestants only
as :func:`arena.votes.reveal` reveals them to the voter (``ARENA_REVEAL``): where the reveal
is withheld from the voter it is withheld here too. A typed prompt that is still private
(``Prompt.visibility``) is shown, with its answers (they often repeat it), only to its
author.
"""

from __future__ import annotations

import uuid

from arena.battles import battle_facts
from arena.errors import NOT_FOUND, Refusal
from arena.models import Judgment, Match, Prompt
from arena.vocabulary import BOTH_BAD, TIE, A, B
from arena.votes import VOTED_ORIGINS, reveal

LETTERS = "ABCDEFGHIJ"


def voted_battle(public_id: uuid.UUID, viewer_id: int | None) -> dict:
    """The permalink page of a voted battle as seen by the voter ``viewer_id`` (None: a
    visitor with no voter session). Refusal(404) for a battle with no vote yet."""
    match = (
        Match.objects.filter(public_id=public_id, origin__in=VOTED_ORIGINS)
        .select_related("prompt", "prompt_set")
        .first()
    )
    vote = None
    if match is not None and match.owner_id is not None:
        vote = (
            Judgment.objects.filter(
                match_id=match.pk, voter_id=match.owner_id, status=Judgment.Status.OK
            )
            .values("winner", "ranking", "voted_at")
            .first()
        )
    facts = battle_facts(public_id) if vote is not None else None
    if vote is None or facts is None:
        raise Refusal("no voted battle with this id", status=NOT_FOUND)
    prompt = match.prompt
    private = (
        prompt is not None
        and prompt.visibility == Prompt.Visibility.PRIVATE
        and (viewer_id is None or prompt.author_id != viewer_id)
    )
    revealed = reveal(facts)
    names = {entry["slot"]: entry["model"] for entry in revealed["reveal"]}
    texts = dict(match.slots.order_by("position").values_list("position", "output__text"))
    answers = [
        {
            "slot": slot,
            "letter": LETTERS[slot],
            "text": None if private else (texts.get(slot) or ""),
            "model": names.get(slot),
            "rank": vote["ranking"][slot] if vote["ranking"] else None,
        }
        for slot in range(match.k)
    ]
    return {
        "id": str(match.public_id),
        "k": match.k,
        "named": match.origin == Match.Origin.SIDE_BY_SIDE,
        "prompt_set": match.prompt_set.name,
        "prompt": None if private else (prompt.text if prompt else ""),
        "private": private,
        "answers": answers,
        "vote": {
            "winner": vote["winner"],
            "ranking": vote["ranking"],
            "voted_at": vote["voted_at"].isoformat() if vote["voted_at"] else None,
            "said": _said(vote, answers),
        },
        "withheld": revealed["withheld"],
    }


def _said(vote: dict, answers: list[dict]) -> str:
    """The vote in words, naming the answers as the reveal allows."""
    name = {a["slot"]: a["model"] or f"answer {a['letter']}" for a in answers}
    winner = vote["winner"]
    if winner in (A, B):
        return f"The voter preferred {name[0 if winner == A else 1]}."
    if winner == TIE:
        return "The voter called it a tie."
    if winner == BOTH_BAD:
        return "The voter found both answers bad."
    ranking = vote["ranking"] or []
    order = sorted(range(len(ranking)), key=lambda slot: (ranking[slot], slot))
    return (
        "The voter ranked: " + ", ".join(f"{ranking[slot]}. {name[slot]}" for slot in order) + "."
    )
