"""Load parsed records into the database: atomic per file, idempotent on re-import.

A file is read as a stream of records (``arena.importers.formats.parse``) and written in
batches inside ONE transaction: a bad line anywhere rolls the whole file back, so a
file is either stored completely or not at all. Every row has a natural key (prompt:
set + external id; match: set + source + external id; judgment: match + judge/voter +
presentation + repeat), and rows whose key already exists are skipped, so importing
the same file twice stores nothing twice. A judgment whose key exists with another
verdict (winner, strength, ranking, score, preference, weight) is a conflict, an error
naming both lines. Every error reads ``file:line: field: message``.
"""

from __future__ import annotations

import collections
import gc
import itertools
import math
import multiprocessing
import os
import pickle
import queue
import re
import signal
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, repeat
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q

from arena.boards import BoardScope, human_source, judge_source
from arena.importers.bulk import (
    JUDGMENT_COLUMNS,
    MATCH_COLUMNS,
    SLOT_COLUMNS,
    VERDICT,
    Rows,
    Stager,
    as_json,
    public_ids,
)
from arena.importers.formats import FORMATS, guarded, parse
from arena.importers.formats._common import unstorable
from arena.importers.records import (
    ImportRowError,
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
    RubricRecord,
    VoteColumns,
    VoterRecord,
    printable,
)
from arena.models import (
    BoardState,
    Contestant,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    Output,
    PairOutcomeCount,
    Prompt,
    PromptSet,
    Rubric,
    Voter,
)
from arena.services import request_refit
from arena.vocabulary import presentation, slot_zero_first
from arena.voters import own_label

BATCH_SIZE = 50_000  # records per batch: staged, then stored by a few statements
# PostgreSQL: a table an import wrote this many rows to is analysed once the import commits
ANALYZED_AFTER_ROWS = 10_000

DEFAULT_PROMPT_SETS = {
    "counts": "chatbot-arena",
    "fastchat": "fastchat",
    "arena-hard": "arena-hard",
    "alpaca-eval": "alpaca-eval",
    "pandalm": "pandalm",
    "llmbar": "llmbar",
    "dpo": "dpo",
    "jsonl": "default",
    "lmarena": "lmarena",
}


@dataclass
class ImportReport:
    path: str
    prompts: int = 0
    outputs: int = 0
    rubrics: int = 0
    voters: int = 0  # made by a voter line (a judgment's new voter is not counted)
    matches: int = 0
    judgments: int = 0
    votes: int = 0  # judgments weighted by multiplicity
    skipped: int = 0  # records whose row was already stored
    errors: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_lines(self) -> list[str]:
        """One ``file:line: field: message`` per error."""
        return [f"{e['path']}:{e['line']}: {e['field']}: {e['message']}" for e in self.errors]

    def summary(self) -> str:
        """The outcome; for a refused file, its errors and then one line saying so."""
        path = printable(self.path)
        if self.errors:
            n = len(self.errors)
            return "\n".join(
                [
                    *self.error_lines(),
                    f"{path}: NOT imported, nothing from it was stored "
                    f"({n} error{'s' if n > 1 else ''})",
                ]
            )
        rubrics = f"{self.rubrics} rubrics, " if self.rubrics else ""
        voters = f"{self.voters} voters, " if self.voters else ""
        return (
            f"{path}: {self.prompts} prompts, {self.outputs} outputs, {rubrics}{voters}"
            f"{self.matches} matches, {self.judgments} judgments ({self.votes} votes) stored; "
            f"{self.skipped} already present"
        )


def import_file(
    fmt: str, path: str | Path, prompt_set: str | None = None, **options
) -> ImportReport:
    """Parse and store one file; on any error store nothing and report it.

    ``options`` go to the format (:func:`arena.importers.formats.parse`); a record may be
    ``settings.ARENA_IMPORT_MAX_RECORD_BYTES`` long unless ``max_record_bytes`` says otherwise,
    and ``progress`` (a :class:`arena.importers.formats.progress.Progress`) is told the
    bytes read as the file is read.
    """
    report = ImportReport(path=str(path))
    slug = prompt_set or DEFAULT_PROMPT_SETS.get(fmt, fmt)
    options.setdefault("max_record_bytes", settings.ARENA_IMPORT_MAX_RECORD_BYTES)
    try:
        with _references_checked_by_the_import(), transaction.atomic():
            with (
                _Loader(_prompt_set(slug, fmt, path), fmt, report, refit=True) as loader,
                closing(_read_ahead(fmt, path, options)) as batches,
            ):
                for batch in batches:
                    loader.store(batch)
                loader.finish()
            _analyze_once_committed(report)
    except ImportRowError as exc:
        if isinstance(exc, _Conflict):
            exc = exc.located(lambda: parse(fmt, path, **options))
        report.errors.append(exc.as_dict())
        report.prompts = report.outputs = report.matches = report.judgments = report.votes = (
            report.skipped
        ) = 0
    return report


def import_records(
    records: Iterable,
    prompt_set: str,
    source: str,
    path: str = "<records>",
    refit: bool = False,
) -> ImportReport:
    """Store records that are already parsed (used by tests and by the export/import round trip).

    Raises ImportRowError (nothing stored) where :func:`import_file` reports one. Unlike
    :func:`import_file`, asks for no refit of the boards the votes are on unless ``refit``
    (a seed fits its boards itself).
    """
    report = ImportReport(path=path)
    try:
        with (
            transaction.atomic(),
            _Loader(_prompt_set(prompt_set, source, path), source, report, refit=refit) as loader,
        ):
            for batch in _batched(iter(records), BATCH_SIZE):
                loader.store(batch)
            loader.finish()
            _analyze_once_committed(report)
    except _Conflict as exc:
        rescan = (lambda: iter(records)) if isinstance(records, list | tuple) else None
        raise exc.located(rescan) from None
    return report


