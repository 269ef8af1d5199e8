"""The JSON API (django-ninja; OpenAPI at /api/docs)."""

import uuid

from django.conf import settings
from django.http import HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.utils import check_csrf
from pydantic import StrictInt, StrictStr

from arena.battles import (
    BattleError,
    battle_view,
    cast_vote,
    start_battle,
    start_live_battle,
)
from arena.boards import BoardScope, ScopeError, pair_matrix
from arena.models import Judgment, LeaderboardSnapshot, PromptSet
from arena.ratelimit import allow, vote_allowed
from arena.services import latest_snapshot
from arena.voters import current_voter, ip_hash, remember
from judges.models import Judge

api = NinjaAPI(title="Arena API", version="1", urls_namespace="api")


class BoardRow(Schema):
    rank_ub: int
    model: str
    rating: float
    ci_lower: float | None = None
    ci_upper: float | None = None
    votes: int
    win_rate: float | None = None


class Board(Schema):
    scope: str
    method: str
    created_at: str
    n_votes: int
    n_models: int
    rows: list[BoardRow]
    graph: dict


class ScopeChoice(Schema):
    by: str
    label: str


class PromptSetOut(Schema):
    slug: str
    name: str
    categories: list[str]
    boards: list[ScopeChoice]


def _scope(set_: str, by: str, category: str, style: str) -> BoardScope:
    try:
        return BoardScope.validated(set_, by, category, style)
    except ScopeError as exc:
        raise HttpError(404 if exc.field == "set" else 400, str(exc)) from None


def _board(snapshot) -> dict:
    return {
        "scope": snapshot.scope,
        "method": snapshot.method,
        "created_at": snapshot.created_at.isoformat(),
        "n_votes": snapshot.n_votes,
        "n_models": snapshot.n_models,
        "rows": snapshot.rows,
        "graph": snapshot.graph,
    }


@api.get("/leaderboard", response=Board, summary="Latest leaderboard of a scope")
def leaderboard(request, set: str, by: str = "humans", category: str = "", style: str = "0"):
    return _board(latest_snapshot(_scope(set, by, category, style)))


