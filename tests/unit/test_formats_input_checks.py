"""What the readers refuse, and how: NUL bytes, lone surrogates, bytes that are not UTF-8,
records over the size limit (refused without reading them whole), empty files, directories,
unreadable paths, numbers no column holds. And the streamed JSON list reads exactly what a
whole-file decode reads, at every chunk size."""

import io
import json
import pathlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.importers.formats import _common, parse
from arena.importers.formats._common import read_items
from arena.importers.records import ImportRowError, printable

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "arena" / "fixtures" / "datasets"
SMALL = ROOT / "tests" / "data" / "formats"
PROMPT = {"type": "prompt", "id": "p1", "text": "What is 2+2?"}


def _error(fmt, path, **options) -> ImportRowError:
    with pytest.raises(ImportRowError) as exc:
        list(parse(fmt, path, **options))
    return exc.value


def _whole_file_items(text: str) -> list[tuple[int, object]]:
    """The reference: decode the whole list at once, each item with the line it starts on."""
    decoder = json.JSONDecoder()
    text = text.lstrip("\ufeff")
    pos, out = text.index("[") + 1, []
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return out
        item, end = decoder.raw_decode(text, pos)
        out.append((text.count("\n", 0, pos) + 1, item))
        pos = end


# --- the streamed JSON list -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        DATA / "pandalm" / "testset-v1.json",
        DATA / "pandalm" / "gpt-3.5-turbo-testset-v1.json",
        DATA / "llmbar" / "Natural" / "dataset.json",
        DATA / "llmbar" / "Natural" / "evaluators" / "GPT-4" / "Swap" / "result.json",
        SMALL / "alpaca_eval_annotations.json",
        SMALL / "fastchat_battles.json",
    ],
    ids=lambda p: p.name,
)
@pytest.mark.parametrize("chunk", [7, 4096, 1 << 16])
def test_a_streamed_list_reads_what_a_whole_decode_reads(monkeypatch, path, chunk):
    monkeypatch.setattr(_common, "_CHUNK", chunk)
    assert list(read_items(path)) == _whole_file_items(path.read_text())


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(st.characters(min_codepoint=32, max_codepoint=0xD7FF), max_size=4), inner
        )
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(_values, min_size=1, max_size=6),
    indent=st.sampled_from([None, 0, 1, 3]),
    ascii_only=st.booleans(),
    chunk=st.integers(1, 40),
    bom=st.booleans(),
)
def test_any_list_streams_like_a_whole_decode(
    tmp_path_factory, items, indent, ascii_only, chunk, bom
):
    text = (
        ("\ufeff" if bom else "")
        + "\n "
        + json.dumps(items, indent=indent, ensure_ascii=ascii_only)
    )
    path = tmp_path_factory.mktemp("l") / "items.json"
    path.write_text(text + "\n", encoding="utf-8")
    original = _common._CHUNK
    _common._CHUNK = chunk
    try:
        assert list(read_items(path)) == _whole_file_items(text)
    finally:
        _common._CHUNK = original


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[\n {"a": 1},\n {"a": 2}\n', 4, "not closed with ']'"),
        ('[\n {"a": 1}\n {"a": 2}\n]', 3, "expected ',' or ']' between items, got '{'"),
        ('[\n {"a": 1}\n]\n]', 4, "extra data after the JSON list"),
        ('[\n {"a": 1},\n {"a": tru}\n]', 3, "not valid JSON (Expecting value at column 8)"),
        (
            '[\n {"a": 1},\n {"a": "x',
            3,
            "not valid JSON (Unterminated string starting at column 8)",
        ),
        ('[\n {"a": 1},\n {"a": "x\n"}]', 3, "(Invalid control character at column 10)"),
    ],
)
@pytest.mark.parametrize("chunk", [3, 1 << 16])
def test_a_broken_list_names_the_line(tmp_path, monkeypatch, text, line, message, chunk):
    monkeypatch.setattr(_common, "_CHUNK", chunk)
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(ImportRowError) as exc:
        list(read_items(path))
    assert (exc.value.line, exc.value.field) == (line, "json")
    assert message in exc.value.message


# --- text that cannot be stored -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ('"a\\u0000b"', "text", "NUL byte (\\u0000)"),
        ('"\\ud800"', "text", "lone surrogate \\ud800 (not valid Unicode text)"),
        ('"ok \\udfff"', "text", "lone surrogate \\udfff"),
    ],
)
def test_escaped_nul_and_lone_surrogates_name_line_and_field(tmp_path, raw, field, message):
    path = tmp_path / "x.jsonl"
    path.write_text(
        json.dumps(PROMPT) + "\n\n" + '{"type": "prompt", "id": "p2", "text": ' + raw + "}\n"
    )
    err = _error("jsonl", path)
    assert (err.line, err.field) == (3, field) and message in err.message
    assert str(err) == f"{path}:3: {field}: {err.message}"
    str(err).encode("utf-8")  # printable: the surrogate is shown as its escape