def _analyze_once_committed(report: ImportReport) -> None:
    """PostgreSQL: once the import's transaction commits, ``ANALYZE`` the tables it wrote
    ``ANALYZED_AFTER_ROWS`` rows or more to, as PostgreSQL advises after a bulk load
    ("Populating a Database"). Until autovacuum gets to them (a minute or so, never where it
    is off) the planner would plan the queries right after a large import, its boards'
    refit and an export among them, by the row counts and statistics of before: an export
    of 1.67M imported battles first sorted every judgment (32-37 s, 28-30 s analysed).
    Never inside the transaction: ``ANALYZE`` writes its row estimates to ``pg_class``
    whether the transaction commits or not, and a rolled-back import left estimates for
    rows that were not there (see ``test_the_import_takes_no_statistics...``)."""
    if connection.vendor != "postgresql":
        return
    written = (
        (Match, report.matches),
        (MatchSlot, report.matches),  # (two slots or more a match)
        (Judgment, report.judgments),
        (Prompt, report.prompts),
        (Output, report.outputs),
    )
    tables = [model._meta.db_table for model, rows in written if rows >= ANALYZED_AFTER_ROWS]
    if tables:
        transaction.on_commit(partial(_analyze, tables), robust=True)


def _analyze(tables: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(map(connection.ops.quote_name, tables))}")


@contextmanager
def _references_checked_by_the_import():
    """SQLite, outside a transaction: no foreign-key check per row written for the
    import's transaction (``PRAGMA foreign_keys`` cannot change inside one; a quarter of a
    battle log's import). Every reference the import writes is to a row it read or wrote
    itself under SQLite's one write lock, held to its end: what the checks look up is
    there. (PostgreSQL's counterpart, for a role that may, is ``Stager.write``'s.)"""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = ON")


def _batches(fmt: str, path, options: dict) -> Iterator[list | VoteColumns]:
    """The file's records in batches of BATCH_SIZE, or the format's own batches (votes as
    columns) when it has a ``batches`` reader (same checks and errors as its ``parse``)."""
    module = FORMATS.get(fmt)
    if module is not None and hasattr(module, "batches"):
        return guarded(fmt, path, module.batches, size=BATCH_SIZE, **options)
    return _batched(parse(fmt, path, **options), BATCH_SIZE)


def _batched(it: Iterator, n: int) -> Iterator[list]:
    while batch := list(itertools.islice(it, n)):
        yield batch


def _read_ahead(fmt: str, path, options: dict) -> Iterator[list | VoteColumns]:
    """The file's batches (:func:`_batches`), the next one read and parsed while the caller
    stores this one: by a child process (forked), so that the parsing has a core of its own
    and the caller's Python (keying, comparing, writing) does not wait for Python's lock;
    by a thread where there is no ``fork``, where the database's work, which lets go of
    the lock, still overlaps the parsing. An error of the reading is raised here, in its
    place after the batches before it. Closing the generator stops the reader."""
    if hasattr(os, "fork"):
        return _read_in_child(fmt, path, options)
    return _read_in_thread(_batches(fmt, path, options))


_BATCH, _PROGRESS, _ERROR, _DONE = range(4)  # what the reading child sends
_AHEAD_BYTES = 16 << 20  # what the caller holds of the reading child's messages, pickled


def _read_in_child(fmt: str, path, options: dict) -> Iterator[list | VoteColumns]:
    """:func:`_read_ahead` by a forked child, which sends each batch (pickled) down a pipe
    and tells the caller's ``progress`` through it. The caller's thread takes them off the
    pipe as they come (:class:`_Received`): the child is at most ``_AHEAD_BYTES`` of
    pickled batches ahead (one batch at least). The child reads the file and writes the pipe, and
    nothing else: it touches no database connection and takes no lock of the caller's
    other threads (a connection pool's), its garbage collector never looks at the objects
    it was forked with (``gc.freeze``: no finalizer of the caller's, a connection's among
    them, runs in it), and it ends by ``os._exit`` (none of the caller's frames, its
    transaction's among them, unwinds in it). Its garbage collector is off: the parsing
    makes no reference cycles, and the collections it ran for the millions of tuples and
    dicts a log's lines are, found nothing and took a fifth of the reading. A child still
    reading when the caller stops is killed."""
    progress = options.get("progress")
    receiving, sending = multiprocessing.Pipe(duplex=False)
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException:
        gc.unfreeze()
        raise
    if pid:
        gc.unfreeze()
    if pid == 0:  # the child
        status = 1
        try:
            gc.disable()
            receiving.close()
            told = dict(options)
            if progress is not None:
                told["progress"] = lambda n: sending.send((_PROGRESS, n))
            try:
                for batch in _batches(fmt, path, told):
                    sending.send((_BATCH, batch))
            except Exception as exc:
                sending.send((_ERROR, _portable(exc)))
            else:
                sending.send((_DONE, None))
            status = 0
        finally:
            os._exit(status)
    sending.close()
    received = None
    try:
        received = _Received(receiving)
        while True:
            message = received.next()
            if message is None:
                raise RuntimeError(f"the reader of {path} ended before the file did")
            kind, value = pickle.loads(message)
            if kind == _BATCH:
                yield value
            elif kind == _PROGRESS:
                progress(value)
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # (a child that has ended is only reaped)
        if received is not None:
            received.close()  # (the pipe's end: its thread has seen it)
        receiving.close()
        os.waitpid(pid, 0)


class _Received:
    """The messages of the reading child's pipe, taken off it by a thread as they come and
    held until the caller asks for them, up to ``_AHEAD_BYTES`` of them (one at least). The
    pipe alone holds one batch: the child waited while the caller stored a batch that
    took long (a database's turn) and the caller waited while the child read one that took
    long, a quarter of a re-import spent waiting; a few batches ahead, each waits only for
    the other's average. The thread holds Python's lock only between the pipe's reads."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.held: collections.deque[bytes] = collections.deque()
        self.size = 0  # bytes held
        self.ended = False  # the pipe's end was read (or it failed)
        self.stopped = False  # the caller wants no more
        self.turn = threading.Condition()
        self.thread = threading.Thread(target=self._take, name="import-read-ahead", daemon=True)
        self.thread.start()

    def _take(self) -> None:
        turn = self.turn
        try:
            while True:
                with turn:
                    turn.wait_for(lambda: self.size < _AHEAD_BYTES or self.stopped)
                    if self.stopped:
                        return
                message = self.pipe.recv_bytes()
                with turn:
                    self.held.append(message)
                    self.size += len(message)
                    turn.notify_all()
        except (EOFError, OSError):
            pass
        finally:
            with turn:
                self.ended = True
                turn.notify_all()

    def next(self) -> bytes | None:
        """The next message, None at the pipe's end."""
        with self.turn:
            self.turn.wait_for(lambda: self.held or self.ended)
            if not self.held:
                return None
            message = self.held.popleft()
            self.size -= len(message)
            self.turn.notify_all()
            return message

    def close(self) -> None:
        """Stop taking messages and wait for the thread (the child's end of the pipe
        closed, or about to: a thread in the pipe's read waits for that)."""
        with self.turn:
            self.stopped = True
            self.held.clear()
            self.turn.notify_all()
        self.thread.join()


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a RuntimeError with its traceback's text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        text = "".join(traceback.format_exception(exc)).strip()
        return RuntimeError(f"reading the file failed:\n{text}")
    return exc


