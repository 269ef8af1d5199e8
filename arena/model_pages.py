"""One model's public page: who it is, where it stands, how it fared against each rival.

Read only, from what the boards already hold: the latest snapshots and the snapshot
history of the boards the model is on (the human board of each prompt set, its category
boards, and the board of each LLM judge that compared it), and the public human running
counts (``PairOutcomeCount`` source ``"human"``: never the votes counted as flagged,
never side-by-side votes) for the head-to-head table. A fixed number of queries whatever
the number of models or votes: one per board for the history, the rest in bulk.

:func:`public_model` resolves a name to a model that has a page (404 otherwise);
:func:`model_profile` builds the page's data, the same dict the JSON API answers.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Max, Q, Sum

from arena.boards import HUMAN_SOURCE, BoardScope
from arena.errors import NOT_FOUND, Refusal
from arena.models import Contestant, Judge, LeaderboardSnapshot, MatchSlot, PairOutcomeCount
from arena.services import request_refit
from arena.vocabulary import BOTH_BAD, TIE, A, B

HISTORY_POINTS = 200  # snapshots per board on the rating-over-time chart (the newest)
PROFILE_FIELDS = ("description", "organization", "license", "link", "family", "provider")


def public_model(name: str) -> Contestant:
    """The active model called ``name`` that was compared at least once; 404 otherwise
    (anonymous answer sources, inactive contestants and unknown names alike)."""
    model = (
        Contestant.objects.filter(name=name, kind=Contestant.Kind.MODEL, is_active=True)
        .only("id", "name", *PROFILE_FIELDS)
        .first()
    )
    if model is None or not MatchSlot.objects.filter(contestant_id=model.pk).exists():
        raise Refusal(f"no model {name!r} on the leaderboards", field="name", status=NOT_FOUND)
    return model


def model_profile(model: Contestant) -> dict:
    """The model's page as JSON-ready data (see the module docstring for the sources)."""
    cells = _board_cells(model.pk)
    sets = {set_id: (slug, name) for set_id, slug, name, _, _ in cells}
    judge_names = dict(
        Judge.objects.filter(
            pk__in={int(source[6:]) for *_, source, _ in cells if source.startswith("judge:")}
        ).values_list("pk", "name")
    )
    overall, categories = [], []
    for _, slug, _, source, category in sorted(cells):
        if source == HUMAN_SOURCE:
            overall.append(BoardScope(slug, "humans"))
            if category:
                categories.append(BoardScope(slug, "humans", category))
        elif int(source[6:]) in judge_names:
            overall.append(BoardScope(slug, source))
    overall = list(dict.fromkeys(overall))  # one per board, in a stable order
    latest = _latest_rows([*overall, *categories])
    missing = [scope.key for scope in categories if scope.key not in latest]
    if missing:
        request_refit(missing)  # a category board never fitted: fitted in the background

    def label(scope: BoardScope) -> str:
        if scope.judge_id is not None:
            return f"Judge: {judge_names[scope.judge_id]}"
        return "Human votes"

    set_of = {slug: name for slug, name in sets.values()}
    boards = []
    for scope in overall:
        snapshot = latest.get(scope.key)
        row = _row_of(snapshot, model.name)
        if row is None:
            continue  # counted, but not on the board's latest fit yet
        boards.append(
            {
                "prompt_set": scope.prompt_set,
                "prompt_set_name": set_of[scope.prompt_set],
                "by": scope.by,
                "label": label(scope),
                "n_models": snapshot["n_models"],
                "fitted_at": snapshot["created_at"].isoformat(),
                "history": [],
                **_rating(row),
            }
        )
    for board, points in zip(boards, _histories(boards, model.name), strict=True):
        board["history"] = points
    return {
        "model": {
            "name": model.name,
            **{field: getattr(model, field) for field in PROFILE_FIELDS},
            "link": _web_link(model.link),
        },
        "boards": boards,
        "categories": [
            {
                "prompt_set": scope.prompt_set,
                "category": scope.category,
                "pending": scope.key not in latest,
                **_rating(_row_of(latest.get(scope.key), model.name)),
            }
            for scope in categories
        ],
        "head_to_head": head_to_head(model, set_of),
    }


def _web_link(url: str) -> str:
    """The model's link if it is a web address (http or https), else "" (never a
    ``javascript:`` or ``data:`` URL in the page, whatever was stored)."""
    return url if url.lower().startswith(("http://", "https://")) else ""


def _board_cells(model_id: int) -> list[tuple[int, str, str, str, str]]:
    """(prompt set id, slug, name, source, category) of every public running-count cell
    group the model is in: the human board (and its categories) and each judge's board."""
    return list(
        PairOutcomeCount.objects.filter(
            Q(contestant_a_id=model_id) | Q(contestant_b_id=model_id),
            Q(source=HUMAN_SOURCE) | Q(source__startswith="judge:"),
            count__gt=0,
            contestant_a__kind=Contestant.Kind.MODEL,
            contestant_b__kind=Contestant.Kind.MODEL,
        )
        .values_list("prompt_set_id", "prompt_set__slug", "prompt_set__name", "source", "category")
        .distinct()
        .order_by()
    )


