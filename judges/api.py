"""The runs API (mounted at /api/runs): create and start, follow, cancel, resume evaluation runs.

Token-authenticated: ``Authorization: Bearer arena_...`` (``python manage.py arena_token
create NAME`` or the admin). Each endpoint resolves its input, calls one use case of
:mod:`judges.runs` and returns the run. A use case's refusal
(:class:`arena.errors.Refusal`) propagates to the API's one handler (config/api.py), which
answers ``{"detail": ..., "field": ...}`` with its status.
"""

from __future__ import annotations

from django.db import transaction
from ninja import Router, Schema, Status
from ninja.security import HttpBearer

from arena import anchoring
from arena.errors import NOT_FOUND, Refusal
from arena.models import EvaluationRun, LeaderboardSnapshot
from arena.schemas import BoardRow, Problem
from judges import runs
from judges.audit_reports.jury import juror_costs
from judges.judging import run_scope
from judges.rubric_drafts import draft_rubrics
from judges.runs.criteria import criterion_report
from judges.tokens import check_token


class ApiTokenAuth(HttpBearer):
    """Bearer token checked against the stored hashes; 401 otherwise."""

    def authenticate(self, request, token):
        found = check_token(token)
        if found is not None:
            request.api_token = found
        return found


router = Router(auth=ApiTokenAuth(), tags=["runs"])
MAX_ID = 2**63 - 1  # the largest primary key a database holds


class RunIn(Schema):
    model_config = {"extra": "forbid"}

    prompt_set: str
    judge: str
    contestants: list[str]
    design: str | None = None  # judges.runs.create.default_design
    design_params: dict | None = None
    name: str = ""
    max_prompts: int | None = None
    budget_calls: int | None = None
    repeats: int = 1
    seed: int = 0
    tag: str = ""
    # A jury run (judges.runs.jury): its judges, and {"size", "rule", "weights_from"}.
    jurors: list[str] | None = None
    jury: dict | None = None
    # Power planning: the rating difference the run should detect (default
    # ARENA_RUN_DETECT_RATING), and whether an under-powered plan is refused (400).
    detect: float | None = None
    require_power: bool = False


class PowerOut(Schema):
    design: str
    n_models: int
    n_prompts: int
    planned_calls: int
    detectable: float | None  # rating points (None: nothing is detectable)
    target: float
    prompts_needed: int | None
    calls_needed: int | None
    budget_calls: int | None
    budget_detectable: float | None
    approximate: bool
    under_powered: bool
    summary: str


class LeaderboardOut(Schema):
    scope: str
    created_at: str
    n_votes: int
    rows: list[BoardRow]


class CriterionBoardOut(Schema):
    set: str
    by: str
    crit: str
    fitted: bool
    leader: str | None
    n_votes: int


class CriterionOut(Schema):
    """A rubric run's criterion: how often it named the weighted total's winner (agreed),
    its loser (against), and decided the win (with it tied, the total would not name that
    winner), out of ``decisive`` judgments; and its board."""

    name: str
    weights: list[float]
    verdicts: int
    decisive: int
    agreed: int
    against: int
    decided: int
    decided_share: float | None
    board: CriterionBoardOut


class RunOut(Schema):
    id: int
    name: str
    status: str
    design: str
    design_params: dict
    design_report: (
        dict  # what the design decided and why (mediocre anchor, placement, PRP rankings)
    )
    prompt_set: str
    judge: str
    judge_version: str
    contestants: list[str]
    tag: str
    seed: int
    repeats: int
    planned_calls: int
    calls_made: int
    calls_failed: int
    calls_cached: int
    progress: float
    cost: float
    error: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    page: str
    power: PowerOut | None = None
    leaderboard: LeaderboardOut | None = None
    criteria: list[CriterionOut] = []  # a rubric judge's run (issue 15)
    jury: dict = {}  # a jury run's design: jurors (ids), size, rule, weights_from, weights
    jurors: list[dict] = []  # per juror: judge_id, name, calls, failed, cost, weight


