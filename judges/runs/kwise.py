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

from arena import vocabulary
from arena.matchmaking import GroupCall, GroupVerdict
from arena.models import EvaluationRun, Judgment, MatchSlot
from judges.runs.errors import ReplayError
from judges.runs.matches import store_round_matches


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
    plan_matches: dict[str, tuple[int, tuple[int, ...]]] = {}  # external -> (prompt, slots)
    call_match: list[tuple[str, str]] = []
    for call in calls:
        prompt_id = run.prompt_ids[call.prompt]
        shown = tuple(run.contestant_ids[m] for m in call.models)
        external = _external(round_index, prompt_id, shown)
        _, slots = plan_matches.setdefault(external, (prompt_id, shown))
        call_match.append((external, vocabulary.presentation([slots.index(c) for c in shown])))
    existing = store_round_matches(run, round_index, plan_matches, outputs)
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
