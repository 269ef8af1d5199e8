"""Reading helpers shared by the formats: JSON items with their line numbers, field checks.

Every reader streams: a JSONL file line by line, a JSON list item by item (the list is
decoded piecewise from a bounded buffer, never read whole), and each record (a line, an
item) may be at most ``max_record_bytes`` long; a longer one is refused without reading
the rest of it. Text that cannot be stored is refused with its line and field: bytes that
are not UTF-8, NUL characters (raw or ``\\u0000``) and lone surrogates (``"\\ud800"``).

JSONL is read in blocks of up to :data:`_BLOCK` bytes, split into lines and decoded by orjson;
a line orjson refuses, and a line holding anything orjson may read otherwise than the
standard library (a NUL, a ``\\u0000`` or surrogate escape, an integer of 19 digits or
more: looked for in the whole block first, then line by line), is decoded by the standard
library exactly as before, so the items and the errors are the standard library's.
Measured on a 1.67M-line FastChat log (305 MB), decoding and counting: per-line
``json.loads`` 7.1 s, ujson 3.3 s, msgspec ``decode_lines`` 2.3 s, orjson 2.2 s (splitting
alone 0.5 s).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from arena.importers.records import ImportRowError

MAX_RECORD_BYTES = 1 << 20  # one JSONL line or one JSON-list item (ARENA_IMPORT_MAX_RECORD_BYTES)
INT_MAX = 2**31 - 1  # the largest integer a file may give (the database's integer columns)
BOM = "\ufeff"
EMPTY = "holds no records (empty)"
TOO_MANY_DIGITS = "not valid JSON (a number with too many digits)"
_CHUNK = 1 << 16
_BLOCK = 1 << 21  # JSONL is read this many bytes at a time (at most twice the record limit)
_WHITESPACE = " \t\r\n"
_decoder = json.JSONDecoder()
# JSON escapes that may decode to text the database cannot store (checked exactly after decoding)
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Lines orjson would read differently from json.loads: escapes that may need the text
# check (orjson refuses lone surrogates, json keeps them for check_text to name), and
# integers of 19 digits or more (orjson turns those beyond 64 bits into floats).
_SUSPECT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_DIGITS = bytes.maketrans(b"123456789", b"000000000")  # every digit becomes "0"
_LONG = b"0" * 19
Progress = Callable[[int], None]  # told the number of bytes read since it was last told


def read_items(
    path: str | Path,
    max_record_bytes: int = MAX_RECORD_BYTES,
    progress: Progress | None = None,
    byte_range: tuple[int, int] | None = None,
    **options,
) -> Iterator[tuple[int, Any]]:
    """(line, item) for a JSON list file or a JSONL file (detected from the first character).

    Both are streamed. For a JSON list the line is the one the item starts on.
    ``progress``, if given, is called with the number of bytes read as reading goes on.
    ``byte_range`` ``(start, end)`` reads only those bytes of a JSONL file, ``start`` being
    where a line starts (see :func:`jsonl_split`); lines are then numbered from 1 there.
    """
    path = Path(path)
    if byte_range is not None:
        yield from _jsonl_items(path, max_record_bytes, progress, *byte_range)
        return
    if is_json_list(path):
        yield from _JsonList(path, max_record_bytes, progress).items()
    else:
        yield from _jsonl_items(path, max_record_bytes, progress)


def is_json_list(path: Path) -> bool:
    """Whether the file is a JSON list (its first non-blank character is ``[``), not JSONL."""
    with Path(path).open("rb") as f:
        head = f.read(4096)
    return head.removeprefix(BOM.encode()).lstrip(_WHITESPACE.encode()).startswith(b"[")


def jsonl_split(path: Path, parts: int) -> list[int]:
    """Offsets ``[0, ..., size]`` cutting a JSONL file into about equal parts at line starts."""
    size = Path(path).stat().st_size
    cuts = [0]
    with Path(path).open("rb") as f:
        for k in range(1, parts):
            f.seek(max(cuts[-1], size * k // parts))
            while (data := f.read(1 << 16)) and (at := data.find(b"\n")) < 0:
                pass
            if not data:
                break
            cuts.append(f.tell() - len(data) + at + 1)
    return sorted({*cuts, size})


def count_lines(path: Path, end: int) -> int:
    """Newlines in the first ``end`` bytes (the lines before a part of :func:`jsonl_split`)."""
    count = 0
    with Path(path).open("rb") as f:
        while end > 0 and (data := f.read(min(_BLOCK, end))):
            count += data.count(b"\n")
            end -= len(data)
    return count


def _jsonl_items(
    path: Path, limit: int, progress: Progress | None = None, start: int = 0, end: int = -1
) -> Iterator[tuple[int, Any]]:
    """The lines of a JSONL file, read in blocks: orjson where it reads a line as json does."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    block = min(_BLOCK, 2 * (limit + 1))  # a line over the limit is refused after one block
    left = end - start if end >= 0 else -1  # bytes still to read (-1: to the end)
    with path.open("rb") as f:
        f.seek(start)
        number = 0  # the line before the block's first
        rest = b""  # the start of a line the last block cut
        while True:
            data = f.read(block if left < 0 else min(block, left))
            left -= len(data) if left > 0 else 0
            if progress is not None and data:
                progress(len(data))
            chunk = rest + data if rest else data
            lines = chunk.split(b"\n") if chunk else []
            rest = lines.pop() if data else b""
            # a block without a NUL or a suspect token is all orjson's; else line by line
            checked = _for_json(chunk)
            for raw in lines:
                number += 1
                if len(raw) > limit:
                    raise _too_long(path, number, limit)
                if not checked or not _for_json(raw):
                    try:
                        item = loads(raw)
                    except decode_error:  # not JSON to orjson: the standard library says why
                        pass
                    else:
                        yield number, item
                        continue
                item = _jsonl_line(path, number, raw, bom=start == 0)
                if item is not _BLANK:
                    yield number, item
            if not data:
                return
            if len(rest) > limit:
                raise _too_long(path, number + 1, limit)


_BLANK = object()


def _for_json(data: bytes) -> bool:
    """Whether ``data`` may hold a line that orjson reads otherwise than json.loads: a NUL,
    a ``\\u0000`` or surrogate escape, or an integer of 19 digits or more (a run of digits
    after ``[``, ``:``, ``,``, a line start, blanks or ``-``; inside a string, a false alarm
    that only costs time)."""
    if b"\x00" in data or (b"\\u" in data and _SUSPECT_BYTES.search(data)):
        return True
    digits = data.translate(_DIGITS)  # then a run of 19 digits is found by bytes.find
    start = digits.find(_LONG)
    while start >= 0:
        at = start - 1
        while at >= 0 and data[at] in b" \t\r-":
            at -= 1
        if at < 0 or data[at] in b"[:,\n":
            return True
        end = start + len(_LONG)
        while end < len(digits) and digits[end] == 48:  # past the rest of this run of "0"
            end += 1
        start = digits.find(_LONG, end)
    return False


def _jsonl_line(path: Path, number: int, raw: bytes, bom: bool = True) -> Any:
    """One JSONL line (without its newline) read by the standard library; _BLANK if blank.
    Line 1 may start with a byte order mark (when ``bom``: it is the file's first line)."""
    if b"\x00" in raw:
        raise _nul(path, number, raw.index(b"\x00") + 1)
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, number, exc) from None
    line = line.removeprefix(BOM) if number == 1 and bom else line
    if not line.strip():
        return _BLANK
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _invalid(path, number, exc.colno, _reason(exc)) from None
    except ValueError:  # an integer of more than 4300 digits
        raise ImportRowError(path, number, "json", TOO_MANY_DIGITS) from None
    check_text(path, number, item, line)
    return item


