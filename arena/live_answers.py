"""The live answers of a typed-prompt battle: generated once, streamed to every reader.

``open_live_stream`` checks a reader (rate limits, then ownership); ``live_answer_events``
is what the reader's server-sent-events stream sends. Each pending answer is generated
once, however many readers: the first claims it in the shared cache, the others follow
the text it publishes, and every reader ends on the stored answer, the one voted on
(``save_live_answer``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.db import transaction

from arena.errors import FORBIDDEN, NOT_FOUND, Refusal
from arena.generation import (
    LIVE_ANSWER_FAILED,
    contestant_config,
    generation_label,
    stream_answer,
)
from arena.models import Match, MatchSlot, Output, Voter
from arena.ratelimit import enforce_stream_limits
from arena.rendering import render_markdown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveSlots:
    prompt: str
    pending: dict[int, object]  # slot -> JudgeConfig of its contestant
    done: dict[int, str]  # slot -> answer text already stored


def open_live_stream(
    voter: Voter | None, voter_label: str | None, address_hash: str, public_id
) -> LiveSlots:
    """Check a request to read a live battle's answers (rate limits, then ownership)."""
    enforce_stream_limits(voter_label, address_hash)
    return live_slots(voter, public_id)


def live_slots(voter: Voter | None, public_id) -> LiveSlots:
    """What is left to stream for this voter's live battle."""
    match = Match.objects.filter(public_id=public_id).select_related("prompt").first()
    if match is None:
        raise Refusal("no such battle", status=NOT_FOUND)
    if voter is None or match.owner_id != voter.id:
        raise Refusal("this battle was served to someone else", status=FORBIDDEN)
    pending, done = {}, {}
    for slot in match.slots.select_related("contestant", "output").order_by("position"):
        if slot.output_id:
            done[slot.position] = slot.output.text
        else:
            pending[slot.position] = contestant_config(slot.contestant)
    return LiveSlots(match.prompt.text if match.prompt_id else "", pending, done)


def save_live_answer(
    public_id, position: int, text: str, prompt_tokens: int, completion_tokens: int
) -> str:
    """Store a slot's generated answer (once); return the slot's stored answer text."""
    with transaction.atomic():
        slot = (
            MatchSlot.objects.select_related("match", "contestant", "output")
            .select_for_update(of=("self",))  # PostgreSQL: not the nullable side of the join
            .get(match__public_id=public_id, position=position)
        )
        if slot.output_id:
            return slot.output.text
        output, _ = Output.objects.get_or_create(
            prompt_id=slot.match.prompt_id,
            contestant=slot.contestant,
            generation_config=generation_label(slot.contestant),
            defaults={
                "text": text,
                "meta": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "live": True,
                },
            },
        )
        slot.output = output
        slot.save(update_fields=["output"])
        return output.text


def stored_answer(public_id, position: int) -> str | None:
    """A live slot's stored answer (None: not generated yet)."""
    return (
        MatchSlot.objects.filter(match__public_id=public_id, position=position)
        .values_list("output__text", flat=True)
        .first()
    )


# One reader generates each answer; the others follow it through the shared cache.
GENERATION_LEASE_SECONDS = 30  # a generating reader's claim, renewed with every piece
FOLLOW_POLL_SECONDS = 0.2  # how often a following reader looks for new text
PUBLISH_EVERY_SECONDS = 0.1  # how often the generating reader publishes its text


async def _done_event(slot: int, text: str) -> dict:
    """A slot's last event: its stored answer rendered (off the event loop: CPU work)."""
    html = await sync_to_async(render_markdown, thread_sensitive=False)(text)
    return {"slot": slot, "done": True, "html": html}


def _live_keys(public_id, slot: int) -> dict[str, str]:
    base = f"arena:live:{public_id}:{slot}"
    return {part: f"{base}:{part}" for part in ("claim", "text", "done", "error")}