def _read_in_thread(batches: Iterator[list]) -> Iterator[list]:
    """:func:`_read_ahead` by a thread."""
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not hand_over((batch, None)):
                    return
        except BaseException as exc:  # raised in the caller's thread
            hand_over((None, exc))
        else:
            hand_over((None, None))

    thread = threading.Thread(target=read, name="import-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            batch, error = ahead.get()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        thread.join()


_SLUG = re.compile(r"[-a-zA-Z0-9_]+")


def _prompt_set(slug: str, fmt: str, path) -> PromptSet:
    limit = PromptSet._meta.get_field("slug").max_length
    if not _SLUG.fullmatch(slug) or len(slug) > limit:
        raise ImportRowError(
            path,
            0,
            "prompt-set",
            f"{slug!r} is not a slug (letters, digits, - and _; at most {limit})",
        )
    prompt_set, _ = PromptSet.objects.get_or_create(
        slug=slug,
        defaults={
            "name": slug.replace("-", " ").title(),
            "source": printable(f"{fmt}: {Path(str(path)).name}")[:300],
        },
    )
    return prompt_set


class _Loader:
    """Maps records to rows for one prompt set, with name -> id caches across batches.
    A context manager around its :class:`Stager` (on PostgreSQL a batch is written by the
    Stager's thread while the next one is keyed)."""

    def __init__(self, prompt_set: PromptSet, source: str, report: ImportReport, refit: bool):
        self.prompt_set, self.source, self.report = prompt_set, source, report
        self.refit = refit
        self.contestants: dict[str, int] = {}
        self.voters: dict[str, int] = {}
        self.judges: dict[str, int] = {}
        self.prompts: dict[str, int] = dict(
            Prompt.objects.filter(prompt_set=prompt_set).values_list("external_id", "id")
        )
        # judgments with a larger id were stored by this import (for naming a conflict's line)
        self.stored_before = Judgment.objects.aggregate(last=Max("id"))["last"] or 0
        self.stage = Stager(prompt_set.id, source, ids_ahead=BATCH_SIZE)
        # No keyed match of this set and source was stored before the import (read under
        # the import lock): then none of a batch of votes is stored, as no earlier batch
        # named its matches (VoteColumns), and its probes are skipped.
        self.fresh = not (
            Match.objects.filter(prompt_set=prompt_set, source=source)
            .exclude(external_id="")
            .exists()
        )
        self.own_voters: set[str] = set()  # labels of the arena's own people (not imported)
        self.fine: set[tuple[str, str]] = set()  # (name, field) found storable
        self.fine_names: set[tuple] = set()  # a judgment's names, all found storable
        self.match_id_limit = _max_lengths()["match_id"]
        # running-count cells of the judgments stored: (source, category, a, b, winner,
        # a_first) -> votes, added to the counts once the file is through
        self.cells: dict[tuple, int] = {}

    def __enter__(self) -> _Loader:
        self.stage.__enter__()
        return self

    def __exit__(self, *error) -> None:
        self.stage.__exit__(*error)

    def error(self, r, field: str, message: str) -> ImportRowError:
        return ImportRowError(getattr(r, "path", "") or self.report.path, r.line, field, message)

    def store(self, batch: list | VoteColumns) -> None:
        if type(batch) is VoteColumns:
            self._store_votes(batch)
            return
        for r in batch:
            self._check_limits(r)
        prompts = [r for r in batch if isinstance(r, PromptRecord)]
        outputs = [r for r in batch if isinstance(r, OutputRecord)]
        rubrics = [r for r in batch if isinstance(r, RubricRecord)]
        voters = [r for r in batch if isinstance(r, VoterRecord)]
        judgments = [r for r in batch if isinstance(r, JudgmentRecord)]
        if prompts:
            self._store_prompts(prompts)
        if outputs:
            self._store_outputs(outputs)
        if rubrics:
            self._store_rubrics(rubrics)
        if voters:
            self._store_voters(voters)
        if judgments:
            self._store_judgments(judgments)

    def finish(self) -> None:
        """Add the stored judgments to the running counts and mark the boards they are on
        for a refit (same transaction; the refits are queued once it commits)."""
        if not self.cells:
            return
        set_id = self.prompt_set.id
        PairOutcomeCount.objects.bump_many(
            (set_id, *cell, n) for cell, n in sorted(self.cells.items())
        )
        if self.refit:
            request_refit(self._boards())

    def _boards(self) -> list[str]:
        """The boards the stored votes are on: the set's human and judge boards, and every
        board of the set someone opened (a ``BoardState``) that reads one of the cells."""
        slug = self.prompt_set.slug
        sources = {(source, category) for source, category, *_ in self.cells}
        keys = set()
        if any(source == "human" for source, _ in sources):
            keys.add(BoardScope(slug, "humans").key)
        if any(source.startswith("judge:") for source, _ in sources):
            keys.add(BoardScope(slug, "judges").key)
        # a slug needs no escaping in a key
        opened = BoardState.objects.filter(scope__startswith=f"set={slug}|")
        for key in opened.values_list("scope", flat=True):
            scope = BoardScope.from_key_unchecked(key)
            if any(_reads(scope, source, category) for source, category in sources):
                keys.add(key)
        return sorted(keys)

    def _check_limits(self, r) -> None:
        """What the columns cannot hold is an error of its line, not a database failure.
        A name (contestant, voter, judge, category ...) is checked once per import, and a
        judgment's names as a whole once (a battle log repeats a few hundred of them)."""
        names = None
        if type(r) is JudgmentRecord:
            names = (r.contestants, r.voter, r.judge, r.category, r.language, r.presentation)
            if (
                names in self.fine_names
                and len(r.match_id) <= self.match_id_limit
                and not unstorable(r.match_id)
            ):
                self._check_numbers(r)
                return
        fine = self.fine
        for name, values, limit in _limits(r):
            for value in values:
                if value is None or (value, name) in fine:
                    continue
                if len(value) > limit:
                    raise self.error(
                        r, name, f"longer than {limit} characters ({len(value)} given)"
                    )
                # names may come from file names (a judge's file, an LLMBar subset)
                problem = unstorable(value)
                if problem:
                    raise self.error(r, name, problem)
                if name in ("voter", "label") and own_label(value):
                    raise self.error(r, name, _OWN_LABEL.format(value))
                if name in _NAMES:
                    fine.add((value, name))
        if isinstance(r, JudgmentRecord):
            self._check_numbers(r)
            if names is not None and len(self.fine_names) < FINE_NAMES_MAX:
                self.fine_names.add(names)

    def _check_numbers(self, r: JudgmentRecord) -> None:
        for name, value, limit in (
            ("repeat", r.repeat, REPEAT_MAX),
            ("weight", r.weight, WEIGHT_MAX),
        ):
            if not 0 <= value <= limit:
                raise self.error(r, name, f"must be from 0 to {limit}, got {value}")
        for name, value in (("score", r.score), ("preference", r.preference)):
            if value is not None and not _finite(value):
                raise self.error(r, name, f"expected a finite number, got {value!r}")
        if r.status and r.status not in _NO_VERDICT:
            raise self.error(r, "status", f"expected one of {', '.join(_NO_VERDICT)}")

    # --- names ---------------------------------------------------------------------------
    def _contestant_ids(self, names: set[str]) -> dict[str, int]:
        missing = names - self.contestants.keys()
        if missing:
            known = dict(Contestant.objects.filter(name__in=missing).values_list("name", "id"))
            new = [
                Contestant(
                    name=n,
                    kind=Contestant.Kind.ANONYMOUS
                    if n.startswith("llmbar:")
                    else Contestant.Kind.MODEL,
                    family=_family(n),
                )
                for n in sorted(missing - known.keys())
            ]
            Contestant.objects.bulk_create(new)
            known.update({c.name: c.id for c in new})
            self.contestants.update(known)
        return self.contestants

    def _voter_ids(self, labels: set[str]) -> dict[str, int]:
        """Label -> id of the imported voters of ``labels``, made if new. A label of one of
        the arena's own people (:meth:`_look_up_voters`) is left out, for the caller to name
        its line."""
        missing = self._look_up_voters(labels)
        if missing:
            new = [Voter(label=label, kind=Voter.Kind.IMPORTED) for label in sorted(missing)]
            Voter.objects.bulk_create(new)
            self.voters.update({v.label: v.id for v in new})
        return self.voters

    def _look_up_voters(self, labels: set[str]) -> set[str]:
        """The labels of ``labels`` the arena does not know; the known ones go to
        ``self.voters`` (imported voters) or ``self.own_voters`` (the arena's own people: a
        browser session, a logged-in user, an annotator, whose votes an import may not
        join: theirs is not an imported voter)."""
        missing = labels - self.voters.keys() - self.own_voters
        if missing:
            for label, id_, kind in Voter.objects.filter(label__in=missing).values_list(
                "label", "id", "kind"
            ):
                if kind == Voter.Kind.IMPORTED:
                    self.voters[label] = id_
                else:
                    self.own_voters.add(label)
        return missing - self.voters.keys() - self.own_voters

    def _judge_ids(self, names: set[str]) -> dict[str, int]:
        for name in names - self.judges.keys():
            # Imported verdicts belong to an endpoint-less judge of that name.
            judge = Judge.objects.filter(name=name, base_url="").order_by("created_at").first()
            if judge is None:
                judge = Judge.objects.create(
                    name=name,
                    model=name,
                    family=_family(name),
                    description="Imported verdicts",
                    both_orders=False,
                )
            self.judges[name] = judge.id
        return self.judges

    # --- prompts and outputs ---------------------------------------------------------------
    def _store_prompts(self, records: list[PromptRecord]) -> None:
        new = {}
        for r in records:
            if r.external_id in self.prompts or r.external_id in new:
                self.report.skipped += 1
                continue
            new[r.external_id] = Prompt(
                prompt_set=self.prompt_set,
                external_id=r.external_id,
                text=r.text,
                turns=list(r.turns),
                category=r.category,
                language=r.language,
                reference_answer=r.reference_answer,
            )
        Prompt.objects.bulk_create(new.values())
        self.prompts.update({p.external_id: p.id for p in new.values()})
        self.report.prompts += len(new)

    def _store_outputs(self, records: list[OutputRecord]) -> None:
        ids = self._contestant_ids({r.contestant for r in records})
        for r in records:
            if r.prompt_id not in self.prompts:
                raise self.error(
                    r,
                    "prompt_id",
                    f"unknown prompt {r.prompt_id!r} (prompts must come before their outputs)",
                )
        keys = {
            (self.prompts[r.prompt_id], ids[r.contestant], r.generation_config) for r in records
        }
        existing = set(
            Output.objects.filter(prompt_id__in={k[0] for k in keys}).values_list(
                "prompt_id", "contestant_id", "generation_config"
            )
        )
        new = {}
        for r in records:
            key = (self.prompts[r.prompt_id], ids[r.contestant], r.generation_config)
            if key in existing or key in new:
                self.report.skipped += 1
                continue
            output = Output(
                prompt_id=key[0],
                contestant_id=key[1],
                generation_config=r.generation_config,
                text=r.text,
            )
            output.fill_stats()
            new[key] = output
        Output.objects.bulk_create(new.values())
        self.report.outputs += len(new)

    def _store_voters(self, records: list[VoterRecord]) -> None:
        """Voters named before their judgments, with their flag: one the arena does not know
        is made (imported) flagged or not as the file says, and its votes are counted as
        such; one it knows keeps its own flag (an import flags or unflags no one here)."""
        self._look_up_voters({r.label for r in records})
        known = self.voters.keys()
        new = {}
        for r in records:
            if r.label in self.own_voters:
                raise self.error(r, "label", _OWN_VOTER.format(r.label))
            if r.label in known or r.label in new:
                self.report.skipped += 1
                continue
            new[r.label] = Voter(
                label=r.label,
                kind=Voter.Kind.IMPORTED,
                flagged=r.flagged,
                counted_flagged=r.flagged,  # (it has no votes to move)
                flag_reason=r.reason if r.flagged else "",
            )
        Voter.objects.bulk_create(new.values())
        self.voters.update({v.label: v.id for v in new.values()})
        self.report.voters += len(new)

    def _store_rubrics(self, records: list[RubricRecord]) -> None:
        """The set's rubric and its prompts' own: one each, so a rubric already there (stored
        or earlier in the file) is skipped when it has the same criteria, and is an error of
        the line when it has others (an import does not change a rubric)."""
        for r in records:
            if r.prompt_id is not None and r.prompt_id not in self.prompts:
                raise self.error(
                    r,
                    "prompt_id",
                    f"unknown prompt {r.prompt_id!r} (prompts must come before their rubrics)",
                )
        prompt_ids = {self.prompts[r.prompt_id] for r in records if r.prompt_id is not None}
        # (the rubrics of earlier batches are read too: stored in this transaction)
        held = {
            prompt_id: criteria
            for prompt_id, criteria in Rubric.objects.filter(
                Q(prompt_set=self.prompt_set) | Q(prompt_id__in=prompt_ids)
            ).values_list("prompt_id", "criteria")
        }
        new = []
        for r in records:
            prompt_id = self.prompts[r.prompt_id] if r.prompt_id is not None else None
            criteria = list(r.criteria)
            if prompt_id in held:
                if held[prompt_id] != criteria:
                    whose = f"prompt {r.prompt_id!r}" if r.prompt_id else "the prompt set"
                    raise self.error(
                        r, "criteria", f"{whose} already has a rubric with other criteria"
                    )
                self.report.skipped += 1
                continue
            held[prompt_id] = criteria
            new.append(
                Rubric(
                    prompt_set=None if prompt_id else self.prompt_set,
                    prompt_id=prompt_id,
                    criteria=criteria,
                    source=r.source,
                )
            )
        Rubric.objects.bulk_create(new)
        self.report.rubrics += len(new)

    # --- matches and judgments -------------------------------------------------------------
    def _stored_as_given(self, records, contestants, voters, judges) -> dict | None:
        """None when the whole batch is stored as it is (a re-import): every match with the
        batch's contestants and every judgment with the batch's verdict. Else the stored
        matches among the batch's (:meth:`Stager.stored_matches`) for the keyed path.

        Three probes and a comparison of the batch with them as sets, no per-record keying:
        anything that differs (a new row, another verdict, other contestants, an unknown
        prompt) leaves the batch to the keyed path, which finds and names it as before. Two
        records of one key with different verdicts cannot both be in the stored set (one
        row per key), so a batch found stored holds no conflict either."""
        lineups = {r.match_id: r.contestants for r in records}
        stored = self.stage.stored_matches(list(lineups))
        if len(stored) < len(lineups):
            return stored
        if len({(r.match_id, r.contestants) for r in records}) != len(lineups) or not (
            {r.prompt_id for r in records} - {None, ""} <= self.prompts.keys()
        ):
            return stored
        wanted = {
            (stored[ext][0], position, contestants[name])
            for ext, names in lineups.items()
            for position, name in enumerate(names)
        }
        if any(stored[ext][1] != len(names) for ext, names in lineups.items()):
            return stored
        shown, parsed = _shown, _parsed
        given = {
            (
                stored[r.match_id][0],
                judges[r.judge] if r.judge else None,
                None if r.judge else voters[r.voter],
                shown(r.presentation),
                r.repeat,
                r.kind,
                r.winner if parsed(r) else None,
                r.strength,
                None if r.ranking is None else as_json(list(r.ranking)),
                r.score,
                r.preference,
                r.weight,
            )
            for r in records
        }
        return None if self._stored_as_is(stored, wanted, given) else stored

    def _stored_as_is(self, stored: dict, lineups: set, verdicts: set) -> bool:
        """Whether the stored matches' slots are ``lineups`` and their judgments hold
        ``verdicts`` (:meth:`Stager.stored_verdicts` rows), each compared as one set."""
        ids = sorted(id_ for id_, _, _ in stored.values())
        return lineups == self.stage.stored_lineups(ids) and verdicts <= (
            self.stage.stored_verdicts(ids)
        )

    def _store_votes(self, votes: VoteColumns) -> None:
        """A batch of votes as columns (a battle log's, ``fastchat.batches``), checked and
        keyed column-wise: names once per import, ids mapped by dict, the rows of a new
        batch zipped from the columns and its running-count cells counted by a Counter; a
        re-imported batch is compared with the stored rows as one range of ids, aggregated
        in the database (:meth:`Stager.votes_stored`), else as sets. A batch out of the
        ordinary (a name or id its column cannot hold, a match id given twice, some of its
        matches stored and others not) goes the records' way (:meth:`VoteColumns.records`),
        which finds and names the line as for any format."""
        ids, n = votes.match_ids, len(votes)
        if not self._votes_fit(votes) or len(set(ids)) != n:
            self.store(votes.records())
            return
        contestants = self._contestant_ids(set(votes.model_a) | set(votes.model_b))
        a_ids = list(map(contestants.__getitem__, votes.model_a))
        b_ids = list(map(contestants.__getitem__, votes.model_b))
        voters = set(votes.voters)
        mapped = self._voter_ids(voters)
        if voters & self.own_voters:  # the records' way names the line
            self.store(votes.records())
            return
        voter_ids = list(map(mapped.__getitem__, votes.voters))
        shown, stage = _shown((0, 1)), self.stage
        # In the order of the external ids: new matches take their ids in it (their keys
        # go into the unique index in one sweep), and a re-import finds them so, as one
        # range of ids (Stager.votes_stored, Stager.stored_matches).
        order = sorted(range(n), key=ids.__getitem__)
        ids, a_ids, b_ids, voter_ids, winners = (
            list(map(column.__getitem__, order))
            for column in (ids, a_ids, b_ids, voter_ids, votes.winners)
        )
        if not self.fresh:
            if stage.votes_stored(ids, a_ids, b_ids, voter_ids, winners, shown):
                self.report.skipped += n
                return
            stored = stage.stored_matches(ids)
            if stored:
                if len(stored) == n and {k for _, k, _ in stored.values()} == {2}:
                    pks = [stored[ext][0] for ext in ids]
                    lineups = set(zip(pks, repeat(0), a_ids)) | set(zip(pks, repeat(1), b_ids))
                    verdicts = set(
                        zip(
                            pks,
                            repeat(None),
                            voter_ids,
                            repeat(shown),
                            repeat(0),
                            repeat("pairwise"),
                            winners,
                            repeat(1),
                            repeat(None),
                            repeat(None),
                            repeat(None),
                            repeat(1),
                        )  # fmt: skip
                    )
                    if self._stored_as_is(stored, lineups, verdicts):
                        self.report.skipped += n
                        return
                self.store(votes.records())
                return
        categories, languages, labels = (
            list(map(column.__getitem__, order))
            for column in (votes.categories, votes.languages, votes.verdict_labels)
        )  # (only a new batch writes them)
        pks = stage.match_ids(n)
        # each table's varying columns, and the columns every vote writes alike
        matches = Rows(
            ("id", "public_id", "external_id", "category", "language"),
            list(zip(pks, public_ids(n), ids, categories, languages, strict=True)),
            {
                "prompt_set_id": self.prompt_set.id, "prompt_id": None, "origin": "import",
                "source": self.source, "k": 2, "policy": "", "gold_winner": "",
                "created_at": stage.created_at,
            },
        )  # fmt: skip
        slots = Rows(
            ("match_id", "position", "contestant_id"),
            list(
                chain.from_iterable(
                    zip(zip(pks, repeat(0), a_ids), zip(pks, repeat(1), b_ids), strict=True)
                )
            ),
            {"output_id": None},
        )
        # (a verdict label is one of the log's four winner names: never over 100 characters)
        judgments = Rows(
            ("match_id", "voter_id", "winner", "verdict_label"),
            list(zip(pks, voter_ids, winners, labels, strict=True)),
            {
                "judge_id": None, "kind": "pairwise", "status": Judgment.Status.OK.value,
                "strength": 1, "ranking": None, "score": None, "preference": None,
                "presentation": shown, "repeat": 0, "weight": 1, "raw_text": "",
                "probabilities": None,
                **dict(zip(JUDGMENT_COLUMNS[-4:], stage.judgment_tail(), strict=True)),
            },
        )  # fmt: skip
        flagged = stage.counted_flagged(set(voter_ids))
        sources = {v: human_source(flagged[v]) for v in set(voter_ids)}
        a_first, cells = slot_zero_first(shown), self.cells
        counted = Counter(
            zip(
                map(sources.__getitem__, voter_ids),
                categories,
                a_ids,
                b_ids,
                winners,
                strict=True,
            )
        )
        for (source, category, a, b, winner), count in counted.items():
            cell = (source, category, a, b, winner, a_first)
            cells[cell] = cells.get(cell, 0) + count
        self.report.judgments += n
        self.report.votes += n
        stage.write(matches, slots, judgments, Rows(JUDGMENT_COLUMNS, []))
        self.report.matches += n

    def _votes_fit(self, votes: VoteColumns) -> bool:
        """Whether the columns' text fits its columns (:meth:`_check_limits`'s checks, each
        distinct name once per import, the match ids as one text)."""
        size, fine = _max_lengths(), self.fine
        ids = votes.match_ids
        if max(map(len, ids)) > size["match_id"] or unstorable("".join(ids)):
            return False
        for name, values, limit in (
            ("contestants", set(votes.model_a) | set(votes.model_b), size["contestant"]),
            ("voter", set(votes.voters), size["voter"]),
            ("category", set(votes.categories), size["match_category"]),
            ("language", set(votes.languages), size["match_language"]),
        ):
            for value in values:
                if (value, name) in fine:
                    continue
                if len(value) > limit or unstorable(value):
                    return False
                if name == "voter" and own_label(value):
                    return False
                fine.add((value, name))
        return True

    def _store_judgments(self, records: list[JudgmentRecord]) -> None:
        """One batch of judgments, set-based (:mod:`arena.importers.bulk`): the batch is
        checked and keyed here, what of it is stored is found by a few index probes, and
        the new rows are written straight in."""
        contestants = self._contestant_ids({name for r in records for name in r.contestants})
        labels = {r.voter for r in records if r.voter}
        voters = self._voter_ids(labels)
        if labels & self.own_voters:
            r = next(r for r in records if r.voter in self.own_voters)
            raise self.error(r, "voter", _OWN_VOTER.format(r.voter))
        judges = self._judge_ids({r.judge for r in records if r.judge})
        prompts = self.prompts
        stored = self._stored_as_given(records, contestants, voters, judges)
        if stored is None:  # a re-imported batch: every row of it is stored as it is
            self.report.skipped += len(records)
            return
        first: dict[str, int] = {}  # match id -> place of its first record in the batch
        keyed: dict[tuple, JudgmentRecord] = {}  # judgment key -> its first record
        fresh = []  # (place, match id, judge id, voter id, presentation) of new keys
        shown = _shown
        for index, r in enumerate(records):
            seen = first.get(r.match_id)
            if seen is None:
                first[r.match_id] = index
                if r.prompt_id and r.prompt_id not in prompts:
                    raise self.error(r, "prompt_id", f"unknown prompt {r.prompt_id!r}")
            elif records[seen].contestants != r.contestants:
                raise self.error(
                    r,
                    "contestants",
                    f"match {r.match_id!r} was given other contestants on "
                    f"{_where(records[seen], r)}",
                )
            elif r.prompt_id and r.prompt_id not in prompts:
                raise self.error(r, "prompt_id", f"unknown prompt {r.prompt_id!r}")
            order = shown(r.presentation)
            if r.judge:
                judge_id, voter_id = judges[r.judge], None
            else:
                judge_id, voter_id = None, voters[r.voter]
            key = (r.match_id, judge_id, voter_id, order, r.repeat)
            earlier = keyed.get(key)
            if earlier is not None:
                there, mine = _verdict(earlier), _verdict(r)
                differs = _differs(there, mine)
                if differs is not None:
                    index = VERDICT.index(differs)
                    raise _Conflict(
                        self.error(r, differs, ""), r, there[index], mine[index], earlier, False
                    )
                self.report.skipped += 1
                continue
            keyed[key] = r
            fresh.append((index, r.match_id, judge_id, voter_id, order))

        stage = self.stage
        if stored:
            slots = stage.stored_slots(sorted(id_ for id_, _, _ in stored.values()))
            for ext, index in first.items():
                if ext not in stored:
                    continue
                r = records[index]
                ids = [contestants[name] for name in r.contestants]
                kept = slots.get(stored[ext][0], {})
                if stored[ext][1] != len(ids) or any(
                    kept.get(position, id_) != id_ for position, id_ in enumerate(ids)
                ):
                    raise self.error(
                        r,
                        "contestants",
                        f"match {r.match_id!r} is already stored with other contestants",
                    )
            there = stage.stored_judgments(sorted(id_ for id_, _, _ in stored.values()))
        else:
            there = {}

        # the new matches: ids, rows and slots
        new = sorted(ext for ext in first if ext not in stored)  # ids in key order
        matches, slots = [], []
        match_of = {ext: (id_, category) for ext, (id_, _, category) in stored.items()}
        outputs = {}
        wanted = {
            prompts[records[first[ext]].prompt_id] for ext in new if records[first[ext]].prompt_id
        }
        if wanted:
            outputs = stage.output_ids(sorted(wanted))
        # the batch's public ids in order: their unique index takes them as one sweep
        uids = public_ids(len(new))
        for ext, id_, uid in zip(new, stage.match_ids(len(new)), uids, strict=True):
            r = records[first[ext]]
            prompt_id = prompts[r.prompt_id] if r.prompt_id else None
            matches.append(
                stage.match_row(id_, prompt_id, ext, len(r.contestants), r.category,
                                r.language, r.gold_winner or "", uid)
            )  # fmt: skip
            match_of[ext] = (id_, r.category)
            configs = r.output_configs  # the answer each slot showed, if named
            for position, name in enumerate(r.contestants):
                contestant = contestants[name]
                config = configs[position] if configs else ""
                output = outputs.get((prompt_id, contestant, config)) if prompt_id else None
                slots.append((id_, position, contestant, output))

        # the new judgments, and what they add to the running counts
        flagged = stage.counted_flagged({voter for *_, voter, _ in fresh if voter})
        tail = stage.judgment_tail()[1:]  # (the first, error, is the record's)
        judgments, added = [], []
        cells, zero_first = self.cells, {}
        ok_status, failed = Judgment.Status.OK.value, Judgment.Status.PARSE_FAILED.value
        # the running-count source of each judge and voter of the batch
        sources = {(judge, None): judge_source(judge) for judge in judges.values()}
        sources.update(
            ((None, v), human_source(flagged[v])) for v in {x[3] for x in fresh} - {None}
        )
        new_judgments = votes = 0
        for index, ext, judge_id, voter_id, order in fresh:
            r = records[index]
            match_id, category = match_of[ext]
            held = there.get((match_id, judge_id, voter_id, order, r.repeat)) if there else None
            if held is not None:
                stored_id, verdict = held
                mine = _verdict(r)
                differs = _differs(verdict, mine)
                if differs is not None:
                    place = VERDICT.index(differs)
                    raise _Conflict(
                        self.error(r, differs, ""),
                        r,
                        verdict[place],
                        mine[place],
                        None,
                        stored_id > self.stored_before,
                    )
                self.report.skipped += 1
                continue
            ok = _parsed(r)
            ranking = r.ranking
            row = (
                match_id, judge_id, voter_id, r.kind, ok_status if ok else r.status or failed,
                r.winner if ok else None, r.strength,
                None if ranking is None else as_json(list(ranking)),
                r.score, r.preference, order, r.repeat, r.weight, r.verdict_label[:100],
                r.raw_text, as_json(r.probabilities), as_json(r.criteria or None), r.error,
                *tail,
            )  # fmt: skip
            (added if ext in stored else judgments).append(row)
            new_judgments += 1
            votes += r.weight
            if ok and r.kind == "pairwise" and len(r.contestants) == 2:
                a, b = r.contestants
                first_shown = zero_first.get(order)
                if first_shown is None:
                    first_shown = zero_first[order] = slot_zero_first(order)
                cell = (
                    sources[judge_id, voter_id], category, contestants[a], contestants[b],
                    r.winner, first_shown,
                )  # fmt: skip
                cells[cell] = cells.get(cell, 0) + r.weight
        self.report.judgments += new_judgments
        self.report.votes += votes
        stage.write(
            Rows(MATCH_COLUMNS, matches),
            Rows(SLOT_COLUMNS, slots),
            Rows(JUDGMENT_COLUMNS, judgments),
            Rows(JUDGMENT_COLUMNS, added),
        )
        self.report.matches += len(matches)


_OWN_LABEL = (
    "{!r} has the form of the labels of this arena's own users and annotators (user:<id>, "
    "annotator:<id>): give imported voters other labels"
)
_OWN_VOTER = (
    "{!r} is a voter of this arena's own (a browser session, a logged-in user or an "
    "annotator), not an imported one: give the file's voters other labels"
)
_NO_VERDICT = (Judgment.Status.FAILED.value, Judgment.Status.PARSE_FAILED.value)
FINE_NAMES_MAX = 100_000  # judgments' name tuples remembered as checked (memory bound)
REPEAT_MAX = 32767  # Judgment.repeat is a small integer
WEIGHT_MAX = 2**31 - 1


def _verdict(r: JudgmentRecord) -> tuple:
    """The VERDICT columns :func:`_judgment` stores for a record."""
    winner = r.winner if _parsed(r) else None
    ranking = tuple(r.ranking) if r.ranking is not None else None
    return (r.kind, winner, r.strength, ranking, r.score, r.preference, r.weight)


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except (TypeError, OverflowError):
        return False


def _differs(a: tuple, b: tuple) -> str | None:
    """The first verdict field where two judgments of one key disagree (None: the same)."""
    return next((f for f, x, y in zip(VERDICT, a, b, strict=True) if x != y), None)


def _where(first: JudgmentRecord, then: JudgmentRecord) -> str:
    """``line 3``, or ``other-file.json:3`` when the earlier line is in another file."""
    return f"line {first.line}" if first.path == then.path else f"{first.path}:{first.line}"


class _Conflict(ImportRowError):
    """A judgment whose key is taken by one with another verdict; ``located`` names that line."""

    def __init__(self, base, record, there, here, earlier, from_this_file: bool):
        self.record, self.there, self.here = record, there, here
        self.earlier, self.from_this_file = earlier, from_this_file
        self.field = base.field
        super().__init__(base.path, base.line, base.field, self._message("an earlier line"))

    def _message(self, where: str) -> str:
        r = self.record
        who = f"voter {r.voter!r}" if r.voter else f"judge {r.judge!r}"
        return (
            f"conflicts with {where} (same match {r.match_id!r}, {who}, order and repeat: "
            f"{self.field} {self.there!r} there, {self.here!r} here)"
        )

    def located(self, rescan: Callable[[], Iterable] | None) -> ImportRowError:
        """The error naming the earlier line, found again in the records if need be."""
        earlier = self.earlier
        if earlier is None and self.from_this_file and rescan is not None:
            earlier = next((x for x in rescan() if self._same(x)), None)
        if earlier is not None:
            where = _where(earlier, self.record)
        elif self.from_this_file:
            where = "an earlier line"
        else:
            where = "the judgment already stored (by an earlier import)"
        return ImportRowError(self.path, self.line, self.field, self._message(where))

    def _same(self, x) -> bool:
        r = self.record
        return (
            isinstance(x, JudgmentRecord)
            and (x.match_id, x.voter, x.judge, x.presentation, x.repeat)
            == (r.match_id, r.voter, r.judge, r.presentation, r.repeat)
            and (x.path, x.line) != (r.path, r.line)
        )


def _limits(r) -> list[tuple[str, list, int]]:
    """(field, values, max characters) of a record's text that goes to a CharField."""
    size = _max_lengths()
    if isinstance(r, PromptRecord):
        return [
            ("external_id", [r.external_id], size["prompt_id"]),
            ("category", [r.category], size["prompt_category"]),
            ("language", [r.language], size["prompt_language"]),
        ]
    if isinstance(r, OutputRecord):
        return [
            ("contestant", [r.contestant], size["contestant"]),
            ("generation_config", [r.generation_config], size["config"]),
        ]
    if isinstance(r, RubricRecord):
        return [("source", [r.source], size["rubric_source"])]
    if isinstance(r, VoterRecord):
        return [("label", [r.label], size["voter"]), ("reason", [r.reason], size["flag_reason"])]
    if isinstance(r, JudgmentRecord):
        return [
            ("match_id", [r.match_id], size["match_id"]),
            ("contestants", list(r.contestants), size["contestant"]),
            ("voter", [r.voter], size["voter"]),
            ("judge", [r.judge], size["judge"]),
            ("category", [r.category], size["match_category"]),
            ("language", [r.language], size["match_language"]),
            ("presentation", [_shown(r.presentation)], size["presentation"]),
        ]
    return []


_SIZES: dict[str, int] = {}


def _max_lengths() -> dict[str, int]:
    if not _SIZES:
        for name, model, field in (
            ("prompt_id", Prompt, "external_id"),
            ("prompt_category", Prompt, "category"),
            ("prompt_language", Prompt, "language"),
            ("contestant", Contestant, "name"),
            ("config", Output, "generation_config"),
            ("match_id", Match, "external_id"),
            ("match_category", Match, "category"),
            ("match_language", Match, "language"),
            ("voter", Voter, "label"),
            ("judge", Judge, "name"),
            ("presentation", Judgment, "presentation"),
            ("rubric_source", Rubric, "source"),
            ("flag_reason", Voter, "flag_reason"),
        ):
            _SIZES[name] = model._meta.get_field(field).max_length
    return _SIZES


def _reads(scope: BoardScope, source: str, category: str) -> bool:
    """Whether a board reads a running-count cell of this source and category."""
    if scope.category not in ("", category):
        return False
    if source == "human":
        return scope.by in ("humans", "all")
    if source.startswith("judge:"):
        return scope.by in ("judges", "all", f"judge:{source.removeprefix('judge:')}")
    return False  # flagged votes are on no public board


# fields whose values repeat across a file's records (checked once each)
_NAMES = frozenset(
    ("contestant", "contestants", "voter", "judge", "category", "language", "presentation")
)


def _presentations():
    """``presentation(order)`` memoised per order (a batch has few distinct orders)."""
    memo: dict[tuple, str] = {}

    def shown(order) -> str:
        text = memo.get(order)
        if text is None:
            text = memo[order] = presentation(order)
        return text

    return shown


_shown = _presentations()


def _parsed(r: JudgmentRecord) -> bool:
    """Whether a record holds a verdict (else it is stored as a parse failure)."""
    if r.kind == "pairwise":
        return r.winner is not None
    if r.kind == "ranking":
        return r.ranking is not None
    return r.score is not None


_FAMILIES = (
    "cerebras",
    "gpt",
    "claude",
    "gemini",
    "llama",
    "mistral",
    "mixtral",
    "qwen",
    "yi",
    "command",
    "vicuna",
    "palm",
    "falcon",
    "bloom",
    "opt",
    "pythia",
    "cerebras",
    "deepseek",
    "phi",
    "gemma",
    "glm",
    "chatglm",
)


def _family(name: str) -> str:
    """A best guess from the name (editable in the admin): the family the name starts with,
    else one named after a vendor prefix ("meta/llama-3" -> llama). "cerebras-gpt" is Cerebras'."""
    lowered = name.lower().rsplit("/", 1)[-1]
    if lowered.startswith("chatgpt"):
        return "gpt"
    starts = [family for family in _FAMILIES if lowered.startswith(family)]
    if starts:
        return max(starts, key=len)
    inner = [family for family in _FAMILIES if f"-{family}" in lowered]
    return inner[0] if inner else ""
