"""Use cases of the arena: the only place that writes (actions), and what they announce.

Views, API endpoints, consumers and tasks call these; they never write to the ORM
themselves.
"""

from __future__ import annotations

import time

from django.conf import settings

from arena.boards import BoardScope, pair_cells
from arena.models import LeaderboardSnapshot, PromptSet


def latest_snapshot(
    scope: BoardScope, refresh_if_missing: bool = True
) -> LeaderboardSnapshot | None:
    snapshot = (
        LeaderboardSnapshot.objects.filter(scope=scope.key).order_by("-created_at", "-id").first()
    )
    if snapshot is None and refresh_if_missing:
        snapshot = refresh_leaderboard(scope)
    return snapshot


def refresh_leaderboard(
    scope: BoardScope, bootstrap: int | None = None, seed: int = 0
) -> LeaderboardSnapshot:
    """Fit the scope's leaderboard from aggregated counts and store it as a new snapshot."""
    from arena.fitting import fit_pair_cells

    started = time.perf_counter()
    cells = pair_cells(scope)
    rounds = settings.ARENA_BOOTSTRAP_ROUNDS if bootstrap is None else bootstrap
    board = fit_pair_cells(cells, bootstrap=rounds, seed=seed)
    snapshot = LeaderboardSnapshot.objects.create(
        scope=scope.key,
        prompt_set=PromptSet.objects.filter(slug=scope.prompt_set).first(),
        method=board["method"],
        rows=board["rows"],
        n_votes=cells.n_votes,
        n_models=len(cells.models),
        graph=board["graph"],
        params={"bootstrap": rounds, "seed": seed, "ties": "half", "scale": "400/ln10, mean 1000"},
        fit_seconds=time.perf_counter() - started,
    )
    return snapshot


def default_scopes(prompt_set: PromptSet) -> list[BoardScope]:
    """The boards worth keeping fresh for a prompt set: humans, LLM judges, everything."""
    from arena.models import Judgment

    has = Judgment.objects.filter(match__prompt_set=prompt_set)
    scopes = []
    if has.filter(voter__isnull=False).exists():
        scopes.append(BoardScope(prompt_set.slug, "humans"))
    if has.filter(judge__isnull=False).exists():
        scopes.append(BoardScope(prompt_set.slug, "judges"))
    return scopes


def refresh_prompt_set(
    prompt_set: PromptSet, bootstrap: int | None = None
) -> list[LeaderboardSnapshot]:
    return [refresh_leaderboard(scope, bootstrap=bootstrap) for scope in default_scopes(prompt_set)]
