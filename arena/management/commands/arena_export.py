import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.errors import Refusal
from arena.importers.exporter import iter_records, judgment_count, one_reading
from arena.importers.formats import EXPORTABLE, FORMATS, export
from arena.importers.formats.progress import Progress
from arena.importers.preferences import (
    ExportSummary,
    PreferenceFilters,
    dataset_card,
    preference_pairs,
    ranked_lists,
)
from arena.models import PromptSet

# Formats of training data (arena.importers.preferences): JSON lines, or Parquet with
# --parquet; a dataset card is written beside a file. arena_import --format dpo reads the
# dpo lines back (arena.importers.formats.dpo).
PREFERENCE_FORMATS = {"dpo": preference_pairs, "ranked": ranked_lists}


class Command(BaseCommand):
    help = (
        "Export a prompt set's prompts, outputs and judgments in a format that arena_import "
        "reads back, or its preference data for training (dpo: prompt/chosen/rejected pairs; "
        "ranked: K-wise lists)."
    )
    # The models' checks only: the URL checks load every view (a second of start-up)
    requires_system_checks = ["models"]

    def add_arguments(self, parser):
        parser.add_argument(
            "--format", required=True, dest="fmt", choices=sorted([*FORMATS, *PREFERENCE_FORMATS])
        )
        parser.add_argument("--prompt-set", required=True)
        parser.add_argument(
            "--output",
            "-o",
            help="File to write (default: standard output). Written only if the export succeeds.",
        )
        parser.add_argument(
            "--baseline", help="arena-hard: the baseline model (default gpt-4-0314)."
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="no progress (a bar on a terminal, else a line every few seconds on stderr)",
        )
        training = parser.add_argument_group("dpo / ranked (training data)")
        training.add_argument(
            "--by",
            default="all",
            help="whose verdicts: humans, judges, all (default), judge:<id> or run:<id>",
        )
        training.add_argument(
            "--min-votes", type=float, default=1, help="dpo: decisive verdicts per pair (default 1)"
        )
        training.add_argument(
            "--min-agreement",
            type=float,
            default=0.0,
            help="dpo: share of a pair's decisive verdicts for the chosen answer (0.5..1)",
        )
        training.add_argument(
            "--orders-agree",
            action="store_true",
            help="dpo: keep only pairs whose chosen answer won in both presentation orders",
        )
        training.add_argument(
            "--min-probability",
            type=float,
            help="dpo: keep only pairs with a soft preference for the chosen answer >= this "
            "(pairs without soft preferences are left out)",
        )
        training.add_argument(
            "--parquet", action="store_true", help="write Parquet instead of JSON lines (needs -o)"
        )

    def handle(self, *args, fmt, prompt_set, output, baseline, quiet, **options):
        if fmt in PREFERENCE_FORMATS:
            self._training_data(fmt, prompt_set, output, options)
            return
        if fmt not in EXPORTABLE:
            raise CommandError(
                f"format {fmt!r} is read-only; export to one of {', '.join(EXPORTABLE)}"
            )
        ps = _prompt_set(prompt_set)
        extra = {"baseline": baseline} if baseline else {}
        with one_reading():
            progress = (
                None if quiet else Progress(judgment_count(ps), unit="rows", desc="exporting")
            )
            try:
                if not output:
                    self._export(fmt, ps, sys.stdout, extra, progress)
                    return
                with (
                    _replaced(Path(output)) as tmp,
                    open(tmp, "w", encoding="utf-8", buffering=1 << 20) as out,
                ):
                    self._export(fmt, ps, out, extra, progress)
            finally:
                if progress is not None:
                    progress.close()

    def _training_data(self, fmt, slug, output, options):
        filters = _filters(options)
        if options["parquet"] and not output:
            raise CommandError("--parquet writes a file: give -o PATH")
        ps = _prompt_set(slug)
        summary = ExportSummary()
        try:
            with one_reading():
                rows = PREFERENCE_FORMATS[fmt](ps, filters, summary)
                if not output:
                    for row in rows:
                        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
                    return
                target = Path(output)
                with _replaced(target) as tmp:
                    if options["parquet"]:
                        _write_parquet(fmt, rows, tmp)
                    else:
                        with open(tmp, "w", encoding="utf-8") as out:
                            for row in rows:
                                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        except Refusal as exc:
            raise CommandError(f"--{exc.field or 'by'}: {exc.message}") from None
        card = target.with_name(f"{target.stem}.README.md")
        card.write_text(dataset_card(ps, fmt, filters, summary), encoding="utf-8")
        self.stderr.write(f"wrote {summary.rows} rows to {target} and its dataset card {card}")

    def _export(self, fmt, prompt_set, out, extra, progress):
        try:
            export(fmt, iter_records(prompt_set, progress=progress), out, **extra)
        except ValueError as exc:
            raise CommandError(str(exc)) from None


def _prompt_set(slug: str) -> PromptSet:
    try:
        return PromptSet.objects.get(slug=slug)
    except PromptSet.DoesNotExist:
        known = ", ".join(PromptSet.objects.values_list("slug", flat=True)) or "none yet"
        raise CommandError(f"no prompt set {slug!r}; known: {known}") from None


def _filters(options) -> PreferenceFilters:
    if options["min_votes"] < 1:
        raise CommandError("--min-votes: at least 1")
    if not 0 <= options["min_agreement"] <= 1:
        raise CommandError("--min-agreement: a share between 0 and 1")
    p = options["min_probability"]
    if p is not None and not 0 <= p <= 1:
        raise CommandError("--min-probability: a probability between 0 and 1")
    return PreferenceFilters(
        by=options["by"],
        min_votes=options["min_votes"],
        min_agreement=options["min_agreement"],
        orders_agree=options["orders_agree"],
        min_probability=p,
    )


@contextmanager
def _replaced(target: Path):
    """A temporary path beside ``target`` that replaces it only if the block succeeds."""
    if not target.parent.is_dir():
        raise CommandError(f"-o: no directory {str(target.parent)!r}")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_parquet(fmt: str, rows, path: str) -> None:
    import pyarrow as pa  # only Parquet exports need pyarrow
    import pyarrow.parquet as pq

    text, number = pa.string(), pa.float64()
    columns = {
        "dpo": [("prompt_id", text), ("category", text), ("prompt", text), ("chosen", text),
                ("rejected", text), ("chosen_model", text), ("rejected_model", text),
                ("votes_chosen", number), ("votes_rejected", number), ("ties", number),
                ("agreement", number), ("orders_agree", pa.bool_()), ("probability", number),
                ("votes_when_chosen_first", pa.list_(number))],
        "ranked": [("prompt_id", text), ("category", text), ("prompt", text),
                   ("responses", pa.list_(text)), ("models", pa.list_(text)),
                   ("ranks", pa.list_(pa.int64())), ("scores", pa.list_(pa.int64()))],
    }[fmt]  # fmt: skip
    schema = pa.schema(columns)
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 2000:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
