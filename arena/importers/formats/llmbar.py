"""LLMBar (princeton-nlp/LLMBar): gold-labelled output pairs and judges' verdicts in both orders.

``dataset.json``: a list of ``{input, output_1, output_2, label}``, label 1 or 2 = the
objectively better output. ``evaluators/<judge>/Swap/result.json`` (optional): the same
pairs, each with ``results`` whose LAST element holds ``{"swap = False": {"winner"},
"swap = True": {"winner"}}``; winners are in the original numbering.

The outputs have no model behind them: they belong to the anonymous contestants
"llmbar:output_1" and "llmbar:output_2". The label is stored as the match's gold answer
and as a judgment by the voter "llmbar:gold" (the authors' expert annotation), so gold
pairs exist even where no evaluator ran.

``PATH`` is a dataset directory (``Natural``, ``Adversarial/Manual`` ...) or its
``dataset.json``; the evaluator results under it are read too, and ``judges=[...]`` adds
other ``result.json`` files (the judge is named after the directory above ``Swap``).
Prompt and match ids are ``<subset>/<index>`` (``Natural/0``, ``Adversarial/Manual/12``;
the subset is the dataset's directory, or the ``subset`` option), so the five datasets
can share one prompt set without their items colliding.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from arena.importers.formats._common import Row, read_items
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord

CONTESTANTS = ("llmbar:output_1", "llmbar:output_2")
LABELS = {"1": "a", "2": "b"}
ORDERS = {"swap = False": (0, 1), "swap = True": (1, 0)}


def parse(
    path, judges=(), subset: str | None = None, **options
) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    path = Path(path)
    dataset = path / "dataset.json" if path.is_dir() else path
    if not dataset.exists():
        raise ImportRowError(dataset, 0, "path", "no LLMBar dataset.json here")
    subset = subset or _subset(dataset)
    inputs: list[str] = []
    gold: list[str] = []
    for line, item in read_items(dataset, **options):
        row = Row(dataset, line, item)
        key = f"{subset}/{len(inputs)}"
        text = row.str("input")
        label = row.choice("label", LABELS)
        inputs.append(text)
        gold.append(label)
        yield PromptRecord(external_id=key, text=text, line=line)
        yield OutputRecord(
            prompt_id=key, contestant=CONTESTANTS[0], text=row.text("output_1"), line=line
        )
        yield OutputRecord(
            prompt_id=key, contestant=CONTESTANTS[1], text=row.text("output_2"), line=line
        )
        yield JudgmentRecord(
            match_id=key,
            contestants=CONTESTANTS,
            winner=label,
            voter="llmbar:gold",
            prompt_id=key,
            gold_winner=label,
            verdict_label=str(item["label"]),
            line=line,
            path=str(dataset),
        )
    results = sorted(dataset.parent.glob("evaluators/*/Swap/result.json"))
    results += [Path(j) for j in judges if Path(j) not in results]
    for result in results:
        if not result.is_file():
            raise ImportRowError(result, 0, "path", "no such evaluator result file")
        yield from _verdicts(result, _judge_name(result), subset, inputs, gold, options)


def _subset(dataset: Path) -> str:
    """``Natural`` or ``Adversarial/GPTInst``: the dataset's directory (and its parent's)."""
    folder = dataset.parent
    if folder.parent.name == "Adversarial":
        return f"Adversarial/{folder.name}"
    return folder.name or "llmbar"


def _judge_name(result: Path) -> str:
    """``evaluators/GPT-4/Swap/result.json`` -> GPT-4 (a loose file: its directory's name)."""
    folder = result.parent
    return folder.parent.name if folder.name == "Swap" else folder.name


def _verdicts(
    path: Path, judge: str, subset: str, inputs: list[str], gold: list[str], options: dict
) -> Iterator[JudgmentRecord]:
    count = 0
    for line, item in read_items(path, **options):
        row = Row(path, line, item)
        k = count
        count += 1
        if k >= len(inputs) or row.str("input") != inputs[k]:
            raise row.error("input", f"item {k + 1} does not match item {k + 1} of dataset.json")
        results = item.get("results")
        if not isinstance(results, list) or not results or not isinstance(results[-1], dict):
            raise row.error(
                "results", "expected a non-empty list whose last element holds both orders"
            )
        final = results[-1]
        for order_name, presentation in ORDERS.items():
            verdict = final.get(order_name)
            if not isinstance(verdict, dict):
                raise row.error(f"results[-1].{order_name}", "missing")
            raw = verdict.get("winner")
            if raw is not None and str(raw) not in LABELS:
                raise row.error(
                    f"results[-1].{order_name}.winner", f"expected 1, 2 or null; got {raw!r}"
                )
            completion = verdict.get("completion")
            text = (
                completion[0]
                if isinstance(completion, list) and completion and isinstance(completion[0], str)
                else ""
            )
            yield JudgmentRecord(
                match_id=f"{subset}/{k}",
                contestants=CONTESTANTS,
                winner=LABELS.get(str(raw)) if raw is not None else None,
                presentation=presentation,
                judge=judge,
                prompt_id=f"{subset}/{k}",
                gold_winner=gold[k],
                verdict_label="" if raw is None else str(raw),
                raw_text=text,
                line=line,
                path=str(path),
            )
    if count != len(inputs):
        raise ImportRowError(
            path, 0, "results", f"has {count} items, dataset.json has {len(inputs)}"
        )
