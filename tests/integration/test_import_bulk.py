"""The bulk import path on large files: errors still name ``file:line: field`` and store
nothing, a re-import stores nothing twice, the running counts equal a rebuild from the rows,
and an import killed midway (SIGKILL) leaves nothing behind."""

import json
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arena.boards import rebuild_pair_counts
from arena.importers import loader
from arena.importers.formats import parse
from arena.importers.loader import import_file, import_records
from arena.importers.records import JudgmentRecord
from arena.models import (
    Contestant,
    Judgment,
    Match,
    MatchSlot,
    PairOutcomeCount,
    PromptSet,
    Voter,
)

ROOT = Path(__file__).resolve().parents[2]
MODELS = (PromptSet, Match, MatchSlot, Judgment, Contestant, Voter, PairOutcomeCount)
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
NAMES = [f"model-{k}" for k in range(12)]


def _battles(n: int, seed: int = 0):
    """``n`` FastChat battles among a dozen models (seeded)."""
    import random

    rng = random.Random(seed)
    for k in range(n):
        a, b = rng.sample(NAMES, 2)
        yield {
            "question_id": f"q{seed}-{k}",
            "tstamp": 1_700_000_000 + k,
            "model_a": a,
            "model_b": b,
            "winner": rng.choice(WINNERS),
            "anony": True,
            "judge": f"user-{rng.randrange(50)}",
        }


def _write(path: Path, items) -> Path:
    with path.open("w") as f:
        for item in items:
            f.write(json.dumps(item) + "\n")
    return path


def _sizes():
    return [M.objects.count() for M in MODELS]


def _cells():
    return Counter(
        {
            row[:-1]: row[-1]
            for row in PairOutcomeCount.objects.values_list(
                "source", "category", "contestant_a", "contestant_b", "winner", "a_first", "count"
            )
            if row[-1]
        }
    )


@pytest.mark.django_db
def test_a_large_file_over_many_batches_is_stored_once_with_its_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    path = _write(tmp_path / "log.jsonl", _battles(5000))
    report = import_file("fastchat", path)
    assert report.ok, report.summary()
    assert (report.matches, report.judgments, report.votes) == (5000, 5000, 5000)
    assert MatchSlot.objects.count() == 10000 and Voter.objects.count() == 50
    counted = _cells()
    assert sum(counted.values()) == 5000
    rebuild_pair_counts(PromptSet.objects.get(slug="fastchat"))
    assert _cells() == counted  # the counts bumped batch by batch equal a rebuild from the rows
    before = _sizes()
    again = import_file("fastchat", path)
    assert again.ok and (again.matches, again.judgments, again.skipped) == (0, 0, 5000)
    assert _sizes() == before and _cells() == counted


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line", "change", "field"),
    [
        (4321, {"winner": "maybe"}, "winner"),
        (4999, {"model_b": None}, "model_b"),
        (2500, {"model_b": "model-0", "model_a": "model-0"}, "model_b"),
    ],
)
def test_a_broken_row_deep_in_a_large_file_is_named_and_nothing_is_stored(
    tmp_path, monkeypatch, line, change, field
):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)  # batches before it were stored already
    items = list(_battles(5000))
    items[line - 1] = {**items[line - 1], **change}
    path = _write(tmp_path / "log.jsonl", items)
    before = _sizes()
    report = import_file("fastchat", path)
    assert [(e["line"], e["field"]) for e in report.errors] == [(line, field)]
    assert report.error_lines()[0].startswith(f"{path}:{line}: {field}: ")
    assert _sizes() == before


@pytest.mark.django_db
def test_a_match_stored_with_other_contestants_is_refused_in_a_later_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    first = _write(tmp_path / "first.jsonl", _battles(100))
    assert import_file("fastchat", first).ok
    items = list(_battles(3000, seed=1))
    clash = next(_battles(1))  # battle q0-0 again, sides swapped
    items[2000] = {**clash, "model_a": clash["model_b"], "model_b": clash["model_a"]}
    before = _sizes()
    report = import_file("fastchat", _write(tmp_path / "second.jsonl", items))
    assert report.error_lines() == [
        f"{tmp_path / 'second.jsonl'}:2001: contestants: match "
        f"'q0-0:{clash['tstamp']}' is already stored with other contestants"
    ]
    assert _sizes() == before


