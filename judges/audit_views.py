"""Staff-only judge audit pages and their CSV downloads.

Every endpoint answers the same way to outsiders: an anonymous visitor is redirected to
the admin login, a logged-in user who is not staff gets 403. Each view resolves its
filters (prompt set, category), asks :mod:`judges.audit_reports` for one report and
renders it; every chart on a page has a CSV endpoint returning the chart's rows.
"""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from arena.errors import Refusal
from arena.models import Contestant, EvaluationRun, Judge, PromptSet
from judges import access, audit_reports
from judges.audit_metrics.groups import flatten
from judges.audit_reports import queries
from judges.audit_reports.jury import jury_report
from judges.perturbations import PERTURBATIONS
from judges.runs import launch_perturbation_audit, progress
from judges.runs.create import PAIRWISE_MODES

PAGES = {
    "overview": audit_reports.overview_report,
    "agreement": audit_reports.agreement_report,
    "integrity": audit_reports.integrity_report,
    "perturbations": audit_reports.perturbation_report,
}


staff_only = access.staff_only("The judge audit is for staff only.")


def _filters(request, who: str = "judges", sets=None, preferred=None) -> dict:
    """The prompt set and category from the query string.

    The set list holds every set with pairwise verdicts (so switching tabs keeps the
    set; a page without data for it shows its empty state); the default is the first
    set with verdicts of ``who`` (judges, or humans for the vote-integrity panel).
    """
    if sets is None:
        sets = queries.prompt_sets_with("any")
        preferred = queries.prompt_sets_with(who)
    elif preferred is None:
        preferred = sets
    candidates = preferred or sets
    slug = request.GET.get("set") or (candidates[0].slug if candidates else "")
    if slug and slug not in {ps.slug for ps in sets}:
        raise Http404(f"no audited prompt set {slug!r}")
    category = request.GET.get("category", "")
    return {
        "sets": sets,
        "prompt_set": slug,
        "category": category,
        "categories": queries.categories(slug) if slug else [],
        "query": urlencode({"set": slug, "category": category}),
    }


def _with_csv_links(charts: list[dict], url: str, query: str) -> list[dict]:
    return [{**c, "csv": f"{url.replace('__chart__', c['key'])}?{query}"} for c in charts]


def _page(request, page: str, who: str = "judges", extra=None, sets=None, preferred=None):
    filters = _filters(request, who, sets, preferred)
    report = (
        PAGES[page](filters["prompt_set"], filters["category"]) if filters["prompt_set"] else {}
    )
    csv_url = reverse("judges:audit_csv", args=[page, "__chart__"])
    charts = _with_csv_links(report.get("charts", []), csv_url, filters["query"])
    table = report.get("table")
    if isinstance(table, dict) and "key" in table:
        table = _with_csv_links([table], csv_url, filters["query"])[0]
    context = {
        "nav": "audit",
        "tab": page,
        **filters,
        "report": report,
        "metrics": _shown(report) if report.get("judges") else [],
        "table": table,
        "charts": charts,
        "judges": [_columns(r, _shown(report)) for r in report.get("judges", [])],
        **(extra(filters) if extra else {}),
    }
    return render(request, f"judges/audit_{page}.html", context)


def _shown(report: dict) -> list[dict]:
    """Metrics at least one judge has a value for (others, e.g. self-preference without
    own answers, would be an empty column)."""
    return [m for m in report["metrics"] if any(r["cells"][m["key"]] for r in report["judges"])]


def _columns(row: dict, metrics: list[dict]) -> dict:
    """A judge's metric cells in table order (templates cannot index a dict by variable)."""
    return {**row, "columns": [{**m, "cell": row["cells"][m["key"]]} for m in metrics]}


@staff_only
def audit_overview(request):
    return _page(request, "overview", extra=_jury_runs)


def _jury_runs(filters: dict) -> dict:
    """The set's latest jury runs, each a link to its jurors side by side."""
    runs = EvaluationRun.objects.filter(prompt_set__slug=filters["prompt_set"]).exclude(jury={})
    return {"jury_runs": list(runs.order_by("-created_at")[:20])}


@staff_only
def audit_agreement(request):
    return _page(request, "agreement")


@staff_only
def audit_integrity(request):
    return _page(request, "integrity", who="humans")


@staff_only
def audit_perturbations(request):
    # Every prompt set: an audit can be launched on a gold set nobody has judged yet.
    return _page(
        request,
        "perturbations",
        extra=_launch_context,
        sets=list(PromptSet.objects.order_by("slug")),
        preferred=queries.prompt_sets_with("judges"),
    )


