"""Orchestrating a run: each step replays the design, hands out the next batch, or fits.

A run's design (:mod:`arena.matchmaking`) is a planner: it hands out batches of judge
calls and learns from their verdicts. The database is its only memory: every
:func:`run_step` rebuilds the plan by replaying the run (:mod:`judges.runs.replay`).

For the current batch, ``run_step`` makes sure every answer exists (a chord of
``generate_output`` tasks through the contestants' endpoints when some are missing), then
creates its matches (one per round, prompt and unordered pair, slots in the order of the
batch's first call; both orders are two presentations of one match) and fans out its
calls (one per call and repeat) in ``judge_batch`` tasks of ``ARENA_JUDGE_BATCH_CALLS``
as a Celery chord whose callback is the next ``run_step`` (:mod:`judges.runs.dispatch`). The batch handed out is recorded in
``EvaluationRun.step`` with a compare-and-swap, so two steps never dispatch it twice. When
the plan is done the run's leaderboard is fitted (``by=run:<id>``) and the run is done.

Judge calls (:mod:`judges.judging`) are idempotent on ``Judgment``'s unique key (match,
judge, presentation, repeat) and never pay twice (``content_key``); every call ends as a
stored judgment, and the run's counters move with ``F()`` once per stored chunk.

Liveness: a chord callback can arrive before its batch is complete (a task redelivered
after a worker was killed reports twice); that step re-checks the round later. A batch
whose tasks were lost (an embedded broker that restarted) shows no new verdict for
``ARENA_RUN_STALL_SECONDS`` and is handed out again by ``watch_runs`` (beat) or at once by
``resume_run`` (:mod:`judges.runs.lifecycle`).
"""

from __future__ import annotations

import logging

import numpy as np
from django.db import transaction
from django.utils import timezone

from arena import services, vocabulary
from arena.boards import BoardScope
from arena.errors import Refusal
from arena.generation import generation_label
from arena.matchmaking import Call
from arena.models import (
    BoardState,
    Contestant,
    EvaluationRun,
    Judgment,
    MatchSlot,
    Output,
)
from arena.ratings.scale import ELO_SCALE
from judges import prompts
from judges.events import broadcast_progress
from judges.judging import run_scope, with_write_retries
from judges.runs.criteria import criterion_scopes
from judges.runs.dispatch import dispatch_generation, dispatch_judging, enqueue_step
from judges.runs.jury import juror_ids, panel
from judges.runs.kwise import call_answers, ensure_group_matches, is_group_batch
from judges.runs.lifecycle import fail_run, stalled, step_perturbations, wait_for_baseline
from judges.runs.matches import store_round_matches
from judges.runs.replay import ReplayError, replay

log = logging.getLogger(__name__)

RUNNING = EvaluationRun.Status.RUNNING
# A chord callback that arrives before its batch is complete looks again this much later.
POLL_SECONDS = 2.0


def run_step(
    run_id: int,
    round_index: int | None = None,
    *,
    after_generation: bool = False,
    redispatch: bool = False,
) -> str:
    """Advance a run by one step; returns what it did. Idempotent; safe to call at any time.

    Parameters
    ----------
    run_id : int
    round_index : int, optional
        Set by chord callbacks: the round their batch belonged to. A callback for a round
        that is already over does nothing; one that arrives before its batch is complete
        checks again later.
    after_generation : bool
        The callback of the round's generation chord: answers still missing failed for
        good, judge without them (those calls are stored as failed).
    redispatch : bool
        Hand out the pending part of the current batch again even if it was handed out
        (resume, or a stalled batch whose tasks were lost).
    """
    run = EvaluationRun.objects.select_related("judge", "prompt_set").filter(pk=run_id).first()
    if run is None or run.status != RUNNING:
        return "skipped"
    if run.baseline_id is not None:
        waiting = wait_for_baseline(run)
        if waiting:
            return waiting
    try:
        state = replay(run)
        _keep_report(run, state.plan)
        if state.done:
            return finish_run(run)
        current = state.round_index
        if round_index is not None and current > round_index + 1:
            return "stale callback"
        hand_out_again = redispatch or stalled(run)
        outputs, missing = _outputs_for(run, state.calls)
        if missing and not after_generation:
            if run.step == f"{current}:generate" and not hand_out_again:
                return "generating"
            if _claim(run, f"{current}:generate", len(missing)):
                dispatch_generation(run.id, current, missing)
                return "generating"
            return "claimed elsewhere"
        if is_group_batch(state.calls):  # a K-wise design's group calls
            pending = ensure_group_matches(run, current, state.calls, outputs)
        else:
            drawn = getattr(state.plan, "batch_probability", None)  # adaptive: each pair's draw
            pending = ensure_matches(run, current, state.calls, outputs, drawn)
        if not pending:  # every call has a judgment: the replay moves on next time
            enqueue_step(run.id)
            return "round complete"
        if run.step == f"{current}:judge" and not hand_out_again:
            if round_index == current:  # a chord callback came early: look again later
                enqueue_step(run.id, countdown=POLL_SECONDS, round_index=current)
            return "judging"
        if _claim(run, f"{current}:judge", len(pending)):
            dispatch_judging(run.id, current, pending, _graded_answers(run, pending))
            return "judging"
        return "claimed elsewhere"
    except (ReplayError, Refusal) as exc:
        log.error("run %s failed: %s", run_id, exc)
        fail_run(run, str(exc))
        return "failed"


