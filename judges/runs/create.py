"""Creating and starting evaluation runs: resolve names, check fields, freeze and plan.

:func:`create_run` stores a pending run; :func:`start_run` validates it, freezes its
contestants and prompts, checks its design's plan against the budget and queues its first
step (:mod:`judges.runs.orchestrate`). :func:`launch_perturbation_audit` creates and starts
a baseline run and its perturbation runs at once.

Every refusal is an :class:`arena.errors.Refusal` naming the field at fault.
"""

from __future__ import annotations

import math
import typing
from dataclasses import fields
from types import UnionType

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from arena import services
from arena.boards import BoardScope
from arena.errors import CONFLICT, Refusal
from arena.matchmaking import DESIGNS
from arena.matchmaking.power import RunPower, run_power
from arena.models import (
    Contestant,
    EvaluationRun,
    Judge,
    LeaderboardSnapshot,
    Output,
    Prompt,
    PromptSet,
)
from arena.ratings.scale import ELO_SCALE
from judges import prompts as judge_prompts
from judges.events import broadcast_progress
from judges.judging import judge_config
from judges.perturbations import PERTURBATIONS
from judges.runs.dispatch import enqueue_step, ensure_watchdog
from judges.runs.jury import check_juror, frozen_weights, jury_design, panel_size

RUNNING = EvaluationRun.Status.RUNNING
MAX_INT = 2**31 - 1  # the largest value of the run's integer columns (and of a parameter)
# a rubric judge (issue 15) gives a pairwise verdict too: its criteria's weighted total
PAIRWISE_MODES = (judge_prompts.PAIRWISE, judge_prompts.PAIRWISE_MTBENCH, judge_prompts.RUBRIC)
# Single-score judges run the same designs: each pair's match is asked in both
# presentations, each call grading the answer shown first (judges.judging).
RUN_MODES = PAIRWISE_MODES + judge_prompts.POINTWISE_MODES

# EvaluationRun.design -> arena.matchmaking.DESIGNS key.
DESIGN_NAMES = {
    EvaluationRun.Design.ALL_PAIRS: "round-robin",
    EvaluationRun.Design.ANCHOR: "anchor",
    EvaluationRun.Design.MEDIOCRE_ANCHOR: "mediocre-anchor",
    EvaluationRun.Design.SINGLE_ELIMINATION: "single-elimination",
    EvaluationRun.Design.SWISS: "swiss",
    EvaluationRun.Design.ADAPTIVE: "adaptive",
    EvaluationRun.Design.PLACEMENT: "placement",
    EvaluationRun.Design.PRP: "prp",
    EvaluationRun.Design.KWISE_GROUPS: "kwise-groups",
    EvaluationRun.Design.KWISE_WINDOWS: "kwise-windows",
    EvaluationRun.Design.KWISE_ADAPTIVE: "kwise-adaptive",
}
# Designs whose calls rank K answers at once: they need a listwise judge, the others a
# pairwise one (arena.matchmaking.kwise).
KWISE_DESIGNS = (
    EvaluationRun.Design.KWISE_GROUPS,
    EvaluationRun.Design.KWISE_WINDOWS,
    EvaluationRun.Design.KWISE_ADAPTIVE,
)


# --- configuration -------------------------------------------------------------------------


def build_design(run: EvaluationRun, contestant_ids: list[int] | None = None):
    """The run's design object, its parameters checked and contestant names turned into indices.

    Raises
    ------
    Refusal
        Unknown design or parameter, or a parameter the design rejects.
    """
    try:
        cls = DESIGNS[DESIGN_NAMES[run.design]]
    except KeyError:
        raise Refusal(f"unknown design {run.design!r}", field="design") from None
    params = dict(run.design_params or {})
    ids = list(run.contestant_ids if contestant_ids is None else contestant_ids)
    if run.design == EvaluationRun.Design.PLACEMENT:
        params = _placement_params(params, ids)
    allowed = sorted(f.name for f in fields(cls) if f.name != "name")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise Refusal(
            f"unknown parameter {unknown[0]!r} for design {run.design}; expected {', '.join(allowed)}",
            field="design_params",
        )
    if run.design == EvaluationRun.Design.ANCHOR:
        if "anchor" not in params:
            raise Refusal(
                'the anchor design needs {"anchor": "<contestant name>"}', field="design_params"
            )
        params["anchor"] = _anchor_index(params["anchor"], ids)
    budgeted = (EvaluationRun.Design.ADAPTIVE, EvaluationRun.Design.PLACEMENT)
    if run.design in budgeted and run.budget_calls and "budget" not in params:
        params["budget"] = run.budget_calls // max(run.repeats, 1)
    hints = typing.get_type_hints(cls)
    for name, value in params.items():
        params[name] = _design_param(name, hints[name], value)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise Refusal(str(exc), field="design_params") from None


