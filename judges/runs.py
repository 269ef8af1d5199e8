"""Evaluation runs: the use cases (create, start, orchestrate, judge, fit, cancel, resume, schedule).

Tasks (:mod:`judges.tasks`), the API, the admin and the management commands call these;
they are the only code that writes runs, matches and LLM judgments.

Orchestration
-------------
A run's design (:mod:`arena.matchmaking`) is a planner: it hands out batches of judge
calls and learns from their verdicts. The database is its only memory. Every
:func:`run_step` rebuilds the plan by *replaying* the run: it starts the design with the
run's seed, and for each batch ``r`` reads the stored verdicts of the matches with
``Match.round == r`` and feeds them back, until it reaches the first batch that is not
fully judged. Since a design is a deterministic function of its seed and the verdicts it
observed, the replayed batches are exactly the ones handed out before a crash, a restart or
a resume; stored rows that do not fit the replay stop the run with an error instead of
being mixed in.

For the current batch, ``run_step`` makes sure every answer exists (a chord of
``generate_output`` tasks through the contestants' endpoints when some are missing), then
creates its matches (one per round, prompt and unordered pair, slots in the order of the
batch's first call; both orders are two presentations of one match) and fans out one
``judge_call`` task per call and repeat as a Celery chord whose callback is the next
``run_step``. The batch handed out is recorded in ``EvaluationRun.step`` with a
compare-and-swap, so two steps never dispatch it twice. When the plan is done the run's
leaderboard is fitted (``by=run:<id>``) and the run is done.

Judge calls are idempotent on ``Judgment``'s unique key (match, judge, presentation,
repeat): a call whose judgment exists is skipped, and a judgment is written once even if
two workers race. They never pay twice: before calling, a judgment by the same judge
version on identical content (prompt, presented answers, order, repeat: ``content_key``)
is copied instead. Every call ends as a stored judgment: ``ok``, ``parse_failed`` (with the
raw text) or ``failed`` (with the reason); the run's counters are updated with ``F()``.

Liveness: a chord callback can arrive before its batch is complete (a task redelivered
after a worker was killed reports twice); that step re-checks the round later. A batch
whose tasks were lost (an embedded broker that restarted) shows no new verdict for
``ARENA_RUN_STALL_SECONDS`` and is handed out again by :func:`watch_runs` (beat) or at
once by :func:`resume_run`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.boards import BoardScope
from arena.events import broadcast_board
from arena.matchmaking import DESIGNS, Call, Verdict
from arena.models import Contestant, Judgment, Match, MatchSlot, Output, Prompt, PromptSet
from judges import prompts as judge_prompts
from judges.events import broadcast_progress
from judges.judging import judge_config, run_scope
from judges.models import EvaluationRun, Judge
from judges.perturbations import PERTURBATIONS

log = logging.getLogger(__name__)

RUNNING = EvaluationRun.Status.RUNNING
PAIRWISE_MODES = (judge_prompts.PAIRWISE, judge_prompts.PAIRWISE_MTBENCH)

# EvaluationRun.design -> arena.matchmaking.DESIGNS key.
DESIGN_NAMES = {
    EvaluationRun.Design.ALL_PAIRS: "round-robin",
    EvaluationRun.Design.ANCHOR: "anchor",
    EvaluationRun.Design.MEDIOCRE_ANCHOR: "mediocre-anchor",
    EvaluationRun.Design.SINGLE_ELIMINATION: "single-elimination",
    EvaluationRun.Design.SWISS: "swiss",
    EvaluationRun.Design.ADAPTIVE: "adaptive",
}
# A chord callback that arrives before its batch is complete looks again this much later.
POLL_SECONDS = 2.0


class RunError(ValueError):
    """A run that cannot be created, started or changed; names the field at fault."""

    def __init__(self, field: str, message: str, status: int = 400):
        self.field, self.message, self.status = field, message, status
        super().__init__(f"{field}: {message}")


class ReplayError(RuntimeError):
    """Stored matches or verdicts that the design's replay does not produce."""


# --- configuration -------------------------------------------------------------------------


