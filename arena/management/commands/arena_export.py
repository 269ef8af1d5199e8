import sys

from django.core.management.base import BaseCommand, CommandError

from arena.importers.exporter import iter_records
from arena.models import PromptSet


class Command(BaseCommand):
    help = "Export a prompt set's prompts, outputs and judgments to a file format that arena_import reads back."

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, dest="fmt")
        parser.add_argument("--prompt-set", required=True)
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args, fmt, prompt_set, output, **options):
        from arena.importers.formats import export

        try:
            ps = PromptSet.objects.get(slug=prompt_set)
        except PromptSet.DoesNotExist:
            raise CommandError(
                f"no prompt set {prompt_set!r}; known: {', '.join(PromptSet.objects.values_list('slug', flat=True))}"
            ) from None
        out = open(output, "w", encoding="utf-8") if output else sys.stdout
        try:
            export(fmt, iter_records(ps), out)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if output:
                out.close()
