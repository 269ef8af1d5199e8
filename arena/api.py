"""The arena's JSON endpoints (a django-ninja Router; config/api.py mounts it at /api/).

Leaderboards, prompt sets, battles and votes. Each endpoint resolves its input, calls one
use case and returns its result; a :class:`arena.errors.Refusal` raised by the use case is
answered by the API's one exception handler as ``{"detail", "field"}`` with its status.
"""

import csv
import io
import re
import uuid

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from ninja import Router, Schema, Status
from ninja.utils import check_csrf
from pydantic import StrictInt, StrictStr

from arena.battles import NamedPick, battle_view, common_prompt_choices, serve_battle
from arena.boards import BoardScope, has_public_human_votes, pair_matrix
from arena.errors import BAD_REQUEST, FORBIDDEN, Refusal
from arena.gate import issue_challenge
from arena.model_pages import csv_rows, model_profile, public_model
from arena.models import Judge, Judgment, LeaderboardSnapshot, PromptSet, Rubric
from arena.schemas import Board, Problem
from arena.services import BoardMethod, board_json, latest_snapshot
from arena.voters import caller, ip_hash, network_hash, remember, voter_label
from arena.votes import cast_vote

router = Router()


class ScopeChoice(Schema):
    by: str
    label: str


class PromptSetOut(Schema):
    slug: str
    name: str
    categories: list[str]
    boards: list[ScopeChoice]
    criteria: list[str] = []  # criterion boards (crit=): rubric criteria, ballot aspects


# Responses of the leaderboard endpoints besides 200: a malformed scope (400), one naming
# nothing that exists (404), a missing or mistyped query value (422).
SCOPE_ERRORS = {400: Problem, 404: Problem, 422: Problem}


@router.get(
    "/leaderboard",
    response={200: Board, **SCOPE_ERRORS},
    summary="Latest leaderboard of a scope",
    description="A board never fitted yet answers empty with `pending: true` and is fitted "
    "in the background (the leaderboard page's websocket says when). `method` chooses the "
    "standings: `bt` (Bradley-Terry), `elo` (online Elo, its K-factor in `coefficients`) or "
    "`swiss` (expected score in simulated Swiss tournaments, `value: score`), all fitted "
    "from the same votes at the same refit; on a run's board with human labels, `anchored` "
    "(every judge verdict corrected by the human labels: prediction-powered BT, its power "
    "and effective sample size in `coefficients`).",
)
def leaderboard(
    request,
    set: str,
    by: str = "humans",
    category: str = "",
    style: str = "0",
    method: BoardMethod = "bt",
    crit: str = "",
):
    scope = BoardScope.validated(set, by, category, style, crit)
    return board_json(scope, latest_snapshot(scope), method)


CSV_FIELDS = ["rank_ub", "model", "rating", "ci_lower", "ci_upper", "votes", "win_rate"]