def build_design(run: EvaluationRun, contestant_ids: list[int] | None = None):
    """The run's design object, its parameters checked and contestant names turned into indices.

    Raises
    ------
    RunError
        Unknown design or parameter, or a parameter the design rejects.
    """
    try:
        cls = DESIGNS[DESIGN_NAMES[run.design]]
    except KeyError:
        raise RunError("design", f"unknown design {run.design!r}") from None
    params = dict(run.design_params or {})
    allowed = sorted(f.name for f in fields(cls) if f.name != "name")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise RunError(
            "design_params",
            f"unknown parameter {unknown[0]!r} for design {run.design}; expected {', '.join(allowed)}",
        )
    ids = list(run.contestant_ids if contestant_ids is None else contestant_ids)
    if run.design == EvaluationRun.Design.ANCHOR:
        if "anchor" not in params:
            raise RunError(
                "design_params", 'the anchor design needs {"anchor": "<contestant name>"}'
            )
        params["anchor"] = _anchor_index(params["anchor"], ids)
    if run.design == EvaluationRun.Design.ADAPTIVE and run.budget_calls and "budget" not in params:
        params["budget"] = run.budget_calls // max(run.repeats, 1)
    if "ratings" in params and params["ratings"] is not None:
        params["ratings"] = tuple(float(x) for x in params["ratings"])
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise RunError("design_params", str(exc)) from None


def _anchor_index(anchor, contestant_ids: list[int]) -> int:
    by_name = dict(Contestant.objects.filter(id__in=contestant_ids).values_list("name", "id"))
    contestant_id = by_name.get(str(anchor))
    if contestant_id is None and str(anchor).isdigit() and int(anchor) in contestant_ids:
        contestant_id = int(anchor)
    if contestant_id is None:
        raise RunError(
            "design_params",
            f"anchor {anchor!r} is not one of the run's contestants ({', '.join(sorted(by_name))})",
        )
    return contestant_ids.index(contestant_id)


# --- creating and starting -----------------------------------------------------------------


def create_run(
    *,
    prompt_set: str | PromptSet,
    judge: str | int | Judge,
    contestants: list[str] | list[Contestant],
    design: str = EvaluationRun.Design.ALL_PAIRS,
    design_params: dict | None = None,
    name: str = "",
    max_prompts: int | None = None,
    budget_calls: int | None = None,
    repeats: int = 1,
    seed: int = 0,
    tag: str = "",
    perturbation: str = "",
    baseline: EvaluationRun | None = None,
) -> EvaluationRun:
    """Resolve names to rows, check the plain fields and store a pending run (not started).

    A perturbation run (``perturbation`` one of :data:`judges.perturbations.PERTURBATIONS`)
    needs its ``baseline``: it judges the same comparisons, changed (see :func:`perturb`).
    """
    prompt_set = _resolve_prompt_set(prompt_set)
    judge = _resolve_judge(judge)
    members = _resolve_contestants(contestants)
    if design not in DESIGN_NAMES:
        raise RunError("design", f"expected one of {', '.join(DESIGN_NAMES)}; got {design!r}")
    if not isinstance(design_params or {}, dict):
        raise RunError("design_params", "expected an object of parameters")
    for field, value, low in (("max_prompts", max_prompts, 1), ("budget_calls", budget_calls, 1)):
        if value is not None and value < low:
            raise RunError(field, f"expected at least {low} (or null for no limit)")
    if not 1 <= repeats <= 20:
        raise RunError("repeats", "expected 1..20")
    if perturbation:
        _check_perturbation(perturbation, baseline, design, judge)
    elif baseline is not None:
        raise RunError("baseline", "only a perturbation run has a baseline")
    run = EvaluationRun.objects.create(
        name=name or f"{judge.name} on {prompt_set.slug} ({design})",
        prompt_set=prompt_set,
        judge=judge,
        design=design,
        design_params=design_params or {},
        max_prompts=max_prompts,
        budget_calls=budget_calls,
        repeats=repeats,
        seed=seed,
        tag=tag,
        perturbation=perturbation,
        baseline=baseline,
    )
    run.contestants.set(members)
    return run


def _resolve_prompt_set(value) -> PromptSet:
    if isinstance(value, PromptSet):
        return value
    found = PromptSet.objects.filter(slug=value).first()
    if found is None:
        raise RunError("prompt_set", f"no prompt set {value!r}")
    return found


def _resolve_judge(value) -> Judge:
    if isinstance(value, Judge):
        return value
    judges = Judge.objects.filter(is_active=True)
    if isinstance(value, int) or str(value).isdigit():
        found = judges.filter(pk=int(value)).first()
    else:
        # A name may have several versions: the newest one.
        found = judges.filter(name=value).order_by("-created_at", "-id").first()
    if found is None:
        raise RunError("judge", f"no active judge {value!r}")
    return found


def _resolve_contestants(values) -> list[Contestant]:
    if values and all(isinstance(v, Contestant) for v in values):
        members = list(values)
    else:
        names = [str(v).strip() for v in values or [] if str(v).strip()]
        found = {c.name: c for c in Contestant.objects.filter(name__in=names)}
        missing = [n for n in names if n not in found]
        if missing:
            raise RunError("contestants", f"no contestant {missing[0]!r}")
        members = [found[n] for n in dict.fromkeys(names)]
    if len(members) < 2:
        raise RunError("contestants", f"a run needs at least 2 contestants, got {len(members)}")
    return members


