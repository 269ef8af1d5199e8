"""A rubric run's criteria (issue 15): their boards and which criteria decided the wins.

A rubric judge (``Judge.Mode.RUBRIC``) stores one verdict per criterion on each judgment
(``Judgment.criteria``) and the rubric's weighted total as its winner, so the run's own
board (``run:<id>``) is the weighted total, and each criterion has a board of its own
(``run:<id>`` with ``crit=<name>``), fitted with the run's final board. The run page and
the runs API show, per criterion, how often it named the total's winner, named the loser,
and decided the win (:func:`arena.rubrics.deciders`, with the weights of each prompt's
rubric as it is now).

A pointwise rubric judge (``Judge.Mode.RUBRIC_SINGLE``) grades each answer of a match on
its own (one judgment per presentation, its level per criterion on ``criteria``): the
match's two grades are its pair verdict, on the total and per criterion, and the same
report counts them (:func:`arena.rubrics.grade_deciders`).
"""

from __future__ import annotations

import numpy as np

from arena.boards import BoardScope
from arena.models import EvaluationRun, Judge, Judgment, LeaderboardSnapshot, Prompt, Rubric
from arena.rubrics import deciders, grade_deciders, normalised_levels, verdict_codes
from arena.vocabulary import slot_zero_first
from judges.prompts import RUBRIC_MODES


def run_rubrics(run: EvaluationRun) -> dict[int, tuple]:
    """Prompt id -> its rubric's criteria, for the run's prompts (a rubric judge's run only)."""
    if run.judge.mode not in RUBRIC_MODES:
        return {}
    prompts = Prompt.objects.filter(pk__in=run.prompt_ids or []).only("id", "prompt_set_id")
    out = {}
    for prompt_id, rubric in Rubric.objects.for_prompts(prompts).items():
        try:
            out[prompt_id] = rubric.parsed()
        except ValueError:
            continue  # the judge stored its calls as failed with the reason
    return out


def criterion_names(rubrics: dict[int, tuple]) -> list[str]:
    """Every criterion name of the run's rubrics, in the order the rubrics give them."""
    return list(dict.fromkeys(c.name for criteria in rubrics.values() for c in criteria))


def criterion_scopes(run: EvaluationRun) -> list[BoardScope]:
    """The criterion boards of a rubric run (none for another judge)."""
    slug = run.prompt_set.slug
    return [
        BoardScope(slug, f"run:{run.id}", criterion=name)
        for name in criterion_names(run_rubrics(run))
    ]


def criterion_report(run: EvaluationRun) -> list[dict]:
    """Per criterion of a rubric run: its weight(s), verdicts, agreed / against / decided
    counts over the decisive judgments, and its board (latest snapshot's leader).

    One query for the judgments' criteria (grouped by prompt so each judgment is weighed
    by its own rubric), one for the boards; numpy does the counting."""
    rubrics = run_rubrics(run)
    names = criterion_names(rubrics)
    if not names:
        return []
    pointwise = run.judge.mode == Judge.Mode.RUBRIC_SINGLE
    by_prompt = _graded_pairs(run) if pointwise else _verdicts(run)
    agreed = dict.fromkeys(names, 0)
    against, pivotal, verdicts = dict(agreed), dict(agreed), dict(agreed)
    weights: dict[str, set] = {name: set() for name in names}
    decisive = 0
    # one block per rubric (prompts sharing their set's rubric share a block)
    blocks: dict[tuple, list] = {}
    for prompt_id, given in by_prompt.items():
        criteria = rubrics.get(prompt_id)
        if criteria:
            blocks.setdefault(criteria, []).extend(given)
    for criteria, given in blocks.items():
        own = [c.name for c in criteria]
        if pointwise:
            slot0, slot1 = zip(*given, strict=True)
            found = grade_deciders(slot0, slot1, criteria)
            both = ~np.isnan(
                normalised_levels(slot0, criteria) - normalised_levels(slot1, criteria)
            )
            counted = both.sum(axis=0)
        else:
            codes = verdict_codes(given, own)
            found = deciders(codes, [c.weight for c in criteria], own)
            counted = (~np.isnan(codes)).sum(axis=0)
        decisive += found.decisive
        for j, criterion in enumerate(criteria):
            weights[criterion.name].add(criterion.weight)
            agreed[criterion.name] += int(found.agreed[j])
            against[criterion.name] += int(found.against[j])
            pivotal[criterion.name] += int(found.pivotal[j])
            verdicts[criterion.name] += int(counted[j])
    scopes = {
        name: BoardScope(run.prompt_set.slug, f"run:{run.id}", criterion=name) for name in names
    }
    latest = {}
    for snapshot in LeaderboardSnapshot.objects.filter(
        scope__in=[s.key for s in scopes.values()]
    ).order_by("scope", "-created_at", "-id"):
        latest.setdefault(snapshot.scope, snapshot)
    out = []
    for name in names:
        snapshot = latest.get(scopes[name].key)
        leader = (
            max(snapshot.rows, key=lambda r: r["rating"])["model"]
            if snapshot and snapshot.rows
            else None
        )
        out.append(
            {
                "name": name,
                "weights": sorted(weights[name]),
                "verdicts": verdicts[name],
                "decisive": decisive,
                "agreed": agreed[name],
                "against": against[name],
                "decided": pivotal[name],
                "decided_share": round(pivotal[name] / decisive, 4) if decisive else None,
                "board": {
                    "set": scopes[name].prompt_set,
                    "by": scopes[name].by,
                    "crit": name,
                    "fitted": snapshot is not None,
                    "leader": leader,
                    "n_votes": snapshot.n_votes if snapshot else 0,
                },
            }
        )
    return out


def _verdicts(run: EvaluationRun) -> dict[int, list]:
    """Prompt id -> the criteria of its OK judgments (a pairwise rubric judge's verdicts)."""
    rows = Judgment.objects.filter(
        match__run=run, status=Judgment.Status.OK, criteria__isnull=False
    ).values_list("match__prompt_id", "criteria")
    by_prompt: dict[int, list] = {}
    for prompt_id, criteria in rows:
        by_prompt.setdefault(prompt_id, []).append(criteria)
    return by_prompt


def _graded_pairs(run: EvaluationRun) -> dict[int, list]:
    """Prompt id -> (slot 0's levels, slot 1's levels) of each match and repeat whose two
    answers a pointwise rubric judge graded (slot 0's grade: the call showing it first)."""
    rows = Judgment.objects.filter(
        match__run=run, status=Judgment.Status.OK, criteria__isnull=False
    ).values_list("match_id", "match__prompt_id", "judge_id", "repeat", "presentation", "criteria")
    graded: dict[tuple, list] = {}
    for match_id, prompt_id, judge_id, repeat, shown, criteria in rows:
        pair = graded.setdefault((match_id, judge_id, repeat), [prompt_id, None, None])
        pair[1 if slot_zero_first(shown) else 2] = criteria
    by_prompt: dict[int, list] = {}
    for prompt_id, slot0, slot1 in graded.values():
        if slot0 is not None and slot1 is not None:
            by_prompt.setdefault(prompt_id, []).append((slot0, slot1))
    return by_prompt
