"""The battle reader: judgment files streamed into what the rating solvers read.

Shared by the ratings CLI (``python -m arena.ratings``) and usable by anything that
wants counts rather than rows. Three ways to read the same files, all through the
formats' own checks (a bad line is ``file:line: field: message``, as on import):

- :func:`read_counts`: pair x outcome counts with bootstrap units
  (:class:`arena.ratings.counts.PairwiseCounts`), aggregated as the lines are read
  (:class:`arena.ratings.tally.Tally`), no row kept. A FastChat battle log takes the
  fast path: :func:`arena.importers.formats.fastchat.battles` checks each line as the
  importer does but builds no record. A JSONL log of :data:`PARALLEL_BYTES` or more is
  read in two halves at once, the second by a child process
  (``arena.importers.formats._battle_counter``, which imports no numpy), on a machine
  with two cores or more; the counts are merged in file order and an error in the second
  half names its line in the whole file (an error in the first half wins, being first).
- :func:`iter_records`: the records of every file, in file order, streamed (what style
  control reads), without the votes of the voters a file flags; :func:`iter_votes`: the
  votes in file order for the online Elo (a FastChat log's battles without records).
- :func:`file_bytes`: the total size, for a progress bar.

Lines are decoded by orjson in blocks (:func:`arena.importers.formats._common.read_items`);
an error anywhere raises before anything is returned, so nothing half-aggregated is seen.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import orjson

from arena.importers.formats import _battle_counter, fastchat, guarded, parse
from arena.importers.formats._common import count_lines, is_json_list, jsonl_split
from arena.importers.records import ImportRowError, VoterRecord
from arena.ratings.counts import PairwiseCounts
from arena.ratings.tally import Tally
from arena.vocabulary import WINNER_CODE

PARALLEL_BYTES = 64 << 20  # a log this large is read by two processes (if two cores)


def iter_records(fmt: str, paths: Sequence[str | Path], **options) -> Iterator:
    """The records of every file in turn (``parse`` on each), streamed. The judgments of a
    voter that a ``jsonl`` file flags (a ``"voter"`` line before them, as ``arena_export``
    writes for the set's flagged voters) are left out, as the arena's public boards leave
    them out."""
    flagged: set[str] = set()
    for path in paths:
        for record in parse(fmt, path, **options):
            if type(record) is VoterRecord:
                (flagged.add if record.flagged else flagged.discard)(record.label)
            elif not flagged or getattr(record, "voter", None) not in flagged:
                yield record


class Vote(NamedTuple):
    """One pairwise vote, in the shape the online Elo reads from a judgment record."""

    contestants: tuple[str, str]
    winner: str
    line: int = 0
    kind: str = "pairwise"
    weight: int = 1


def iter_votes(fmt: str, paths: Sequence[str | Path], **options) -> Iterator:
    """The pairwise votes of every file in file order, for the online Elo: a FastChat log's
    battles as :class:`Vote` (checked as on import, no records built), else the records."""
    if fmt != "fastchat":
        yield from iter_records(fmt, paths, **options)
        return
    for path in paths:
        for model_a, model_b, winner in guarded(fmt, path, fastchat.battles, **options):
            yield Vote((model_a, model_b), winner)


def read_counts(
    fmt: str,
    paths: Sequence[str | Path],
    *,
    group_by_match: bool = True,
    strong_weight: float = 1.0,
    **options,
) -> PairwiseCounts:
    """Pairwise counts of every judgment in ``paths``, equal to
    ``counts_from_records(iter_records(fmt, paths, **options), ...)``.

    A single FastChat log is counted battle by battle without records (each battle is
    its own bootstrap unit: the importer gives each line of a file its own match). With
    several FastChat files the same battle may be in two of them, and its two votes
    then form one unit, so the records are tallied.
    """
    tally = Tally(strong_weight=strong_weight, group_by_match=group_by_match)
    if fmt == "fastchat" and (len(paths) == 1 or not group_by_match):
        for path in paths:
            counted = guarded(fmt, path, _count_battles, **options)
            for model_a, model_b, winner, n in counted:  # in order of first appearance
                tally.add_votes(model_a, model_b, WINNER_CODE[winner], n)
    else:
        tally.add_records(iter_records(fmt, paths, **options))
    return tally.counts()


def _count_battles(path, progress=None, **options) -> Iterator[tuple[str, str, str, int]]:
    """(model_a, model_b, winner, battles) of a FastChat log, in order of first appearance."""
    path = Path(path)
    cuts = [0, path.stat().st_size]
    if cuts[1] >= PARALLEL_BYTES and (os.cpu_count() or 1) > 1 and not is_json_list(path):
        cuts = jsonl_split(path, 2)
    if len(cuts) != 3:
        counted: dict[tuple[str, str, str], int] = {}
        get = counted.get
        for battle in fastchat.battles(path, progress=progress, **options):
            counted[battle] = get(battle, 0) + 1
        yield from ((*battle, n) for battle, n in counted.items())
        return
    child = _start_counter(path, cuts[1], cuts[2], options)
    try:
        counted = {}
        get = counted.get
        share = progress if progress is None else _scaled(progress, cuts[2] / cuts[1])
        for battle in fastchat.battles(path, progress=share, byte_range=(0, cuts[1]), **options):
            counted[battle] = get(battle, 0) + 1
        answer = child.stdout.read()
        child.wait()
    finally:
        if child.returncode is None:  # an error in the first half: the second is not needed
            child.kill()
            child.wait()
        child.stdout.close()
    if child.returncode != 0 or not answer:
        raise OSError(f"the battle reader's second process failed (exit {child.returncode})")
    answer = orjson.loads(answer)
    if "error" in answer:
        e = answer["error"]
        line = e["line"] + count_lines(path, cuts[1]) if e["line"] else 0
        raise ImportRowError(e["path"], line, e["field"], e["message"])
    for model_a, model_b, winner, n in answer["counted"]:
        battle = (model_a, model_b, winner)
        counted[battle] = get(battle, 0) + n
    yield from ((*battle, n) for battle, n in counted.items())


def _start_counter(path: Path, start: int, end: int, options: dict) -> subprocess.Popen:
    """The child process counting the battles in bytes ``start:end`` of ``path``."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])  # where `arena` is imported from
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-m", _battle_counter.__name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    passed = {k: v for k, v in options.items() if k in _battle_counter.OPTIONS}
    request = {"path": str(path), "start": start, "end": end, "options": passed}
    child.stdin.write(orjson.dumps(request))
    child.stdin.close()
    return child


def _scaled(progress, factor: float):
    """Progress of half the file told as progress of the whole (the halves go alike)."""
    return lambda n: progress(round(n * factor))


def file_bytes(paths: Sequence[str | Path]) -> int:
    """Bytes in the files that exist (directories and missing paths count 0)."""
    total = 0
    for path in paths:
        try:
            if os.path.isfile(path):
                total += os.path.getsize(path)
        except OSError:
            pass
    return total