def _design_param(name: str, hint, value):
    """A design parameter checked against its type (``int | None``, ``float``, ``str``,
    ``tuple[float, ...]``): the value to pass, or a refusal naming the parameter."""
    kinds = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, UnionType) else ()
    kinds = kinds or (hint,)
    if value is None and type(None) in kinds:
        return None
    if int in kinds and _is_int(value) and abs(value) <= MAX_INT:
        return value
    if float in kinds and _is_number(value):
        return float(value)
    if str in kinds and isinstance(value, str) and len(value) <= 100:
        return value
    if any(typing.get_origin(kind) is tuple for kind in kinds):
        if isinstance(value, list) and len(value) <= 1000 and all(map(_is_number, value)):
            return tuple(float(x) for x in value)
    expected = " or ".join(_TYPE_NAMES.get(typing.get_origin(k) or k, str(k)) for k in kinds)
    raise Refusal(f"{name}: expected {expected}; got {value!r:.80}", field="design_params")


_TYPE_NAMES = {
    int: "an integer (at most 2147483647 in size)",
    float: "a finite number",
    str: "a string (at most 100 characters)",
    tuple: "a list of numbers",
    type(None): "null",
}


def _is_int(value) -> bool:
    """A JSON integer (True and False are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    """A finite JSON number."""
    return (_is_int(value) and abs(value) <= MAX_INT) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _placement_params(params: dict, contestant_ids: list[int]) -> dict:
    """A placement's stored parameters turned into the design's: the newcomer's index
    and the board's strengths (logits) in the run's contestant order.

    ``ratings`` (name -> rating, frozen from the board when the run was created) must
    rate every contestant but the newcomer."""
    params = dict(params)
    if "newcomer" not in params:
        raise Refusal(
            'the placement design needs {"newcomer": "<contestant name>"}', field="design_params"
        )
    ratings = params.pop("ratings", None)
    params.pop("board", None)  # where the ratings came from (shown, not used)
    if not isinstance(ratings, dict):
        raise Refusal(
            'the placement design needs the board\'s {"ratings": {name: rating}} (create_run '
            "freezes them from its board)",
            field="design_params",
        )
    newcomer = _anchor_index(params["newcomer"], contestant_ids, role="newcomer")
    names = dict(Contestant.objects.filter(id__in=contestant_ids).values_list("id", "name"))
    strengths = []
    for index, contestant_id in enumerate(contestant_ids):
        rating = ratings.get(names[contestant_id])
        if index != newcomer and not _is_number(rating):
            raise Refusal(
                f"{names[contestant_id]!r} has no rating on the board: a placement's anchors "
                "are the board's rated models",
                field="contestants",
            )
        strengths.append(0.0 if index == newcomer else float(rating) / ELO_SCALE)
    params["newcomer"] = newcomer
    params["strengths"] = strengths
    return params


def placement_setup(prompt_set, judge, newcomer: str, board: str | None = None):
    """The contestants and design parameters of a run placing ``newcomer`` on a board of
    ``prompt_set``: ``board`` is whose board (``by``), one the run's verdicts join
    (``judge:<this judge's id>``, the default, ``judges`` or ``all``); its latest ratings
    are frozen into the parameters.

    Returns ``(contestant names, design_params)``: the board's rated active models and the
    newcomer (``start_run`` then checks that each can be judged on the set's prompts)."""
    prompt_set, judge = _resolve_prompt_set(prompt_set), _resolve_judge(judge)
    if not newcomer:
        raise Refusal(
            'the placement design needs {"newcomer": "<contestant name>"}', field="design_params"
        )
    if board is not None and not isinstance(board, str):
        raise Refusal("board: expected humans, judges, all, judge:<id> or run:<id>", field="board")
    by = board or f"judge:{judge.pk}"
    scope = BoardScope.validated(prompt_set.slug, by)
    if scope.by not in (f"judge:{judge.pk}", "judges", "all"):
        raise Refusal(
            f"the run's verdicts must join the board it places on: judge:{judge.pk} (this "
            f"judge's), judges or all; not {scope.by!r}",
            field="board",
        )
    # A board nobody has looked at yet is fitted now (the one refit path): placing on it
    # is a deliberate request, not a page view.
    snapshot = LeaderboardSnapshot.objects.latest_of(scope.key) or services.refit(
        scope.key, final=True
    )
    if snapshot is None or not snapshot.rows:
        raise Refusal(
            f"the board {scope.key!r} has no verdicts yet: nothing to place against",
            field="board",
        )
    ratings = {
        r["model"]: float(r["rating"])
        for r in snapshot.rows
        if r.get("rating") is not None and r["model"] != newcomer
    }
    anchors = list(
        Contestant.objects.filter(
            name__in=list(ratings), is_active=True, kind=Contestant.Kind.MODEL
        )
        .order_by("name")
        .values_list("name", flat=True)
    )
    if len(anchors) < 2:
        raise Refusal(
            f"the board {scope.key!r} rates fewer than 2 active models to place against",
            field="board",
        )
    return [*anchors, newcomer], {
        "newcomer": newcomer,
        "board": scope.by,
        "ratings": {name: ratings[name] for name in anchors},
    }


def _anchor_index(anchor, contestant_ids: list[int], role: str = "anchor") -> int:
    by_name = dict(Contestant.objects.filter(id__in=contestant_ids).values_list("name", "id"))
    contestant_id = by_name.get(str(anchor))
    if contestant_id is None and str(anchor).isdigit() and int(anchor) in contestant_ids:
        contestant_id = int(anchor)
    if contestant_id is None:
        raise Refusal(
            f"{role} {anchor!r} is not one of the run's contestants ({', '.join(sorted(by_name))})",
            field="design_params",
        )
    return contestant_ids.index(contestant_id)


# --- creating and starting -----------------------------------------------------------------

ADAPTIVE_FROM = 32
"""Contestants from which a run created without a design is adaptive (issue 16)."""
ADAPTIVE_DEFAULT = {"fraction": 0.5}


def default_design(n_contestants: int) -> tuple[str, dict]:
    """The design of a run created without one: all pairs below :data:`ADAPTIVE_FROM`
    contestants, else the adaptive design (its default criterion, the live arena's
    "misorder" pairing) with half of all pairs' calls. ``bench/judging.py`` (issue 16)
    measures that pairing at 0.2-0.35 x uniform pairs' votes for a right top 10 from 32
    models up; at 16 models adaptive designs gain nothing (its section 1)."""
    if n_contestants >= ADAPTIVE_FROM:
        return EvaluationRun.Design.ADAPTIVE, dict(ADAPTIVE_DEFAULT)
    return EvaluationRun.Design.ALL_PAIRS, {}


def create_run(
    *,
    prompt_set: str | PromptSet,
    judge: str | int | Judge,
    contestants: list[str] | list[Contestant],
    design: str | None = None,
    design_params: dict | None = None,
    name: str = "",
    max_prompts: int | None = None,
    budget_calls: int | None = None,
    repeats: int = 1,
    seed: int = 0,
    tag: str = "",
    perturbation: str = "",
    baseline: EvaluationRun | None = None,
    jurors: list | None = None,
    jury: dict | None = None,
) -> EvaluationRun:
    """Resolve names to rows, check the plain fields and store a pending run (not started).

    A jury run names its ``jurors`` (judges, names or ids; ``judge`` is one of them, the
    first by default) and its ``jury`` design: ``{"size": jurors per comparison or null
    for all, "rule": "majority" | "mean" | "weighted", "weights_from": "humans" | "annotators" | "gold"}``
    (:mod:`judges.runs.jury`).

    A perturbation run (``perturbation`` one of :data:`judges.perturbations.PERTURBATIONS`)
    needs its ``baseline``: it judges the same comparisons, changed (see :func:`perturb`).
    Without a ``design``: :func:`default_design` (a perturbation run: its baseline's).
    """
    prompt_set = _resolve_prompt_set(prompt_set)
    panel = None
    if jurors:
        panel = [_resolve_judge(j) for j in jurors] if isinstance(jurors, list | tuple) else None
        if panel is None:
            raise Refusal("expected a list of judges", field="jurors")
        judge = _resolve_judge(judge) if judge else panel[0]
        if not isinstance(jury or {}, dict):
            raise Refusal("expected an object: size, rule, weights_from", field="jury")
        unknown = sorted(set(jury or {}) - {"size", "rule", "weights_from"})
        if unknown:
            raise Refusal(f"unknown jury field {unknown[0]!r}", field="jury")
        jury = jury_design(panel, judge, **(jury or {}))
    elif jury:
        raise Refusal("a jury design needs its jurors", field="jurors")
    else:
        judge = _resolve_judge(judge)
    members = _resolve_contestants(contestants)
    if design is None and baseline is not None:
        design = baseline.design
    elif design is None:
        design, default_params = default_design(len(members))
        design_params = design_params or default_params
    if design not in DESIGN_NAMES:
        raise Refusal(f"expected one of {', '.join(DESIGN_NAMES)}; got {design!r}", field="design")
    if not isinstance(design_params or {}, dict):
        raise Refusal("expected an object of parameters", field="design_params")
    for field, value in (("max_prompts", max_prompts), ("budget_calls", budget_calls)):
        if value is not None and not (_is_int(value) and 1 <= value <= MAX_INT):
            raise Refusal(f"expected 1..{MAX_INT} (or null for no limit)", field=field)
    if not (_is_int(repeats) and 1 <= repeats <= 20):
        raise Refusal("expected 1..20", field="repeats")
    if not (_is_int(seed) and 0 <= seed <= MAX_INT):
        raise Refusal(f"expected 0..{MAX_INT}", field="seed")
    for field, value in (("name", name), ("tag", tag)):
        limit = EvaluationRun._meta.get_field(field).max_length
        if len(value or "") > limit:
            raise Refusal(f"at most {limit} characters, got {len(value)}", field=field)
    design_params = dict(design_params or {})
    if design == EvaluationRun.Design.PLACEMENT and "ratings" not in design_params:
        # Freeze the board now: a placement replays against the strengths it started with.
        _, frozen = placement_setup(
            prompt_set, judge, str(design_params.get("newcomer", "")), design_params.get("board")
        )
        design_params.update(frozen)
    if perturbation and panel:
        raise Refusal("a perturbation audit judges with one judge, not a jury", field="jurors")
    if perturbation:
        _check_perturbation(perturbation, baseline, design, judge)
    elif baseline is not None:
        raise Refusal("only a perturbation run has a baseline", field="baseline")
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
        jury=jury or {},
    )
    run.contestants.set(members)
    if panel:
        run.jurors.set(panel)
    return run


def _resolve_prompt_set(value) -> PromptSet:
    if isinstance(value, PromptSet):
        return value
    found = PromptSet.objects.filter(slug=value).first()
    if found is None:
        raise Refusal(f"no prompt set {value!r}", field="prompt_set")
    return found


def _resolve_judge(value) -> Judge:
    if isinstance(value, Judge):
        return value
    judges = Judge.objects.filter(is_active=True)
    if isinstance(value, int) or str(value).isdigit():
        # an id past every database's integer range names no judge (and would overflow)
        found = judges.filter(pk=int(value)).first() if 0 <= int(value) < 2**63 else None
    else:
        # A name may have several versions: the newest one.
        found = judges.filter(name=value).order_by("-created_at", "-id").first()
    if found is None:
        raise Refusal(f"no active judge {value!r}", field="judge")
    return found


def _resolve_contestants(values) -> list[Contestant]:
    if values and all(isinstance(v, Contestant) for v in values):
        members = list(values)
    else:
        names = [str(v).strip() for v in values or [] if str(v).strip()]
        found = {c.name: c for c in Contestant.objects.filter(name__in=names)}
        missing = [n for n in names if n not in found]
        if missing:
            raise Refusal(f"no contestant {missing[0]!r}", field="contestants")
        members = [found[n] for n in dict.fromkeys(names)]
    if len(members) < 2:
        raise Refusal(
            f"a run needs at least 2 contestants, got {len(members)}", field="contestants"
        )
    return members


def start_run(run: EvaluationRun) -> EvaluationRun:
    """Validate a pending run, freeze its contestants and prompts, plan it, queue its first step.

    Raises
    ------
    Refusal
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
            raise Refusal(
                f"run {run.pk} is {run.status}, not pending", field="status", status=CONFLICT
            )
        if run.cron:
            raise Refusal(
                "this run is a schedule template; it starts copies of itself",
                field="cron",
                status=CONFLICT,
            )
        contestants = list(run.contestants.order_by("id"))
        if len(contestants) < 2:
            raise Refusal(
                f"a run needs at least 2 contestants, got {len(contestants)}", field="contestants"
            )
        _check_judge(run.judge, run.design)
        if not run.jury and run.jurors.exists():  # a jury made in the admin: all, majority
            run.jury = jury_design(list(run.jurors.all()), run.judge)
        if run.jury:
            for juror in Judge.objects.filter(pk__in=run.jury["jurors"]):
                _check_judge(juror)
                check_juror(juror)
            run.jury = frozen_weights(run)
        if run.design == EvaluationRun.Design.PLACEMENT and "ratings" not in run.design_params:
            # A run made in the admin: the board is frozen now, before anything is judged.
            _, frozen = placement_setup(
                run.prompt_set,
                run.judge,
                str(run.design_params.get("newcomer", "")),
                run.design_params.get("board"),
            )
            run.design_params = {**run.design_params, **frozen}
        if run.baseline_id is None:
            prompt_ids = _choose_prompts(run, contestants)
            contestant_ids = [c.id for c in contestants]
        else:  # the baseline's very comparisons
            baseline = run.baseline
            if not baseline.contestant_ids:
                raise Refusal(
                    f"start the baseline run {baseline.pk} first", field="baseline", status=CONFLICT
                )
            prompt_ids, contestant_ids = baseline.prompt_ids, baseline.contestant_ids
        design = build_design(run, contestant_ids)
        if getattr(design, "scoring", "") == "probability" and not run.judge.logprobs:
            raise Refusal(
                f"scoring by probability reads the judge's logprobs: judge {run.judge.name!r} "
                "does not ask for them (turn on its logprobs, or use discrete scoring)",
                field="design_params",
            )
        both = shows_both_orders(run.judge)
        try:  # the design's own checks (anchor index, screening size ...)
            planned = design.planned_calls(len(contestant_ids), len(prompt_ids), both)
            planned *= run.repeats * panel_size(run)
            design.start(
                len(contestant_ids), len(prompt_ids), np.random.default_rng(run.seed), both
            )
        except (ValueError, TypeError, OverflowError) as exc:
            raise Refusal(str(exc), field="design_params") from None
        if run.budget_calls is not None and planned > run.budget_calls:
            raise Refusal(
                f"the {run.design} design plans {planned} judge calls, more than the budget of "
                f"{run.budget_calls}; lower max_prompts or raise the budget",
                field="budget_calls",
            )
        run.contestant_ids, run.prompt_ids = contestant_ids, prompt_ids
        run.planned_calls = planned
        run.status, run.started_at, run.finished_at = RUNNING, timezone.now(), None
        run.error, run.step, run.step_at, run.step_calls = "", "", None, 0
        run.save()
        ensure_watchdog()
        enqueue_step(run.id)
        transaction.on_commit(lambda: broadcast_progress(run))
    return run


def shows_both_orders(judge: Judge) -> bool:
    """Whether a run asks each pair in both orders: the judge's setting, and always for a
    single-score judge (each order grades one of the two answers)."""
    return judge.both_orders or judge.mode in judge_prompts.POINTWISE_MODES


def _check_judge(judge: Judge, design: str = "") -> None:
    if not judge.base_url or not judge.model:
        raise Refusal(
            f"judge {judge.name!r} has no endpoint (base_url and model are required)", field="judge"
        )
    if design in KWISE_DESIGNS:
        if judge.mode != judge_prompts.LISTWISE:
            raise Refusal(
                f"judge {judge.name!r} is a {judge.mode} judge; the {design} design needs a "
                "listwise one (it ranks K answers per call)",
                field="judge",
            )
    elif judge.mode not in RUN_MODES:
        raise Refusal(
            f"judge {judge.name!r} is a {judge.mode} judge; evaluation designs need a pairwise "
            "or single-score one",
            field="judge",
        )
    try:
        judge_config(judge)
    except ValueError as exc:
        raise Refusal(str(exc), field="judge") from None


def _choose_prompts(run: EvaluationRun, contestants: list[Contestant]) -> list[int]:
    """Public prompts every contestant can answer: those without an endpoint need a stored
    answer.

    With ``max_prompts`` a seeded sample of them; always sorted by id.
    """
    ids = np.asarray(
        list(
            # A typed prompt is its author's own: never sent to the run's endpoints.
            Prompt.objects.filter(prompt_set=run.prompt_set, visibility=Prompt.Visibility.PUBLIC)
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
            raise Refusal(
                f"{contestant.name!r} has no endpoint and no stored answer to the prompts of "
                f"{run.prompt_set.slug!r} (that every other contestant can answer)",
                field="contestants",
            )
    if ids.size == 0:
        raise Refusal(f"prompt set {run.prompt_set.slug!r} has no prompts", field="prompt_set")
    if run.max_prompts is not None and run.max_prompts < ids.size:
        ids = np.sort(np.random.default_rng(run.seed).choice(ids, run.max_prompts, replace=False))
    return [int(i) for i in ids]


# --- power: what a run can tell apart, before paying for it ----------------------------------


def plan_power(run: EvaluationRun, target: float | None = None) -> RunPower:
    """The run's two planning figures (:func:`arena.matchmaking.power.run_power`): the
    rating difference its plan detects, and the prompts a ``target`` difference (default
    ``ARENA_RUN_DETECT_RATING``) needs; with a budget, what the budget detects.

    Reads only. A started run uses its frozen contestants and prompts; a pending one the
    prompts :func:`start_run` would choose.

    Raises
    ------
    Refusal
        What :func:`start_run` would refuse (too few contestants, no prompts, bad design
        parameters), or a target that is not a positive number.
    """
    target = settings.ARENA_RUN_DETECT_RATING if target is None else target
    if not (isinstance(target, int | float) and math.isfinite(target) and target > 0):
        raise Refusal("expected a positive rating difference", field="detect")
    if run.contestant_ids:
        contestant_ids, prompt_ids = run.contestant_ids, run.prompt_ids
    elif run.baseline_id is not None:
        if not run.baseline.contestant_ids:
            raise Refusal(f"start the baseline run {run.baseline_id} first", field="baseline")
        contestant_ids, prompt_ids = run.baseline.contestant_ids, run.baseline.prompt_ids
    else:
        contestants = list(run.contestants.order_by("id"))
        if len(contestants) < 2:
            raise Refusal(
                f"a run needs at least 2 contestants, got {len(contestants)}", field="contestants"
            )
        prompt_ids = _choose_prompts(run, contestants)
        contestant_ids = [c.id for c in contestants]
    design = build_design(run, contestant_ids)
    try:
        return run_power(
            design,
            len(contestant_ids),
            len(prompt_ids),
            target=float(target),
            both_orders=shows_both_orders(run.judge),
            repeats=run.repeats,
            panel=panel_size(run),  # a jury's comparison: one call per juror, one verdict
            budget_calls=run.budget_calls,
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise Refusal(str(exc), field="design_params") from None


# --- perturbation runs (judge bias audits) ---------------------------------------------------

# Designs whose comparisons do not depend on verdicts: a perturbation run can repeat them.
FIXED_DESIGNS = (EvaluationRun.Design.ALL_PAIRS, EvaluationRun.Design.ANCHOR)


def _check_perturbation(kind: str, baseline, design: str, judge: Judge) -> None:
    if kind not in PERTURBATIONS:
        raise Refusal(
            f"expected one of {', '.join(PERTURBATIONS)}; got {kind!r}", field="perturbation"
        )
    if baseline is None:
        raise Refusal("a perturbation run needs the run it perturbs", field="baseline")
    if baseline.perturbation:
        raise Refusal(f"run {baseline.pk} is itself a perturbation run", field="baseline")
    if design not in FIXED_DESIGNS or baseline.design != design:
        raise Refusal(
            "a perturbation run repeats its baseline's comparisons: both must use the same "
            f"fixed design ({', '.join(FIXED_DESIGNS)})",
            field="design",
        )
    if baseline.judge.name != judge.name:
        raise Refusal(f"the baseline was judged by {baseline.judge.name!r}", field="judge")
    if kind == "swap" and judge.both_orders:
        raise Refusal(
            f"judge {judge.name!r} already judges both orders: its position consistency is on "
            "its audit page, a swap run would add nothing",
            field="perturbation",
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
        raise Refusal("choose at least one perturbation", field="perturbations")
    with transaction.atomic():
        baseline = create_run(
            prompt_set=prompt_set,
            judge=judge,
            contestants=contestants,
            design=EvaluationRun.Design.ALL_PAIRS,  # a fixed design, whatever the default
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