def _graded_answers(run: EvaluationRun, pending) -> list[int] | None:
    """For a pointwise judge (it grades the answer shown first, alone), the graded answer's
    output id per pending call, so that the dispatch keeps every call grading one answer in
    one task: calls in one task pay once per content key, calls in two tasks running at
    once would both pay. None for the other judges (one query when pointwise)."""
    if run.judge.mode not in prompts.POINTWISE_MODES:
        return None
    outputs = {
        (match_id, position): output_id
        for match_id, position, output_id in MatchSlot.objects.filter(
            match_id__in={item[0] for item in pending}
        ).values_list("match_id", "position", "output_id")
    }
    return [outputs[item[0], vocabulary.parse_presentation(item[1])[0]] or 0 for item in pending]


def _claim(run: EvaluationRun, step: str, calls: int) -> bool:
    """Compare-and-swap the run's step from what this step read to ``step`` (one winner)."""
    claimed = EvaluationRun.objects.filter(
        pk=run.pk, status=RUNNING, step=run.step, step_at=run.step_at
    ).update(step=step, step_at=timezone.now(), step_calls=calls)
    return claimed == 1


def _outputs_for(run: EvaluationRun, calls: list[Call]):
    """Answer ids per (prompt id, contestant id) of the batch, and the pairs still missing.

    Contestants with an endpoint use answers generated with their current decoding
    settings (``arena.generation.generation_label``); the others any stored answer (the
    one without a generation label first).
    """
    if is_group_batch(calls):
        answers = call_answers(calls)
    else:
        batch = np.asarray(calls, np.int64).reshape(-1, 3)
        answers = np.r_[batch[:, [0, 1]], batch[:, [0, 2]]]
    prompt_ids = np.asarray(run.prompt_ids)[np.unique(answers[:, 0])]
    used = np.unique(answers[:, 1])
    contestants = list(Contestant.objects.filter(id__in=[run.contestant_ids[i] for i in used]))
    labels = {c.id: generation_label(c) if c.base_url else None for c in contestants}
    rows = (
        Output.objects.filter(prompt_id__in=prompt_ids.tolist(), contestant_id__in=list(labels))
        .values_list("prompt_id", "contestant_id", "generation_config", "id")
        .order_by("id")
    )
    outputs: dict[tuple[int, int], int] = {}
    unlabelled: set[tuple[int, int]] = set()
    for prompt_id, contestant_id, config, output_id in rows:
        label = labels[contestant_id]
        key = (prompt_id, contestant_id)
        if label is not None:
            if config == label:
                outputs[key] = output_id
        elif config == "" and key not in unlabelled:
            outputs[key] = output_id
            unlabelled.add(key)
        elif key not in outputs:
            outputs[key] = output_id
    needed = {(run.prompt_ids[p], run.contestant_ids[m]) for p, m in answers.tolist()}
    missing = sorted(k for k in needed if k not in outputs and labels[k[1]] is not None)
    return outputs, missing


def ensure_matches(
    run: EvaluationRun, round_index: int, calls: list[Call], outputs, drawn=None
) -> list[tuple]:
    """Create the batch's matches and slots (idempotent); return the calls without a judgment.

    ``drawn`` maps ``(prompt, low, high)`` (plan indices) to the probability the design
    drew that pair with (an adaptive design's draws); the match keeps it, like a battle.

    One match per (round, prompt, unordered pair): slot 0 is the model shown first in the
    batch's first call on it; the other order is its second presentation. The external id
    ``r<round>:p<prompt>:<low>-<high>`` (contestant ids) makes creation idempotent.

    Returns
    -------
    list of (match_id, presentation, repeat)
        In batch order.
    """
    plan_matches: dict[str, tuple[int, tuple[int, int]]] = {}  # external -> (prompt, slots)
    call_match: list[tuple[str, str, tuple]] = []
    probability: dict[str, float] = {}
    for p, a, b in calls:
        prompt_id, first, second = run.prompt_ids[p], run.contestant_ids[a], run.contestant_ids[b]
        external = f"r{round_index}:p{prompt_id}:{min(first, second)}-{max(first, second)}"
        _, (slot_zero, _) = plan_matches.setdefault(external, (prompt_id, (first, second)))
        if drawn and (p, min(a, b), max(a, b)) in drawn:
            probability[external] = drawn[p, min(a, b), max(a, b)]
        shown = vocabulary.IN_ORDER if slot_zero == first else vocabulary.SWAPPED
        call_match.append((external, shown, (p, min(a, b), max(a, b))))
    existing = store_round_matches(run, round_index, plan_matches, outputs, probability)
    judged = set(
        Judgment.objects.filter(
            match__run=run, match__round=round_index, judge_id__in=juror_ids(run)
        )
        .values_list("match_id", "presentation", "repeat", "judge_id")
        .order_by()
    )
    pending = []
    for external, presentation, (p, low, high) in call_match:
        # a jury run: one call per juror of the comparison's panel, naming its judge
        jurors = panel(run, round_index, p, low, high) if run.jury else [run.judge_id]
        for repeat in range(run.repeats):
            for judge_id in jurors:
                item = (existing[external], presentation, repeat, judge_id)
                if item not in judged:
                    pending.append(item if run.jury else item[:3])
    return pending