async def live_answer_events(public_id, slots: LiveSlots) -> AsyncIterator[dict]:
    """The events of a live battle's answers for one reader, slot by slot interleaved.

    ``{"slot", "delta"}`` pieces, then ``{"slot", "done", "html"}`` (the stored answer as
    sanitised HTML, ``arena.rendering``: the page shows the raw text while it arrives) or
    ``{"slot", "error"}``, then ``{"end"}``; ``{"slot", "reset"}`` (rare) tells the reader to drop the slot's text so
    far. Stored answers are sent whole. Each pending answer is generated once, however many
    readers: the first reader claims the slot in the shared cache (``cache.add``) and
    generates it, publishing the text so far; the other readers follow that text and
    finish with the stored answer, the one voted on. A reader that goes away releases its
    claim, and a follower takes the generation over (from the start).
    """
    for slot, text in slots.done.items():
        yield {"slot": slot, "delta": text}
        yield await _done_event(slot, text)
    if slots.pending:
        queue: asyncio.Queue = asyncio.Queue()
        tasks = [
            asyncio.create_task(_slot_events(public_id, slot, config, slots.prompt, queue))
            for slot, config in slots.pending.items()
        ]
        remaining = len(tasks)
        try:
            while remaining:
                event = await queue.get()
                if event is None:
                    remaining -= 1
                else:
                    yield event
        finally:
            for task in tasks:
                task.cancel()
    yield {"end": True}


async def _slot_events(public_id, slot: int, config, prompt: str, queue: asyncio.Queue) -> None:
    """One slot of one reader: generate it if no one else is, else follow who does.

    The shared cache is used through its plain (blocking, sub-millisecond) calls: a
    cancelled reader (a closed connection) must not leave a claim written after it left,
    as a cache call still running on a worker thread would."""
    keys = _live_keys(public_id, slot)
    token = uuid.uuid4().hex  # this reader's claim
    settled = False  # the slot ended (answer stored or failed): nothing to hand over
    sent = ""  # the text this reader was sent for the slot

    async def send(text: str) -> None:
        nonlocal sent
        if not text.startswith(sent):
            await queue.put({"slot": slot, "reset": True})
            sent = ""
        if len(text) > len(sent):
            await queue.put({"slot": slot, "delta": text[len(sent) :]})
        sent = text

    try:
        while True:
            state = cache.get_many(list(keys.values()))
            if keys["error"] in state:
                await queue.put({"slot": slot, "error": state[keys["error"]]})
                settled = True
                return
            if keys["done"] in state or keys["claim"] not in state:
                stored = await sync_to_async(stored_answer)(public_id, slot)
                if stored is not None:
                    await send(stored)
                    await queue.put(await _done_event(slot, stored))
                    settled = True
                    return
            if keys["claim"] not in state and cache.add(
                keys["claim"], token, GENERATION_LEASE_SECONDS
            ):
                await _generate(public_id, slot, config, prompt, keys, token, send, queue)
                settled = True
                return
            if keys["text"] in state:
                await send(state[keys["text"]])
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
    except Exception:  # one slot's failure must not end the stream without a word
        log.exception("live answer for slot %s of battle %s failed", slot, public_id)
        await queue.put({"slot": slot, "error": LIVE_ANSWER_FAILED})
    finally:
        # A reader that leaves (or fails) mid-answer hands the generation over at once.
        if not settled and cache.get(keys["claim"]) == token:
            cache.delete_many([keys["claim"], keys["text"]])
        await queue.put(None)


async def _generate(public_id, slot, config, prompt, keys, token, send, queue) -> None:
    """Generate a slot's answer (this reader holds the claim), publish it, store it."""
    published = 0.0
    text = ""
    async with aclosing(stream_answer(config, prompt)) as events:
        async for event in events:
            if "delta" in event:
                text += event["delta"]
                await send(text)
                now = time.monotonic()
                if now - published >= PUBLISH_EVERY_SECONDS:  # and renew the claim
                    cache.set_many(
                        {keys["text"]: text, keys["claim"]: token}, GENERATION_LEASE_SECONDS
                    )
                    published = now
            elif "error" in event:
                cache.set(keys["error"], event["error"], GENERATION_LEASE_SECONDS)
                await queue.put({"slot": slot, "error": event["error"]})
            elif event.get("done"):
                stored = await sync_to_async(save_live_answer)(
                    public_id,
                    slot,
                    event["text"],
                    event["prompt_tokens"],
                    event["completion_tokens"],
                )
                cache.set(keys["done"], True, GENERATION_LEASE_SECONDS)
                await send(stored)
                await queue.put(await _done_event(slot, stored))