def start_run(run: EvaluationRun) -> EvaluationRun:
    """Validate a pending run, freeze its contestants and prompts, plan it, queue its first step.

    Raises
    ------
    RunError
        Fewer than 2 contestants, no usable prompt, a judge without an endpoint or with a
        non-pairwise mode, bad design parameters, a plan over ``budget_calls``.
    """
    with transaction.atomic():
        run = (
            EvaluationRun.objects.select_for_update()
            .select_related("judge", "prompt_set")
            .get(pk=run.pk)
        )
        if run.status != EvaluationRun.Status.PENDING:
            raise RunError("status", f"run {run.pk} is {run.status}, not pending", status=409)
        if run.cron:
            raise RunError(
                "cron", "this run is a schedule template; it starts copies of itself", status=409
            )
        contestants = list(run.contestants.order_by("id"))
        if len(contestants) < 2:
            raise RunError(
                "contestants", f"a run needs at least 2 contestants, got {len(contestants)}"
            )
        _check_judge(run.judge)
        if run.baseline_id is None:
            prompt_ids = _choose_prompts(run, contestants)
            contestant_ids = [c.id for c in contestants]
        else:  # the baseline's very comparisons
            baseline = run.baseline
            if not baseline.contestant_ids:
                raise RunError(
                    "baseline", f"start the baseline run {baseline.pk} first", status=409
                )
            prompt_ids, contestant_ids = baseline.prompt_ids, baseline.contestant_ids
        design = build_design(run, contestant_ids)
        both = run.judge.both_orders
        planned = design.planned_calls(len(contestant_ids), len(prompt_ids), both) * run.repeats
        try:  # the design's own checks (anchor index, screening size ...)
            design.start(
                len(contestant_ids), len(prompt_ids), np.random.default_rng(run.seed), both
            )
        except ValueError as exc:
            raise RunError("design_params", str(exc)) from None
        if run.budget_calls is not None and planned > run.budget_calls:
            raise RunError(
                "budget_calls",
                f"the {run.design} design plans {planned} judge calls, more than the budget of "
                f"{run.budget_calls}; lower max_prompts or raise the budget",
            )
        run.contestant_ids, run.prompt_ids = contestant_ids, prompt_ids
        run.planned_calls = planned
        run.status, run.started_at, run.finished_at = RUNNING, timezone.now(), None
        run.error, run.step, run.step_at, run.step_calls = "", "", None, 0
        run.save()
        ensure_watchdog()
        _enqueue_step(run.id)
        transaction.on_commit(lambda: broadcast_progress(run))
    return run


def _check_judge(judge: Judge) -> None:
    if not judge.base_url or not judge.model:
        raise RunError(
            "judge", f"judge {judge.name!r} has no endpoint (base_url and model are required)"
        )
    if judge.mode not in PAIRWISE_MODES:
        raise RunError(
            "judge",
            f"judge {judge.name!r} is a {judge.mode} judge; evaluation designs need a pairwise one",
        )
    try:
        judge_config(judge)
    except ValueError as exc:
        raise RunError("judge", str(exc)) from None


def _choose_prompts(run: EvaluationRun, contestants: list[Contestant]) -> list[int]:
    """Prompts every contestant can answer: those without an endpoint need a stored answer.

    With ``max_prompts`` a seeded sample of them; always sorted by id.
    """
    ids = np.asarray(
        list(
            Prompt.objects.filter(prompt_set=run.prompt_set)
            .order_by("id")
            .values_list("id", flat=True)
        )
    )
    for contestant in contestants:
        if contestant.base_url:
            continue
        answered = Output.objects.filter(contestant=contestant, prompt_id__in=ids.tolist())
        ids = np.intersect1d(ids, np.asarray(list(answered.values_list("prompt_id", flat=True))))
        if ids.size == 0:
            raise RunError(
                "contestants",
                f"{contestant.name!r} has no endpoint and no stored answer to the prompts of "
                f"{run.prompt_set.slug!r} (that every other contestant can answer)",
            )
    if ids.size == 0:
        raise RunError("prompt_set", f"prompt set {run.prompt_set.slug!r} has no prompts")
    if run.max_prompts is not None and run.max_prompts < ids.size:
        ids = np.sort(np.random.default_rng(run.seed).choice(ids, run.max_prompts, replace=False))
    return [int(i) for i in ids]


def _enqueue_step(run_id: int, countdown: float | None = None, **kwargs) -> None:
    """Queue ``run_step(run_id, **kwargs)`` once the surrounding transaction commits."""
    from judges.tasks import run_step as run_step_task

    transaction.on_commit(lambda: run_step_task.apply_async((run_id,), kwargs, countdown=countdown))


