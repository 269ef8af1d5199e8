"""The JSON API (django-ninja; OpenAPI at /api/docs)."""

from django.http import HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError

from arena.boards import BoardScope, ScopeError
from arena.models import Judgment, PromptSet
from arena.services import latest_snapshot
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
    categories = sorted(
        set(ps.matches.exclude(category="").values_list("category", flat=True).distinct())
    )
    return {"slug": ps.slug, "name": ps.name, "categories": categories, "boards": boards}
