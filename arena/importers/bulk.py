"""Set-based storage of judgment batches: staging tables, then a few INSERT ... SELECT.

The loader (:mod:`arena.importers.loader`) hands each batch over as rows for three
TEMP staging tables (its matches, their slots, its judgments); :class:`Stager` loads them
(PostgreSQL: ``COPY``; SQLite: one ``executemany`` each) and stores the batch with a
handful of statements whatever its size:

1. the batch's matches already stored with other contestants (an error of their line);
2. its judgments whose key (match, judge or voter, presentation, repeat) is already
   stored with another verdict (a conflict, named by the loader);
3. ``INSERT INTO arena_match ... SELECT ... ON CONFLICT DO NOTHING``: the new matches;
4. their slots (new matches only: a stored match keeps its slots), with the output of
   each slot's contestant for the match's prompt (the answer the record names by its
   ``output_configs``, else the contestant's only one, ``generation_config = ''``);
5. ``INSERT INTO arena_judgment ... ON CONFLICT DO NOTHING`` (a stored key is skipped),
   and the just-inserted judgments grouped into running-count cells in the same pass
   (PostgreSQL: the insert's ``RETURNING`` rows; SQLite, which holds the write lock for the
   whole transaction: the rows above the id the batch started from).

Everything runs inside the caller's transaction: a file is stored whole or not at all.
On PostgreSQL a role allowed to set ``session_replication_role`` skips the per-row
foreign-key triggers for the batch (``SET LOCAL``): every reference is then checked set-wise
instead (the stage's contestants, voters, judges, prompts and outputs are locked ``FOR KEY
SHARE`` once each, what each trigger would do row by row; the new slots and the judgments
of new matches point at matches this transaction made; judgments added to matches stored
before are left to the triggers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

MATCH_COLUMNS = ("line", "ext", "uid", "prompt_id", "k", "category", "language", "gold_winner")
SLOT_COLUMNS = ("ext", "position", "contestant_id", "config")
JUDGMENT_COLUMNS = (
    "line", "ext", "judge_id", "voter_id", "kind", "status", "winner", "strength", "ranking",
    "score", "preference", "presentation", "repeat", "weight", "verdict_label", "raw_text",
    "probabilities",
)  # fmt: skip

_TYPES = {
    "line": "integer",
    "ext": "text",
    "uid": "text",
    "prompt_id": "bigint",
    "k": "integer",
    "category": "text",
    "language": "text",
    "gold_winner": "text",
    "position": "integer",
    "contestant_id": "bigint",
    "config": "text",
    "judge_id": "bigint",
    "voter_id": "bigint",
    "kind": "text",
    "status": "text",
    "winner": "text",
    "strength": "integer",
    "ranking": "text",
    "score": "double precision",
    "preference": "double precision",
    "presentation": "text",
    "repeat": "integer",
    "weight": "integer",
    "verdict_label": "text",
    "raw_text": "text",
    "probabilities": "text",
}


def public_ids(n: int) -> list[str]:
    """``n`` random 128-bit ids as 32 hex digits (Match.public_id: unguessable)."""
    blob = os.urandom(16 * n).hex()
    return [blob[32 * i : 32 * i + 32] for i in range(n)]


def as_json(value) -> str | None:
    """A JSON column's text as Django's JSONField writes it (None stays NULL)."""
    return None if value is None else json.dumps(value)


@dataclass
class Stored:
    """What one batch stored: new rows, and the new judgments grouped by running-count cell."""

    matches: int = 0
    judgments: int = 0
    votes: int = 0
    # (judge_id, voter counted as flagged, category, contestant a, contestant b, winner,
    #  presentation) -> votes, for OK pairwise judgments of two-slot matches
    cells: dict | None = None


class Stager:
    """The staging tables of one import and the statements that store a batch from them."""

    def __init__(self, prompt_set_id: int, source: str):
        self.prompt_set_id, self.source = prompt_set_id, source
        self.postgres = connection.vendor == "postgresql"
        self.now = timezone.now()
        self.fast_keys = False
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute("SET LOCAL work_mem = '256MB'")
                # Every join of a batch goes from its few rows to the big tables by index
                # probes: a hash or merge join would read the whole of arena_match and
                # arena_matchslot for each batch.
                cursor.execute("SET LOCAL enable_hashjoin = off")
                cursor.execute("SET LOCAL enable_mergejoin = off")
                cursor.execute(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                    " UNION ALL SELECT has_parameter_privilege("
                    "'session_replication_role', 'SET')"
                )
                self.fast_keys = any(row[0] for row in cursor.fetchall())
            else:
                cursor.execute("PRAGMA cache_size = -262144")  # 256 MB of pages
            for name, columns in self._tables():
                cursor.execute(f"DROP TABLE IF EXISTS {self._temp(name)}")
                typed = ", ".join(f"{c} {_TYPES[c]}" for c in columns)
                suffix = " ON COMMIT DROP" if self.postgres else ""
                cursor.execute(f"CREATE TEMP TABLE {name} ({typed}){suffix}")
            # probed by nested loops
            for name, _ in self._tables():
                cursor.execute(f"CREATE INDEX {self._temp(name)}_ext ON {name} (ext)")
        self.grown = 0  # matches stored since the tables' statistics were taken
        self.known = self._analyze()

    def _analyze(self) -> int:
        """PostgreSQL: statistics of the tables the batches join (a plan made for an empty
        table scans it once per staged row); the matches they count. Taken again whenever
        the import has doubled the matches, so a few times per import."""
        if not self.postgres:
            return 0
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE arena_match, arena_matchslot, arena_judgment")
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'arena_match'::regclass")
            return max(int(cursor.fetchone()[0]), 0)

    def _tables(self):
        return (
            ("stage_match", MATCH_COLUMNS),
            ("stage_slot", SLOT_COLUMNS),
            ("stage_judgment", JUDGMENT_COLUMNS),
        )

    def _temp(self, name: str) -> str:
        return name if self.postgres else f"temp.{name}"

    def close(self) -> None:
        """Drop the staging tables (SQLite keeps TEMP tables for the connection's life) and,
        on PostgreSQL, give the planner its joins back: ``SET LOCAL`` lasts until the
        transaction ends, and the caller's transaction may go on after the import (a test's,
        or a command that does more in the same one)."""
        with connection.cursor() as cursor:
            if self.postgres:
                for setting in ("work_mem", "enable_hashjoin", "enable_mergejoin"):
                    cursor.execute(f"RESET {setting}")
                # Statistics of the tables as the import leaves them: the ones taken while
                # it ran may say "empty" (pg_class's row estimates are kept even if the
                # transaction rolls back), and would plan later reads as nested loops.
                cursor.execute("ANALYZE arena_match, arena_matchslot, arena_judgment")
            for name, _ in self._tables():
                cursor.execute(f"DROP TABLE IF EXISTS {self._temp(name)}")

    # --- loading ---------------------------------------------------------------------------
    def load(self, matches: list[tuple], slots: list[tuple], judgments: list[tuple]) -> None:
        """Replace the stage's rows with one batch's (tuples in the *_COLUMNS order)."""
        if self.postgres and self.grown > max(self.known, 10_000):
            self.grown, self.known = 0, self._analyze()
        with connection.cursor() as cursor:
            for (name, columns), rows in zip(
                self._tables(), (matches, slots, judgments), strict=True
            ):
                cursor.execute(f"{'TRUNCATE' if self.postgres else 'DELETE FROM'} {name}")
                if not rows:
                    continue
                if self.postgres:
                    with cursor.cursor.copy(
                        f"COPY {name} ({', '.join(columns)}) FROM STDIN"
                    ) as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(columns))
                    cursor.cursor.executemany(f"INSERT INTO temp.{name} VALUES ({marks})", rows)
            if self.postgres:
                cursor.execute("ANALYZE stage_match, stage_slot, stage_judgment")

    # --- checks ----------------------------------------------------------------------------
    def _stored_match(self, alias: str, ext: str) -> str:
        """The join condition of a stored match of this set and source with external id ``ext``
        (in the form of the partial unique index, so SQLite uses it)."""
        return (
            f"{alias}.prompt_set_id = %s AND {alias}.source = %s AND {alias}.external_id = {ext} "
            f"AND NOT ({alias}.external_id = '')"
        )

    def _join(self) -> str:
        """An inner join that keeps the stage as the outer loop (SQLite's CROSS JOIN)."""
        return "JOIN" if self.postgres else "CROSS JOIN"

    def clashing_match(self) -> int | None:
        """The place in the batch of its first match stored before with other contestants
        (the stage's ``line`` is the record's place in its batch: file order)."""
        key = [self.prompt_set_id, self.source]
        join = self._join()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT min(s.line) FROM stage_match s {join} arena_match m "
                f"ON {self._stored_match('m', 's.ext')} WHERE m.k <> s.k",
                key,
            )
            line = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT min(s.line) FROM stage_slot ss {join} stage_match s ON s.ext = ss.ext "
                f"{join} arena_match m ON {self._stored_match('m', 's.ext')} "
                f"{join} arena_matchslot ms ON ms.match_id = m.id AND ms.position = ss.position "
                "WHERE ms.contestant_id <> ss.contestant_id",
                key,
            )
            slot_line = cursor.fetchone()[0]
        lines = [x for x in (line, slot_line) if x is not None]
        return min(lines) if lines else None

    def conflicting_judgment(self, verdict: tuple[str, ...]) -> tuple[int, int] | None:
        """(place in the batch, stored judgment id) of the batch's first judgment whose key
        is stored with another verdict (the ``verdict`` columns compared)."""
        if self.postgres:
            differs = " OR ".join(f"j.{c} IS DISTINCT FROM {self._cast(c)}" for c in verdict)
        else:  # JSON compared as SQLite's json() writes it
            differs = " OR ".join(
                f"json(j.{c}) IS NOT json(s.{c})" if c == "ranking" else f"j.{c} IS NOT s.{c}"
                for c in verdict
            )
        join = self._join()
        found = []
        with connection.cursor() as cursor:
            for who in ("voter_id", "judge_id"):
                cursor.execute(
                    f"SELECT s.line, j.id FROM stage_judgment s {join} arena_match m "
                    f"ON {self._stored_match('m', 's.ext')} {join} arena_judgment j "
                    f"ON j.match_id = m.id AND j.{who} = s.{who} AND j.{who} IS NOT NULL "
                    "AND j.presentation = s.presentation AND j.repeat = s.repeat "
                    f"WHERE s.{who} IS NOT NULL AND ({differs}) ORDER BY s.line LIMIT 1",
                    [self.prompt_set_id, self.source],
                )
                row = cursor.fetchone()
                if row:
                    found.append(row)
        return min(found) if found else None

    def _cast(self, column: str) -> str:
        """The stage's column as the judgment table holds it (JSON text -> jsonb)."""
        if self.postgres and column in ("ranking", "probabilities"):
            return f"s.{column}::jsonb"
        return f"s.{column}"

    # --- storing ---------------------------------------------------------------------------
    def store(self) -> Stored:
        """Insert the batch's new matches, their slots and the new judgments."""
        stored = Stored()
        set_key = [self.prompt_set_id, self.source]
        join = self._join()
        with connection.cursor() as cursor:
            if self.fast_keys:
                self._lock_references(cursor)
                cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("SELECT coalesce(max(id), 0) FROM arena_match")
            last_match = cursor.fetchone()[0]
            uid = "s.uid::uuid" if self.postgres else "s.uid"
            cursor.execute(
                "INSERT INTO arena_match (public_id, prompt_set_id, prompt_id, origin, source, "
                "external_id, k, category, language, policy, gold_winner, created_at) "
                f"SELECT {uid}, %s, s.prompt_id, 'import', %s, s.ext, s.k, s.category, "
                "s.language, '', s.gold_winner, %s FROM stage_match s WHERE true "
                "ORDER BY s.line ON CONFLICT DO NOTHING",
                [*set_key, self.now],
            )
            stored.matches = max(cursor.rowcount, 0)
            self.grown += stored.matches
            if stored.matches:
                cursor.execute(
                    "INSERT INTO arena_matchslot (match_id, position, contestant_id, output_id) "
                    f"SELECT m.id, ss.position, ss.contestant_id, o.id FROM stage_slot ss {join} "
                    f"arena_match m ON {self._stored_match('m', 'ss.ext')} AND m.id > %s "
                    "LEFT JOIN arena_output o ON o.prompt_id = m.prompt_id "
                    "AND o.contestant_id = ss.contestant_id AND o.generation_config = ss.config "
                    "WHERE true ORDER BY m.id, ss.position",
                    [*set_key, last_match],
                )
            if self.fast_keys:
                # judgments of matches stored before this batch: the triggers check them
                cursor.execute("SET LOCAL session_replication_role = origin")
                self._insert_judgments(cursor, stored, "m.id <= %s", [last_match])
                cursor.execute("SET LOCAL session_replication_role = replica")
                self._insert_judgments(cursor, stored, "m.id > %s", [last_match])
                cursor.execute("SET LOCAL session_replication_role = origin")
            else:
                self._insert_judgments(cursor, stored, "true", [])
        return stored

    def _lock_references(self, cursor) -> None:
        """What the foreign-key triggers would do per row, once per referenced row."""
        cursor.execute(
            "SELECT 1 FROM arena_promptset WHERE id = %s FOR KEY SHARE", [self.prompt_set_id]
        )
        for table, column, stage in (
            ("arena_contestant", "contestant_id", "stage_slot"),
            ("arena_voter", "voter_id", "stage_judgment"),
            ("judges_judge", "judge_id", "stage_judgment"),
            ("arena_prompt", "prompt_id", "stage_match"),
        ):
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE id IN "
                f"(SELECT DISTINCT {column} FROM {stage}) FOR KEY SHARE) locked"
            )
        # outputs: the slots' outputs of new matches with a prompt
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM arena_output o WHERE "
            "(o.prompt_id, o.contestant_id, o.generation_config) IN "
            "(SELECT s.prompt_id, ss.contestant_id, ss.config "
            "FROM stage_match s JOIN stage_slot ss ON ss.ext = s.ext "
            "WHERE s.prompt_id IS NOT NULL) FOR KEY SHARE) locked"
        )

    def _insert_judgments(self, cursor, stored: Stored, which: str, params: list) -> None:
        columns = (
            "match_id, judge_id, voter_id, kind, status, winner, strength, ranking, score, "
            "preference, presentation, repeat, weight, verdict_label, raw_text, probabilities, "
            "error, idempotency_key, content_key, created_at"
        )
        ranking, probabilities = self._cast("ranking"), self._cast("probabilities")
        select = (
            "SELECT m.id, s.judge_id, s.voter_id, s.kind, s.status, s.winner, s.strength, "
            f"{ranking}, s.score, s.preference, s.presentation, s.repeat, s.weight, "
            f"s.verdict_label, s.raw_text, {probabilities}, '', '', '', %s "
            f"FROM stage_judgment s {self._join()} arena_match m "
            f"ON {self._stored_match('m', 's.ext')} WHERE {which} ORDER BY s.line"
        )
        args = [self.now, self.prompt_set_id, self.source, *params]
        insert = f"INSERT INTO arena_judgment ({columns}) {select} ON CONFLICT DO NOTHING"
        grouped = (
            "SELECT j.kind = 'pairwise' AND j.status = 'ok' AND m.k = 2, j.judge_id, "
            "v.counted_flagged, m.category, s0.contestant_id, s1.contestant_id, j.winner, "
            "j.presentation, count(*), sum(j.weight) FROM {rows} j "
            "JOIN arena_match m ON m.id = j.match_id "
            "LEFT JOIN arena_matchslot s0 ON s0.match_id = m.id AND s0.position = 0 "
            "LEFT JOIN arena_matchslot s1 ON s1.match_id = m.id AND s1.position = 1 "
            "LEFT JOIN arena_voter v ON v.id = j.voter_id "
            "GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
        )
        if self.postgres:
            cursor.execute(
                f"WITH inserted AS ({insert} RETURNING match_id, judge_id, voter_id, kind, "
                "status, winner, presentation, weight) " + grouped.format(rows="inserted"),
                args,
            )
            rows = cursor.fetchall()
        else:
            cursor.execute("SELECT coalesce(max(id), 0) FROM arena_judgment")
            last = cursor.fetchone()[0]
            cursor.execute(insert, args)
            cursor.execute(
                grouped.format(rows="(SELECT * FROM arena_judgment WHERE id > %s)"), [last]
            )
            rows = cursor.fetchall()
        cells = stored.cells if stored.cells is not None else {}
        for pairwise, judge, flagged, category, a, b, winner, shown, n, votes in rows:
            stored.judgments += n
            stored.votes += votes
            if pairwise:
                key = (judge, bool(flagged), category, a, b, winner, shown)
                cells[key] = cells.get(key, 0) + votes
        stored.cells = cells
