"""Set-based storage of judgment batches: a few index probes, then rows written straight in.

The loader (:mod:`arena.importers.loader`) keys each batch of judgment records and asks the
:class:`Stager` what of it is stored, with one statement per table whatever the batch's
size, each a probe of a unique or foreign-key index by each of the batch's keys, given
as one JSON array (the keys as the outer loop, see :meth:`Stager._probe`):

1. the batch's matches already stored (by set, source and external id): their id, slot
   count and category;
2. the slots of those matches (a match stored with other contestants is an error of its
   line);
3. the judgments of those matches (a key stored with another verdict is a conflict; one
   stored with the same verdict is skipped).

The new rows are then written as they are, without a join: the new matches take ids
allocated up front (PostgreSQL: the id sequence's ``nextval``; SQLite, which holds the
write lock for the whole transaction: the ids above the largest one), and go in with their
slots and judgments by ``COPY`` (PostgreSQL) or one ``executemany`` each (SQLite). Nothing
joins the batch to the big tables, so no plan depends on their statistics: nothing here
runs ``ANALYZE`` or turns a join method off, and the caller's transaction goes on with the
planner as it was. A batch's new matches take consecutive ids in the order of their keys,
so the stored rows of a batch imported before are one range of ids: they are read as a
range of the primary key or of ``match_id`` (nothing else in the statement for a planner
to pick) when the ids are about as many as their range, and a re-imported batch of votes
is first compared as that range, each table's columns aggregated to one text in the
database (:meth:`Stager.votes_stored`). Else a re-imported batch (every key stored, same
verdicts) is found so as a whole, by three probes compared with the batch as sets
(:meth:`Stager.stored_lineups`, :meth:`Stager.stored_verdicts`), and writes nothing.

Everything runs inside the caller's transaction: a file is stored whole or not at all.
Imports take turns (PostgreSQL: an advisory lock held to the end of the transaction,
:data:`IMPORT_LOCK`; SQLite: its one writer), so a second import of the same file finds the
first's rows stored and skips them; the unique keys stay the guard. On PostgreSQL a role allowed to set
``session_replication_role`` skips the per-row foreign-key triggers for the rows of new
matches (``SET LOCAL``): their references are checked set-wise instead (the batch's
contestants, voters, judges, prompts and outputs are locked ``FOR KEY SHARE`` once each,
what each trigger would do row by row; the new slots and judgments point at matches this
transaction made); judgments added to matches stored before are left to the triggers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

MATCH_COLUMNS = (
    "id", "public_id", "prompt_set_id", "prompt_id", "origin", "source", "external_id", "k",
    "category", "language", "policy", "gold_winner", "created_at",
)  # fmt: skip
SLOT_COLUMNS = ("match_id", "position", "contestant_id", "output_id")
JUDGMENT_COLUMNS = (
    "match_id", "judge_id", "voter_id", "kind", "status", "winner", "strength", "ranking",
    "score", "preference", "presentation", "repeat", "weight", "verdict_label", "raw_text",
    "probabilities", "criteria", "error", "idempotency_key", "content_key", "created_at",
)  # fmt: skip
# the columns that say what a judgment says (a stored key with others is a conflict)
VERDICT = ("kind", "winner", "strength", "ranking", "score", "preference", "weight")
PROBE = 20_000  # keys per probe statement


# The key of the imports' pg_advisory_xact_lock ("ARIMPORT").
IMPORT_LOCK = int.from_bytes(b"ARIMPORT") >> 1


def public_ids(n: int) -> list[str]:
    """``n`` ids as 32 hex digits, sorted (Match.public_id): the time in milliseconds (12
    digits), then 80 random bits. Unguessable, as a public id must be, and ordered by time:
    a batch's ids go into their unique index after every earlier batch's, as appends,
    rather than scattered over the whole index (random ids left the import writing index
    pages all over it once it outgrew the server's buffers)."""
    now = f"{time.time_ns() // 1_000_000:012x}"
    blob = os.urandom(10 * n).hex()
    return sorted(now + blob[20 * i : 20 * i + 20] for i in range(n))


def as_json(value) -> str | None:
    """A JSON column's text as Django's JSONField writes it (None stays NULL)."""
    return None if value is None else json.dumps(value)


class Rows(NamedTuple):
    """New rows of one table: ``values`` a tuple a row in the order of ``columns``, and
    the ``fixed`` columns' one value for every row (SQLite binds only the others, a third
    of its time on a battle log's judgments; ``COPY`` sends them on each row)."""

    columns: tuple[str, ...]
    values: list[tuple]
    fixed: dict[str, object] = {}

    def referenced(self, column: str) -> set:
        """The distinct values of ``column`` in these rows, NULL left out."""
        if not self.values:
            return set()
        if column in self.fixed:
            return {self.fixed[column]} - {None}
        if column not in self.columns:
            return set()
        k = self.columns.index(column)
        return {row[k] for row in self.values} - {None}


class Stager:
    """The probes and writes of one import's batches, for one prompt set and source.

    Used as a context manager around the import's work in its transaction. On PostgreSQL a
    batch's rows are written by a thread of the Stager's (:meth:`write` returns at once),
    on the caller's connection through its driver, while the caller reads and keys the
    next batch: the server's work (``COPY``'s parsing and index entries) and the caller's
    Python overlap. (SQLite writes in the caller's thread: its driver lets go of Python's
    lock around each row, and a writing thread beside the keying handed it over once a
    row, slower than no thread: 78 s against 74 s for 1.67M battles.) Any statement of the
    caller's on the connection first waits for the write (an execute wrapper of the
    connection's), and raises its error, so nothing reads a half-written batch or uses the
    connection beside the writer; leaving the context waits for it too.
    ``ids_ahead``: the most new matches a batch may have (on PostgreSQL a write reserves
    that many ids for the next batch, so that keying it asks the database for nothing;
    reserved ids left unused are gaps, as after a rollback)."""

    def __init__(self, prompt_set_id: int, source: str, ids_ahead: int = 0):
        self.prompt_set_id, self.source = prompt_set_id, source
        self.ids_ahead = ids_ahead
        self._ids: list[int] = []  # PostgreSQL: match ids reserved for the next batch
        self._ids_from = 0  # SQLite: the next match id to give (0: not looked up yet)
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self._wrapped = None
        self.postgres = connection.vendor == "postgresql"
        self.now = timezone.now()
        # the rows' created_at as the database takes it as text (not converted per row)
        self.created_at = (
            self.now.isoformat()
            if self.postgres
            else connection.ops.adapt_datetimefield_value(self.now)
        )
        self.fast_keys = False
        self.flagged: dict[int, bool] = {}  # voter id -> counted as flagged
        with connection.cursor() as cursor:
            if self.postgres:
                # One import at a time (held to the end of the transaction): a second import
                # of the same rows waits, then finds them stored and skips them, instead of
                # failing on the unique keys (its matches', or the contestants' and voters'
                # names two imports add at once) that its probes could not see. SQLite's
                # IMMEDIATE transaction already takes one writer at a time.
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK])
                cursor.execute(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                    " UNION ALL SELECT has_parameter_privilege("
                    "'session_replication_role', 'SET')"
                )
                self.fast_keys = any(row[0] for row in cursor.fetchall())
                # looked up once: per row it took nine tenths of the ids' time
                cursor.execute("SELECT pg_get_serial_sequence('arena_match', 'id')")
                self.match_sequence = cursor.fetchone()[0]
            else:
                cursor.execute("PRAGMA cache_size = -262144")  # 256 MB of pages
        self._driver = connection.connection  # the driver's connection, for the writer

    def __enter__(self) -> Stager:
        self._wrapped = connection.execute_wrapper(self._after_the_write)
        self._wrapped.__enter__()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if error is None:
                self.settle()
            elif self._pending is not None:  # the caller's error wins; the write is awaited
                self._pending.exception()
                self._pending = None
        finally:
            if self._writer is not None:
                self._writer.shutdown()
            self._wrapped.__exit__(None, None, None)

    def _after_the_write(self, execute, sql, params, many, context):
        self.settle()
        return execute(sql, params, many, context)

    def settle(self) -> None:
        """Wait for the batch being written; its error (as Django's) is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with connection.wrap_database_errors:
                pending.result()

    # --- probes ----------------------------------------------------------------------------
    def _probe(self, columns: str, table: str, where: str, cast: str = "") -> str:
        """A SELECT of ``columns`` of the rows ``t`` of ``table`` that ``where`` finds for
        each key of a list given as one JSON array parameter (``key``: the key; ``cast``: its
        PostgreSQL type, text if not given). The keys are the outer loop and each one probes
        the table's index, whatever the planner knows of the table: a LATERAL subquery
        behind ``OFFSET 0`` (not flattened into a join) on PostgreSQL, ``CROSS JOIN`` (the
        left table outside) on SQLite. The database reads the JSON: adapting each value by
        the driver took longer than the probe."""
        if self.postgres:
            key = "probe.value" + (f"::{cast}" if cast else "")
            return (
                f"SELECT {columns} FROM json_array_elements_text(%s::json) AS probe(value) "
                f"CROSS JOIN LATERAL (SELECT * FROM {table} t WHERE "
                f"{where.format(key=key)} OFFSET 0) t"
            )
        return (
            f"SELECT {columns} FROM json_each(%s) AS probe CROSS JOIN {table} t "
            f"ON {where.format(key='probe.value')}"
        )

    def _rows(self, sql: str, keys: list, params: tuple = ()) -> Iterable[tuple]:
        """The rows of ``sql`` for ``keys``, PROBE at a time (the keys' JSON is its first
        parameter, ``params`` the others)."""
        with connection.cursor() as cursor:
            for start in range(0, len(keys), PROBE):
                cursor.execute(sql, [json.dumps(keys[start : start + PROBE]), *params])
                yield from cursor.fetchall()

    def _of_matches(self, columns: str, table: str, match_ids: list[int]) -> Iterable[tuple]:
        """The rows (``columns``, the first ``t.match_id``) of ``table`` whose match is one
        of ``match_ids`` (sorted, distinct). A batch's matches were given consecutive ids,
        so when the ids are about as many as their range, the range is read from the
        match_id index in one sweep (the rows of other matches in it dropped); else each
        id is probed (:meth:`_probe`)."""
        if not match_ids:
            return []
        lo, hi = match_ids[0], match_ids[-1]
        if hi - lo >= 2 * len(match_ids):
            return self._rows(
                self._probe(columns, table, "t.match_id = {key}", "bigint"), match_ids
            )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {table} t WHERE t.match_id BETWEEN %s AND %s", [lo, hi]
            )
            rows = cursor.fetchall()
        if hi - lo + 1 == len(match_ids):  # every id of the range is one of them
            return rows
        wanted = set(match_ids)
        return [row for row in rows if row[0] in wanted]

    def _span(self, keys: list[str]) -> tuple[int, int] | None:
        """(smallest id, largest id) of the stored matches of the smallest and the largest of
        ``keys`` (sorted), None unless both are stored."""
        ends = sorted({keys[0], keys[-1]})
        ids = [row[0] for row in self._matches_by_key("t.id", ends)]
        return (min(ids), max(ids)) if len(ids) == len(ends) else None

    def stored_matches(self, exts: list[str]) -> dict[str, tuple[int, int, str]]:
        """External id -> (id, slot count, category) of the stored matches among ``exts``
        (distinct). A batch imported before was given consecutive ids in the order of its
        external ids (the loader sorts it): if the ids of its smallest and largest key span
        every key, that range is read from the primary key in one sweep. Else each key is
        probed in sorted order: the lookups walk the index once, leaf after leaf, rather
        than at random (a log's battle ids are random)."""
        keys = sorted(exts)
        if not keys:
            return {}
        where = (self.prompt_set_id, self.source)
        span = self._span(keys)
        if span is not None and span[1] - span[0] < 2 * len(keys):
            with connection.cursor() as cursor:
                # by the primary key alone: nothing else for a planner to pick
                cursor.execute(
                    "SELECT t.external_id, t.id, t.k, t.category, t.prompt_set_id, "
                    "t.source FROM arena_match t WHERE t.id BETWEEN %s AND %s",
                    list(span),
                )
                rows = cursor.fetchall()
            wanted = set(keys)
            found = {
                ext: (id_, k, c)
                for ext, id_, k, c, *of in rows
                if ext in wanted and tuple(of) == where
            }
            if len(found) == len(keys):
                return found
        rows = self._matches_by_key("t.external_id, t.id, t.k, t.category", keys)
        return {ext: (id_, k, c) for ext, id_, k, c in rows}

    def _matches_by_key(self, columns: str, keys: list[str]) -> Iterable[tuple]:
        """``columns`` of this set and source's stored matches of ``keys``, each probed (in
        the form of the partial unique index, so both databases probe it)."""
        sql = self._probe(
            columns,
            "arena_match",
            "t.prompt_set_id = %s AND t.source = %s AND t.external_id = {key} "
            "AND NOT (t.external_id = '')",
        )
        return self._rows(sql, keys, (self.prompt_set_id, self.source))

    def votes_stored(self, keys, a_ids, b_ids, voter_ids, winners, shown: str) -> bool:
        """Whether a batch of votes (``keys`` sorted, the other columns in their order) is
        stored as a batch of votes is written: its matches the ids lo..hi of one range in
        the order of their keys (this set and source, two slots), their slots the votes'
        contestants, each match one judgment, the vote's (voter, winner, the rest as
        ``Loader._store_votes`` writes it). Each table's rows of the range are read as one
        text (:meth:`_texts`: an expression of the row, a line each) and compared with the
        batch's columns joined alike; False for anything else (not stored, stored
        otherwise, other rows in the range, a key with a line break), which the caller
        compares row by row.
        """
        n, lines = len(keys), "\n".join(keys)
        if lines.count("\n") != n - 1:  # (a key with a line break would blur the lines)
            return False
        span = self._span(keys)
        if span is None or span[1] - span[0] + 1 != n:
            return False
        lo, hi = span
        text = "\n".join
        # n rows ordered by id in a range of n ids: the i-th is lo + i (the keys are distinct)
        if self._texts(
            ["t.external_id"],
            "t.prompt_set_id = %s AND t.source = %s AND t.k = 2",
            "arena_match t WHERE t.id BETWEEN %s AND %s",
            "t.id",
            [self.prompt_set_id, self.source, lo, hi],
        ) != ([lines], n, n):
            return False
        # Slots: (match, position) is unique, so 2n slots of the n matches, each at
        # position 0 or 1, are both slots of each; their contestants in (match, position)
        # order are then the votes' (a, b) in turn. One text a table: each text's order is
        # a sort in the database.
        if self._texts(
            ["t.contestant_id"],
            "t.output_id IS NULL AND t.position IN (0, 1)",
            "arena_matchslot t WHERE t.match_id BETWEEN %s AND %s",
            "t.match_id, t.position",
            [lo, hi],
        ) != ([text(map(str, chain.from_iterable(zip(a_ids, b_ids, strict=True))))], 2 * n, 2 * n):
            return False
        return self._texts(
            ["t.match_id || ' ' || t.voter_id || ' ' || t.winner"],
            "t.judge_id IS NULL AND t.presentation = %s AND t.repeat = 0 "
            "AND t.kind = 'pairwise' AND t.strength = 1 AND t.ranking IS NULL "
            "AND t.score IS NULL AND t.preference IS NULL AND t.weight = 1",
            "arena_judgment t WHERE t.match_id BETWEEN %s AND %s",
            "t.match_id",
            [shown, lo, hi],
        ) == (
            [text(map("{} {} {}".format, range(lo, hi + 1), voter_ids, winners))],
            n,
            n,
        )

    def _texts(self, columns: list[str], fits: str, rows: str, order: str, params) -> tuple:
        """([each of ``columns`` of ``rows`` (a FROM clause) in ``order``, as one text, a
        line a row], how many rows, how many of them ``fits``), aggregated in the database:
        no row is handed over. PostgreSQL's ``string_agg`` takes the order; SQLite's
        ``group_concat`` reads the rows of a subquery in its order (not promised: the
        callers read columns that show the order, each row's distinct key among them, so
        rows in another order compare unequal)."""
        if self.postgres:
            texts = ", ".join(f"string_agg(({c})::text, E'\\n' ORDER BY {order})" for c in columns)
            sql = f"SELECT {texts}, count(*), count(CASE WHEN {fits} THEN 1 END) FROM {rows}"
        else:
            texts = ", ".join(f"group_concat(c{k}, char(10))" for k in range(len(columns)))
            named = ", ".join(f"{c} AS c{k}" for k, c in enumerate(columns))
            sql = (
                f"SELECT {texts}, count(*), count(fit) FROM (SELECT {named}, "
                f"CASE WHEN {fits} THEN 1 END AS fit FROM {rows} ORDER BY {order})"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            *texts, count, fit = cursor.fetchone()
        return [text or "" for text in texts], count, fit

    def stored_slots(self, match_ids: list[int]) -> dict[int, dict[int, int]]:
        """Match id -> {position: contestant id} of stored matches."""
        slots: dict[int, dict[int, int]] = {}
        columns = "t.match_id, t.position, t.contestant_id"
        rows = self._of_matches(columns, "arena_matchslot", match_ids)
        for match_id, position, contestant_id in rows:
            slots.setdefault(match_id, {})[position] = contestant_id
        return slots

    def stored_lineups(self, match_ids: list[int]) -> set[tuple[int, int, int]]:
        """(match id, position, contestant id) of every slot of stored matches."""
        return set(
            self._of_matches(
                "t.match_id, t.position, t.contestant_id", "arena_matchslot", match_ids
            )
        )

    def stored_verdicts(self, match_ids: list[int]) -> set[tuple]:
        """(match id, judge id, voter id, presentation, repeat, *VERDICT) of every judgment
        of stored matches, as the database hands them over (the ranking as its JSON text):
        what a re-imported batch is compared with as a whole (the loader's
        ``_stored_as_given``)."""
        ranking = "t.ranking::text" if self.postgres else "t.ranking"
        columns = "t.match_id, t.judge_id, t.voter_id, t.presentation, t.repeat, " + ", ".join(
            ranking if c == "ranking" else f"t.{c}" for c in VERDICT
        )
        return set(self._of_matches(columns, "arena_judgment", match_ids))

    def stored_judgments(self, match_ids: list[int]) -> dict[tuple, tuple[int, tuple]]:
        """(match id, judge id, voter id, presentation, repeat) -> (id, VERDICT values) of
        the judgments of stored matches (a JSON ranking as a tuple)."""
        columns = "t.match_id, t.judge_id, t.voter_id, t.presentation, t.repeat, t.id, " + (
            ", ".join(f"t.{c}" for c in VERDICT)
        )
        ranking = VERDICT.index("ranking")
        stored = {}
        for row in self._of_matches(columns, "arena_judgment", match_ids):
            verdict = list(row[6:])
            value = verdict[ranking]
            if isinstance(value, str):  # SQLite hands JSON over as text
                value = json.loads(value)
            verdict[ranking] = tuple(value) if value is not None else None
            stored[row[:5]] = (row[5], tuple(verdict))
        return stored

    def output_ids(self, prompt_ids: list[int]) -> dict[tuple[int, int, str], int]:
        """(prompt id, contestant id, generation config) -> id of the prompts' outputs."""
        sql = self._probe(
            "t.prompt_id, t.contestant_id, t.generation_config, t.id",
            "arena_output",
            "t.prompt_id = {key}",
            "bigint",
        )
        return {row[:3]: row[3] for row in self._rows(sql, prompt_ids)}

    def counted_flagged(self, voter_ids: set[int]) -> dict[int, bool]:
        """Voter id -> whether the voter's votes are counted as flagged (cached)."""
        missing = sorted(voter_ids - self.flagged.keys())
        if missing:
            sql = self._probe("t.id, t.counted_flagged", "arena_voter", "t.id = {key}", "bigint")
            self.flagged.update((id_, bool(f)) for id_, f in self._rows(sql, missing))
        return self.flagged

    # --- writing ---------------------------------------------------------------------------
    def match_ids(self, n: int) -> list[int]:
        """``n`` consecutive ids for new matches. PostgreSQL: the ones the last write
        reserved if they are enough, else new ones."""
        if not n:
            return []
        if not self.postgres or len(self._ids) < n:
            return self._new_ids(n)
        ids, self._ids = self._ids[:n], self._ids[n:]
        return ids

    def _new_ids(self, n: int) -> list[int]:
        """``n`` ids for new matches, taken now. PostgreSQL: from the id sequence, so
        another writer's rows take others. SQLite, which holds the write lock for the
        import: the ones after the largest id (looked up once), then after the last given."""
        if self.postgres:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                    [self.match_sequence, n],
                )
                return [row[0] for row in cursor.fetchall()]
        if not self._ids_from:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT max(coalesce((SELECT max(id) FROM arena_match), 0), coalesce("
                    "(SELECT seq FROM sqlite_sequence WHERE name = 'arena_match'), 0))"
                )
                self._ids_from = cursor.fetchone()[0] + 1
        first, self._ids_from = self._ids_from, self._ids_from + n
        return list(range(first, first + n))

    def match_row(self, id_, prompt_id, ext, k, category, language, gold_winner, uid) -> tuple:
        """A new match's row in MATCH_COLUMNS order."""
        return (
            id_, uid, self.prompt_set_id, prompt_id, "import", self.source, ext, k, category,
            language, "", gold_winner, self.created_at,
        )  # fmt: skip

    def judgment_tail(self) -> tuple:
        """The last columns of a new judgment's row (error, keys, created_at)."""
        return ("", "", "", self.created_at)

    def write(self, matches: Rows, slots: Rows, judgments: Rows, added: Rows) -> None:
        """Store new matches, their slots and judgments, and ``added`` judgments of matches
        stored before; on PostgreSQL by the writer thread (see the class): this returns once
        the last batch's write is through and this one's has started. Before it starts, the
        ids of the next batch's new matches are reserved (while the connection is free)."""
        self.settle()
        if not self.postgres:
            with connection.wrap_database_errors:  # (raised as Django's, as settle does)
                self._write(matches, slots, judgments, added)
            return
        if self.ids_ahead and len(self._ids) < self.ids_ahead:
            self._ids = self._new_ids(self.ids_ahead)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arena-import")
        self._pending = self._writer.submit(self._write, matches, slots, judgments, added)

    def _write(self, matches: Rows, slots: Rows, judgments: Rows, added: Rows) -> None:
        """:meth:`write`'s work (in the writer thread on PostgreSQL), by the driver's own
        cursor."""
        fast_keys = self.fast_keys and bool(matches.values or judgments.values)
        cursor = self._driver.cursor()
        try:
            if fast_keys:
                self._lock_references(cursor, matches, slots, judgments)
                cursor.execute("SET LOCAL session_replication_role = replica")
            self._put(cursor, "arena_match", matches)
            self._put(cursor, "arena_matchslot", slots)
            self._put(cursor, "arena_judgment", judgments)
            # (a refused row aborts the transaction: its rollback undoes the SET LOCAL, and
            # a statement here would only hide the refusal behind "transaction aborted")
            if fast_keys:
                cursor.execute("SET LOCAL session_replication_role = origin")
            # judgments of matches stored before this batch: the triggers check them
            self._put(cursor, "arena_judgment", added)
        finally:
            cursor.close()

    def _put(self, cursor, table: str, rows: Rows) -> None:
        if not rows.values:
            return
        columns = ", ".join((*rows.columns, *rows.fixed))
        if self.postgres:
            fixed = tuple(rows.fixed.values())
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                write = copy.write_row
                if fixed:
                    for row in rows.values:
                        write(row + fixed)
                else:
                    for row in rows.values:
                        write(row)
        else:
            quote = connection.schema_editor().quote_value  # (the import's own values)
            marks = ", ".join(("?",) * len(rows.columns) + tuple(map(quote, rows.fixed.values())))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows.values)

    def _lock_references(self, cursor, matches: Rows, slots: Rows, judgments: Rows) -> None:
        """What the foreign-key triggers would do per row, once per referenced row."""
        cursor.execute(
            "SELECT 1 FROM arena_promptset WHERE id = %s FOR KEY SHARE", [self.prompt_set_id]
        )
        for table, rows, column in (
            ("arena_prompt", matches, "prompt_id"),
            ("arena_contestant", slots, "contestant_id"),
            ("arena_output", slots, "output_id"),
            ("judges_judge", judgments, "judge_id"),
            ("arena_voter", judgments, "voter_id"),
        ):
            ids = sorted(rows.referenced(column))
            if ids:
                cursor.execute(
                    f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE id = ANY(%s) "
                    "FOR KEY SHARE) locked",
                    [ids],
                )