class _JsonList:
    """A JSON list decoded item by item from a buffer that holds little more than one item."""

    def __init__(self, path: Path, limit: int, progress: Progress | None = None):
        self.path, self.limit, self.progress = path, limit, progress
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf = ""  # text read and not yet dropped
        self.eof = False
        self.line, self.column = 1, 1  # where buf[0] is in the file
        self.counted, self.counted_line = 0, 1  # the line of buf[counted], for line_of()

    def items(self) -> Iterator[tuple[int, Any]]:
        with self.path.open("rb") as self.file:
            pos = self.skip(0)
            if self.buf[pos : pos + 1] == BOM:
                pos = self.skip(pos + 1)
            pos = self.skip(pos + 1)  # past the "[" read_items saw
            if self.buf[pos : pos + 1] == "]":
                self.end(pos)
                return
            while True:
                pos = self.drop(pos)
                line = self.line_of(pos)
                item, end = self.decode(pos)
                check_text(self.path, line, item, self.buf, pos, end)
                yield line, item
                pos = self.skip(end)
                char = self.buf[pos : pos + 1]
                if char == "]":
                    self.end(pos)
                    return
                if not char:
                    raise self.error(pos, "the JSON list is not closed with ']'")
                if char != ",":
                    raise self.error(pos, f"expected ',' or ']' between items, got {char!r}")
                pos = self.skip(pos + 1)

    def end(self, pos: int) -> None:
        after = self.skip(pos + 1)
        if after < len(self.buf):
            raise self.error(after, "extra data after the JSON list")

    def read(self, size: int = _CHUNK) -> None:
        data = self.file.read(size)
        self.eof = not data
        if self.progress is not None and data:
            self.progress(len(data))
        try:
            text = self.decoder.decode(data, final=self.eof)
        except UnicodeDecodeError as exc:
            line = self.line_of(len(self.buf)) + data[: max(exc.start, 0)].count(b"\n")
            raise _not_utf8(self.path, line, exc) from None
        self.buf += text

    def skip(self, pos: int) -> int:
        """The next non-blank position, reading on as needed (len(buf) at the end of the file)."""
        while True:
            while pos < len(self.buf) and self.buf[pos] in _WHITESPACE:
                pos += 1
            if pos < len(self.buf) or self.eof:
                return pos
            pos = self.drop(pos)
            self.read()

    def decode(self, pos: int) -> tuple[Any, int]:
        """The item at ``pos`` and where it ends, reading on while the buffer cuts it short."""
        while True:
            try:
                item, end = _decoder.raw_decode(self.buf, pos)
            except json.JSONDecodeError as exc:
                if self.eof or not _cut_short(self.buf, exc):
                    raise self.error(exc.pos, f"not valid JSON ({_reason(exc)})") from None
            except ValueError:  # an integer of more than 4300 digits
                raise self.error(pos, TOO_MANY_DIGITS) from None
            else:
                if end - pos > self.limit:
                    raise _too_long(self.path, self.line_of(pos), self.limit)
                if end < len(self.buf) or self.eof:  # a number may go on in the next chunk
                    return item, end
            if len(self.buf) - pos > self.limit:
                raise _too_long(self.path, self.line_of(pos), self.limit)
            self.read(max(_CHUNK, len(self.buf) - pos))

    def drop(self, pos: int) -> int:
        """Forget the text before ``pos`` once there is a chunk of it; pos in the kept buffer."""
        if pos < _CHUNK:
            return pos
        dropped = self.buf[:pos]
        newlines = dropped.count("\n")
        self.line += newlines
        self.column = pos - dropped.rfind("\n") if newlines else self.column + pos
        self.buf = self.buf[pos:]
        self.counted, self.counted_line = 0, self.line
        return 0

    def line_of(self, pos: int) -> int:
        if pos < self.counted:
            self.counted, self.counted_line = 0, self.line
        self.counted_line += self.buf.count("\n", self.counted, pos)
        self.counted = pos
        return self.counted_line

    def error(self, pos: int, message: str) -> ImportRowError:
        """``message at column N`` on the line of ``pos`` (a NUL there is named as such)."""
        start = self.buf.rfind("\n", 0, pos) + 1
        column = pos - start + (self.column if start == 0 else 1)
        if self.buf[pos : pos + 1] == "\x00":
            return _nul(self.path, self.line_of(pos), column)
        if message.endswith(")"):
            message = f"{message[:-1]} at column {column})"
        return ImportRowError(self.path, self.line_of(pos), "json", message)