def run_out(run: EvaluationRun) -> dict:
    """The run as the API and the run page's JSON show it (with the provisional leaderboard)."""
    snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
    iso = lambda t: t.isoformat() if t else None  # noqa: E731
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "design": run.design,
        "design_params": run.design_params,
        "design_report": run.design_report,
        "prompt_set": run.prompt_set.slug,
        "judge": run.judge.name,
        "judge_version": run.judge.version,
        "contestants": list(run.contestants.order_by("name").values_list("name", flat=True)),
        "tag": run.tag,
        "seed": run.seed,
        "repeats": run.repeats,
        "planned_calls": run.planned_calls,
        "calls_made": run.calls_made,
        "calls_failed": run.calls_failed,
        "calls_cached": run.calls_cached,
        "progress": runs.progress(run),
        "cost": float(run.cost),
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "page": f"/runs/{run.id}/",
        "power": power_out(run),
        "criteria": criterion_report(run),
        "jury": run.jury,
        "jurors": juror_costs(run) if run.jury else [],
        "leaderboard": (
            {
                "scope": snapshot.scope,
                "created_at": snapshot.created_at.isoformat(),
                "n_votes": snapshot.n_votes,
                "rows": snapshot.rows,
            }
            if snapshot
            else None
        ),
    }


def power_out(run: EvaluationRun, target: float | None = None) -> dict | None:
    """The run's power figures (``judges.runs.plan_power``); None for a schedule template
    or a run that could not start (its refusal says why)."""
    if run.cron:
        return None
    try:
        power = runs.plan_power(run, target)
    except Refusal:
        return None
    return power.as_dict()


def _get(run_id: int) -> EvaluationRun:
    """The run with its judge and prompt set; refused with 404 if there is none."""
    run = None
    if 0 < run_id <= MAX_ID:  # an id past the database's integer range names no run
        run = EvaluationRun.objects.select_related("judge", "prompt_set").filter(pk=run_id).first()
    if run is None:
        raise Refusal(f"no evaluation run {run_id}", field="id", status=NOT_FOUND)
    return run


# Every endpoint: 401 without a valid token, 422 for a value of the wrong type.
AUTH_ERRORS = {401: Problem, 422: Problem}


class RubricDraftIn(Schema):
    model_config = {"extra": "forbid"}

    prompt_set: str
    judge_id: int
    prompt_ids: list[int] | None = None  # default: every public prompt of the set
    overwrite: bool = False


class RubricDraftOut(Schema):
    drafted: list[int]  # prompt ids given a drafted rubric (edit them in the admin)
    kept: list[int]  # prompt ids that had their own rubric (no overwrite)
    failed: dict[str, str]  # prompt id -> why no rubric was drafted
    cost: float


@router.post(
    "/rubrics/draft",
    response={200: RubricDraftOut, 400: Problem, 404: Problem, **AUTH_ERRORS},
    summary="An LLM drafts the rubric of each prompt of a set (issue 15)",
)
def draft(request, payload: RubricDraftIn):
    """The judge's model drafts one rubric per prompt (``judges.rubric_drafts``), stored as
    the prompt's own; answers when every draft is back (at most 200 prompts a request)."""
    if not 0 < payload.judge_id <= MAX_ID:
        raise Refusal(f"no judge {payload.judge_id}", field="judge_id", status=NOT_FOUND)
    if payload.prompt_ids is not None and not all(0 < i <= MAX_ID for i in payload.prompt_ids):
        raise Refusal("prompt ids are positive", field="prompt_ids")
    outcome = draft_rubrics(
        payload.prompt_set, payload.judge_id, payload.prompt_ids, overwrite=payload.overwrite
    )
    return outcome.as_dict()


