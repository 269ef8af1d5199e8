"""The second process of the battle reader: counts the FastChat battles in a part of a log.

``python -m arena.importers.formats._battle_counter`` reads one JSON request on stdin,
``{"path", "start", "end", "options"}``, and writes one JSON answer on stdout:
``{"counted": [[model_a, model_b, winner, n], ...]}`` in order of first appearance, or
``{"error": {path, line, field, message}}`` with the line counted from the part's start.
It imports no numpy, so it starts in a fraction of a second.
"""

from __future__ import annotations

import sys

import orjson

from arena.importers.formats import fastchat
from arena.importers.records import ImportRowError

OPTIONS = ("max_record_bytes", "anony_only", "sampled_only")  # what a request may pass on


def count(path: str, start: int, end: int, **options) -> dict:
    counted: dict[tuple[str, str, str], int] = {}
    get = counted.get
    try:
        for battle in fastchat.battles(path, byte_range=(start, end), **options):
            counted[battle] = get(battle, 0) + 1
    except ImportRowError as exc:
        return {"error": exc.as_dict()}
    return {"counted": [[*battle, n] for battle, n in counted.items()]}


def main() -> None:
    request = orjson.loads(sys.stdin.buffer.read())
    options = {k: v for k, v in request.get("options", {}).items() if k in OPTIONS}
    answer = count(request["path"], request["start"], request["end"], **options)
    sys.stdout.buffer.write(orjson.dumps(answer))


if __name__ == "__main__":
    main()
