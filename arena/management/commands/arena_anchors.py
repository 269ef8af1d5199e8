"""Draw a done run's anchor selection (the matches humans should judge) and export it."""

import csv
import io
import json

from django.core.management.base import BaseCommand, CommandError

from arena.anchoring import anchor_export, select_run_anchors
from arena.errors import Refusal
from arena.models import EvaluationRun

FIELDS = (
    "match",
    "public_id",
    "prompt",
    "models",
    "stratum",
    "probability",
    "chosen",
    "judge",
    "human_labels",
)


class Command(BaseCommand):
    help = (
        "Anchor selection of an LLM-judge run (issue 20): with --budget, draw it (stratified "
        "by the judge's uncertainty, split verdicts and rank boundaries, with a uniform "
        "share); then print the chosen matches (every match with --all) as CSV or JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("run", type=int, help="evaluation run id")
        parser.add_argument(
            "--budget", type=float, help="draw: a share of the matches (< 1) or a count"
        )
        parser.add_argument("--uniform-share", type=float, default=0.3)
        parser.add_argument("--seed", type=int, help="default: the run's seed")
        parser.add_argument("--all", action="store_true", help="every match, not only chosen")
        parser.add_argument("--format", choices=("csv", "json"), default="csv")
        parser.add_argument("--output", default="-", help="file to write (default stdout)")

    def handle(self, *args, run, budget, uniform_share, seed, all, format, output, **options):  # noqa: A002
        found = EvaluationRun.objects.filter(pk=run).first()
        if found is None:
            raise CommandError(f"no evaluation run {run}")
        try:
            if budget is not None:
                for row in select_run_anchors(
                    found, budget, uniform_share=uniform_share, seed=seed
                ):
                    self.stderr.write(
                        f"{row['stratum']}: {row['chosen']} of {row['matches']} matches "
                        f"(probability {row['probability']:.3f})"
                    )
            rows = anchor_export(found, chosen_only=not all)
        except Refusal as exc:
            raise CommandError(exc.message) from None
        if not rows and budget is None:
            raise CommandError(f"run {run} has no anchor selection: draw one with --budget")
        if format == "json":
            text = json.dumps(rows, indent=1) + "\n"
        else:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "models": " vs ".join(row["models"])})
            text = buffer.getvalue()
        if output == "-":
            self.stdout.write(text, ending="")
        else:
            with open(output, "w", newline="") as out:
                out.write(text)