def _keep_report(run: EvaluationRun, plan) -> None:
    """Store what the design decided and why (``plan.report()``, model indices turned into
    names and logits into rating points) when it changed: the run page shows it."""
    report = plan.report() if hasattr(plan, "report") else {}
    if not report:
        return
    names = dict(Contestant.objects.filter(pk__in=run.contestant_ids).values_list("pk", "name"))
    name = lambda i: names.get(run.contestant_ids[i], str(i))  # noqa: E731
    shown = dict(report)
    for key in ("anchor", "newcomer"):
        if key in shown:
            shown[key] = name(shown[key])
    for key in ("score", "half_width"):
        if key in shown:
            shown[key] = round(shown[key] * ELO_SCALE, 1)
    for key in ("candidates", "met"):
        if key in shown:
            shown[key] = [
                {
                    **row,
                    "model": name(row["model"]),
                    **({"score": round(row["score"] * ELO_SCALE, 1)} if "score" in row else {}),
                }
                for row in shown[key]
            ]
    if "prompts" in shown:  # PRP: each finished prompt's ranking, best first
        shown["prompts"] = [
            {
                **row,
                "prompt": run.prompt_ids[row["prompt"]],
                "ranking": list(map(name, row["ranking"])),
            }
            for row in shown["prompts"]
        ]
        shown["best_counts"] = [
            {**row, "model": name(row["model"])} for row in shown["best_counts"]
        ]
    if shown != run.design_report:
        EvaluationRun.objects.filter(pk=run.pk).update(design_report=shown)
        run.design_report = shown


def finish_run(run: EvaluationRun) -> str:
    """Fit the run's final leaderboard once (claimed), mark the run done, tell the watchers.

    The fit is the board throttle's own (:func:`arena.services.refit`), told that this
    board is final: it takes the board over from a provisional fit still running.
    """
    if run.step == "fit" and not stalled(run):
        return "fitting"
    if not _claim(run, "fit", 0):
        return "claimed elsewhere"
    try:
        snapshot = services.refit(run_scope(run).key, final=True)
        if snapshot is None:  # another final fit of this board took it over: look again later
            _give_back_fit_claim(run)
            enqueue_step(run.id, countdown=POLL_SECONDS)
            return "fit taken over"
        for scope in criterion_scopes(run):  # a rubric run's board per criterion (issue 15)
            try:
                services.refit(scope.key, final=True)
            except Exception:  # the run's own board is fitted: a criterion's must not undo it
                log.exception(
                    "run %s: the board of criterion %s was not fitted", run.id, scope.criterion
                )
        with transaction.atomic():  # done, and the runs waiting for it told, or neither
            EvaluationRun.objects.filter(pk=run.pk, status=RUNNING).update(
                status=EvaluationRun.Status.DONE, finished_at=timezone.now(), step="done"
            )
            step_perturbations(run)
    except Exception:
        # Give the claim back whatever failed, the fit or marking the run done, so that the
        # task's retry fits the run at once instead of finding it "fitting" until the claim
        # stalls (ARENA_RUN_STALL_SECONDS); a database that refused the write (SQLite's
        # busy timeout ran out) can refuse this update too: retried.
        with_write_retries(lambda: _give_back_fit_claim(run))
        raise
    run.refresh_from_db()
    broadcast_progress(run)
    _refresh_judge_boards(run)
    log.info("run %s done: %d calls, %d failed", run.id, run.calls_made, run.calls_failed)
    return "done"


def _give_back_fit_claim(run: EvaluationRun) -> None:
    EvaluationRun.objects.filter(pk=run.pk, step="fit").update(step="")


def _refresh_judge_boards(run: EvaluationRun) -> None:
    """Boards of this prompt set that include the run's verdicts, if someone follows them."""
    slug = run.prompt_set.slug
    judge_boards = [f"judge:{judge_id}" for judge_id in juror_ids(run)]  # every juror's
    keys = [BoardScope(slug, by).key for by in ("judges", *judge_boards, "all")]
    followed = list(BoardState.objects.filter(scope__in=keys).values_list("scope", flat=True))
    if followed:
        services.request_refit(followed)
