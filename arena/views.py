"""Server-rendered pages. Each view resolves its input, calls one service, renders."""

import json
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import ensure_csrf_cookie

from arena.api import board_choices
from arena.battles import side_by_side_choices
from arena.boards import BoardScope, has_annotation_labels
from arena.errors import Refusal
from arena.live_answers import live_answer_events, open_live_stream
from arena.model_pages import model_profile, public_model
from arena.models import Contestant, PromptSet
from arena.permalinks import voted_battle
from arena.services import BOARD_METHODS, board_json, latest_snapshot
from arena.voters import caller, current_voter, ip_hash, voter_label


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
    method = request.GET.get("method") or "bt"
    try:
        scope = BoardScope.validated(
            slug,
            request.GET.get("by") or default_by,
            request.GET.get("category", ""),
            request.GET.get("style", "0"),
            request.GET.get("crit", ""),
        )
        if method not in BOARD_METHODS:
            raise Refusal(f"expected one of {', '.join(BOARD_METHODS)}", field="method")
        snapshot = latest_snapshot(scope)  # None while a board never fitted is first fitted
        board = board_json(scope, snapshot, method)
    except Refusal as exc:
        return render(
            request,
            "arena/leaderboard.html",
            {"nav": "leaderboard", "error": str(exc), "sets": sets},
            status=exc.status,
        )
    params = {
        "set": scope.prompt_set,
        "by": scope.by,
        "category": scope.category,
        "style": int(scope.style_control),
    }
    if scope.criterion:
        params["crit"] = scope.criterion
    if method != "bt":
        params["method"] = method
    # asked for (a link, the default of a set without boards) where it can only be empty
    no_human_votes = scope.by == "humans" and all(b["by"] != "humans" for b in choices["boards"])
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
            "board": board,
            "method": method,
            "query": urlencode(params),
            "no_human_votes": no_human_votes,
            "annotation_labels": no_human_votes and has_annotation_labels(prompt_set.slug),
        },
    )


@ensure_csrf_cookie
def battle(request):
    sets = PromptSet.objects.filter(is_public_arena=True).order_by("slug")
    return render(
        request,
        "arena/battle.html",
        {"nav": "battle", "sets": sets, "aspects": settings.ARENA_BALLOT_ASPECTS},
    )


async def battle_stream(request, battle_id):
    """Server-sent events: the live answers of a typed-prompt battle, slot by slot.

    Events: {"slot", "delta"} pieces, then {"slot", "done"} or {"slot", "error"}; answers
    already stored are sent whole at once. Only the voter the battle was served to may
    read it; nothing names a model. Each answer is generated once, however many readers
    (``arena.live_answers.live_answer_events``); streams are rate limited.
    """
    try:
        slots = await sync_to_async(open_live_stream)(
            await sync_to_async(current_voter)(request),
            voter_label(request),
            ip_hash(request),
            battle_id,
        )
    except Refusal as exc:
        refused = JsonResponse({"detail": exc.message}, status=exc.status)
        if getattr(exc, "retry_after", None):
            refused["Retry-After"] = str(exc.retry_after)
        return refused

    async def events():
        async for event in live_answer_events(battle_id, slots):
            yield _sse(event)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def model_page(request, name):
    """One model's page (``arena.model_pages``): a 404 for any name that has none."""
    try:
        model = public_model(name)
    except Refusal as exc:
        raise Http404(exc.message) from None
    profile = model_profile(model)
    return render(
        request,
        "arena/model.html",
        {"nav": "leaderboard", "profile": profile, "info": profile["model"]},
    )


@ensure_csrf_cookie
def side_by_side(request):
    """Two models picked by name, one prompt, both answers named (votes counted apart)."""
    return render(
        request,
        "arena/side_by_side.html",
        {"nav": "side_by_side", **side_by_side_choices(caller(request))},
    )


@cache_control(private=True, no_cache=True)
def battle_permalink(request, battle_id):
    """A voted battle's page to share (``arena.permalinks``); a 404 until it is voted on.
    Private: what it shows depends on who looks (a typed prompt only to its author)."""
    viewer = current_voter(request)
    try:
        page = voted_battle(battle_id, viewer.pk if viewer else None)
    except Refusal as exc:
        raise Http404(exc.message) from None
    return render(request, "arena/battle_permalink.html", {"nav": "battle", "battle": page})
