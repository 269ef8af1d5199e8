"""Start an evaluation run from the command line; with --wait (embedded mode), run a Celery
worker in this process until it is done (process wiring: it lives in config)."""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from arena import services
from arena.boards import BoardScope
from arena.errors import Refusal
from arena.models import EvaluationRun, LeaderboardSnapshot
from config.celery import app
from config.embedded import start_worker
from judges import runs
from judges.judging import run_scope


def parse_param(text: str) -> tuple[str, object]:
    """``key=value``; the value is read as JSON when it parses (numbers, true, lists), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CommandError(f"--param {text!r}: expected key=value")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


class Command(BaseCommand):
    help = (
        "Create and start an evaluation run: contestants x prompt set x judge x design. "
        "Example: evaluate --prompt-set demo --judge judge-sharp --contestants a,b,c "
        "--design anchor --param anchor=a --max-prompts 20 --wait"
    )

    def add_arguments(self, parser):
        parser.add_argument("--prompt-set", required=True)
        parser.add_argument("--judge", required=True, help="Judge name (newest version) or id.")
        parser.add_argument(
            "--contestants", help="Comma-separated names (with --place: the board's models)."
        )
        parser.add_argument(
            "--place",
            metavar="MODEL",
            help="Place MODEL on an existing board of the prompt set (the placement design): "
            "judged against a few of the board's models, chosen for information, until its "
            "interval is narrow; its verdicts then join the board.",
        )
        parser.add_argument(
            "--board",
            help="With --place: whose board (humans, judges, all, judge:<id>, run:<id>; "
            "default the judge's own board of the prompt set).",
        )
        parser.add_argument(
            "--design",
            default=None,
            choices=list(EvaluationRun.Design.values),
            help="Default: all pairs below 32 contestants, else adaptive (fraction 0.5).",
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            help="Design parameter key=value (repeatable), e.g. anchor=gpt-4 or fraction=0.2.",
        )
        parser.add_argument(
            "--jurors",
            help="A jury run: judges (names or ids), comma-separated; --judge is one of "
            "them (its presentation orders are the run's).",
        )
        parser.add_argument(
            "--jury-size", type=int, help="Jurors per comparison (default: all of them)."
        )
        parser.add_argument(
            "--jury-rule",
            default="majority",
            choices=("majority", "mean", "weighted"),
            help="How the jury's verdicts are pooled (weighted: by the audit's records).",
        )
        parser.add_argument(
            "--jury-weights",
            default="humans",
            choices=("humans", "annotators", "gold"),
            help="The weighted rule's records: agreement with the crowd's or the annotators' "
            "majority, or gold accuracy.",
        )
        parser.add_argument("--max-prompts", type=int)
        parser.add_argument("--budget", type=int, dest="budget_calls", help="Most judge calls.")
        parser.add_argument("--repeats", type=int, default=1)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--tag", default="")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Wait until the run finishes, printing progress (embedded mode: runs a worker here).",
        )
        parser.add_argument("--timeout", type=float, default=24 * 3600, help="Seconds to --wait.")
        parser.add_argument(
            "--detect",
            type=float,
            help="Rating difference (points) the run should detect between two models "
            "(default ARENA_RUN_DETECT_RATING); the plan's power is printed before it starts.",
        )
        parser.add_argument(
            "--require-power",
            action="store_true",
            help="Refuse to start a run whose plan cannot detect --detect.",
        )
        parser.add_argument(
            "--plan-only",
            action="store_true",
            help="Print the plan and its power; store and start nothing.",
        )

    def handle(self, *args, **o):
        params = dict(parse_param(p) for p in o["param"])
        contestants = [c.strip() for c in (o["contestants"] or "").split(",") if c.strip()]
        if o["place"]:
            o["design"] = EvaluationRun.Design.PLACEMENT
            try:
                board, frozen = runs.placement_setup(
                    o["prompt_set"], o["judge"], o["place"], o["board"]
                )
            except Refusal as exc:
                raise CommandError(f"--place: {exc}") from None
            contestants = contestants or board
            if o["place"] not in contestants:
                contestants.append(o["place"])
            params = {**frozen, **params}
        elif not contestants:
            raise CommandError("give --contestants, or --place MODEL to place one model")
        elif o["board"]:
            raise CommandError("--board goes with --place")
        worker = None
        if o["wait"] and settings.ARENA_EMBEDDED_WORKER and not o["plan_only"]:
            worker = start_worker(app, hostname="evaluate@arena")
        try:
            with transaction.atomic():
                run = runs.create_run(
                    prompt_set=o["prompt_set"],
                    judge=o["judge"],
                    contestants=contestants,
                    design=o["design"],
                    design_params=params,
                    name=o["name"],
                    max_prompts=o["max_prompts"],
                    budget_calls=o["budget_calls"],
                    repeats=o["repeats"],
                    seed=o["seed"],
                    tag=o["tag"],
                    **_jury_options(o),
                )
                power = runs.plan_power(run, o["detect"])
                self.stdout.write(power.summary())
                if o["plan_only"]:
                    transaction.set_rollback(True)
                elif power.under_powered:
                    if o["require_power"]:
                        raise CommandError(
                            "not started (--require-power): the plan is under-powered"
                        )
                    self.stderr.write(
                        "warning: the run is under-powered (see above); starting it anyway "
                        "(--require-power refuses, --plan-only only plans)"
                    )
                if not o["plan_only"]:
                    run = runs.start_run(run)
        except Refusal as exc:
            if worker is not None:
                worker.stop(in_sighandler=False)
            raise CommandError(str(exc)) from None
        except BaseException:
            if worker is not None:
                worker.stop(in_sighandler=False)
            raise
        if o["plan_only"]:
            return
        self.stdout.write(
            f"run {run.pk} started: {run.planned_calls} judge calls planned ({run.get_design_display()}, "
            f"{len(run.contestant_ids)} contestants x {len(run.prompt_ids)} prompts); page /runs/{run.pk}/"
        )
        try:
            if o["wait"]:
                self._follow(run, o["timeout"])
            elif settings.ARENA_EMBEDDED_WORKER:
                self.stdout.write(
                    "embedded mode: the run is carried out by a running `arena_serve` (its watchdog "
                    "picks it up within a minute), or pass --wait to run it here."
                )
        finally:
            if worker is not None:
                worker.stop(in_sighandler=False)

    def _follow(self, run, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            run.refresh_from_db()
            line = f"{run.status}: {run.calls_made}/{run.planned_calls} calls, {run.calls_failed} failed, cost {run.cost:.4f}"
            if line != last:
                self.stdout.write(line)
                last = line
            if run.status not in (EvaluationRun.Status.PENDING, EvaluationRun.Status.RUNNING):
                break
            if time.monotonic() > deadline:
                raise CommandError(f"run {run.pk} still {run.status} after {timeout:g} s")
            time.sleep(1.0)
        if run.status != EvaluationRun.Status.DONE:
            raise CommandError(f"run {run.pk} {run.status}: {run.error}")
        if run.design == EvaluationRun.Design.PLACEMENT:
            self._placed(run)
            return
        snapshot = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
        for row in sorted(snapshot.rows, key=lambda r: -r["rating"]):
            self.stdout.write(f"{row['rank_ub']:>3}  {row['model']:<30} {row['rating']:8.1f}")
        report = run.design_report
        if run.design == EvaluationRun.Design.PRP and report.get("best_counts"):
            best = ", ".join(f"{b['model']} {b['prompts']}" for b in report["best_counts"])
            self.stdout.write(f"best answer (PRP {report['sorting']}) on its prompts: {best}")

    def _placed(self, run) -> None:
        """The board the newcomer was placed on, refitted now with the run's verdicts (one
        fit over everything: the board's verdicts and the placement's)."""
        scope = BoardScope(run.prompt_set.slug, run.design_params["board"]).key
        newcomer = run.design_params["newcomer"]
        snapshot = services.refit(scope, final=True)
        if snapshot is None:
            raise CommandError(f"the board {scope!r} could not be refitted after run {run.pk}")
        rows = sorted(snapshot.rows, key=lambda r: -(r["rating"] or 0))
        for position, row in enumerate(rows, 1):
            mark = "  <- placed" if row["model"] == newcomer else ""
            self.stdout.write(
                f"{position:>3}  {row['model']:<30} {row['rating']:8.1f}  "
                f"[{row.get('ci_lower') or 0:.0f}, {row.get('ci_upper') or 0:.0f}]{mark}"
            )


def _jury_options(o) -> dict:
    """``create_run``'s jury arguments from ``--jurors`` and ``--jury-*`` (none without)."""
    jurors = [j.strip() for j in (o["jurors"] or "").split(",") if j.strip()]
    if not jurors:
        return {}
    return {
        "jurors": jurors,
        "jury": {
            "size": o["jury_size"],
            "rule": o["jury_rule"],
            "weights_from": o["jury_weights"],
        },
    }
