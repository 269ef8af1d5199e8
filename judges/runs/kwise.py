"""K-wise runs: the matches of group calls, and the replay of their stored rankings.

A K-wise design (:mod:`arena.matchmaking.kwise`) hands out :class:`GroupCall`s: K models
on one prompt in the order shown. One match per (round, prompt, set of models), with K
slots in the order of the batch's first call on it; each presentation of the group is a
``presentation`` of that match (``"2,0,3,1"``: slot 2 was shown as A), each judged
``repeats`` times, stored as a ``ranking`` judgment (rank per slot, 1 = best). The
external id ``r<round>:p<prompt>:g<id>-<id>-..`` (sorted contestant ids) makes creation
idempotent. :func:`replay_groups` feeds the stored rankings back to the plan, round by
round, exactly as :func:`judges.runs.replay.replay` does for pairs.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db import transaction

from arena import vocabulary
from arena.matchmaking import GroupCall, GroupVerdict
from arena.models import EvaluationRun, Judgment, Match, MatchSlot, Prompt
from judges.runs.create import DESIGN_NAMES
from judges.runs.errors import ReplayError


def is_group_batch(calls) -> bool:
    return bool(calls) and isinstance(calls[0], GroupCall)


def call_answers(calls) -> np.ndarray:
    """``(prompt, model)`` index pairs of every answer a batch of group calls shows."""
    return np.asarray(
        [(call.prompt, model) for call in calls for model in call.models], np.int64
    ).reshape(-1, 2)


def _external(round_index: int, prompt_id: int, contestant_ids) -> str:
    return f"r{round_index}:p{prompt_id}:g" + "-".join(str(c) for c in sorted(contestant_ids))


def ensure_group_matches(run: EvaluationRun, round_index: int, calls, outputs) -> list[tuple]:
    """Create the batch's K-wise matches and slots (idempotent); return the calls without
    a judgment as ``(match_id, presentation, repeat)``, in batch order."""
    prompts = {p.id: p for p in Prompt.objects.filter(id__in=run.prompt_ids)}
    plan_matches: dict[str, tuple[int, tuple[int, ...]]] = {}  # external -> (prompt, slots)
    call_match: list[tuple[str, str]] = []
    for call in calls:
        prompt_id = run.prompt_ids[call.prompt]
        shown = tuple(run.contestant_ids[m] for m in call.models)
        external = _external(round_index, prompt_id, shown)
        _, slots = plan_matches.setdefault(external, (prompt_id, shown))
        call_match.append((external, vocabulary.presentation([slots.index(c) for c in shown])))
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
    judged = set(
        Judgment.objects.filter(match__run=run, match__round=round_index, judge_id=run.judge_id)
        .values_list("match_id", "presentation", "repeat")
        .order_by()
    )
    return [
        (existing[external], presentation, repeat)
        for external, presentation in call_match
        for repeat in range(run.repeats)
        if (existing[external], presentation, repeat) not in judged
    ]


class StoredRankings:
    """A run's stored judgments by round, keyed ``(prompt index, models shown)`` in design
    indices, each with its ranks in the order shown (None for a failed call)."""

    def __init__(self, run: EvaluationRun):
        index = {c: i for i, c in enumerate(run.contestant_ids)}
        prompt_index = {p: i for i, p in enumerate(run.prompt_ids)}
        slots: dict[int, dict[int, int]] = defaultdict(dict)
        for match_id, position, contestant_id in (
            MatchSlot.objects.filter(match__run=run)
            .values_list("match_id", "position", "contestant_id")
            .order_by()
        ):
            slots[match_id][position] = contestant_id
        self.by_round: dict[int, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
        for round_index, match_id, prompt_id, presentation, status, ranking in (
            Judgment.objects.filter(match__run=run, judge_id=run.judge_id)
            .values_list(
                "match__round", "match_id", "match__prompt_id", "presentation", "status", "ranking"
            )
            .order_by()
        ):
            order = vocabulary.parse_presentation(presentation)
            try:
                shown = tuple(index[slots[match_id][slot]] for slot in order)
                prompt = prompt_index[prompt_id]
            except KeyError:
                raise ReplayError(
                    "a stored match has a contestant, a slot or a prompt that is not in the run"
                ) from None
            ok = status == Judgment.Status.OK and ranking is not None
            ranks = tuple(int(ranking[slot]) for slot in order) if ok else None
            self.by_round[round_index][prompt, shown].append(ranks)

    def last_round(self) -> int | None:
        """The last round with a stored judgment, None without any."""
        return max(self.by_round, default=None)

    def round_results(self, round_index: int, calls, repeats: int):
        """(every call judged ``repeats`` times?, the OK rankings as verdicts)."""
        stored = self.by_round.get(round_index, {})
        wanted = {(c.prompt, c.models) for c in calls}
        if set(stored) - wanted:
            raise ReplayError(
                f"round {round_index}: stored judgments that the design's replay does not ask for "
                "(the run's contestants, prompts, seed or code changed)"
            )
        if any(len(stored.get(key, ())) < repeats for key in wanted):
            return False, []
        return True, [
            GroupVerdict(prompt, models, ranks)
            for (prompt, models), found in stored.items()
            for ranks in found
            if ranks is not None
        ]
