"""The battle reader: the same counts, ratings, items and errors as the record path.

- The fast JSONL reader (orjson in blocks) gives exactly the items and errors of the
  standard library read line by line, at every block size.
- ``read_counts`` equals ``counts_from_records`` over the parsed records (the path the
  CLI took before), on every fixture file, and the Bradley-Terry ratings agree to 1e-6.
- A bad line deep in a large file is reported with its line number, and nothing is
  returned; aggregating in chunks of any size equals aggregating all at once.
- The CLI's online Elo on a FastChat log still matches FastChat's compute_elo.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.importers.formats import _common, fastchat, parse, reader
from arena.importers.formats import progress as progress_module
from arena.importers.formats._common import jsonl_split, read_items
from arena.importers.formats.progress import Progress
from arena.importers.formats.reader import iter_records, iter_votes, read_counts
from arena.importers.records import ImportRowError
from arena.ratings import counts_from_records, leaderboard
from arena.ratings.__main__ import load_records, main
from arena.ratings.elo import elo_leaderboard
from arena.ratings.tally import Tally
from tests.unit.test_ratings_elo import fastchat_compute_elo

SMALL = Path(__file__).resolve().parents[2] / "tests" / "data" / "formats"
FIXTURES = [
    ("fastchat", "fastchat_battles.jsonl"),
    ("fastchat", "fastchat_battles.json"),
    ("arena-hard", "arena_hard_judgments.jsonl"),
    ("arena-hard", "arena_hard_v01.jsonl"),
    ("arena-hard", "arena_hard_v2.jsonl"),
    ("alpaca-eval", "alpaca_eval_annotations.json"),
    ("jsonl", "arena.jsonl"),
]
MODELS = ["gpt-4", "claude-3", "llama-3", "mixtral", "qwen-2", "gemma-2"]
WINNERS = ["model_a", "model_b", "tie", "tie (bothbad)"]


@pytest.fixture(params=["one process", "two processes"])
def processes(request, monkeypatch):
    """Read logs in one process, or in two (the second half by the child process)."""
    if request.param == "two processes":
        monkeypatch.setattr(reader, "PARALLEL_BYTES", 0)
        monkeypatch.setattr(reader.os, "cpu_count", lambda: 2)
    return request.param


def assert_same_counts(new, old):
    assert new.models == old.models
    for name in ("first", "second", "outcome", "weight"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)
    np.testing.assert_allclose(new.votes, old.votes, rtol=1e-12)
    new_units, old_units = new.unit_types(), old.unit_types()
    np.testing.assert_array_equal(new_units.multiplicity, old_units.multiplicity)
    assert (new_units.members != old_units.members).nnz == 0


@functools.cache
def _log_rows(n: int, seed: int) -> tuple[dict, ...]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a, b = rng.choice(len(MODELS), 2, replace=False)
        rows.append(
            {
                "question_id": f"{i:08x}",
                "tstamp": 1.7e9 + i,
                "model_a": MODELS[a],
                "model_b": MODELS[b],
                "winner": WINNERS[rng.integers(4)],
                "anony": True,
            }
        )
    return tuple(rows)


@functools.cache
def _log_lines(n: int, seed: int) -> tuple[str, ...]:
    return tuple(json.dumps(row) + "\n" for row in _log_rows(n, seed))


def battle_log(path: Path, n: int, seed: int = 0, extra=None) -> list[tuple[str, str, str]]:
    """A FastChat JSONL log of ``n`` battles; ``extra(i)`` may give fields for line i + 1."""
    rows, lines = _log_rows(n, seed), list(_log_lines(n, seed))
    battles = []
    for i, row in enumerate(rows):
        more = extra(i + 1) if extra is not None else None
        if more:
            row = {**row, **more}
            lines[i] = json.dumps(row) + "\n"
        battles.append((row["model_a"], row["model_b"], row["winner"]))
    path.write_text("".join(lines))
    return battles


# --- the same counts and ratings as the record path ------------------------------------


@pytest.mark.parametrize(("fmt", "name"), FIXTURES, ids=[n for _, n in FIXTURES])
def test_counts_and_ratings_equal_the_record_path(fmt, name):
    path = SMALL / name
    old = counts_from_records(load_records(fmt, [path]))
    new = read_counts(fmt, [path])
    assert_same_counts(new, old)
    old_board = leaderboard(old, "bt", 200, 0, None).to_rows()
    new_board = leaderboard(new, "bt", 200, 0, None).to_rows()
    assert [r["model"] for r in new_board] == [r["model"] for r in old_board]
    for a, b in zip(new_board, old_board, strict=True):
        for key in ("rating", "ci_lower", "ci_upper"):
            assert a[key] == pytest.approx(b[key], abs=1e-6)


def test_two_fastchat_files_sharing_battles_match_the_record_path(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    battle_log(first, 300, seed=1)
    battle_log(second, 200, seed=1)  # the same question ids: the same battles again
    paths = [first, second]
    assert_same_counts(
        read_counts("fastchat", paths), counts_from_records(load_records("fastchat", paths))
    )


def test_a_generated_log_gives_the_cli_the_same_board_as_before(tmp_path, capsys, processes):
    path = tmp_path / "log.jsonl"
    battle_log(path, 5000, seed=3, extra=lambda i: {"judge": "u1"} if i % 7 == 0 else None)
    argv = ["fit", str(path), "--format", "fastchat", "--bootstrap", "100", "--json"]
    assert main([*argv, "--quiet"]) == 0
    new = json.loads(capsys.readouterr().out)
    counts = counts_from_records(load_records("fastchat", [path]))
    old = leaderboard(counts, "bt", 100, 0, None).to_rows()
    assert [r["model"] for r in new] == [r["model"] for r in old]
    for a, b in zip(new, old, strict=True):
        assert a["rating"] == pytest.approx(b["rating"], abs=1e-6)
        assert a["ci_lower"] == pytest.approx(b["ci_lower"], abs=1e-6)
        assert a["votes"] == b["votes"]


def test_fast_battles_are_the_judgments_of_parse():
    for name in ("fastchat_battles.jsonl", "fastchat_battles.json"):
        path = SMALL / name
        judgments = [r for r in parse("fastchat", path) if hasattr(r, "kind")]
        assert list(fastchat.battles(path)) == [(*r.contestants, r.winner) for r in judgments]
        anony = [r for r in parse("fastchat", path, anony_only=True) if hasattr(r, "kind")]
        assert list(fastchat.battles(path, anony_only=True)) == [
            (*r.contestants, r.winner) for r in anony
        ]


# --- the fast line reader reads what json.loads reads ------------------------------------

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)
_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_ODD = st.sampled_from(
    [
        "",
        "   ",
        "\r",
        "\ufeff{}",
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"turn": 123456789012345678901234567890}',
        '{"t": -9223372036854775809}',
        '{"t": 18446744073709551616}',
        '["x", 12345678901234567890]',
        '{"id": "12345678901234567890123"}',
        '{"a": "\\u0000"}',
        '{"a": "\\ud800"}',
        '{"a": "\\\\u0000 escaped"}',
        '{"a": "x\x00"}',
        "{bad json",
        '{"a": 1e400}',
        "\x0c{}",
        '{"a": 1} {"b": 2}',
    ]
)
_LINE = st.one_of(_VALUE.map(lambda v: json.dumps(v, ensure_ascii=False)), _ODD)


def _reference(path: Path) -> list:
    """The reference: the standard library, one line at a time (the reader before orjson)."""
    out = []
    try:
        for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
            item = _common._jsonl_line(path, number, raw)
            if item is not _common._BLANK:
                out.append((number, item))
    except ImportRowError as exc:
        out.append(str(exc))
    return out


def _read(path: Path) -> list:
    out = []
    try:
        out.extend(read_items(path))
    except ImportRowError as exc:
        out.append(str(exc))
    return out


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN (json.dumps(..) round trips keep nan)."""
    return json.dumps(a, sort_keys=False, default=str) == json.dumps(b, default=str)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_LINE, min_size=1, max_size=12), block=st.integers(1, 300))
