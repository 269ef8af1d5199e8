"""A run round's matches and their slots, stored once for pair and K-wise group calls.

The callers (:func:`judges.runs.orchestrate.ensure_matches` for pairs,
:func:`judges.runs.kwise.ensure_group_matches` for groups) name each match by an
external id that makes its creation idempotent, and list its slots' contestants in slot
order; this module writes both in one transaction.
"""

from __future__ import annotations

from django.db import transaction

from arena.models import EvaluationRun, Match, MatchSlot, Prompt
from judges.runs.create import DESIGN_NAMES
from judges.runs.errors import ReplayError


def store_round_matches(
    run: EvaluationRun,
    round_index: int,
    plan_matches: dict[str, tuple[int, tuple[int, ...]]],
    outputs,
    pair_probability: dict[str, float] | None = None,
) -> dict[str, int]:
    """Create the round's matches and slots that are not stored yet; return external id ->
    match id.

    ``plan_matches`` maps an external id to (prompt id, the slots' contestant ids in slot
    order); ``outputs`` maps (prompt id, contestant id) to the answer's output id (a slot
    made while its answer is missing gets it when it exists); ``pair_probability`` gives a
    match the probability its design drew it with (an adaptive design's draws). A stored
    match of the round that the replayed batch does not have is a :class:`ReplayError`.
    """
    prompts = {p.id: p for p in Prompt.objects.filter(id__in=run.prompt_ids)}
    pair_probability = pair_probability or {}
    with transaction.atomic():
        existing = dict(
            Match.objects.filter(run=run, round=round_index).values_list("external_id", "id")
        )
        stray = set(existing) - set(plan_matches)
        if stray:
            raise ReplayError(
                f"round {round_index}: stored match {sorted(stray)[0]} is not in the replayed batch"
            )
        new = [e for e in plan_matches if e not in existing]
        Match.objects.bulk_create(
            [
                Match(
                    prompt_set_id=run.prompt_set_id,
                    prompt_id=plan_matches[e][0],
                    origin=Match.Origin.RUN,
                    source=f"run:{run.id}",
                    external_id=e,
                    run=run,
                    round=round_index,
                    k=len(plan_matches[e][1]),
                    category=prompts[plan_matches[e][0]].category,
                    language=prompts[plan_matches[e][0]].language,
                    policy=DESIGN_NAMES[run.design],
                    pair_probability=pair_probability.get(e),
                )
                for e in new
            ],
            batch_size=1000,
            ignore_conflicts=True,
        )
        if new:
            existing = dict(
                Match.objects.filter(run=run, round=round_index).values_list("external_id", "id")
            )
        with_slots = set(
            MatchSlot.objects.filter(match__run=run, match__round=round_index).values_list(
                "match_id", flat=True
            )
        )
        MatchSlot.objects.bulk_create(
            [
                MatchSlot(
                    match_id=existing[e],
                    position=position,
                    contestant_id=contestant_id,
                    output_id=outputs.get((prompt_id, contestant_id)),
                )
                for e, (prompt_id, slot_contestants) in plan_matches.items()
                if existing[e] not in with_slots
                for position, contestant_id in enumerate(slot_contestants)
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        _fill_missing_outputs(run, round_index, outputs)
    return existing


def _fill_missing_outputs(run: EvaluationRun, round_index: int, outputs) -> None:
    """Slots created while an answer was missing get it once it exists (after a resume)."""
    empty = MatchSlot.objects.filter(match__run=run, match__round=round_index, output__isnull=True)
    for slot_id, prompt_id, contestant_id in empty.values_list(
        "id", "match__prompt_id", "contestant_id"
    ):
        output_id = outputs.get((prompt_id, contestant_id))
        if output_id is not None:
            MatchSlot.objects.filter(id=slot_id).update(output_id=output_id)
