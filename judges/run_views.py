"""Evaluation run pages: the list, a live run page, and the staff-only start/cancel/resume buttons.

Reading is public, like the run leaderboards themselves (``/api/leaderboard?by=run:<id>``).
The buttons post here: an anonymous visitor is sent to the admin login, a logged-in user
who is not staff gets 403. Each view resolves the run, calls one use case, renders or
redirects.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from arena.errors import Refusal
from arena.models import EvaluationRun, Prompt
from judges import access, runs
from judges.api import power_out, run_out
from judges.audit_reports.calibration import calibration_report
from judges.judging import run_scope

PENDING = EvaluationRun.Status.PENDING
ACTIONS = {"start": runs.start_run, "cancel": runs.cancel_run, "resume": runs.resume_run}


staff_only = access.staff_only("Starting and stopping runs is for staff only.")


def run_list(request):
    latest = (
        EvaluationRun.objects.select_related("judge", "prompt_set", "baseline")
        .filter(cron="")
        .order_by("-created_at")[:100]
    )
    templates = EvaluationRun.objects.select_related("judge", "prompt_set").exclude(cron="")
    return render(
        request,
        "judges/run_list.html",
        {
            "nav": "runs",
            # A pending run shows its power before anyone starts it (read only, per pending run).
            "runs": [
                (run, runs.progress(run), power_out(run) if run.status == PENDING else None)
                for run in latest
            ],
            "templates": templates,
            "can_act": request.user.is_staff,
        },
    )


def run_detail(request, run_id: int):
    run = get_object_or_404(
        EvaluationRun.objects.select_related("judge", "prompt_set", "baseline"), pk=run_id
    )
    scope = run_scope(run)
    data = run_out(run)
    sorted_prompts = (run.design_report or {}).get("prompts") or []  # a PRP run's rankings
    return render(
        request,
        "judges/run_detail.html",
        {
            "nav": "runs",
            "run": run,
            "data": data,
            "board": data["leaderboard"],
            "scope_key": scope.key,
            "board_query": urlencode({"set": scope.prompt_set, "by": scope.by}),
            "can_act": request.user.is_staff,
            # judge vs humans on the run's labelled matches: staff only, like the audit
            "calibration": calibration_report(run.id) if request.user.is_staff else None,
            "prp_rows": _prp_rows(sorted_prompts[:PRP_ROWS], run.design_report.get("top")),
            "prp_more": len(sorted_prompts) > PRP_ROWS,
        },
    )


PRP_ROWS = 100  # rankings shown on a PRP run's page (the API has them all)


def _prp_rows(rows: list[dict], top: int | None) -> list[dict]:
    """A PRP run's per-prompt rankings with their prompts' texts (one query)."""
    texts = Prompt.objects.in_bulk([row["prompt"] for row in rows])
    return [
        {
            "prompt": texts[row["prompt"]].text if row["prompt"] in texts else row["prompt"],
            "ranked": row["ranking"][:top],
            "rest": row["ranking"][top:],
            "calls": row["calls"],
        }
        for row in rows
    ]


@require_POST
@staff_only
def run_action(request, run_id: int, action: str):
    if action not in ACTIONS:
        raise Http404(f"no run action {action!r}")
    run = get_object_or_404(EvaluationRun, pk=run_id)
    try:
        ACTIONS[action](run)
    except Refusal as exc:
        messages.error(request, f"Could not {action} run {run.pk}: {exc.message}")
    else:
        messages.success(request, f"Run {run.pk}: {action} requested.")
    return redirect("judges:run", run_id=run.pk)