@api.get("/leaderboard.csv", summary="Latest leaderboard of a scope as CSV")
def leaderboard_csv(request, set: str, by: str = "humans", category: str = "", style: str = "0"):
    import csv
    import io

    snapshot = latest_snapshot(_scope(set, by, category, style))
    buffer = io.StringIO()
    fields = ["rank_ub", "model", "rating", "ci_lower", "ci_upper", "votes", "win_rate"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(snapshot.rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="leaderboard-{set}-{by.replace(":", "-")}.csv"'
    )
    return response


@api.get(
    "/prompt-sets",
    response=list[PromptSetOut],
    summary="Prompt sets and the leaderboards they have",
)
def prompt_sets(request):
    return [board_choices(ps) for ps in PromptSet.objects.order_by("slug")]


def board_choices(ps: PromptSet) -> dict:
    judgments = Judgment.objects.filter(match__prompt_set=ps, status=Judgment.Status.OK)
    boards = []
    if judgments.filter(voter__isnull=False).exists():
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
    return {"slug": ps.slug, "name": ps.name, "categories": categories, "boards": boards}


# --- battles -------------------------------------------------------------------------------


class BattleIn(Schema):
    prompt_set: str | None = None
    k: int = 2
    prompt_text: str | None = None  # the user's own question, answered live (streamed)


class AnswerOut(Schema):
    slot: int
    text: str


class BattleOut(Schema):
    id: str
    k: int
    prompt: str
    answers: list[AnswerOut]
    expires_at: str
    streaming: bool = False  # answers of a typed prompt: read them from /battle/<id>/stream


class VoteIn(Schema):
    model_config = {"extra": "forbid"}

    idempotency_key: StrictStr
    winner: StrictStr | None = None
    ranking: list[StrictInt] | None = None
    best: StrictInt | None = None


class RevealOut(Schema):
    slot: int
    model: str


class VoteOut(Schema):
    recorded: bool
    battle: str
    reveal: list[RevealOut]


class Problem(Schema):
    detail: str
    field: str | None = None


def _refuse(exc: BattleError):
    return Status(exc.status, {"detail": exc.message, "field": exc.field})


def _csrf(request):
    if check_csrf(request) is not None:
        raise HttpError(
            403, "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header"
        )


@api.post(
    "/battles",
    response={201: BattleOut, 400: Problem, 404: Problem, 429: Problem, 503: Problem},
    summary="Serve a new anonymous battle",
)
def new_battle(request, payload: BattleIn, response: HttpResponse):
    _csrf(request)
    if payload.k not in (2, 3, 4):
        return Status(400, {"detail": "expected 2, 3 or 4", "field": "k"})
    voter = current_voter(request, create=True)
    if not (
        allow(f"battle:s:{voter.pk}", settings.ARENA_BATTLE_RATE_SESSION)
        and allow(f"battle:ip:{ip_hash(request)}", settings.ARENA_BATTLE_RATE_IP)
    ):
        return Status(429, {"detail": "too many battles; wait a minute"})
    prompt_set = _arena_set(payload.prompt_set)
    if prompt_set is None:
        return Status(
            404,
            {"detail": f"no public arena prompt set {payload.prompt_set!r}", "field": "prompt_set"},
        )
    try:
        policy = settings.ARENA_MATCHMAKING_POLICY
        if payload.prompt_text is not None:
            match = start_live_battle(
                voter, prompt_set, payload.prompt_text, k=payload.k, policy=policy
            )
        else:
            match = start_battle(voter, prompt_set, k=payload.k, policy=policy)
    except BattleError as exc:
        return _refuse(exc)
    remember(response, voter)
    return Status(201, battle_view(match))


@api.post(
    "/battles/{battle_id}/vote",
    response={
        200: VoteOut,
        400: Problem,
        403: Problem,
        404: Problem,
        409: Problem,
        410: Problem,
        429: Problem,
    },
    summary="Vote on a battle you were served; reveals the contestants",
)
def vote(request, battle_id: uuid.UUID, payload: VoteIn):
    """Under ASGI, well-formed anonymous votes are answered by ``arena.vote_endpoint``
    before they reach Django; this view answers the rest, with the same ``cast_vote``."""
    _csrf(request)
    voter = current_voter(request)
    if voter is not None and not vote_allowed(voter.label, ip_hash(request)):
        return Status(429, {"detail": "too many votes; wait a minute"})
    try:
        revealed = cast_vote(
            voter.label if voter else None, battle_id, payload.dict(exclude_unset=True)
        )
    except BattleError as exc:
        return _refuse(exc)
    return Status(200, {"recorded": True, "battle": str(battle_id), "reveal": revealed})


def _arena_set(slug: str | None) -> PromptSet | None:
    sets = PromptSet.objects.filter(is_public_arena=True)
    return sets.filter(slug=slug).first() if slug else sets.order_by("slug").first()


class PairMatrix(Schema):
    models: list[str]
    battles: list[list[float]]
    win_fraction: list[list[float | None]]


@api.get(
    "/leaderboard/pairs",
    response=PairMatrix,
    summary="Battle counts and win fractions between every two models of a scope",
)
def leaderboard_pairs(request, set: str, by: str = "humans", category: str = "", style: str = "0"):
    return pair_matrix(_scope(set, by, category, style))


class HistoryPoint(Schema):
    at: str
    n_votes: int
    ratings: dict[str, float]


@api.get(
    "/leaderboard/history",
    response=list[HistoryPoint],
    summary="Ratings of a scope over time, from its snapshots",
)
def leaderboard_history(
    request, set: str, by: str = "humans", category: str = "", style: str = "0", limit: int = 200
):
    scope = _scope(set, by, category, style)
    if not 1 <= limit <= 2000:
        raise HttpError(400, "limit: expected 1..2000")
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


api.add_router("/runs", "judges.api.router")
