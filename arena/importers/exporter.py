"""Turn stored rows back into records, for `arena_export` (streams; no per-row queries)."""

from __future__ import annotations

from collections.abc import Iterator

from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.models import Judgment, MatchSlot, Output, Prompt, PromptSet
from arena.vocabulary import parse_presentation

CHUNK = 2000


def iter_records(
    prompt_set: PromptSet, include_failed: bool = True
) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    """Prompts, then outputs, then judgments of one prompt set, in id order.

    A typed prompt private to its author (``Prompt.visibility``) is left out, with its
    answers and the judgments of its battles: an export is meant to be shared."""
    prompt_ids: dict[int, str] = {}
    public = Prompt.objects.filter(prompt_set=prompt_set, visibility=Prompt.Visibility.PUBLIC)
    for p in public.order_by("id").iterator(chunk_size=CHUNK):
        prompt_ids[p.id] = p.external_id
        yield PromptRecord(
            external_id=p.external_id,
            text=p.text,
            category=p.category,
            language=p.language,
            reference_answer=p.reference_answer,
            turns=tuple(p.turns or ()),
        )
    outputs = Output.objects.filter(prompt__in=public).select_related("contestant").order_by("id")
    for o in outputs.iterator(chunk_size=CHUNK):
        yield OutputRecord(
            prompt_id=prompt_ids[o.prompt_id],
            contestant=o.contestant.name,
            text=o.text,
            generation_config=o.generation_config,
        )

    judgments = (
        Judgment.objects.filter(match__prompt_set=prompt_set)
        .exclude(match__prompt__visibility=Prompt.Visibility.PRIVATE)
        .select_related("match", "judge", "voter")
        .order_by("match_id", "id")
    )
    if not include_failed:
        judgments = judgments.filter(status=Judgment.Status.OK)
    batch: list[Judgment] = []
    for j in judgments.iterator(chunk_size=CHUNK):
        batch.append(j)
        if len(batch) >= CHUNK:
            yield from _judgment_records(batch, prompt_ids)
            batch = []
    yield from _judgment_records(batch, prompt_ids)


def _judgment_records(
    batch: list[Judgment], prompt_ids: dict[int, str]
) -> Iterator[JudgmentRecord]:
    if not batch:
        return
    names: dict[int, list[str]] = {}
    slots = MatchSlot.objects.filter(match_id__in={j.match_id for j in batch}).order_by(
        "match_id", "position"
    )
    for match_id, name in slots.values_list("match_id", "contestant__name"):
        names.setdefault(match_id, []).append(name)
    for j in batch:
        m = j.match
        yield JudgmentRecord(
            match_id=m.external_id or f"match-{m.id}",
            contestants=tuple(names[m.id]),
            kind=j.kind,
            winner=j.winner,
            strength=j.strength,
            ranking=tuple(j.ranking) if j.ranking is not None else None,
            score=j.score,
            preference=j.preference,
            presentation=parse_presentation(j.presentation),
            repeat=j.repeat,
            weight=j.weight,
            voter=j.voter.label if j.voter_id else None,
            judge=j.judge.name if j.judge_id else None,
            prompt_id=prompt_ids.get(m.prompt_id) if m.prompt_id else None,
            category=m.category,
            language=m.language,
            raw_text=j.raw_text,
            verdict_label=j.verdict_label,
            gold_winner=m.gold_winner or None,
        )