# --- perturbation runs (judge bias audits) ---------------------------------------------------

# Designs whose comparisons do not depend on verdicts: a perturbation run can repeat them.
FIXED_DESIGNS = (EvaluationRun.Design.ALL_PAIRS, EvaluationRun.Design.ANCHOR)


def _check_perturbation(kind: str, baseline, design: str, judge: Judge) -> None:
    if kind not in PERTURBATIONS:
        raise RunError("perturbation", f"expected one of {', '.join(PERTURBATIONS)}; got {kind!r}")
    if baseline is None:
        raise RunError("baseline", "a perturbation run needs the run it perturbs")
    if baseline.perturbation:
        raise RunError("baseline", f"run {baseline.pk} is itself a perturbation run")
    if design not in FIXED_DESIGNS or baseline.design != design:
        raise RunError(
            "design",
            "a perturbation run repeats its baseline's comparisons: both must use the same "
            f"fixed design ({', '.join(FIXED_DESIGNS)})",
        )
    if baseline.judge.name != judge.name:
        raise RunError("judge", f"the baseline was judged by {baseline.judge.name!r}")
    if kind == "swap" and judge.both_orders:
        raise RunError(
            "perturbation",
            f"judge {judge.name!r} already judges both orders: its position consistency is on "
            "its audit page, a swap run would add nothing",
        )


def launch_perturbation_audit(
    *,
    prompt_set,
    judge,
    contestants,
    perturbations,
    repeats: int = 3,
    max_prompts: int | None = 20,
    seed: int = 0,
) -> list[EvaluationRun]:
    """A baseline run (all pairs, untagged) and one tagged run per perturbation, all started.

    Each perturbation run waits for the baseline, then judges its comparisons again with one
    change; the audit dashboard shows the flip rates. ``repeat`` judges them ``repeats``
    times unchanged (repeat stability).
    """
    kinds = list(dict.fromkeys(perturbations))
    if not kinds:
        raise RunError("perturbations", "choose at least one perturbation")
    with transaction.atomic():
        baseline = create_run(
            prompt_set=prompt_set,
            judge=judge,
            contestants=contestants,
            max_prompts=max_prompts,
            seed=seed,
        )
        baseline.name = f"Audit baseline: {baseline.judge.name} on {baseline.prompt_set.slug}"
        baseline.save(update_fields=["name"])
        made = [
            create_run(
                prompt_set=baseline.prompt_set,
                judge=baseline.judge,
                contestants=list(baseline.contestants.all()),
                max_prompts=max_prompts,
                seed=seed,
                repeats=repeats if kind == "repeat" else 1,
                tag=kind,
                perturbation=kind,
                baseline=baseline,
                name=f"Audit {kind}: {baseline.judge.name} on {baseline.prompt_set.slug}",
            )
            for kind in kinds
        ]
        started = [start_run(baseline)] + [start_run(run) for run in made]
    return started


def _wait_for_baseline(run: EvaluationRun) -> str:
    """'' once the baseline is done; else look again later (or fail with the baseline)."""
    status = (
        EvaluationRun.objects.filter(pk=run.baseline_id).values_list("status", flat=True).first()
    )
    if status == EvaluationRun.Status.DONE:
        return ""
    if status in (RUNNING, EvaluationRun.Status.PENDING):
        return "waiting for the baseline"  # the baseline's end steps it (_step_perturbations)
    fail_run(run, f"its baseline run {run.baseline_id} is {status or 'gone'}")
    return "failed"


def _step_perturbations(baseline: EvaluationRun) -> None:
    """A baseline ended: step the perturbation runs waiting for it (the watchdog also does)."""
    waiting = EvaluationRun.objects.filter(baseline=baseline, status=RUNNING)
    for run_id in waiting.values_list("id", flat=True):
        _enqueue_step(run_id)


class SwappedPlan:
    """A plan whose every call is shown in the other order (the ``swap`` perturbation).

    Verdicts come back in the shown order and are turned round before the plan sees them,
    so the design replays exactly as for its baseline.
    """

    def __init__(self, plan):
        self.plan = plan

    def next_batch(self) -> list[Call]:
        return [Call(p, b, a) for p, a, b in self.plan.next_batch()]

    def observe(self, verdicts) -> None:
        self.plan.observe([Verdict(v.prompt, v.second, v.first, 1.0 - v.score) for v in verdicts])

    def __getattr__(self, name):
        return getattr(self.plan, name)


# --- replay --------------------------------------------------------------------------------


