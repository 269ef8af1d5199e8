"""Run progress pushed to open run pages over the Channels group ``run.<id>``."""

from __future__ import annotations

from typing import Literal, TypedDict

from arena.events import push


class RunProgress(TypedDict):
    type: Literal["run.progress"]
    run_id: int
    status: str
    planned_calls: int
    calls_made: int
    calls_failed: int
    calls_cached: int
    cost: float
    error: str


def run_group(run_id: int) -> str:
    return f"run.{int(run_id)}"


def progress_message(run) -> RunProgress:
    return {
        "type": "run.progress",
        "run_id": run.id,
        "status": run.status,
        "planned_calls": run.planned_calls,
        "calls_made": run.calls_made,
        "calls_failed": run.calls_failed,
        "calls_cached": run.calls_cached,
        "cost": float(run.cost),
        "error": run.error,
    }


def broadcast_progress(run) -> None:
    """Send the run's counters (as stored in ``run``) to every page watching it (best-effort)."""
    push(run_group(run.id), progress_message(run))