@pytest.mark.django_db
def test_a_reimport_stores_nothing_and_keys_no_record_of_a_batch_stored_as_it_is(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    path = _write(tmp_path / "log.jsonl", _battles(3000))
    assert import_file("fastchat", path).ok
    before, counted = _sizes(), _cells()
    with CaptureQueriesContext(connection) as queries:
        again = import_file("fastchat", path)
    assert again.ok and (again.matches, again.judgments, again.skipped) == (0, 0, 3000)
    assert _sizes() == before and _cells() == counted
    sql = [q["sql"] for q in queries.captured_queries]
    # each batch found stored as one range of ids, each table read once as one aggregated
    # text: no key probed but the batch's smallest and largest, the keyed path's probe of
    # the stored judgments' ids (for naming a conflict) never ran, nothing was written
    probes = [s for s in sql if "json_each" in s or "json_array_elements" in s]
    assert len(probes) == 5 and all(s.startswith("SELECT t.id FROM") for s in probes)
    assert not [s for s in sql if "t.repeat, t.id" in s]
    assert not [s for s in sql if s.lstrip().upper().startswith(("INSERT", "COPY", "UPDATE"))]
    assert sum("arena_judgment t " in s for s in sql) == 5  # once a batch (3000 / 700)


@pytest.mark.django_db
def test_a_first_import_into_a_set_probes_no_key_and_a_later_one_does(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    items = list(_battles(3000))
    with CaptureQueriesContext(connection) as first:
        assert import_file("fastchat", _write(tmp_path / "a.jsonl", items[:1500])).ok
    with CaptureQueriesContext(connection) as later:
        report = import_file("fastchat", _write(tmp_path / "b.jsonl", items[1000:]))
    assert report.ok and (report.matches, report.skipped) == (1500, 500)
    assert Match.objects.count() == 3000 and Judgment.objects.count() == 3000

    def probes(queries):
        return [q for q in queries.captured_queries if "arena_match t" in q["sql"]]

    assert probes(first) == []  # nothing of the set was stored: no batch can be
    assert probes(later)


def _tamper(change: str):
    """One stored row of the imported battle log changed behind the importer's back."""
    match = Match.objects.order_by("id")[1000]
    if change == "winner":
        judgment = match.judgments.get()
        judgment.winner = "tie" if judgment.winner != "tie" else "a"
        judgment.save(update_fields=["winner"])
    elif change == "contestant":
        slot = match.slots.get(position=1)
        taken = set(match.slots.values_list("contestant_id", flat=True))
        slot.contestant = Contestant.objects.exclude(id__in=taken).first()
        slot.save(update_fields=["contestant"])
    else:  # another voter's vote on the same battle
        judgment = match.judgments.get()
        judgment.pk, judgment.voter = None, Voter.objects.create(label="late-voter")
        judgment.save()
    return match


@pytest.mark.django_db
@pytest.mark.parametrize("change", ["winner", "contestant", "another vote"])
def test_a_reimport_compares_row_by_row_a_batch_changed_since(tmp_path, monkeypatch, change):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    path = _write(tmp_path / "log.jsonl", _battles(3000))
    assert import_file("fastchat", path).ok
    match = _tamper(change)
    line = next(
        k + 1
        for k, r in enumerate(r for r in parse("fastchat", path) if isinstance(r, JudgmentRecord))
        if r.match_id == match.external_id
    )
    before = _sizes()
    report = import_file("fastchat", path)
    assert _sizes() == before
    if change == "another vote":  # the log's votes are all stored: nothing to do
        assert report.ok and (report.matches, report.judgments, report.skipped) == (0, 0, 3000)
        return
    field = "winner" if change == "winner" else "contestants"
    assert [(e["line"], e["field"]) for e in report.errors] == [(line, field)]


@pytest.mark.django_db
def test_a_reimport_with_one_verdict_changed_in_its_last_batch_names_that_line(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    items = list(_battles(3000))
    path = _write(tmp_path / "log.jsonl", items)
    assert import_file("fastchat", path).ok
    line = 2950  # in the last batch (lines 2801-3000)
    old = items[line - 1]["winner"]
    items[line - 1] = {**items[line - 1], "winner": "tie" if old != "tie" else "model_a"}
    _write(path, items)
    before, counted = _sizes(), _cells()
    report = import_file("fastchat", path)
    assert [(e["line"], e["field"]) for e in report.errors] == [(line, "winner")]
    assert report.error_lines()[0].startswith(
        f"{path}:{line}: winner: conflicts with the judgment already stored (by an earlier import)"
    )
    assert _sizes() == before and _cells() == counted


def _stored(slug: str):
    """A set's judgments and running counts as names and values (ids and the set aside)."""
    judgments = sorted(
        Judgment.objects.filter(match__prompt_set__slug=slug).values_list(
            "match__external_id",
            "match__k",
            "match__category",
            "match__language",
            "match__origin",
            "voter__label",
            "kind",
            "status",
            "winner",
            "strength",
            "ranking",
            "score",
            "preference",
            "presentation",
            "repeat",
            "weight",
            "verdict_label",
        )  # fmt: skip
    )
    slots = sorted(
        MatchSlot.objects.filter(match__prompt_set__slug=slug).values_list(
            "match__external_id", "position", "contestant__name", "output"
        )
    )
    cells = sorted(
        PairOutcomeCount.objects.filter(prompt_set__slug=slug).values_list(
            "source",
            "category",
            "contestant_a__name",
            "contestant_b__name",
            "winner",
            "a_first",
            "count",
        )  # fmt: skip
    )
    return judgments, slots, cells


@pytest.mark.django_db
def test_votes_stored_as_columns_equal_the_same_votes_stored_as_records(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    items = [{**item, "category": f"c{k % 3}"} for k, item in enumerate(_battles(2000))]
    items[5] = {**items[5], "judge": None, "language": "de", "turn": 2}
    path = _write(tmp_path / "log.jsonl", items)
    by_columns = import_file("fastchat", path, prompt_set="columns")
    assert by_columns.ok, by_columns.summary()
    records = list(parse("fastchat", path))
    by_records = import_records(records, "records", "fastchat")
    assert (by_columns.matches, by_columns.judgments, by_columns.votes) == (2000, 2000, 2000)
    assert (by_records.matches, by_records.judgments) == (2000, 2000)
    assert _stored("columns") == _stored("records")


@pytest.mark.django_db
def test_a_grown_log_stores_its_new_lines_and_skips_the_stored_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    items = list(_battles(3000))
    assert import_file("fastchat", _write(tmp_path / "log.jsonl", items[:1000])).ok
    report = import_file("fastchat", _write(tmp_path / "log.jsonl", items))
    assert report.ok and (report.matches, report.judgments, report.skipped) == (2000, 2000, 1000)
    assert Judgment.objects.count() == 3000 and sum(_cells().values()) == 3000


@pytest.mark.django_db
def test_a_name_too_long_for_its_column_is_named_as_in_a_record_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    items = list(_battles(2000))
    items[1500] = {**items[1500], "model_b": "m" * 201}
    path = _write(tmp_path / "log.jsonl", items)
    report = import_file("fastchat", path)
    assert report.error_lines() == [
        f"{path}:1501: contestants: longer than 200 characters (201 given)"
    ]
    assert _sizes() == [0] * len(MODELS)


# --- a killed import -----------------------------------------------------------------------


def _start_import(env: dict, path: Path) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "arena_import", "--format", "fastchat", str(path)]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_when(process: subprocess.Popen, started, timeout: float = 240) -> None:
    """SIGKILL the import once ``started()`` says it is storing (it must not have ended)."""
    deadline = time.monotonic() + timeout
    while not started():
        assert process.poll() is None, "the import ended before it could be killed"
        assert time.monotonic() < deadline, "the import never started storing"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)


@pytest.mark.slow
def test_an_import_killed_midway_leaves_nothing_in_sqlite(tmp_path):
    database = tmp_path / "arena.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SQLITE_PATH=str(database), ARENA_VAR_DIR=str(tmp_path))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        check=True,
    )
    path = _write(tmp_path / "log.jsonl", _battles(300_000))
    wal = database.with_name(database.name + "-wal")
    # a batch (50,000 battles) is stored once the write-ahead log holds its pages
    process = _start_import(env, path)
    _kill_when(process, lambda: wal.exists() and wal.stat().st_size > 8 << 20)
    with sqlite3.connect(database) as db:
        for table in ("arena_promptset", "arena_match", "arena_judgment", "arena_contestant"):
            assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="a PostgreSQL database shared with the import's process (DATABASE_URL)",
)
def test_an_import_killed_midway_leaves_nothing_in_postgresql(tmp_path):
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    url = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("REDIS_URL", None)
    path = _write(tmp_path / "log.jsonl", _battles(300_000))

    def storing() -> bool:  # a batch's judgments are being written (or just were)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE '%%COPY arena_judgment%%' AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0] > 0

    process = _start_import(env, path)
    _kill_when(process, storing)
    assert _sizes() == [0] * len(MODELS)  # nothing of it visible while its backend runs on
    # The server notices the lost client only when it next writes to it (a statement in
    # progress runs to its end first): end the killed import's backend as it would, and
    # check that its transaction rolled back.
    deadline = time.monotonic() + 60
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND state <> 'idle' "
                "AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert _sizes() == [0] * len(MODELS)


