"""Reading helpers shared by the formats: JSON items with their line numbers, field checks."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from arena.importers.records import ImportRowError

_decoder = json.JSONDecoder()


def read_items(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line, item) for a JSON list file or a JSONL file (detected from the first character).

    JSONL is streamed line by line. A JSON list is one document, read whole, but each
    item is decoded on its own so errors and records carry the line the item starts on.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        head = f.read(4096).lstrip("\ufeff \t\r\n")
    if head.startswith("["):
        yield from _json_list_items(path)
    else:
        yield from _jsonl_items(path)


def _jsonl_items(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportRowError(
                    path, number, "json", f"not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None


def _json_list_items(path: Path) -> Iterator[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8").lstrip("\ufeff")
    pos = _skip(text, text.index("[") + 1)
    line, counted = 1, 0
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            item, end = _decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ImportRowError(
                path, exc.lineno, "json", f"not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        yield line, item
        pos = _skip(text, end)
        if pos >= len(text):
            raise ImportRowError(
                path,
                text.count("\n", 0, len(text)) + 1,
                "json",
                "the JSON list is not closed with ']'",
            )
        if text[pos] == "]":
            if _skip(text, pos + 1) != len(text):
                raise ImportRowError(
                    path, text.count("\n", 0, pos) + 1, "json", "extra data after the JSON list"
                )
            return
        if text[pos] != ",":
            raise ImportRowError(
                path,
                text.count("\n", 0, pos) + 1,
                "json",
                f"expected ',' or ']' between items, got {text[pos]!r}",
            )
        pos = _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def load_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImportRowError(
            path, exc.lineno, "json", f"not valid JSON ({exc.msg} at column {exc.colno})"
        ) from None


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
        self, field: str, required: bool = True, default: int = 0, minimum: int | None = None
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
    """Gives repeated identical rows distinct ids (#1, #2 ...), stable across re-imports of one file."""

    def __init__(self):
        self.seen: Counter[str] = Counter()

    def __call__(self, key: str) -> str:
        self.seen[key] += 1
        n = self.seen[key]
        return key if n == 1 else f"{key}#{n}"
