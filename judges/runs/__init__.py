"""Evaluation runs: the use cases (create, start, orchestrate, judge, fit, cancel, resume).

Tasks (:mod:`judges.tasks`), the API, the admin and the management commands call these;
they are the only code that writes runs, matches and LLM judgments. The flow, module by
module:

- :mod:`~judges.runs.create`: resolve names, check the fields, store a pending run;
  start it (freeze contestants and prompts, plan, queue its first step); perturbation
  audits (a baseline and its perturbed copies).
- :mod:`~judges.runs.orchestrate`: :func:`run_step`, which replays the design, makes
  the batch's answers and matches, hands out its judge calls as a chord, and fits the
  run's board when the plan is done (:func:`finish_run`).
- :mod:`~judges.runs.replay`: the design rebuilt from the stored verdicts (the run's
  only memory is the database).
- :mod:`~judges.runs.lifecycle`: fail, cancel, resume, the watchdog, the perturbation
  runs' wait for their baseline, progress.
- :mod:`~judges.runs.dispatch`: what a run queues (by task name, on commit).

One judge call is :mod:`judges.judging`; refusals are :class:`arena.errors.Refusal`.
"""

from judges.runs.create import (
    DESIGN_NAMES,
    FIXED_DESIGNS,
    build_design,
    create_run,
    launch_perturbation_audit,
    placement_setup,
    plan_power,
    start_run,
)
from judges.runs.dispatch import WATCHDOG, ensure_watchdog
from judges.runs.lifecycle import (
    cancel_run,
    fail_run,
    progress,
    resume_interrupted_runs,
    resume_run,
    wait_for,
    watch_runs,
)
from judges.runs.orchestrate import ensure_matches, finish_run, run_step
from judges.runs.replay import ReplayError, RunState, StoredVerdicts, SwappedPlan, replay

__all__ = [
    "DESIGN_NAMES",
    "FIXED_DESIGNS",
    "WATCHDOG",
    "ReplayError",
    "RunState",
    "StoredVerdicts",
    "SwappedPlan",
    "build_design",
    "cancel_run",
    "create_run",
    "ensure_matches",
    "ensure_watchdog",
    "fail_run",
    "finish_run",
    "launch_perturbation_audit",
    "placement_setup",
    "plan_power",
    "progress",
    "replay",
    "resume_interrupted_runs",
    "resume_run",
    "run_step",
    "start_run",
    "wait_for",
    "watch_runs",
]