@pytest.mark.django_db
def test_an_import_asks_for_a_refit_of_the_boards_its_votes_are_on(tmp_path, monkeypatch):
    from django.utils import timezone

    from arena.models import BoardState

    asked = []
    monkeypatch.setattr(loader, "request_refit", asked.append)
    BoardState.objects.create(scope="set=fastchat|by=all|cat=|style=0", requested_at=timezone.now())
    BoardState.objects.create(
        scope="set=fastchat|by=judges|cat=|style=0", requested_at=timezone.now()
    )
    BoardState.objects.create(scope="set=other|by=humans|cat=|style=0", requested_at=timezone.now())
    path = _write(tmp_path / "log.jsonl", _battles(50))
    assert import_file("fastchat", path).ok
    assert asked == [["set=fastchat|by=all|cat=|style=0", "set=fastchat|by=humans|cat=|style=0"]]
    asked.clear()
    assert import_file("fastchat", path).ok  # nothing new: no refit
    assert asked == []


@pytest.mark.django_db
def test_the_import_gives_the_planner_its_joins_back_in_the_callers_transaction():
    # The stage turns hash and merge joins off for its own statements (SET LOCAL, until
    # the transaction ends); a caller that goes on in the same transaction (this test's)
    # must not inherit nested loops over whole tables.
    from django.db import connection

    import_records(
        [JudgmentRecord("m1", ("x", "y"), winner="a", voter="v")], prompt_set="s", source="t"
    )
    if connection.vendor != "postgresql":
        pytest.skip("planner settings: PostgreSQL")
    with connection.cursor() as cursor:
        shown = []
        for setting in ("enable_hashjoin", "enable_mergejoin"):
            cursor.execute(f"SHOW {setting}")
            shown.append(cursor.fetchone()[0])
    assert shown == ["on", "on"]