@router.get(
    "/leaderboard.csv",
    response={200: None, **SCOPE_ERRORS},
    summary="Latest leaderboard of a scope as CSV",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The board's rows (only the header while it is first fitted)",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
)
def leaderboard_csv(
    request,
    set: str,
    by: str = "humans",
    category: str = "",
    style: str = "0",
    method: BoardMethod = "bt",
    crit: str = "",
):
    scope = BoardScope.validated(set, by, category, style, crit)
    snapshot = latest_snapshot(scope)
    rows = [] if snapshot is None else board_json(scope, snapshot, method)["rows"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{_csv_name(scope)}"'
    return response


def _csv_name(scope: BoardScope) -> str:
    """leaderboard-<set>-<by>.csv, in characters that are safe in a header."""
    name = f"leaderboard-{scope.prompt_set}-{scope.by}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".csv"


@router.get(
    "/prompt-sets",
    response={200: list[PromptSetOut]},
    summary="Prompt sets and the leaderboards they have",
)
def prompt_sets(request):
    return [board_choices(ps) for ps in PromptSet.objects.order_by("slug")]


def board_choices(ps: PromptSet) -> dict:
    judgments = Judgment.objects.filter(match__prompt_set=ps, status=Judgment.Status.OK)
    boards = []
    # only where the public human board has a vote (annotators' labels on run matches and
    # side-by-side votes are on no board: they alone would offer an empty board)
    if has_public_human_votes(ps.slug):
        boards.append({"by": "humans", "label": "Human votes"})
    judge_ids = list(
        judgments.filter(judge__isnull=False).values_list("judge_id", flat=True).distinct()
    )
    if judge_ids:
        boards.append({"by": "judges", "label": "All LLM judges"})
        for judge in Judge.objects.filter(id__in=judge_ids).order_by("name"):
            boards.append({"by": f"judge:{judge.id}", "label": f"Judge: {judge.name}"})
    runs = (
        ps.runs.filter(matches__isnull=False)
        .distinct()
        .order_by("-created_at")
        .values_list("id", "name")
    )
    for run_id, name in runs[:50]:
        boards.append({"by": f"run:{run_id}", "label": f"Run: {name}"})
    categories = sorted(
        set(ps.matches.exclude(category="").values_list("category", flat=True).distinct())
    )
    # criterion boards (issue 15): the set's rubric criteria and the ballot aspects
    criteria = sorted(Rubric.objects.criterion_names(ps.id) | set(settings.ARENA_BALLOT_ASPECTS))
    return {
        "slug": ps.slug,
        "name": ps.name,
        "categories": categories,
        "boards": boards,
        "criteria": criteria,
    }


# --- battles -------------------------------------------------------------------------------


class BattleIn(Schema):
    prompt_set: str | None = None
    k: int = 2
    prompt_text: str | None = None  # the user's own question, answered live (streamed)
    # Side by side: the two models picked (left, right), shown by name; their votes are
    # counted apart and enter no board. A stored prompt's id, or none (drawn at random).
    models: list[StrictStr] | None = None
    prompt_id: StrictInt | None = None
    pow_challenge: str | None = None  # ARENA_VOTER_GATE=pow: GET /api/battles/challenge
    pow_nonce: str | None = None  # ... and its solution


class AnswerOut(Schema):
    slot: int
    text: str
    html: str  # the text as sanitised HTML (arena.rendering); "" while it is streamed
    model: str | None = None  # side by side only: who wrote it (anonymous battles: null)


class BattleOut(Schema):
    id: str
    k: int
    prompt: str
    prompt_html: str  # the prompt as sanitised HTML (arena.rendering)
    answers: list[AnswerOut]
    named: bool = False  # side by side: the answers carry their models' names
    expires_at: str
    streaming: bool = False  # answers of a typed prompt: read them from /battle/<id>/stream


class VoteIn(Schema):
    model_config = {"extra": "forbid"}

    idempotency_key: StrictStr
    winner: StrictStr | None = None
    ranking: list[StrictInt] | None = None
    best: StrictInt | None = None
    # Optional per-aspect verdicts of a 2-way battle (ARENA_BALLOT_ASPECTS), slot terms:
    # {"correctness": "a", "style": "tie"}; each counts on its aspect's board only.
    aspects: dict[StrictStr, StrictStr] | None = None


class RevealOut(Schema):
    slot: int
    model: str


class VoteOut(Schema):
    recorded: bool
    battle: str
    reveal: list[RevealOut]  # empty when the identities are withheld (ARENA_REVEAL)
    withheld: str | None = None  # why they are withheld
    permalink: str  # the battle's page, to share it (it exists from this vote on)


def _csrf(request):
    """The API's posts come from the site's own pages (ninja leaves CSRF to the endpoint)."""
    if check_csrf(request) is not None:
        raise Refusal(
            "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header",
            status=FORBIDDEN,
        )


class ChallengeOut(Schema):
    challenge: str
    bits: int
    expires_in: int


@router.get(
    "/battles/challenge",
    response=ChallengeOut,
    summary="A proof-of-work challenge a new anonymous voter solves (ARENA_VOTER_GATE=pow)",
)
def battle_challenge(request):
    return issue_challenge()


@router.post(
    "/battles",
    response={
        201: BattleOut,
        **{status: Problem for status in (400, 403, 404, 422, 429, 503)},
    },
    summary="Serve a new anonymous battle",
)
def new_battle(request, payload: BattleIn, response: HttpResponse):
    """Every check first (``serve_battle``): a refused request writes no Voter and no Match."""
    _csrf(request)
    if payload.prompt_id is not None and payload.models is None:
        raise Refusal("a stored prompt is picked for side by side only", field="prompt_id")
    named = (
        NamedPick(tuple(payload.models), payload.prompt_id) if payload.models is not None else None
    )
    match, voter = serve_battle(
        caller(request),
        payload.prompt_set,
        k=payload.k,
        prompt_text=payload.prompt_text,
        policy=settings.ARENA_MATCHMAKING_POLICY,
        pow_challenge=payload.pow_challenge,
        pow_nonce=payload.pow_nonce,
        named=named,
    )
    remember(response, voter)
    return Status(201, battle_view(match))


@router.post(
    "/battles/{battle_id}/vote",
    response={
        200: VoteOut,
        400: Problem,
        403: Problem,
        404: Problem,
        409: Problem,
        410: Problem,
        422: Problem,
        429: Problem,
        503: Problem,  # the database or Redis unreachable for a moment: send it again
    },
    summary="Vote on a battle you were served; reveals the contestants",
)
def vote(request, battle_id: uuid.UUID, payload: VoteIn):
    """One path for every voter, anonymous or logged in: ``cast_vote`` does the rest.

    A plain sync view on purpose: ``config.http`` runs the middleware, this view and the
    vote's queries in one pass on a pooled thread, so a process has many votes in flight.
    An async view would add two thread hops per vote for nothing.
    """
    _csrf(request)
    revealed = cast_vote(  # {"reveal": [...], "withheld": None | why}
        voter_label(request),
        ip_hash(request),
        battle_id,
        payload.dict(exclude_unset=True),
        network_hash=network_hash(request),
    )
    permalink = reverse("battle_permalink", args=[battle_id])
    return {"recorded": True, "battle": str(battle_id), "permalink": permalink, **revealed}


class PairMatrix(Schema):
    models: list[str]
    battles: list[list[float]]
    win_fraction: list[list[float | None]]


@router.get(
    "/leaderboard/pairs",
    response={200: PairMatrix, **SCOPE_ERRORS},
    summary="Battle counts and win fractions between every two models of a scope",
)
def leaderboard_pairs(
    request, set: str, by: str = "humans", category: str = "", style: str = "0", crit: str = ""
):
    return pair_matrix(BoardScope.validated(set, by, category, style, crit))


class HistoryPoint(Schema):
    at: str
    n_votes: int
    ratings: dict[str, float]


@router.get(
    "/leaderboard/history",
    response={200: list[HistoryPoint], **SCOPE_ERRORS},
    summary="Ratings of a scope over time, from its snapshots",
)
def leaderboard_history(
    request,
    set: str,
    by: str = "humans",
    category: str = "",
    style: str = "0",
    limit: int = 200,
    crit: str = "",
):
    scope = BoardScope.validated(set, by, category, style, crit)
    if not 1 <= limit <= 2000:
        raise Refusal("expected 1..2000", field="limit", status=BAD_REQUEST)
    snapshots = (
        LeaderboardSnapshot.objects.filter(scope=scope.key)
        .order_by("-created_at")
        .values_list("created_at", "n_votes", "rows")[:limit]
    )
    return [
        {
            "at": at.isoformat(),
            "n_votes": n,
            "ratings": {r["model"]: r["rating"] for r in rows if r.get("rating") is not None},
        }
        for at, n, rows in reversed(snapshots)
    ]


# --- model pages ---------------------------------------------------------------------------


class ModelInfo(Schema):
    name: str
    description: str
    organization: str
    license: str
    link: str
    family: str
    provider: str


class RatingPoint(Schema):
    at: str
    rating: float
    ci_lower: float | None = None
    ci_upper: float | None = None


class ModelStanding(Schema):
    """The model's figures on a board (None where the board does not rate it)."""

    rank_ub: int | None = None
    rating: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None
    votes: float | None = None
    win_rate: float | None = None


class ModelBoard(ModelStanding):
    """The model's line on one board (the human board of a prompt set, or a judge's)."""

    prompt_set: str
    prompt_set_name: str
    by: str
    label: str
    n_models: int
    fitted_at: str
    history: list[RatingPoint]  # the board's snapshots, oldest first


class ModelCategory(ModelStanding):
    """The model's line on a category board of a human board (``pending``: not fitted)."""

    prompt_set: str
    category: str
    pending: bool


class HeadToHead(Schema):
    """Public human votes between the model and one rival on one prompt set."""

    prompt_set: str
    prompt_set_name: str
    opponent: str
    linked: bool  # the rival has a page of its own (an active model)
    votes: int
    wins: int
    losses: int
    ties: int
    both_bad: int
    win_rate: float  # ties and "both bad" count half


class ModelProfile(Schema):
    model: ModelInfo
    boards: list[ModelBoard]
    categories: list[ModelCategory]
    head_to_head: list[HeadToHead]


@router.get(
    "/model",
    response={200: ModelProfile, 404: Problem, 422: Problem},
    summary="One model's page: ratings per board and category, history, head-to-head",
    description="The same data as the page `/models/<name>/`. Only active models that were "
    "compared have one; head-to-head counts are the public human votes (never those "
    "counted as flagged, never side-by-side votes).",
)
def model(request, name: str):
    return model_profile(public_model(name))


@router.get(
    "/model.csv",
    response={200: None, 400: Problem, 404: Problem, 422: Problem},
    summary="One table of a model's page as CSV",
    description="`table`: head_to_head (default), boards, categories or history.",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The table's rows",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
)
def model_csv(request, name: str, table: str = "head_to_head"):
    found = public_model(name)
    columns, rows = csv_rows(model_profile(found), table)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    filename = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"model-{found.name}-{table}") + ".csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class PromptChoice(Schema):
    id: int
    text: str


@router.get(
    "/side-by-side/prompts",
    response={200: list[PromptChoice], 404: Problem, 422: Problem},
    summary="Public prompts of an arena prompt set that two models both answered",
)
def side_by_side_prompts(request, set: str, model_a: str, model_b: str):
    return common_prompt_choices(set, [model_a, model_b])