def test_a_valid_surrogate_pair_is_text(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"type": "prompt", "id": "p", "text": "\\ud83d\\ude00"}\n')
    assert next(iter(parse("jsonl", path))).text == "\U0001f600"


def test_a_raw_nul_byte_names_line_and_column(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"type": "prompt", "id": "p1", "text": "hi"}\n{"type": "pr\x00ompt"}\n')
    err = _error("jsonl", path)
    assert (err.line, err.field, err.message) == (2, "text", "NUL byte at column 13")


def test_nested_fields_are_named(tmp_path):
    battles = json.loads((SMALL / "fastchat_battles.json").read_text())
    battles[0]["conversation_a"][0]["content"] = "hello \ud800"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(battles, indent=1))
    err = _error("fastchat", path)
    assert err.field == "conversation_a[0].content" and "lone surrogate" in err.message
    raw_lines = path.read_text().splitlines()
    assert raw_lines[err.line - 1] == " {" and err.line == 2


def test_a_list_with_a_raw_nul(tmp_path, monkeypatch):
    monkeypatch.setattr(_common, "_CHUNK", 5)
    path = tmp_path / "x.json"
    path.write_bytes(b'[\n {"a": 1},\n {"a": "x\x00"}\n]')
    with pytest.raises(ImportRowError) as exc:
        list(read_items(path))
    assert (exc.value.line, exc.value.field, exc.value.message) == (
        3,
        "text",
        "NUL byte at column 10",
    )


def test_the_counts_document_is_checked_too(tmp_path):
    data = json.loads((DATA / "chatbot_arena" / "chatbotarena_20240814_agg.json").read_text())
    data["models"][3] = "gpt-\ud800"
    path = tmp_path / "agg.json"
    path.write_text(json.dumps(data))
    err = _error("counts", path)
    assert (err.field, err.message) == (
        "models[3]",
        "lone surrogate \\ud800 (not valid Unicode text)",
    )
    path.write_bytes(b'{"models": ["a\x00"], "X": [], "Y": []}')
    assert _error("counts", path).message == "NUL byte at column 15"


@pytest.mark.parametrize("fmt", ["jsonl", "alpaca-eval", "counts"])
def test_bytes_that_are_not_utf8_name_their_line(tmp_path, fmt):
    path = tmp_path / "latin1.json"
    if fmt == "jsonl":
        path.write_bytes(json.dumps(PROMPT).encode() + b'\n{"type": "prompt", "text": "caf\xe9"}\n')
    elif fmt == "alpaca-eval":
        path.write_bytes(b'[\n {"instruction": "x"},\n {"instruction": "caf\xe9"}\n]')
    else:
        path.write_bytes(b'{"models": [\n"caf\xe9"], "X": [], "Y": []}')
    err = _error(fmt, path)
    assert (err.line, err.field) == (2 if fmt != "alpaca-eval" else 3, "encoding")
    assert err.message.startswith("not UTF-8 text")


# --- size limits ----------------------------------------------------------------------------


class _Counting(io.BufferedReader):
    read_bytes = 0

    def read(self, size=-1):
        data = super().read(size)
        _Counting.read_bytes += len(data)
        return data

    def readline(self, size=-1):
        data = super().readline(size)
        _Counting.read_bytes += len(data)
        return data


@pytest.fixture
def counting_open(monkeypatch):
    real_open = pathlib.Path.open

    def open_counting(self, mode="r", *args, **kwargs):
        if mode == "rb":
            return _Counting(io.FileIO(self, "rb"))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_counting)
    _Counting.read_bytes = 0
    return _Counting


def test_a_long_jsonl_line_is_refused_without_reading_it(tmp_path, counting_open):
    path = tmp_path / "long.jsonl"
    long = {"type": "prompt", "id": "p2", "text": "x" * 5_000_000}
    path.write_text(json.dumps(PROMPT) + "\n" + json.dumps(long) + "\n" + json.dumps(PROMPT) + "\n")
    err = _error("jsonl", path, max_record_bytes=10_000)
    assert (err.line, err.field) == (2, "json")
    assert err.message == "record longer than 10000 bytes (the limit for one record)"
    assert counting_open.read_bytes < 30_000  # of a 5 MB file


def test_a_long_list_item_is_refused_without_reading_it(tmp_path, counting_open):
    path = tmp_path / "long.json"
    items = [PROMPT, {**PROMPT, "text": "x" * 5_000_000}, PROMPT]
    path.write_text(json.dumps(items, indent=1))
    err = _error("jsonl", path, max_record_bytes=10_000)
    assert (err.line, err.field) == (7, "json") and "longer than 10000 bytes" in err.message
    assert counting_open.read_bytes < 200_000  # a few chunks of 64 KiB, not 5 MB