def _latest_rows(scopes: list[BoardScope]) -> dict[str, dict]:
    """The latest snapshot of each scope that has one, in two queries (the newest id per
    scope, then those snapshots)."""
    keys = [scope.key for scope in scopes]
    if not keys:
        return {}
    newest = (
        LeaderboardSnapshot.objects.filter(scope__in=keys)
        .values("scope")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
        .order_by()
    )
    return {
        snapshot["scope"]: snapshot
        for snapshot in LeaderboardSnapshot.objects.filter(id__in=list(newest)).values(
            "scope", "rows", "n_models", "created_at"
        )
    }


def _row_of(snapshot: dict | None, name: str) -> dict | None:
    if snapshot is None:
        return None
    return next((row for row in snapshot["rows"] if row.get("model") == name), None)


def _rating(row: dict | None) -> dict:
    row = row or {}
    return {
        "rank_ub": row.get("rank_ub"),
        "rating": row.get("rating"),
        "ci_lower": row.get("ci_lower"),
        "ci_upper": row.get("ci_upper"),
        "votes": row.get("votes"),
        "win_rate": row.get("win_rate"),
    }


def _histories(boards: list[dict], name: str) -> list[list[dict]]:
    """The model's rating and CI on each board over time: one query per board (its newest
    ``HISTORY_POINTS`` snapshots, oldest first)."""
    histories = []
    for board in boards:
        key = BoardScope(board["prompt_set"], board["by"]).key
        snapshots = (
            LeaderboardSnapshot.objects.filter(scope=key)
            .order_by("-created_at", "-id")
            .values_list("created_at", "rows")[:HISTORY_POINTS]
        )
        points = []
        for at, rows in reversed(snapshots):
            row = next((r for r in rows if r.get("model") == name), None)
            if row is not None and row.get("rating") is not None:
                points.append(
                    {
                        "at": at.isoformat(),
                        "rating": row["rating"],
                        "ci_lower": row.get("ci_lower"),
                        "ci_upper": row.get("ci_upper"),
                    }
                )
        histories.append(points)
    return histories


def head_to_head(model: Contestant, set_names: dict[str, str]) -> list[dict]:
    """Per prompt set and rival model: the public human votes between the two, as the
    model's wins, losses, ties and "both bad", and its win rate (ties and "both bad" count
    half, as on the boards). One GROUP BY over the running counts, one query for names."""
    rows = (
        PairOutcomeCount.objects.filter(
            Q(contestant_a_id=model.pk) | Q(contestant_b_id=model.pk),
            source=HUMAN_SOURCE,
            count__gt=0,
            contestant_a__kind=Contestant.Kind.MODEL,
            contestant_b__kind=Contestant.Kind.MODEL,
        )
        .values_list("prompt_set__slug", "contestant_a_id", "contestant_b_id", "winner")
        .annotate(n=Sum("count"))
        .order_by()
    )
    tally: dict[tuple[str, int], dict[str, int]] = defaultdict(
        lambda: {"wins": 0, "losses": 0, "ties": 0, "both_bad": 0}
    )
    for slug, a, b, winner, n in rows:
        rival, mine = (b, A) if a == model.pk else (a, B)
        if winner == TIE:
            tally[slug, rival]["ties"] += n
        elif winner == BOTH_BAD:
            tally[slug, rival]["both_bad"] += n
        else:
            tally[slug, rival]["wins" if winner == mine else "losses"] += n
    names, linked = {}, set()
    for pk, name, has_page in Contestant.objects.filter(
        pk__in={rival for _, rival in tally}
    ).values_list("pk", "name", "is_active"):
        names[pk] = name
        if has_page:  # an active model that was compared: public_model() finds it
            linked.add(pk)
    table = []
    for (slug, rival), t in tally.items():
        votes = sum(t.values())
        table.append(
            {
                "prompt_set": slug,
                "prompt_set_name": set_names.get(slug, slug),
                "opponent": names[rival],
                "linked": rival in linked,
                "votes": votes,
                **t,
                "win_rate": round((t["wins"] + (t["ties"] + t["both_bad"]) / 2) / votes, 4),
            }
        )
    table.sort(key=lambda r: (r["prompt_set"], -r["votes"], r["opponent"]))
    return table


CSV_TABLES = {
    "head_to_head": (
        "head_to_head",
        [
            "prompt_set",
            "opponent",
            "votes",
            "wins",
            "losses",
            "ties",
            "both_bad",
            "win_rate",
        ],
    ),
    "boards": (
        "boards",
        ["prompt_set", "by", "label", "rank_ub", "rating", "ci_lower", "ci_upper", "votes"],
    ),
    "categories": (
        "categories",
        ["prompt_set", "category", "rank_ub", "rating", "ci_lower", "ci_upper", "votes"],
    ),
    "history": (None, ["prompt_set", "by", "at", "rating", "ci_lower", "ci_upper"]),
}


def csv_rows(profile: dict, table: str) -> tuple[list[str], list[dict]]:
    """One table of a profile as CSV columns and rows (``history``: one row per point)."""
    if table not in CSV_TABLES:
        raise Refusal(f"expected one of {', '.join(CSV_TABLES)}", field="table", status=400)
    key, columns = CSV_TABLES[table]
    if key is not None:
        return columns, profile[key]
    return columns, [
        {"prompt_set": board["prompt_set"], "by": board["by"], **point}
        for board in profile["boards"]
        for point in board["history"]
    ]
