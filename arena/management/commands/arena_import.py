from django.core.management.base import BaseCommand, CommandError

from arena.importers.formats.progress import Progress
from arena.importers.formats.reader import file_bytes
from arena.importers.loader import DEFAULT_PROMPT_SETS, import_file
from arena.importers.records import printable


class Command(BaseCommand):
    help = (
        "Import battles, judgments, prompts and outputs. Each file is stored completely or not "
        "at all; re-importing stores nothing twice. Errors read file:line: field: message."
    )
    # The models' checks only: the URL checks load every view (a second of start-up)
    requires_system_checks = ["models"]

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument(
            "--format", required=True, choices=sorted(DEFAULT_PROMPT_SETS), dest="fmt"
        )
        parser.add_argument(
            "--prompt-set", help="Slug of the prompt set to import into (created if missing)."
        )
        parser.add_argument(
            "--baseline", help="arena-hard: the baseline model (default gpt-4-0314)."
        )
        parser.add_argument(
            "--judge",
            action="append",
            dest="judges",
            help="pandalm/llmbar: a judge verdict file; repeat for several.",
        )
        parser.add_argument(
            "--annotator",
            help="alpaca-eval results folder: the annotator's folder name to read "
            "(needed when it holds several, e.g. weighted_alpaca_eval_gpt4_turbo).",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="No progress bar (on a terminal) or progress lines (otherwise) on stderr.",
        )

    def handle(self, *args, paths, fmt, prompt_set, baseline, judges, annotator, quiet, **options):
        extra = {}
        if annotator:
            extra["annotator"] = annotator
        if baseline:
            extra["baseline"] = baseline
        if judges:
            extra["judges"] = judges
        failed = []
        for path in paths:
            progress = None if quiet else Progress(file_bytes([path]), self.stderr._out)
            try:
                report = import_file(fmt, path, prompt_set=prompt_set, progress=progress, **extra)
            finally:
                if progress is not None:
                    progress.close()
            if report.ok:
                self.stdout.write(report.summary())
            else:
                failed.append(printable(path))
                self.stderr.write(report.summary())
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(paths)} file(s) had errors and were not imported: "
                + ", ".join(failed)
            )