def test_the_fast_reader_reads_what_json_loads_reads(tmp_path_factory, lines, block):
    path = tmp_path_factory.mktemp("lines") / "x.jsonl"
    text = "\n".join(['{"first": 1}', *lines])  # not "[" first: a JSON list is another reader
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    expected = _reference(path)
    original = _common._BLOCK
    _common._BLOCK = block
    try:
        got = _read(path)
    finally:
        _common._BLOCK = original
    assert _same(got, expected)
    assert [type(x) for x in got] == [type(x) for x in expected]


def test_a_big_integer_is_read_as_the_standard_library_reads_it(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text(
        '{"a": 1}\n{"turn": 123456789012345678901234567890, "t": -9223372036854775809}\n'
    )
    items = list(read_items(path))
    assert items[1][1] == {"turn": 123456789012345678901234567890, "t": -9223372036854775809}
    assert type(items[1][1]["turn"]) is int


# --- errors in large files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"winner": "model_c"}, "winner", "expected one of model_a, model_b, tie, tie (bothbad)"),
        ({"model_b": "gpt-4", "model_a": "gpt-4"}, "model_b", "a model cannot battle itself"),
        ({"turn": 10**30}, "turn", "must be at most 2147483647"),
        ({"turn": -1}, "turn", "must be at least 0"),
        ({"judge": 7}, "judge", "expected a string, got int"),
        (
            {"conv_metadata": {"sum_assistant_a_tokens": "x"}},
            "conv_metadata.sum_assistant_a_tokens",
            "expected a finite number",
        ),
        ({"conversation_a": "hi"}, "conversation_a", "expected a list of"),
        ({"category": "\x00"}, "category", "NUL byte (\\u0000)"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_bad_line_deep_in_a_large_file_names_its_line(tmp_path, bad, field, message, processes):
    path = tmp_path / "log.jsonl"
    deep = 41_234
    battle_log(path, 50_000, extra=lambda i: bad if i == deep else None)
    with pytest.raises(ImportRowError) as exc:
        read_counts("fastchat", [path])
    assert (exc.value.line, exc.value.field) == (deep, field)
    assert message in exc.value.message
    assert str(exc.value).startswith(f"{path}:{deep}: {field}: ")
    if processes == "one process":  # the importer says the same
        with pytest.raises(ImportRowError) as old:
            list(parse("fastchat", path))
        assert str(old.value) == str(exc.value)


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b'{"model_a": "x", "model_b": "y", "winner": "tie"', "json", "not valid JSON"),
        (b'{"model_a": "x\xff", "model_b": "y", "winner": "tie"}', "encoding", "not UTF-8"),
        (b'{"model_a": "x", "model_b": "y", "winner": "tie"}\x00', "text", "NUL byte at column 50"),
        (b'{"model_a": "x", "model_b": "\\ud800", "winner": "tie"}', "model_b", "lone surrogate"),
        (b"[1, 2]", "item", "expected a JSON object, got list"),
    ],
)
def test_a_bad_line_across_a_block_boundary(tmp_path, monkeypatch, raw, field, message):
    path = tmp_path / "log.jsonl"
    battle_log(path, 3000)
    lines = path.read_bytes().split(b"\n")
    lines[2500] = raw
    path.write_bytes(b"\n".join(lines))
    for block in (97, 4096, 1 << 21):  # the line cut by a block edge, or not
        monkeypatch.setattr(_common, "_BLOCK", block)
        with pytest.raises(ImportRowError) as exc:
            read_counts("fastchat", [path])
        assert (exc.value.line, exc.value.field) == (2501, field)
        assert message in exc.value.message