def test_a_record_at_the_limit_is_read(tmp_path):
    line = json.dumps({**PROMPT, "text": "x" * 100})
    path = tmp_path / "ok.jsonl"
    path.write_text(line + "\n" + line)  # the last line has no newline
    assert len(list(parse("jsonl", path, max_record_bytes=len(line)))) == 2
    err = _error("jsonl", path, max_record_bytes=len(line) - 1)
    assert err.line == 1 and "longer than" in err.message


def test_the_default_limit_is_one_mebibyte(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({**PROMPT, "text": "x" * (1 << 20)}) + "\n")
    assert "longer than 1048576 bytes" in _error("jsonl", path).message


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"weight": 10**30}, "weight", "must be at most 2147483647"),
        ({"repeat": 2**31}, "repeat", "must be at most"),
        ({"kind": "score", "score": float("nan")}, "score", "expected a finite number"),
        ({"kind": "score", "score": 10**400}, "score", "expected a finite number"),
        ({"style": [{"tokens": float("inf")}, {"tokens": 1}]}, "style", "expected 2 objects"),
    ],
)
def test_numbers_no_column_holds(tmp_path, change, field, message):
    judgment = {"type": "judgment", "match": "m", "contestants": ["x", "y"], "winner": "a"}
    path = tmp_path / "n.jsonl"
    path.write_text(json.dumps({**judgment, "voter": "v", **change}) + "\n")
    err = _error("jsonl", path)
    assert (err.line, err.field) == (1, field) and message in err.message


def test_a_number_with_too_many_digits(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text('{"type": "prompt", "id": "p", "text": "x", "n": ' + "9" * 5000 + "}\n")
    err = _error("jsonl", path)
    assert (err.line, err.field) == (1, "json") and "too many digits" in err.message


def test_counts_beyond_the_weight_column(tmp_path):
    path = tmp_path / "agg.json"
    path.write_text(json.dumps({"models": ["a", "b"], "X": [[0, 1]], "Y": [[2**31, 0, 0, 0]]}))
    err = _error("counts", path)
    assert (err.line, err.field) == (1, "Y") and "from 0 to 2147483647" in err.message


def test_a_long_message_is_cut(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({**PROMPT, "type": "x" * 10_000}) + "\n")
    err = _error("jsonl", path)
    assert err.field == "type" and len(err.message) <= 300 and err.message.endswith("…")


# --- empty files, paths ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        ("jsonl", ""),
        ("jsonl", "\n\n   \n"),
        ("jsonl", "\ufeff\n"),
        ("alpaca-eval", "[\n]\n"),
        ("arena-hard", "  []"),
        ("counts", ""),
        ("counts", '{"models": [], "X": [], "Y": []}'),
    ],
)
def test_an_empty_file_is_refused(tmp_path, fmt, content):
    path = tmp_path / "empty.json"
    path.write_text(content)
    err = _error(fmt, path)
    assert (err.line, err.field, err.message) == (0, "file", "holds no records (empty)")
    assert str(err) == f"{path}:0: file: holds no records (empty)"


def test_a_file_whose_rows_are_all_filtered_out_is_empty_too():
    assert _error("fastchat", SMALL / "fastchat_battles.json", sampled_only=True).field == "file"


def test_a_directory_where_a_file_is_expected(tmp_path):
    err = _error("jsonl", tmp_path)
    assert (err.path, err.line, err.field) == (str(tmp_path), 0, "path")
    assert err.message == "is a directory; jsonl reads a file"


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.jsonl"
    path.write_text(json.dumps(PROMPT) + "\n")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "open", refuse)
    err = _error("jsonl", path)
    assert str(err) == f"{path}:0: path: cannot read it (permission denied)"


def test_a_missing_judge_file_is_named(tmp_path):
    items = json.loads((DATA / "pandalm" / "testset-v1.json").read_text())[:2]
    (tmp_path / "testset-v1.json").write_text(json.dumps(items))
    missing = tmp_path / "nope-testset-v1.json"
    err = _error("pandalm", tmp_path, judges=[missing])
    assert (err.path, err.field) == (str(missing), "path") and "no such file" in err.message


def test_a_judge_file_that_is_a_directory(tmp_path):
    items = json.loads((DATA / "pandalm" / "testset-v1.json").read_text())[:2]
    (tmp_path / "testset-v1.json").write_text(json.dumps(items))
    (tmp_path / "x-testset-v1.json").mkdir()
    err = _error("pandalm", tmp_path)
    assert err.path == str(tmp_path / "x-testset-v1.json") and "is a directory" in err.message


def test_a_path_that_is_not_valid_unicode_is_printable(tmp_path):
    path = str(tmp_path) + "/\udcff.jsonl"  # a file name byte 0xff, as os.fsdecode gives it
    err = _error("jsonl", path)
    assert err.path.endswith("/\\udcff.jsonl") and err.field == "path"
    assert printable("ok \ud800") == "ok \\ud800"
    str(err).encode("utf-8")