@pytest.mark.django_db
def test_the_import_takes_no_statistics_and_turns_no_join_method_off(tmp_path):
    # An ANALYZE inside the import's transaction left its row estimates in pg_class even
    # when the transaction rolled back, and later reads were planned as nested loops that
    # ran for minutes (issue 19): the import only probes indexes by its keys.
    from django.db import connection

    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    path = _write(tmp_path / "log.jsonl", _battles(300))
    with connection.execute_wrapper(record):
        assert import_file("fastchat", path).judgments == 300
        assert import_file("fastchat", path).skipped == 300
    assert any("arena_judgment" in sql for sql in statements)
    planner = re.compile(r"\bANALYZE\b|\benable_\w+", re.IGNORECASE)
    assert [sql for sql in statements if planner.search(sql)] == []


@pytest.mark.django_db(transaction=True)
def test_a_large_import_analyses_the_tables_it_wrote_once_it_has_committed(tmp_path, monkeypatch):
    # PostgreSQL's planner plans by the row counts ANALYZE last took: after a bulk load the
    # export and the refit right after it would be planned for the tables as they were.
    # Only a committed import, only the tables it wrote enough rows to, and never inside
    # its transaction (a rolled-back ANALYZE still leaves its estimates in pg_class).
    from django.db import connection

    monkeypatch.setattr(loader, "ANALYZED_AFTER_ROWS", 200)
    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, connection.in_atomic_block))
        return execute(sql, params, many, context)

    path = _write(tmp_path / "log.jsonl", _battles(300))
    broken = _write(tmp_path / "broken.jsonl", [*_battles(300, seed=1), {"model_a": "x"}])
    with connection.execute_wrapper(record):
        assert not import_file("fastchat", broken).ok
        assert import_file("fastchat", path).judgments == 300
        assert import_file("fastchat", _write(tmp_path / "few.jsonl", _battles(100, seed=2))).ok
    analyzed = [(sql, inside) for sql, inside in statements if "ANALYZE" in sql.upper()]
    if connection.vendor != "postgresql":
        assert analyzed == []
        return
    assert analyzed == [('ANALYZE "arena_match", "arena_matchslot", "arena_judgment"', False)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN "
            "('arena_match', 'arena_matchslot', 'arena_judgment')"
        )
        estimates = dict(cursor.fetchall())
    # the small import's 100 came after the ANALYZE
    assert estimates == {"arena_match": 300, "arena_matchslot": 600, "arena_judgment": 300}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sets", [("fastchat", "fastchat"), ("fastchat", "other")])
