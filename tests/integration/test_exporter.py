"""arena.importers.exporter: the records of a stored set, read in chunks (on PostgreSQL a
thread fetches ahead), equal to the records the file they were imported from gives."""

import io
import json
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from arena.importers import exporter
from arena.importers.formats import parse
from arena.importers.records import JudgmentRecord
from arena.models import Judgment, Prompt, PromptSet

pytestmark = pytest.mark.django_db

LINES = [
    {"type": "prompt", "id": "p1", "text": "What is 2+2?", "category": "math"},
    {"type": "prompt", "id": "p2", "text": "Name a colour."},
    {"type": "output", "prompt": "p1", "contestant": "zeta", "text": "4"},
    {"type": "output", "prompt": "p1", "contestant": "alpha", "text": "four", "config": "t=1"},
    {"type": "output", "prompt": "p1", "contestant": "alpha", "text": "4.0"},
    {"type": "output", "prompt": "p1", "contestant": "mid", "text": "IV"},
    {"type": "output", "prompt": "p2", "contestant": "alpha", "text": "red"},
    {"type": "output", "prompt": "p2", "contestant": "zeta", "text": "blue"},
    # slots not in name order, two judgments of one match, a weighted one, a judge's
    {"type": "judgment", "match": "m1", "contestants": ["zeta", "alpha"], "winner": "a",
     "voter": "ann", "prompt": "p1", "configs": ["", "t=1"]},
    {"type": "judgment", "match": "m1", "contestants": ["zeta", "alpha"], "winner": "b",
     "voter": "bob", "prompt": "p1", "configs": ["", "t=1"], "weight": 2},
    {"type": "judgment", "match": "m2", "contestants": ["mid", "zeta", "alpha"],
     "kind": "ranking", "ranking": [2, 1, 3], "judge": "gpt-judge", "prompt": "p1",
     "order": [2, 0, 1]},
    {"type": "judgment", "match": "m3", "contestants": ["alpha", "zeta"], "winner": "tie",
     "judge": "gpt-judge", "prompt": "p2", "repeat": 1, "raw_text": "[[C]]"},
    {"type": "judgment", "match": "m4", "contestants": ["zeta", "mid"], "winner": "bothbad",
     "voter": "ann", "language": "en"},
    {"type": "judgment", "match": "m5", "contestants": ["mid", "alpha"], "winner": "a",
     "voter": "cat"},
]  # fmt: skip
# what a stored judgment does not keep (the file's line) or the export leaves out
UNKEPT = ("line", "path", "meta", "style", "turn")