@dataclass
class RunState:
    """Where a run stands: the plan after every complete batch, and the batch being judged."""

    plan: object
    round: int
    calls: list[Call]
    done: bool


class StoredVerdicts:
    """A run's stored judgments as arrays keyed by (round, prompt, first, second) in design indices.

    ``key = ((round · P + prompt) · N + first) · N + second`` where ``first`` is the model
    shown first. Each key has up to ``repeats`` judgments; ``score`` is the first-shown
    model's (1 win, ½ tie or both bad, 0 loss), NaN for a failed call.
    """

    def __init__(self, run: EvaluationRun):
        self.n, self.p = len(run.contestant_ids), len(run.prompt_ids)
        contestants = np.asarray(run.contestant_ids)
        prompt_ids = np.asarray(run.prompt_ids)
        # list() first: numpy would turn a database error raised while it iterates a
        # queryset into a TypeError, and the task would not retry it.
        slots = np.asarray(
            list(
                MatchSlot.objects.filter(match__run=run)
                .values_list("match_id", "position", "contestant_id")
                .order_by()
            ),
            dtype=np.int64,
        ).reshape(-1, 3)
        rows = list(
            Judgment.objects.filter(match__run=run, judge_id=run.judge_id)
            .values_list(
                "match__round", "match_id", "match__prompt_id", "presentation", "status", "winner"
            )
            .order_by()
        )
        self.rounds = np.zeros(0, np.int64)
        self.keys = np.zeros(0, np.int64)
        self.scores = np.zeros(0)
        if not rows:
            return
        rounds, match_ids, prompt_of, presentation, status, winner = zip(*rows, strict=True)
        match_ids = np.asarray(match_ids, np.int64)
        slot_of = {}
        for position in (0, 1):
            at = slots[slots[:, 1] == position]
            order = np.argsort(at[:, 0])
            slot_of[position] = (at[order, 0], at[order, 2])
        s0 = _lookup(*slot_of[0], match_ids)
        s1 = _lookup(*slot_of[1], match_ids)
        first_slot = np.fromiter((p == "1,0" for p in presentation), bool, len(rows)).astype(int)
        first = np.where(first_slot == 0, s0, s1)
        second = np.where(first_slot == 0, s1, s0)
        order = np.argsort(contestants)
        first_i = order[np.searchsorted(contestants, first, sorter=order)]
        second_i = order[np.searchsorted(contestants, second, sorter=order)]
        prompt_i = np.searchsorted(prompt_ids, np.asarray(prompt_of, np.int64))
        if np.any(contestants[first_i] != first) or np.any(contestants[second_i] != second):
            raise ReplayError("a stored match has a contestant that is not in the run")
        if np.any(prompt_i >= self.p) or np.any(
            prompt_ids[prompt_i.clip(max=self.p - 1)] != prompt_of
        ):
            raise ReplayError("a stored match has a prompt that is not in the run")
        slot_won = np.fromiter(({"a": 0, "b": 1}.get(w, -1) for w in winner), np.int64, len(rows))
        ok = np.fromiter((s == Judgment.Status.OK for s in status), bool, len(rows))
        score = np.where(slot_won == -1, 0.5, (slot_won == first_slot).astype(float))
        self.rounds = np.asarray(rounds, np.int64)
        self.keys = self._key(self.rounds, prompt_i, first_i, second_i)
        self.scores = np.where(ok, score, np.nan)
        sort = np.argsort(self.keys, kind="stable")
        self.keys, self.scores, self.rounds = self.keys[sort], self.scores[sort], self.rounds[sort]

    def _key(self, r, p, a, b) -> np.ndarray:
        return ((np.asarray(r, np.int64) * self.p + p) * self.n + a) * self.n + b

    def round_results(self, r: int, calls: list[Call], repeats: int) -> tuple[bool, list[Verdict]]:
        """(every call judged ``repeats`` times?, the verdicts: mean score over OK repeats)."""
        batch = np.asarray(calls, np.int64).reshape(-1, 3)
        keys = self._key(r, batch[:, 0], batch[:, 1], batch[:, 2])
        lo = np.searchsorted(self.keys, keys, "left")
        hi = np.searchsorted(self.keys, keys, "right")
        stored_in_round = int(np.count_nonzero(self.rounds == r))
        if int((hi - lo).sum()) != stored_in_round:
            raise ReplayError(
                f"round {r}: stored judgments that the design's replay does not ask for "
                "(the run's contestants, prompts, seed or code changed)"
            )
        if np.any(hi - lo < repeats):
            return False, []
        valid = ~np.isnan(self.scores)
        csum = np.concatenate([[0.0], np.cumsum(np.where(valid, self.scores, 0.0))])
        ccount = np.concatenate([[0], np.cumsum(valid)])
        total, count = csum[hi] - csum[lo], ccount[hi] - ccount[lo]
        keep = count > 0
        mean = total[keep] / count[keep]
        verdicts = [
            Verdict(int(p), int(a), int(b), float(s))
            for (p, a, b), s in zip(batch[keep].tolist(), mean.tolist(), strict=True)
        ]
        return True, verdicts


