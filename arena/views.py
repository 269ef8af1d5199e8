"""Server-rendered pages. Each view resolves its input, calls one service, renders."""

from pathlib import Path
from urllib.parse import urlencode

import plotly
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import etag

from arena.api import board_choices
from arena.boards import BoardScope, ScopeError
from arena.models import Contestant, PromptSet
from arena.services import latest_snapshot


def leaderboard(request):
    # Sets with at least one compared model (LLMBar's anonymous answers have no leaderboard).
    sets = list(
        PromptSet.objects.filter(matches__slots__contestant__kind=Contestant.Kind.MODEL)
        .distinct()
        .order_by("-is_public_arena", "slug")
    )
    if not sets:
        return render(request, "arena/leaderboard.html", {"nav": "leaderboard", "empty": True})
    slug = request.GET.get("set") or sets[0].slug
    prompt_set = next((ps for ps in sets if ps.slug == slug), None)
    if prompt_set is None:
        raise Http404(f"no prompt set {slug!r}")
    choices = board_choices(prompt_set)
    default_by = choices["boards"][0]["by"] if choices["boards"] else "humans"
    try:
        scope = BoardScope.validated(
            slug,
            request.GET.get("by") or default_by,
            request.GET.get("category", ""),
            request.GET.get("style", "0"),
        )
    except ScopeError as exc:
        return render(
            request,
            "arena/leaderboard.html",
            {"nav": "leaderboard", "error": str(exc), "sets": sets},
            status=400,
        )
    snapshot = latest_snapshot(scope)
    query = urlencode(
        {
            "set": scope.prompt_set,
            "by": scope.by,
            "category": scope.category,
            "style": int(scope.style_control),
        }
    )
    return render(
        request,
        "arena/leaderboard.html",
        {
            "nav": "leaderboard",
            "sets": sets,
            "prompt_set": prompt_set,
            "choices": choices,
            "scope": scope,
            "snapshot": snapshot,
            "query": query,
        },
    )


@ensure_csrf_cookie
def battle(request):
    sets = PromptSet.objects.filter(is_public_arena=True).order_by("slug")
    return render(request, "arena/battle.html", {"nav": "battle", "sets": sets})


PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@cache_control(public=True, max_age=7 * 24 * 3600)
@etag(lambda request: f"plotly-{plotly.__version__}")
def plotly_js(request):
    """plotly.min.js from the installed plotly wheel: served locally, never from a CDN."""
    return FileResponse(PLOTLY_JS.open("rb"), content_type="text/javascript")