def test_two_imports_at_once_take_turns(tmp_path, sets):
    """Imports take turns (PostgreSQL: an advisory lock held to the end of the
    transaction; SQLite: its one writer). Into one set, the second finds the first's rows
    stored and skips them; into two sets, both store them, the new models made once. Run
    beside each other, the second's probes would miss the first's rows and fail on the
    unique keys (the models' names first)."""
    import threading

    from django.db import connection

    path = _write(tmp_path / "log.jsonl", _battles(3000, seed=7))
    reports, start = [], threading.Barrier(2)

    def run(prompt_set):
        start.wait()
        try:
            reports.append(import_file("fastchat", path, prompt_set))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(s,)) for s in sets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(reports) == 2 and all(r.ok for r in reports), [r.summary() for r in reports]
    stored = [(3000, 0), (3000, 0)] if sets[0] != sets[1] else [(0, 3000), (3000, 0)]
    assert sorted((r.matches, r.skipped) for r in reports) == stored
    assert Match.objects.count() == 3000 * len(set(sets))
    assert Contestant.objects.count() == len(NAMES)


@pytest.mark.django_db
def test_the_file_is_read_by_a_child_process_that_tells_the_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    path = _write(tmp_path / "log.jsonl", _battles(3000))
    readers = tmp_path / "readers"
    batches = loader._batches

    def recorded(fmt, where, options):
        for batch in batches(fmt, where, options):
            with readers.open("a") as f:
                f.write(f"{os.getpid()}\n")
            yield batch

    monkeypatch.setattr(loader, "_batches", recorded)
    told = []
    report = import_file("fastchat", path, progress=told.append)
    assert report.ok and report.judgments == 3000
    assert {int(pid) for pid in readers.read_text().split()} - {os.getpid()}  # another process
    assert sum(told) == path.stat().st_size  # every byte read was told, in this process


def test_the_reader_runs_ahead_up_to_its_bound_and_stops_with_its_caller(tmp_path, monkeypatch):
    # The caller's thread takes the child's batches off the pipe while the caller works,
    # up to _AHEAD_BYTES of them (one at least); a caller that stops early (an error of its
    # own) is not kept waiting by a child still reading, which is killed and reaped.
    monkeypatch.setattr(loader, "BATCH_SIZE", 100)
    path = _write(tmp_path / "log.jsonl", _battles(3000))
    taken = []
    original = loader._Received._take

    def counted(self):
        recv = self.pipe.recv_bytes

        def recv_bytes():
            message = recv()
            taken.append(len(message))
            return message

        self.pipe.recv_bytes = recv_bytes
        original(self)

    monkeypatch.setattr(loader._Received, "_take", counted)
    size = len(pickle.dumps(next(loader._batches("fastchat", path, {}))))
    monkeypatch.setattr(loader, "_AHEAD_BYTES", 3 * size)
    batches = loader._read_ahead("fastchat", path, {})
    first = next(batches)
    assert len(first) == 100
    deadline = time.monotonic() + 30
    while len(taken) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # (no more is taken while the caller holds three)
    assert 4 <= len(taken) <= 5  # the first, three held, and one being taken
    started = time.monotonic()
    batches.close()
    assert time.monotonic() - started < 10
    assert [t for t in threading.enumerate() if t.name == "import-read-ahead"] == []
    assert len(list(loader._read_ahead("fastchat", path, {}))) == 30  # every batch, in turn


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["dies", "unpicklable error"])
def test_a_reader_that_dies_or_fails_oddly_stores_nothing_and_says_so(tmp_path, monkeypatch, how):
    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    path = _write(tmp_path / "log.jsonl", _battles(3000))
    batches, parent = loader._batches, os.getpid()

    class Odd(Exception):
        def __init__(self, a, b):  # not picklable: its args are not its parameters
            super().__init__(f"{a} {b}")

    def failing(fmt, where, options):
        for k, batch in enumerate(batches(fmt, where, options)):
            if k == 2 and os.getpid() != parent:
                if how == "dies":
                    os._exit(3)
                raise Odd("odd", "failure")
            yield batch

    monkeypatch.setattr(loader, "_batches", failing)
    before = _sizes()
    message = "ended before the file did" if how == "dies" else "Odd: odd failure"
    with pytest.raises(RuntimeError, match=message):
        import_file("fastchat", path)
    assert _sizes() == before


