import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.importers.exporter import iter_records
from arena.importers.formats import EXPORTABLE, FORMATS, export
from arena.models import PromptSet


class Command(BaseCommand):
    help = "Export a prompt set's prompts, outputs and judgments in a format that arena_import reads back."

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, dest="fmt", choices=sorted(FORMATS))
        parser.add_argument("--prompt-set", required=True)
        parser.add_argument(
            "--output",
            "-o",
            help="File to write (default: standard output). Written only if the export succeeds.",
        )
        parser.add_argument(
            "--baseline", help="arena-hard: the baseline model (default gpt-4-0314)."
        )

    def handle(self, *args, fmt, prompt_set, output, baseline, **options):
        if fmt not in EXPORTABLE:
            raise CommandError(
                f"format {fmt!r} is read-only; export to one of {', '.join(EXPORTABLE)}"
            )
        try:
            ps = PromptSet.objects.get(slug=prompt_set)
        except PromptSet.DoesNotExist:
            known = ", ".join(PromptSet.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"no prompt set {prompt_set!r}; known: {known}") from None
        extra = {"baseline": baseline} if baseline else {}
        if not output:
            self._export(fmt, ps, sys.stdout, extra)
            return
        target = Path(output)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                self._export(fmt, ps, out, extra)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _export(self, fmt, prompt_set, out, extra):
        try:
            export(fmt, iter_records(prompt_set), out, **extra)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
