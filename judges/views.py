"""Staff-only judge audit pages and their CSV downloads.

Every endpoint answers the same way to outsiders: an anonymous visitor is redirected to
the admin login, a logged-in user who is not staff gets 403. Each view resolves its
filters (prompt set, category), asks :mod:`judges.audit_service` for one report and
renders it; every chart on a page has a CSV endpoint returning the chart's rows.
"""

from __future__ import annotations

import csv
import io
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from judges import audit_data, audit_service
from judges.audit.groups import flatten
from judges.models import Judge

PAGES = {
    "overview": audit_service.overview_report,
    "agreement": audit_service.agreement_report,
    "integrity": audit_service.integrity_report,
    "perturbations": audit_service.perturbation_report,
}


def staff_only(view):
    """Anonymous: redirect to the admin login. Authenticated but not staff: 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("The judge audit is for staff only.")
        return view(request, *args, **kwargs)

    return wrapper


def _filters(request, who: str = "judges", sets=None) -> dict:
    """The prompt set and category from the query string.

    The set list holds every set with pairwise verdicts (so switching tabs keeps the
    set; a page without data for it shows its empty state); the default is the first
    set with verdicts of ``who`` (judges, or humans for the vote-integrity panel).
    """
    if sets is None:
        sets = audit_data.prompt_sets_with("any")
        preferred = audit_data.prompt_sets_with(who)
    else:
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
        "categories": audit_data.categories(slug) if slug else [],
        "query": urlencode({"set": slug, "category": category}),
    }


def _with_csv_links(charts: list[dict], url: str, query: str) -> list[dict]:
    return [{**c, "csv": f"{url.replace('__chart__', c['key'])}?{query}"} for c in charts]


def _page(request, page: str, who: str = "judges"):
    filters = _filters(request, who)
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
    return _page(request, "overview")


@staff_only
def audit_agreement(request):
    return _page(request, "agreement")


@staff_only
def audit_integrity(request):
    return _page(request, "integrity", who="humans")


@staff_only
def audit_perturbations(request):
    return _page(request, "perturbations")


@staff_only
def audit_judge(request, judge_id: int):
    judge = get_object_or_404(Judge, pk=judge_id)
    sets = audit_data.prompt_sets_with(judge=judge.id)
    filters = _filters(request, sets=sets)
    report = None
    if filters["prompt_set"]:
        report = audit_service.judge_report(judge.id, filters["prompt_set"], filters["category"])
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
    report = audit_service.judge_report(judge.id, filters["prompt_set"], filters["category"])
    rows = _chart_rows(report, chart)
    return _csv_response(rows, f"audit-judge-{judge.id}-{chart}-{filters['prompt_set']}")
