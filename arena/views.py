"""Server-rendered pages. Each view resolves its input, calls one service, renders."""

from django.db.models import Count
from django.http import Http404
from django.shortcuts import render

from arena.api import board_choices
from arena.boards import BoardScope, ScopeError
from arena.models import PromptSet
from arena.services import latest_snapshot


def leaderboard(request):
    sets = list(
        PromptSet.objects.annotate(n_matches=Count("matches"))
        .filter(n_matches__gt=0)
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
        },
    )
