"""File formats: ``parse(fmt, path, **options)`` streams records; ``export(fmt, records, out)`` writes them.

Formats: fastchat, counts, arena-hard, alpaca-eval, pandalm, llmbar, lmarena, dpo (read
only) and jsonl. ``dpo`` reads Arena's own DPO export back (its writer is ``arena_export
--format dpo``, from the database: ``arena.importers.preferences``).
Every bad input raises :class:`arena.importers.records.ImportRowError` naming file, line
and field. A format may also have ``batches(path, size, **options)``, the loader's reader in
place of ``parse`` (same checks and errors): fastchat's hands the votes of lines without a
conversation over as :class:`arena.importers.records.VoteColumns`. Pure Python: no Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from arena.importers.formats import (
    alpaca_eval,
    arena_hard,
    counts,
    dpo,
    fastchat,
    jsonl,
    llmbar,
    lmarena,
    pandalm,
)
from arena.importers.formats._common import EMPTY, MAX_RECORD_BYTES  # noqa: F401 (re-exported)
from arena.importers.records import ImportRowError

FORMATS = {
    "fastchat": fastchat,
    "counts": counts,
    "arena-hard": arena_hard,
    "alpaca-eval": alpaca_eval,
    "pandalm": pandalm,
    "llmbar": llmbar,
    "dpo": dpo,
    "jsonl": jsonl,
    "lmarena": lmarena,
}
DIRECTORY_FORMATS = ("pandalm", "llmbar", "alpaca-eval")  # PATH may be a directory
EXPORTABLE = tuple(name for name, module in FORMATS.items() if hasattr(module, "export"))


def _module(fmt: str):
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}") from None


def parse(fmt: str, path: str | Path, **options) -> Iterator:
    """Stream the records of one file, in file order.

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    path : str or Path
        The file (or, for pandalm and llmbar, the dataset directory; for alpaca-eval, a
        results folder).
    **options
        Format options: ``baseline`` (arena-hard), ``voter`` (counts, dpo), ``judges`` (pandalm,
        llmbar), ``subset`` (llmbar), ``annotator`` (alpaca-eval results folder),
        ``anony_only`` / ``sampled_only`` (fastchat, lmarena); and for
        every format ``max_record_bytes``, the longest line (JSONL) or item (JSON list)
        accepted, default :data:`MAX_RECORD_BYTES`. Options a format does not know are ignored.

    Yields
    ------
    PromptRecord, OutputRecord, RubricRecord or VoterRecord (jsonl only), JudgmentRecord
        The dataset formats give a prompt before the outputs and judgments that refer to
        it; jsonl gives the lines in the order the file has them.

    Raises
    ------
    ImportRowError
        On the first bad item: ``path:line: field: message``. For a JSON list the line is
        the one the item starts on; line 0 means the file as a whole. A file that cannot
        be read (missing, a directory, no permission, not UTF-8), one holding NUL bytes or
        lone surrogates, a record over the size limit and a file with no records at all
        are errors too.
    ValueError
        For an unknown format.
    """
    yield from guarded(fmt, path, _module(fmt).parse, **options)


def guarded(fmt: str, path: str | Path, read, **options) -> Iterator:
    """``read(path, **options)`` (a format's ``parse``, or a faster reader of the same lines)
    with the checks and errors of :func:`parse`: a missing path, a directory, a file that
    cannot be read or is not UTF-8, a file with nothing in it."""
    if not Path(path).exists():
        raise ImportRowError(path, 0, "path", "no such file or directory")
    if Path(path).is_dir() and fmt not in DIRECTORY_FORMATS:
        raise ImportRowError(path, 0, "path", f"is a directory; {fmt} reads a file")
    count = 0
    try:
        for record in read(path, **options):
            count += 1
            yield record
    except UnicodeDecodeError as exc:
        raise ImportRowError(path, 0, "encoding", f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:  # a directory, no permission, a file that went away (also judge files)
        where = exc.filename if exc.filename is not None else path
        reason = (exc.strerror or str(exc)).lower()
        raise ImportRowError(where, 0, "path", f"cannot read it ({reason})") from None
    if not count:
        raise ImportRowError(path, 0, "file", EMPTY)


def export(fmt: str, records: Iterable, out: TextIO, **options) -> None:
    """Write records in a format; parsing the result gives the same judgment counts.

    What a format cannot carry is dropped (docs/formats.md says what). Raises ValueError
    for a read-only format or when nothing in ``records`` fits the format.
    """
    module = _module(fmt)
    if not hasattr(module, "export"):
        raise ValueError(f"format {fmt!r} is read-only; export to one of {', '.join(EXPORTABLE)}")
    module.export(records, out, **options)