def test_a_line_over_the_limit_deep_in_a_file(tmp_path):
    path = tmp_path / "log.jsonl"
    battle_log(path, 20_000, extra=lambda i: {"category": "x" * 3000} if i == 15_001 else None)
    with pytest.raises(ImportRowError) as exc:
        read_counts("fastchat", [path], max_record_bytes=1000)
    assert (exc.value.line, exc.value.field) == (15_001, "json")
    assert "record longer than 1000 bytes" in exc.value.message


def test_the_first_bad_line_is_the_one_reported(tmp_path, processes):
    path = tmp_path / "log.jsonl"
    bad = {11_000: {"winner": "x"}, 35_000: {"turn": "two"}}
    battle_log(path, 40_000, extra=bad.get)
    with pytest.raises(ImportRowError) as exc:
        read_counts("fastchat", [path])
    assert (exc.value.line, exc.value.field) == (11_000, "winner")


def test_a_log_in_two_parts_counts_as_one(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    battle_log(path, 10_000, seed=4, extra=lambda i: {"anony": False} if i % 3 else None)
    one = read_counts("fastchat", [path], anony_only=True)
    monkeypatch.setattr(reader, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(reader.os, "cpu_count", lambda: 2)
    assert_same_counts(read_counts("fastchat", [path], anony_only=True), one)
    cuts = jsonl_split(path, 2)
    assert len(cuts) == 3 and path.read_bytes()[cuts[1] - 1 : cuts[1]] == b"\n"


def test_the_cli_reports_the_line_and_prints_no_board(tmp_path, capsys, processes):
    path = tmp_path / "log.jsonl"
    battle_log(path, 30_000, extra=lambda i: {"winner": None} if i == 29_999 else None)
    assert main(["fit", str(path), "--format", "fastchat", "--json", "--quiet"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == f"error: {path}:29999: winner: missing"


# --- streaming aggregation ---------------------------------------------------------------


def _records():
    """Judgment records of every shape the tally reads (from the fixtures)."""
    out = []
    for fmt, name in FIXTURES:
        out.extend(r for r in parse(fmt, SMALL / name) if hasattr(r, "kind"))
    return out


RECORDS = _records()


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(range(len(RECORDS))),
    cuts=st.lists(st.integers(0, len(RECORDS)), max_size=8),
    group=st.booleans(),
    strong=st.sampled_from([1.0, 3.0]),
)
def test_tallying_in_chunks_of_any_size_equals_all_at_once(order, cuts, group, strong):
    records = [RECORDS[i] for i in order]
    tally = Tally(group_by_match=group, strong_weight=strong)
    edges = sorted({0, len(records), *cuts})
    for start, end in zip(edges, edges[1:], strict=False):
        tally.add_records(records[start:end])
    expected = counts_from_records(records, group_by_match=group, strong_weight=strong)
    assert_same_counts(tally.counts(), expected)


@settings(max_examples=30, deadline=None)
@given(
    battles=st.lists(
        st.tuples(
            st.sampled_from(MODELS), st.sampled_from(MODELS), st.sampled_from(WINNERS)
        ).filter(lambda t: t[0] != t[1]),
        min_size=1,
        max_size=300,
    ),
    block=st.integers(16, 2000),
)
def test_a_log_counted_in_blocks_of_any_size_equals_its_records(tmp_path_factory, battles, block):
    path = tmp_path_factory.mktemp("log") / "log.jsonl"
    path.write_text(
        "".join(
            json.dumps({"model_a": a, "model_b": b, "winner": w, "tstamp": i}) + "\n"
            for i, (a, b, w) in enumerate(battles)
        )
    )
    original = _common._BLOCK
    _common._BLOCK = block
    try:
        new = read_counts("fastchat", [path])
    finally:
        _common._BLOCK = original
    assert_same_counts(new, counts_from_records(load_records("fastchat", [path])))


def test_elo_from_the_cli_matches_fastchat_compute_elo(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    battles = battle_log(path, 4000, seed=5)
    assert main(["fit", str(path), "--format", "fastchat", "--method", "elo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    ref = fastchat_compute_elo(battles)
    assert {r["model"] for r in rows} == set(ref)
    for r in rows:
        assert r["rating"] == pytest.approx(ref[r["model"]], abs=1e-9)


def test_elo_from_votes_equals_elo_from_records(tmp_path):
    path = tmp_path / "log.jsonl"
    battle_log(path, 3000, seed=6, extra=lambda i: {"anony": False} if i % 4 == 0 else None)
    for options in ({}, {"anony_only": True}):
        votes = elo_leaderboard(iter_votes("fastchat", [path, path], **options))
        records = elo_leaderboard(load_records("fastchat", [path, path], **options))
        assert votes.to_rows() == records.to_rows()
        assert votes.n_votes == records.n_votes


def test_records_are_streamed_in_file_order(tmp_path):
    path = tmp_path / "log.jsonl"
    battles = battle_log(path, 50)
    stream = iter_records("fastchat", [path, path])
    assert not isinstance(stream, list)
    got = [(*r.contestants, r.verdict_label) for r in stream]
    assert got == battles + battles


# --- progress ------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_lines_without_a_terminal_and_a_bar_on_one():
    lines = io.StringIO()
    progress = Progress(1000, lines, interval=0.0)
    progress(400)
    progress(600)
    progress.close()
    assert lines.getvalue().splitlines()[-1].startswith("reading: 0.0 of 0.0 MB (100%)")
    screen = _Terminal()
    bar = Progress(1000, screen, delay=0.0)
    bar(500)
    bar.close()
    assert "reading" in screen.getvalue() and "B" in screen.getvalue()


def test_quiet_prints_nothing_on_stderr(tmp_path, capsys, monkeypatch):
    path = tmp_path / "log.jsonl"
    battle_log(path, 3000)
    monkeypatch.setattr(progress_module, "INTERVAL", 0.0)
    monkeypatch.setattr(_common, "_BLOCK", 4096)
    assert main(["fit", str(path), "--format", "fastchat", "--bootstrap", "0"]) == 0
    assert "reading:" in capsys.readouterr().err
    assert main(["fit", str(path), "--format", "fastchat", "--bootstrap", "0", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_votes_of_a_voter_a_jsonl_file_flags_are_left_out(tmp_path):
    def vote(match, voter, winner):
        return {"type": "judgment", "match": match, "contestants": ["gpt-4", "mixtral"],
                "winner": winner, "voter": voter}  # fmt: skip

    lines = [
        vote("m1", "alice", "a"),
        {"type": "voter", "label": "mallory", "flagged": True, "reason": "one-sided"},
        vote("m2", "mallory", "b"),
        vote("m3", "mallory", "b"),
        vote("m4", "bob", "a"),
        {"type": "voter", "label": "mallory", "flagged": False},  # unflagged from here on
        vote("m5", "mallory", "b"),
    ]
    path = tmp_path / "flagged.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    kept = [r.match_id for r in iter_records("jsonl", [path]) if hasattr(r, "kind")]
    assert kept == ["m1", "m4", "m5"]
    counts = read_counts("jsonl", [path])
    assert counts.votes.sum() == 3
    assert [r.match_id for r in load_records("jsonl", [path])] == kept