def _launch_context(filters: dict) -> dict:
    """What the launch form offers: runnable judges, contestants that can answer, sets."""
    slug = filters["prompt_set"]
    answering = Contestant.objects.filter(
        Q(outputs__prompt__prompt_set__slug=slug) | ~Q(base_url="")
    ).distinct()
    audit_runs = (
        EvaluationRun.objects.filter(Q(perturbation__gt="") | Q(perturbation_runs__isnull=False))
        .select_related("judge", "prompt_set")
        .distinct()
        .order_by("-created_at")[:20]
    )
    return {
        "launch": {
            "judges": Judge.objects.filter(is_active=True, mode__in=PAIRWISE_MODES)
            .exclude(base_url="")
            .order_by("name", "-created_at"),
            "contestants": answering.order_by("name"),
            "prompt_sets": PromptSet.objects.order_by("slug"),
            "perturbations": PERTURBATIONS,
            "runs": [(run, progress(run)) for run in audit_runs],
        }
    }


@staff_only
@require_POST
def audit_perturbations_launch(request):
    """Start a baseline run and one perturbation run per ticked perturbation."""
    form = request.POST
    slug = form.get("prompt_set", "")
    back = f"{reverse('judges:audit_perturbations')}?{urlencode({'set': slug})}"
    try:
        started = launch_perturbation_audit(
            prompt_set=slug,
            judge=form.get("judge", ""),
            contestants=form.getlist("contestants"),
            perturbations=form.getlist("perturbations"),
            repeats=_int_field(form, "repeats", 3),
            max_prompts=_int_field(form, "max_prompts", 20),
        )
    except Refusal as exc:
        messages.error(request, f"Not started: {exc.field}: {exc.message}")
        return redirect(back)
    messages.success(
        request,
        f"Started the baseline run {started[0].pk} and {len(started) - 1} perturbation run(s); "
        "flip rates appear here when they are done.",
    )
    return redirect(back)


def _int_field(form, name: str, default: int) -> int:
    raw = form.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise Refusal(f"expected a whole number, got {raw!r}", field=name) from None


@staff_only
def audit_judge(request, judge_id: int):
    judge = get_object_or_404(Judge, pk=judge_id)
    sets = queries.prompt_sets_with(judge=judge.id)
    filters = _filters(request, sets=sets)
    report = None
    if filters["prompt_set"]:
        report = audit_reports.judge_report(judge.id, filters["prompt_set"], filters["category"])
    csv_url = reverse("judges:audit_judge_csv", args=[judge.id, "__chart__"])
    charts = _with_csv_links((report or {}).get("charts", []), csv_url, filters["query"])
    if report:
        report = _columns(report, report["metrics"])
    return render(
        request,
        "judges/audit_judge.html",
        {
            "nav": "audit",
            "tab": "judge",
            "judge": judge,
            **filters,
            "report": report,
            "charts": charts,
        },
    )


def _csv_response(rows: list[dict], filename: str) -> HttpResponse:
    flat = [flatten(r) for r in rows]
    fields: dict[str, None] = {}
    for r in flat:
        fields.update(dict.fromkeys(r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def _chart_rows(report: dict | None, chart: str) -> list[dict]:
    if not report:
        raise Http404("nothing to audit here")
    candidates = [*report.get("charts", [])]
    if isinstance(report.get("table"), dict):
        candidates.append(report["table"])
    for c in candidates:
        if c.get("key") == chart:
            return c["rows"]
    raise Http404(f"no chart {chart!r} on this page")


@staff_only
def audit_csv(request, page: str, chart: str):
    if page not in PAGES:
        raise Http404(f"no audit page {page!r}")
    filters = _filters(request, "humans" if page == "integrity" else "judges")
    if not filters["prompt_set"]:
        raise Http404("no prompt set to audit")
    report = PAGES[page](filters["prompt_set"], filters["category"])
    rows = _chart_rows(report, chart)
    return _csv_response(rows, f"audit-{page}-{chart}-{filters['prompt_set']}")


@staff_only
def audit_judge_csv(request, judge_id: int, chart: str):
    judge = get_object_or_404(Judge, pk=judge_id)
    filters = _filters(request)
    if not filters["prompt_set"]:
        raise Http404("no prompt set to audit")
    report = audit_reports.judge_report(judge.id, filters["prompt_set"], filters["category"])
    rows = _chart_rows(report, chart)
    return _csv_response(rows, f"audit-judge-{judge.id}-{chart}-{filters['prompt_set']}")


@staff_only
def audit_jury(request, run_id: int):
    """A jury run's jurors side by side: panel agreement, bias figures, cost."""
    report = jury_report(run_id)
    if report is None:
        raise Http404(f"run {run_id} is not a jury run")
    slug = report["run"]["prompt_set"]
    return render(
        request,
        "judges/audit_jury.html",
        {
            "nav": "audit",
            "query": urlencode({"set": slug}),
            "report": report,
        },
    )