@pytest.mark.django_db
@pytest.mark.parametrize("line", [1001, 2000])
def test_a_batch_the_database_refuses_while_the_next_is_keyed_stores_nothing(
    tmp_path, monkeypatch, line
):
    """A batch is written (on PostgreSQL by the Stager's thread while the next one is read
    and keyed): the database's refusal of it (here a constraint on one match, in a middle
    batch and in the last) is raised in the import as Django's error, nothing is stored,
    and the connection goes on."""
    from django.db import IntegrityError

    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    path = _write(tmp_path / "log.jsonl", _battles(2000))
    key = f"q0-{line - 1}:{1_700_000_000 + line - 1}"
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON arena_match "
                f"WHEN NEW.external_id = '{key}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            cursor.execute(
                f"ALTER TABLE arena_match ADD CONSTRAINT refuse_one CHECK (external_id <> '{key}')"
            )
    with pytest.raises(IntegrityError):
        import_file("fastchat", path)
    assert _sizes() == [0] * len(MODELS)
    rest = path.read_text().splitlines(keepends=True)
    del rest[line - 1]
    report = import_file("fastchat", _write(tmp_path / "rest.jsonl", map(json.loads, rest)))
    assert report.ok and (report.matches, report.judgments) == (1999, 1999)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broken", [False, True])
def test_an_import_of_its_own_transaction_checks_its_references_itself_on_sqlite(
    tmp_path, monkeypatch, broken
):
    from django.db import connection

    monkeypatch.setattr(loader, "BATCH_SIZE", 700)
    items = list(_battles(2000))
    if broken:
        items[1500] = {**items[1500], "winner": "maybe"}
    path = _write(tmp_path / "log.jsonl", items)
    with CaptureQueriesContext(connection) as queries:
        report = import_file("fastchat", path)
    sql = [q["sql"] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys" if connection.vendor == "sqlite" else "SELECT 1")
        assert cursor.fetchone() == (1,)  # (back on, on SQLite)
    if connection.vendor == "sqlite":
        assert sql[0] == "PRAGMA foreign_keys = OFF" and sql[-1] == "PRAGMA foreign_keys = ON"
    else:
        assert not [s for s in sql if "foreign_keys" in s]
    if broken:
        assert [(e["line"], e["field"]) for e in report.errors] == [(1501, "winner")]
        assert _sizes() == [0] * len(MODELS)
        return
    assert report.ok and (report.matches, report.judgments) == (2000, 2000)
    assert MatchSlot.objects.count() == 4000 and Voter.objects.count() == 50
    with connection.cursor() as cursor:  # every reference it wrote is to a row there
        for table in ("arena_match", "arena_matchslot", "arena_judgment"):
            if connection.vendor == "sqlite":
                cursor.execute(f"PRAGMA foreign_key_check({table})")
                assert cursor.fetchall() == [], table


def test_a_process_start_imports_no_scipy_stats():
    # scipy.stats takes about half a second to import, paid by every arena_import and
    # arena_export before its first line: the modules django.setup() imports (the admin's
    # among them) take what they need from scipy.special, and the rest imports it when used.
    code = "import sys, django; django.setup(); print('scipy.stats' in sys.modules)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