def _stored(tmp_path) -> PromptSet:
    path = tmp_path / "set.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in LINES))
    call_command(
        "arena_import", "--format", "jsonl", "--prompt-set", "s", "--quiet", str(path),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    return PromptSet.objects.get(slug="s")


def _judgments(records) -> list[JudgmentRecord]:
    kept = []
    for r in records:
        if isinstance(r, JudgmentRecord):
            state = {k: v for k, v in vars(r).items() if k not in UNKEPT}
            kept.append(state)
    return kept


@pytest.mark.parametrize("chunk", [1, 2, 5000])
def test_records_read_in_chunks_are_those_imported(tmp_path, monkeypatch, chunk):
    ps = _stored(tmp_path)
    monkeypatch.setattr(exporter, "CHUNK", chunk)  # matches' slots across chunks' ends
    records = list(exporter.iter_records(ps))
    imported = list(parse("jsonl", tmp_path / "set.jsonl"))
    assert _judgments(records) == _judgments(imported)
    assert [r for r in records if not isinstance(r, JudgmentRecord)] == [
        r.__class__(**{**vars(r), "line": 0}) for r in imported if not isinstance(r, JudgmentRecord)
    ]


def test_a_private_prompt_s_judgments_are_left_out_in_match_order(tmp_path, monkeypatch):
    ps = _stored(tmp_path)
    Prompt.objects.filter(external_id="p1").update(visibility=Prompt.Visibility.PRIVATE)
    monkeypatch.setattr(exporter, "CHUNK", 1)
    matches = [r.match_id for r in exporter.iter_records(ps) if isinstance(r, JudgmentRecord)]
    assert matches == ["m3", "m4", "m5"]
    assert exporter.judgment_count(ps) == 3


def test_a_reading_stopped_early_leaves_no_thread_and_the_connection_usable(tmp_path, monkeypatch):
    ps = _stored(tmp_path)
    monkeypatch.setattr(exporter, "CHUNK", 1)
    threads = threading.active_count()
    records = exporter.iter_records(ps)
    while not isinstance(next(records), JudgmentRecord):
        pass
    # PostgreSQL: a reader a stream (judgments, slots); SQLite's are read by the caller
    readers = 2 if connection.vendor == "postgresql" else 0
    assert threading.active_count() == threads + readers
    records.close()
    assert threading.active_count() == threads
    assert Judgment.objects.count() == 6
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_sets_matches_among_another_sets_are_its_own_in_match_order(tmp_path):
    """A set's match ids may enclose another set's (imported in between): the export of
    each gives its own judgments, in match order, and the count says as many."""
    ps = _stored(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text(
        "".join(
            json.dumps(
                {
                    "type": "judgment",
                    "match": f"o{k}",
                    "contestants": ["alpha", "zeta"],
                    "winner": "a",
                    "voter": "dan",
                }
            )
            + "\n"
            for k in range(3)
        )  # fmt: skip
    )
    later = tmp_path / "later.jsonl"
    later.write_text(
        json.dumps({"type": "judgment", "match": "m6", "contestants": ["mid", "zeta"],
                    "winner": "b", "voter": "ann"}) + "\n"
    )  # fmt: skip
    for path, slug in ((other, "t"), (later, "s")):
        call_command(
            "arena_import", "--format", "jsonl", "--prompt-set", slug, "--quiet", str(path),
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip

    def matches(slug):
        records = exporter.iter_records(PromptSet.objects.get(slug=slug))
        return [(r.match_id, r.contestants) for r in records if isinstance(r, JudgmentRecord)]

    assert [m for m, _ in matches("s")] == ["m1", "m1", "m2", "m3", "m4", "m5", "m6"]
    assert matches("s")[-1] == ("m6", ("mid", "zeta"))
    assert matches("t") == [(f"o{k}", ("alpha", "zeta")) for k in range(3)]
    assert exporter.judgment_count(ps) == 7


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plan")
def test_sqlite_reads_a_sets_judgments_and_slots_in_order_without_sorting_them_all(tmp_path):
    """Each match's own rows only are sorted (a B-tree for the right part of the order):
    the rows come as they are read, not after all of them are."""
    from arena.models import MatchSlot

    ps = _stored(tmp_path)
    for rows in (
        exporter._judgments(ps, True, exporter._match_span(ps)),
        exporter._of_the_sets_matches(MatchSlot.objects, ps, "position", exporter._match_span(ps)),
    ):
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = [row[-1] for row in cursor.fetchall()]
        assert not [step for step in plan if step == "USE TEMP B-TREE FOR ORDER BY"], plan


@pytest.mark.django_db(transaction=True)
def test_arena_export_reads_in_one_snapshot_on_postgresql_and_holds_no_lock_on_sqlite(tmp_path):
    # PostgreSQL: inside one read-only REPEATABLE READ transaction its counts and streams are
    # of one moment, and its server-side cursors stream (outside one, Django declares them
    # WITH HOLD and PostgreSQL computes every row before the first is fetched). SQLite:
    # Django's transactions are IMMEDIATE there, and an export's would hold the write lock.
    _stored(tmp_path)
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql.split()[0].upper(), connection.in_atomic_block))
        return execute(sql, params, many, context)

    out = tmp_path / "out.jsonl"
    with connection.execute_wrapper(record):
        call_command(
            "arena_export", "--format", "jsonl", "--prompt-set", "s", "-o", str(out),
            stderr=io.StringIO(),
        )  # fmt: skip
    assert sum(1 for _ in out.open()) == len(LINES)
    inside = {atomic for _, atomic in seen}
    if connection.vendor == "postgresql":
        first = seen.index(("SET", True))
        assert all(atomic for _, atomic in seen[first:])
        assert [kind for kind, _ in seen[first:]].count("SELECT") >= 5  # count, names, rows
    else:
        assert inside == {False}
