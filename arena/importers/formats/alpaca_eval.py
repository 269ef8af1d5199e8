"""AlpacaEval annotations (``annotations.json``): a JSON list of

``{instruction, output_1, generator_1, output_2, generator_2, preference, annotator, raw_completion, ...}``

``preference`` is a float in [1, 2]: 1 = output_1 better, 2 = output_2 better, 1.5 a
draw; fractional values are soft preferences (weighted annotators), kept exactly in
``preference``. The winner is the side the preference leans to (< 1.5 -> a, > 1.5 -> b,
1.5 -> tie), which is AlpacaEval's discrete win rate (``ZeroOneScoringRule`` rounds the
preference after mapping 1.5 to a draw).

As in AlpacaEval (``metrics/helpers.py``, ``describe_head2head``): 0 is the old encoding of
a draw and is read as 1.5; a null (or NaN) preference is an annotation that failed, which
AlpacaEval drops from its win rate. We keep it as a judgment with no winner (a parse
failure the loader stores), so it is counted as a failure rather than lost.

Slots: (generator_1, generator_2). The annotator saw the outputs in an order AlpacaEval
randomises and then undoes, which the file does not record: presentation is (0, 1). Each
judgment carries both outputs' lengths in characters (``meta["output_chars"]``, pandas'
``str.len()``), which the length-controlled win rate needs.

The baseline's own file (generator_1 = generator_2, the same output on both sides) is not
a comparison: AlpacaEval scores it as all draws, by construction. Its instructions and the
baseline's outputs are read; its rows make no judgment (the win-rate board lists the
baseline at 50 ± 0 without them). The same generator with two different outputs is refused.

A directory is AlpacaEval's results folder as published, ``<model>/<annotator>/
annotations.json`` for many models: every ``annotations.json`` under it is read, in path
order, one annotator's (``annotator=`` the folder name; needed when there are several).
Prompts and outputs shared by files are given once; an error names the file it is in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from arena.importers.formats._common import Occurrences, Row, content_id, read_items
from arena.importers.records import (
    ImportRowError,
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
)

ANNOTATIONS = "annotations.json"


def parse(
    path, annotator: str | None = None, **options
) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    seen = _Seen()
    if not Path(path).is_dir():
        yield from _parse_file(path, seen, **options)
        return
    for file in results_files(path, annotator):
        yield from _parse_file(file, seen, in_folder=True, **options)


def results_files(folder, annotator: str | None = None) -> list[Path]:
    """The ``annotations.json`` files of a results folder, of one annotator (the folder
    that holds each file)."""
    files = sorted(Path(folder).rglob(ANNOTATIONS))
    if annotator:
        files = [f for f in files if f.parent.name == annotator]
    names = sorted({f.parent.name for f in files})
    if not files:
        which = f" of annotator {annotator!r}" if annotator else ""
        raise ImportRowError(folder, 0, "path", f"no {ANNOTATIONS}{which} under it")
    if len(names) > 1:
        raise ImportRowError(
            folder,
            0,
            "annotator",
            f"annotations of {len(names)} annotators ({', '.join(names)}); choose one",
        )
    return files


class _Seen:
    """What a folder's files have given already (prompts and outputs once, match ids)."""

    def __init__(self):
        self.ids = Occurrences()
        self.prompts: set[str] = set()
        self.outputs: dict[tuple[str, str], str] = {}


def _parse_file(path, seen: _Seen, in_folder: bool = False, **options):
    ids, prompts, outputs = seen.ids, seen.prompts, seen.outputs
    where = str(path) if in_folder else ""
    for line, item in read_items(path, **options):
        row = Row(path, line, item)
        instruction = row.str("instruction")
        gen_1, gen_2 = row.str("generator_1"), row.str("generator_2")
        out_1, out_2 = row.text("output_1"), row.text("output_2")
        itself = gen_1 == gen_2
        if itself and out_1 != out_2:
            raise row.error(
                "output_2", f"same generator on both sides ({gen_1!r}) with different outputs"
            )
        preference = item.get("preference")
        if isinstance(preference, float) and math.isnan(preference):
            preference = None  # pandas writes a failed annotation as NaN
        if preference is not None:
            if isinstance(preference, bool) or not isinstance(preference, int | float):
                raise row.error(
                    "preference", f"expected a number in [1, 2] or null, got {preference!r}"
                )
            preference = 1.5 if preference == 0 else float(preference)
            if not 1.0 <= preference <= 2.0:
                raise row.error(
                    "preference",
                    f"expected a number in [1, 2] (0 = draw) or null, got {item['preference']!r}",
                )
        annotator = row.str("annotator", required=False) or "alpaca-eval"
        prompt_id = content_id(instruction, item.get("dataset"))
        if prompt_id not in prompts:
            prompts.add(prompt_id)
            yield PromptRecord(
                external_id=prompt_id,
                text=instruction,
                category=str(item.get("dataset") or ""),
                line=line,
            )
        for gen, text in ((gen_1, out_1), (gen_2, out_2)):
            if (prompt_id, gen) not in outputs:
                outputs[(prompt_id, gen)] = text
                yield OutputRecord(prompt_id=prompt_id, contestant=gen, text=text, line=line)
        if itself:
            continue  # the baseline against itself: a draw by construction, not a judgment
        winner = (
            None
            if preference is None
            else "a"
            if preference < 1.5
            else "b"
            if preference > 1.5
            else "tie"
        )
        yield JudgmentRecord(
            match_id=ids(content_id(prompt_id, gen_1, gen_2, annotator)),
            contestants=(gen_1, gen_2),
            winner=winner,
            preference=preference,
            judge=annotator,
            prompt_id=prompt_id,
            verdict_label="" if preference is None else f"{preference:g}",
            raw_text=_raw_text(item.get("raw_completion")),
            meta={"output_chars": (len(out_1), len(out_2))},
            line=line,
            path=where,
        )


def _raw_text(raw) -> str:
    """The annotator's reply; weighted annotators store a completion object, kept as JSON."""
    if raw is None:
        return ""
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)


def export(records: Iterable, out: TextIO, **options) -> None:
    prompts: dict[str, PromptRecord] = {}
    outputs: dict[tuple[str, str], str] = {}
    rows = []
    for r in records:
        if isinstance(r, PromptRecord):
            prompts[r.external_id] = r
        elif isinstance(r, OutputRecord):
            outputs[(r.prompt_id, r.contestant)] = r.text
        elif (
            isinstance(r, JudgmentRecord)
            and r.kind == "pairwise"
            and len(r.contestants) == 2
            and r.prompt_id in prompts
        ):
            if r.preference is not None:
                preference = r.preference
            elif r.winner is None:
                preference = None
            else:
                preference = {"a": 1.0, "b": 2.0}.get(r.winner, 1.5)
            prompt = prompts[r.prompt_id]
            row = {
                "instruction": prompt.text,
                "output_1": outputs.get((r.prompt_id, r.contestants[0]), ""),
                "generator_1": r.contestants[0],
                "output_2": outputs.get((r.prompt_id, r.contestants[1]), ""),
                "generator_2": r.contestants[1],
                "annotator": r.judge or r.voter,
                "preference": preference,
                "raw_completion": r.raw_text,
                "dataset": prompt.category or None,
            }
            rows.extend([row] * r.weight)
    if not rows:
        raise ValueError("alpaca-eval: nothing to export (pairwise judgments on stored prompts)")
    json.dump(rows, out, ensure_ascii=False, indent=1)