def _cut_short(text: str, exc: json.JSONDecodeError) -> bool:
    """Whether a decoding error may only mean that the text stops early (more is to come)."""
    return exc.msg.startswith("Unterminated string") or len(text) - exc.pos <= len("-Infinity")


def _too_long(path, line: int, limit: int) -> ImportRowError:
    return ImportRowError(
        path, line, "json", f"record longer than {limit} bytes (the limit for one record)"
    )


def _nul(path, line: int, column: int) -> ImportRowError:
    return ImportRowError(path, line, "text", f"NUL byte at column {column}")


def _not_utf8(path, line: int, exc: UnicodeDecodeError) -> ImportRowError:
    return ImportRowError(path, line, "encoding", f"not UTF-8 text ({exc.reason})")


def _invalid(path, line: int, column: int, message: str) -> ImportRowError:
    return ImportRowError(path, line, "json", f"not valid JSON ({message} at column {column})")


def _reason(exc: json.JSONDecodeError) -> str:
    """The decoder's message without its dangling "at" ("Unterminated string starting at")."""
    return exc.msg.removesuffix(" at")


def check_text(path, line: int, item: Any, raw: str, start: int = 0, end: int | None = None):
    """Refuse an item holding a NUL or a lone surrogate, naming the field it is in.

    ``raw`` (``raw[start:end]``) is the item's JSON: only an item whose JSON has a
    ``\\u0000`` or ``\\udXXX`` escape can hold one, so the others are not walked.
    """
    if _SUSPECT.search(raw, start, len(raw) if end is None else end) is None:
        return
    found = _unstorable(item, "")
    if found is not None:
        field, char = found
        raise ImportRowError(path, line, field or "item", _unstorable_message(char))


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored (a NUL, a lone surrogate), or None if it can."""
    if text.isascii() and "\x00" not in text:  # (two scans in C, before the regex's)
        return None
    match = _UNSTORABLE.search(text)
    return _unstorable_message(match.group()) if match else None


def _unstorable_message(char: str) -> str:
    if char == "\x00":
        return "NUL byte (\\u0000)"
    return f"lone surrogate \\u{ord(char):04x} (not valid Unicode text)"


def _unstorable(value: Any, where: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        match = _UNSTORABLE.search(value)
        return (where, match.group()) if match else None
    if isinstance(value, dict):
        for key, inner in value.items():
            field = f"{where}.{key}" if where else str(key)
            found = _unstorable(key, field) or _unstorable(inner, field)
            if found:
                return found
    elif isinstance(value, list):
        for k, inner in enumerate(value):
            found = _unstorable(inner, f"{where}[{k}]")
            if found:
                return found
    return None


def load_json(path: str | Path) -> Any:
    """One whole JSON document (the counts file), with the same text checks as the streams."""
    path = Path(path)
    data = path.read_bytes()
    if b"\x00" in data:
        at = data.index(b"\x00")
        raise _nul(path, data.count(b"\n", 0, at) + 1, at - data.rfind(b"\n", 0, at))
    try:
        text = data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data.count(b"\n", 0, exc.start) + 1, exc) from None
    if not text.strip():
        raise ImportRowError(path, 0, "file", EMPTY)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(path, exc.lineno, exc.colno, _reason(exc)) from None
    except ValueError:  # an integer of more than 4300 digits
        raise ImportRowError(path, 1, "json", TOO_MANY_DIGITS) from None
    check_text(path, 1, document, text)
    return document


def json_line(item: Any) -> str:
    """One JSONL line (with its newline) as ``json.dumps(item, ensure_ascii=False)`` means it,
    written by orjson (compact, 15x faster: exports write millions); what orjson cannot
    write (an integer beyond 64 bits, a non-text key) goes through the standard library."""
    try:
        return orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(item, ensure_ascii=False) + "\n"


def finite(value: Any) -> bool:
    """A JSON number that is a real, finite value (not NaN or Infinity, not a bool, not 1e400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


class Row:
    """One input item with typed field access that raises ImportRowError naming the field."""

    def __init__(self, path, line: int, item: Any):
        self.path, self.line = str(path), line
        if not isinstance(item, dict):
            raise ImportRowError(
                path, line, "item", f"expected a JSON object, got {type(item).__name__}"
            )
        self.item = item

    def error(self, field: str, message: str) -> ImportRowError:
        return ImportRowError(self.path, self.line, field, message)

    def str(
        self, field: str, required: bool = True, default: str = "", allow_empty: bool = False
    ) -> str:
        """A string field; a required one must be present and (unless ``allow_empty``) not blank."""
        value = self.item.get(field)
        if value is None:
            if required:
                raise self.error(field, "missing")
            return default
        if not isinstance(value, str):
            raise self.error(field, f"expected a string, got {type(value).__name__}")
        if required and not allow_empty and not value.strip():
            raise self.error(field, "empty")
        return value

    def text(self, field: str) -> str:
        """Free text that some datasets store as a JSON scalar (PandaLM has answers that are
        the JSON boolean true, from the model's "True"): scalars become their Python text."""
        value = self.item.get(field)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return str(value)
        raise self.error(field, f"expected text, got {type(value).__name__}")

    def int(
        self,
        field: str,
        required: bool = True,
        default: int = 0,
        minimum: int | None = None,
        maximum: int = INT_MAX,
    ) -> int:
        value = self.item.get(field)
        if value is None:
            if required:
                raise self.error(field, "missing")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(field, f"must be at least {minimum}, got {value}")
        if value > maximum:
            raise self.error(field, f"must be at most {maximum}, got {value}")
        return value

    def choice(self, field: str, choices: dict, required: bool = True):
        value = self.item.get(field)
        if value is None and not required:
            return None
        if value is None:
            raise self.error(field, "missing")
        key = value if isinstance(value, str) else json.dumps(value)
        if key not in choices:
            raise self.error(
                field, f"expected one of {', '.join(map(str, choices))}; got {value!r}"
            )
        return choices[key]


def content_id(*parts: Any) -> str:
    """A stable id from content (16 hex digits of SHA-1)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


class Occurrences:
    """Gives repeated identical rows distinct ids (the first ``key``, then ``key#2``,
    ``key#3`` ...), stable across re-imports of one file. No id is given twice in a file:
    a numbered id that an earlier row's key already took (a file naming a battle
    ``x#2`` and then repeating ``x``) moves on to the next number, so a file's ids are
    its matches' keys, one match each (what the loader counts on)."""

    def __init__(self):
        self.given: set[str] = set()
        self.last: dict[str, int] = {}  # a repeated key -> the last number it was given

    def __call__(self, key: str) -> str:
        given = self.given
        if key not in given:
            given.add(key)
            return key
        n = self.last.get(key, 1)
        while True:
            n += 1
            numbered = f"{key}#{n}"
            if numbered not in given:
                break
        self.last[key] = n
        given.add(numbered)
        return numbered