def _lookup(sorted_ids: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    at = np.searchsorted(sorted_ids, wanted).clip(max=max(len(sorted_ids) - 1, 0))
    if len(sorted_ids) == 0 or np.any(sorted_ids[at] != wanted):
        raise ReplayError("a judged match has no slots")
    return values[at]


def replay(run: EvaluationRun) -> RunState:
    """Rebuild the run's plan from its stored verdicts (see the module docstring)."""
    if not run.contestant_ids or not run.prompt_ids:
        raise ReplayError("the run was never started (no frozen contestants and prompts)")
    design = build_design(run)
    rng = np.random.default_rng(run.seed)
    plan = design.start(len(run.contestant_ids), len(run.prompt_ids), rng, run.judge.both_orders)
    if run.perturbation == "swap":
        plan = SwappedPlan(plan)
    stored = StoredVerdicts(run)
    r = 0
    while True:
        calls = plan.next_batch()
        if not calls:
            if stored.rounds.size and stored.rounds.max() >= r:
                raise ReplayError(
                    f"stored judgments in round {int(stored.rounds.max())} after the plan ended"
                )
            return RunState(plan, r, [], True)
        complete, verdicts = stored.round_results(r, calls, run.repeats)
        if not complete:
            return RunState(plan, r, calls, False)
        plan.observe(verdicts)
        r += 1


# --- the orchestrator ----------------------------------------------------------------------


def run_step(
    run_id: int,
    round: int | None = None,
    *,
    after_generation: bool = False,
    redispatch: bool = False,
) -> str:
    """Advance a run by one step; returns what it did. Idempotent; safe to call at any time.

    Parameters
    ----------
    run_id : int
    round : int, optional
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
        waiting = _wait_for_baseline(run)
        if waiting:
            return waiting
    try:
        state = replay(run)
        if state.done:
            return finish_run(run)
        r = state.round
        if round is not None and r > round + 1:
            return "stale callback"
        stalled = redispatch or _stalled(run)
        outputs, missing = _outputs_for(run, state.calls)
        if missing and not after_generation:
            if run.step == f"{r}:generate" and not stalled:
                return "generating"
            if _claim(run, f"{r}:generate", len(missing)):
                _dispatch_generation(run, r, missing)
                return "generating"
            return "claimed elsewhere"
        pending = ensure_matches(run, r, state.calls, outputs)
        if not pending:  # every call has a judgment: the replay moves on next time
            _enqueue_step(run.id)
            return "round complete"
        if run.step == f"{r}:judge" and not stalled:
            if round == r:  # a chord callback came early: look again later
                _enqueue_step(run.id, countdown=POLL_SECONDS, round=r)
            return "judging"
        if _claim(run, f"{r}:judge", len(pending)):
            _dispatch_judging(run, r, pending)
            return "judging"
        return "claimed elsewhere"
    except (ReplayError, RunError) as exc:
        log.error("run %s failed: %s", run_id, exc)
        fail_run(run, str(exc))
        return "failed"


def _stalled(run: EvaluationRun) -> bool:
    """No step handed out yet, or a batch with no new verdict for ARENA_RUN_STALL_SECONDS."""
    if not run.step or run.step_at is None:
        return True
    window = timedelta(seconds=settings.ARENA_RUN_STALL_SECONDS)
    since = timezone.now() - window
    if run.step_at > since:
        return False
    return not Judgment.objects.filter(match__run=run, created_at__gte=since).exists()


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
    from arena.generation import generation_label

    batch = np.asarray(calls, np.int64).reshape(-1, 3)
    prompt_ids = np.asarray(run.prompt_ids)[np.unique(batch[:, 0])]
    used = np.unique(batch[:, 1:])
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
    needed = {
        (run.prompt_ids[p], run.contestant_ids[m]) for p, a, b in batch.tolist() for m in (a, b)
    }
    missing = sorted(k for k in needed if k not in outputs and labels[k[1]] is not None)
    return outputs, missing


def ensure_matches(run: EvaluationRun, r: int, calls: list[Call], outputs) -> list[tuple]:
    """Create the batch's matches and slots (idempotent); return the calls without a judgment.

    One match per (round, prompt, unordered pair): slot 0 is the model shown first in the
    batch's first call on it; the other order is its second presentation. The external id
    ``r<round>:p<prompt>:<low>-<high>`` (contestant ids) makes creation idempotent.

    Returns
    -------
    list of (match_id, presentation, repeat)
        In batch order.
    """
    prompts = {p.id: p for p in Prompt.objects.filter(id__in=run.prompt_ids)}
    source = f"run:{run.id}"
    plan_matches: dict[str, tuple[int, int, int]] = {}  # external id -> (prompt, slot0, slot1)
    call_match: list[tuple[str, str]] = []
    for p, a, b in calls:
        prompt_id, first, second = run.prompt_ids[p], run.contestant_ids[a], run.contestant_ids[b]
        external = f"r{r}:p{prompt_id}:{min(first, second)}-{max(first, second)}"
        slots = plan_matches.setdefault(external, (prompt_id, first, second))
        call_match.append((external, "0,1" if slots[1] == first else "1,0"))
    with transaction.atomic():
        existing = dict(Match.objects.filter(run=run, round=r).values_list("external_id", "id"))
        stray = set(existing) - set(plan_matches)
        if stray:
            raise ReplayError(
                f"round {r}: stored match {sorted(stray)[0]} is not in the replayed batch"
            )
        new = [e for e in plan_matches if e not in existing]
        Match.objects.bulk_create(
            [
                Match(
                    prompt_set_id=run.prompt_set_id,
                    prompt_id=plan_matches[e][0],
                    origin=Match.Origin.RUN,
                    source=source,
                    external_id=e,
                    run=run,
                    round=r,
                    k=2,
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
            existing = dict(Match.objects.filter(run=run, round=r).values_list("external_id", "id"))
        with_slots = set(
            MatchSlot.objects.filter(match__run=run, match__round=r).values_list(
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
                for e, (prompt_id, *slot_contestants) in plan_matches.items()
                if existing[e] not in with_slots
                for position, contestant_id in enumerate(slot_contestants)
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        _fill_missing_outputs(run, r, outputs)
    judged = set(
        Judgment.objects.filter(match__run=run, match__round=r, judge_id=run.judge_id)
        .values_list("match_id", "presentation", "repeat")
        .order_by()
    )
    pending = []
    for external, presentation in call_match:
        for repeat in range(run.repeats):
            item = (existing[external], presentation, repeat)
            if item not in judged:
                pending.append(item)
    return pending


def _fill_missing_outputs(run: EvaluationRun, r: int, outputs) -> None:
    """Slots created while an answer was missing get it once it exists (after a resume)."""
    empty = MatchSlot.objects.filter(match__run=run, match__round=r, output__isnull=True)
    for slot_id, prompt_id, contestant_id in empty.values_list(
        "id", "match__prompt_id", "contestant_id"
    ):
        output_id = outputs.get((prompt_id, contestant_id))
        if output_id is not None:
            MatchSlot.objects.filter(id=slot_id).update(output_id=output_id)


def _dispatch_generation(run: EvaluationRun, r: int, missing) -> None:
    from celery import chord

    from judges.tasks import generate_output
    from judges.tasks import run_step as run_step_task

    header = [generate_output.si(p, c, run.id) for p, c in missing]
    callback = run_step_task.si(run.id, r, after_generation=True)
    transaction.on_commit(lambda: chord(header)(callback))


def _dispatch_judging(run: EvaluationRun, r: int, pending) -> None:
    from celery import chord

    from judges.tasks import judge_call as judge_call_task
    from judges.tasks import run_step as run_step_task

    header = [judge_call_task.si(*item) for item in pending]
    callback = run_step_task.si(run.id, r)
    log.info("run %s round %s: %d judge calls handed out", run.id, r, len(header))
    transaction.on_commit(lambda: chord(header)(callback))


def finish_run(run: EvaluationRun) -> str:
    """Fit the run's leaderboard once (claimed), mark it done and tell the watchers."""
    from arena.services import refresh_leaderboard

    if run.step == "fit" and not _stalled(run):
        return "fitting"
    if not _claim(run, "fit", 0):
        return "claimed elsewhere"
    try:
        snapshot = refresh_leaderboard(run_scope(run))
    except Exception:
        # Give the claim back, so that the task's retry fits the run at once instead of
        # finding it "fitting" until the claim stalls (ARENA_RUN_STALL_SECONDS).
        EvaluationRun.objects.filter(pk=run.pk, step="fit").update(step="")
        raise
    with transaction.atomic():  # done, and the runs waiting for it told, or neither
        EvaluationRun.objects.filter(pk=run.pk, status=RUNNING).update(
            status=EvaluationRun.Status.DONE, finished_at=timezone.now(), step="done"
        )
        _step_perturbations(run)
    run.refresh_from_db()
    broadcast_board(snapshot.scope, snapshot.id, snapshot.n_votes)
    broadcast_progress(run)
    _refresh_judge_boards(run)
    log.info("run %s done: %d calls, %d failed", run.id, run.calls_made, run.calls_failed)
    return "done"


def _refresh_judge_boards(run: EvaluationRun) -> None:
    """Boards of this prompt set that include the run's verdicts, if someone follows them."""
    from arena.models import BoardState
    from arena.services import request_refit

    slug = run.prompt_set.slug
    keys = [BoardScope(slug, by).key for by in ("judges", f"judge:{run.judge_id}", "all")]
    followed = list(BoardState.objects.filter(scope__in=keys).values_list("scope", flat=True))
    if followed:
        request_refit(followed)


def fail_run(run: EvaluationRun, error: str) -> None:
    with transaction.atomic():
        EvaluationRun.objects.filter(pk=run.pk, status=RUNNING).update(
            status=EvaluationRun.Status.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        _step_perturbations(run)
    run.refresh_from_db()
    broadcast_progress(run)


# --- cancel, resume, watch -------------------------------------------------------------------


def cancel_run(run: EvaluationRun) -> EvaluationRun:
    """Stop a pending or running run; its queued tasks find it cancelled and exit."""
    with transaction.atomic():
        changed = EvaluationRun.objects.filter(
            pk=run.pk, status__in=[EvaluationRun.Status.PENDING, RUNNING]
        ).update(status=EvaluationRun.Status.CANCELLED, finished_at=timezone.now())
        run.refresh_from_db()
        if not changed:
            raise RunError("status", f"run {run.pk} is {run.status}; nothing to cancel", status=409)
        transaction.on_commit(lambda: broadcast_progress(run))
        _step_perturbations(run)
    return run


def resume_run(run: EvaluationRun) -> EvaluationRun:
    """Restart a cancelled, failed or stuck run where it stopped (a pending one is started)."""
    if run.status == EvaluationRun.Status.PENDING:
        return start_run(run)
    with transaction.atomic():
        changed = EvaluationRun.objects.filter(
            pk=run.pk,
            status__in=[EvaluationRun.Status.CANCELLED, EvaluationRun.Status.FAILED, RUNNING],
        ).update(status=RUNNING, finished_at=None, error="")
        run.refresh_from_db()
        if not changed:
            raise RunError("status", f"run {run.pk} is {run.status}; nothing to resume", status=409)
        if not run.contestant_ids:
            raise RunError("status", f"run {run.pk} was never started", status=409)
        _enqueue_step(run.id, redispatch=True)
        transaction.on_commit(lambda: broadcast_progress(run))
    return run


def watch_runs() -> list[int]:
    """Beat task: step runs that were never stepped or whose batch stalled; returns their ids."""
    nudged = []
    for run in EvaluationRun.objects.filter(status=RUNNING).select_related("judge", "prompt_set"):
        if _stalled(run) and (run.step or _older_than(run.started_at, 30)):
            _enqueue_step(run.id, redispatch=True)
            nudged.append(run.id)
    return nudged


def _older_than(moment, seconds: float) -> bool:
    return moment is None or moment < timezone.now() - timedelta(seconds=seconds)


def ensure_watchdog() -> None:
    """The beat entry that runs :func:`watch_runs` every minute (created once, editable in the admin)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=WATCHDOG).exists():
        return
    every, _ = IntervalSchedule.objects.get_or_create(every=60, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.get_or_create(
        name=WATCHDOG, defaults={"task": "judges.tasks.watch_runs", "interval": every}
    )


WATCHDOG = "judges: watch evaluation runs"


def resume_interrupted_runs() -> list[int]:
    """At start-up of an embedded server: runs left running lost their queued tasks; hand them out again."""
    ids = list(EvaluationRun.objects.filter(status=RUNNING).values_list("id", flat=True))
    with transaction.atomic():
        for run_id in ids:
            _enqueue_step(run_id, redispatch=True)
    return ids


# --- reading -----------------------------------------------------------------------------------


def progress(run: EvaluationRun) -> float:
    """Share of the planned calls stored (adaptive designs plan an upper bound)."""
    if run.status == EvaluationRun.Status.DONE:
        return 1.0
    return min(1.0, run.calls_made / run.planned_calls) if run.planned_calls else 0.0


def wait_for(run: EvaluationRun, timeout: float, poll: float = 0.5) -> EvaluationRun:
    """Block until the run leaves pending/running or ``timeout`` seconds pass (command, tests)."""
    deadline = time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if run.status not in (EvaluationRun.Status.PENDING, RUNNING) or time.monotonic() > deadline:
            return run
        time.sleep(poll)
