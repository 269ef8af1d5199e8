"""The arena's JSON endpoints (a django-ninja Router; config/api.py mounts it at /api/).

Leaderboards, prompt sets, battles and votes. Each endpoint resolves its input, calls one
use case and returns its result; a :class:`arena.errors.Refusal` raised by the use case is
answered by the API's one exception handler as ``{"detail", "field"}`` with its status.
"""

import csv
import io
import uuid

from django.conf import settings
from django.http import HttpResponse
from ninja import Router, Schema, Status
from ninja.utils import check_csrf
from pydantic import StrictInt, StrictStr

from arena.battles import battle_view, start_battle, start_live_battle
from arena.boards import BoardScope, pair_matrix
from arena.errors import BAD_REQUEST, FORBIDDEN, NOT_FOUND, Refusal
from arena.models import Judge, Judgment, LeaderboardSnapshot, PromptSet
from arena.ratelimit import TOO_MANY_REQUESTS, allow
from arena.schemas import Board, Problem
from arena.services import latest_snapshot
from arena.voters import current_voter, ip_hash, remember, voter_label
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


@router.get("/leaderboard", response=Board, summary="Latest leaderboard of a scope")
def leaderboard(request, set: str, by: str = "humans", category: str = "", style: str = "0"):
    return _board(latest_snapshot(BoardScope.validated(set, by, category, style)))


@router.get("/leaderboard.csv", summary="Latest leaderboard of a scope as CSV")
def leaderboard_csv(request, set: str, by: str = "humans", category: str = "", style: str = "0"):
    snapshot = latest_snapshot(BoardScope.validated(set, by, category, style))
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


@router.get(
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


def _csrf(request):
    """The API's posts come from the site's own pages (ninja leaves CSRF to the endpoint)."""
    if check_csrf(request) is not None:
        raise Refusal(
            "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header",
            status=FORBIDDEN,
        )


@router.post(
    "/battles",
    response={201: BattleOut, 400: Problem, 404: Problem, 429: Problem, 503: Problem},
    summary="Serve a new anonymous battle",
)
def new_battle(request, payload: BattleIn, response: HttpResponse):
    _csrf(request)
    if payload.k not in (2, 3, 4):
        raise Refusal("expected 2, 3 or 4", field="k", status=BAD_REQUEST)
    voter = current_voter(request, create=True)
    if not (
        allow(f"battle:s:{voter.pk}", settings.ARENA_BATTLE_RATE_SESSION)
        and allow(f"battle:ip:{ip_hash(request)}", settings.ARENA_BATTLE_RATE_IP)
    ):
        raise Refusal("too many battles; wait a minute", status=TOO_MANY_REQUESTS)
    prompt_set = _arena_set(payload.prompt_set)
    if prompt_set is None:
        raise Refusal(
            f"no public arena prompt set {payload.prompt_set!r}",
            field="prompt_set",
            status=NOT_FOUND,
        )
    policy = settings.ARENA_MATCHMAKING_POLICY
    if payload.prompt_text is not None:
        match = start_live_battle(
            voter, prompt_set, payload.prompt_text, k=payload.k, policy=policy
        )
    else:
        match = start_battle(voter, prompt_set, k=payload.k, policy=policy)
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
        429: Problem,
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
    revealed = cast_vote(
        voter_label(request), ip_hash(request), battle_id, payload.dict(exclude_unset=True)
    )
    return {"recorded": True, "battle": str(battle_id), "reveal": revealed}


def _arena_set(slug: str | None) -> PromptSet | None:
    sets = PromptSet.objects.filter(is_public_arena=True)
    return sets.filter(slug=slug).first() if slug else sets.order_by("slug").first()


class PairMatrix(Schema):
    models: list[str]
    battles: list[list[float]]
    win_fraction: list[list[float | None]]


@router.get(
    "/leaderboard/pairs",
    response=PairMatrix,
    summary="Battle counts and win fractions between every two models of a scope",
)
def leaderboard_pairs(request, set: str, by: str = "humans", category: str = "", style: str = "0"):
    return pair_matrix(BoardScope.validated(set, by, category, style))


class HistoryPoint(Schema):
    at: str
    n_votes: int
    ratings: dict[str, float]


@router.get(
    "/leaderboard/history",
    response=list[HistoryPoint],
    summary="Ratings of a scope over time, from its snapshots",
)
def leaderboard_history(
    request, set: str, by: str = "humans", category: str = "", style: str = "0", limit: int = 200
):
    scope = BoardScope.validated(set, by, category, style)
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