@router.post(
    "",
    response={201: RunOut, 400: Problem, 409: Problem, **AUTH_ERRORS},
    summary="Create an evaluation run and start it",
)
def create(request, payload: RunIn):
    fields = payload.dict()
    target, require = fields.pop("detect"), fields.pop("require_power")
    with transaction.atomic():
        run = runs.create_run(**fields)
        if require or target is not None:  # the plan's power is read again by run_out
            power = runs.plan_power(run, target)  # (checks ``detect``)
            if require and power.under_powered:
                raise Refusal(power.summary(), field="detect")
        runs.start_run(run)
    return Status(201, run_out(_get(run.id)))


@router.post(
    "/plan",
    response={200: PowerOut, 400: Problem, 409: Problem, **AUTH_ERRORS},
    summary="A run's power before paying for it: what its plan detects, what a target needs",
)
def plan(request, payload: RunIn):
    """Checks the run as ``POST /api/runs`` would, and stores nothing."""
    fields = payload.dict()
    target = fields.pop("detect")
    fields.pop("require_power")
    with transaction.atomic():
        run = runs.create_run(**fields)
        power = runs.plan_power(run, target)
        transaction.set_rollback(True)
    return power.as_dict()


@router.get(
    "",
    response={200: list[RunOut], **AUTH_ERRORS},
    summary="The latest evaluation runs (newest first)",
)
def latest(request, limit: int = 20):
    limit = max(1, min(limit, 100))
    qs = EvaluationRun.objects.select_related("judge", "prompt_set").order_by("-created_at")
    return [run_out(run) for run in qs[:limit]]


@router.get(
    "/{run_id}",
    response={200: RunOut, 404: Problem, **AUTH_ERRORS},
    summary="A run's status, progress, cost and provisional leaderboard",
)
def detail(request, run_id: int):
    return run_out(_get(run_id))


@router.post(
    "/{run_id}/cancel",
    response={200: RunOut, 404: Problem, 409: Problem, **AUTH_ERRORS},
    summary="Cancel a pending or running run",
)
def cancel(request, run_id: int):
    runs.cancel_run(_get(run_id))
    return run_out(_get(run_id))


@router.post(
    "/{run_id}/resume",
    response={200: RunOut, 400: Problem, 404: Problem, 409: Problem, **AUTH_ERRORS},
    summary="Resume a cancelled, failed or stuck run where it stopped",
)
def resume(request, run_id: int):
    runs.resume_run(_get(run_id))
    return run_out(_get(run_id))


class AnchorsIn(Schema):
    model_config = {"extra": "forbid"}

    # A share of the run's judged matches below 1, else a number of matches.
    budget: float
    uniform_share: float = 0.3
    seed: int | None = None  # default: the run's seed


class StratumOut(Schema):
    stratum: str
    matches: int
    chosen: int
    probability: float


class AnchorOut(Schema):
    match: int
    public_id: str
    prompt: int | None
    models: list[str]
    stratum: str
    probability: float
    chosen: bool
    judge: float
    human_labels: int


@router.post(
    "/{run_id}/anchors",
    response={201: list[StratumOut], 400: Problem, 404: Problem, 409: Problem, **AUTH_ERRORS},
    summary="Draw the matches humans should judge to anchor a done run's judge",
)
def draw_anchors(request, run_id: int, payload: AnchorsIn):
    """Stratified by the judge's uncertainty, its split verdicts and the rank boundaries,
    with a uniform share (``arena.matchmaking.anchors``); replaces an earlier draw only
    while no human has labelled it (409)."""
    summary = anchoring.select_run_anchors(
        _get(run_id), payload.budget, uniform_share=payload.uniform_share, seed=payload.seed
    )
    return Status(201, summary)


@router.get(
    "/{run_id}/anchors",
    response={200: list[AnchorOut], 404: Problem, **AUTH_ERRORS},
    summary="Export a run's anchor selection: the chosen matches (every match with all=true)",
)
def export_anchors(request, run_id: int, all: bool = False):  # noqa: A002 - the query name
    return anchoring.anchor_export(_get(run_id), chosen_only=not all)
