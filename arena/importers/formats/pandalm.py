"""PandaLM's human-annotated test set (``testset-v1.json``) and its judges' verdict files.

Test set items: ``idx``, ``cmp_key`` "modelA_modelB" (response1 is modelA's),
``instruction``, ``input``, ``motivation_app``, ``response1``, ``response2`` and three
human labels ``annotator1..3``: 0 tie, 1 response1 better, 2 response2 better. Where
the three agree, their label is the match's gold answer (known-answer battles feed voter
trust and the audits' gold accuracy). Judge
files (``<judge>-testset-v1.json``): ``idx`` and ``<x>_result`` ("1", "2", "0"/"Tie",
or "garbage" for an unusable reply, stored as a parse failure), ``<x>_reason``.

``PATH`` is the test set file or a directory holding it and the judge files;
``judges=[...]`` adds judge files explicitly. The judge is named after its file
(``gpt-3.5-turbo-testset-v1.json`` -> "gpt-3.5-turbo").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from arena.importers.formats._common import Row, read_items
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord

TESTSET = "testset-v1.json"
HUMAN = {"0": "tie", "1": "a", "2": "b"}
JUDGE = {"0": "tie", "Tie": "tie", "tie": "tie", "1": "a", "2": "b"}
UNPARSED = {"garbage"}


def parse(path, judges=(), **options) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    path = Path(path)
    if path.is_dir():
        testset = path / TESTSET
        judge_files = sorted(p for p in path.glob("*-" + TESTSET))
    else:
        testset, judge_files = path, []
    judge_files = [*judge_files, *(Path(j) for j in judges if Path(j) not in judge_files)]
    if not testset.exists():
        raise ImportRowError(testset, 0, "path", "no PandaLM test set here")
    pairs: dict[int, tuple[str, str]] = {}
    for line, item in read_items(testset, **options):
        row = Row(testset, line, item)
        idx = row.int("idx", minimum=0)
        if idx in pairs:
            raise row.error("idx", f"duplicate idx {idx}")
        parts = row.str("cmp_key").split("_")
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise row.error("cmp_key", f"expected 'modelA_modelB', got {item['cmp_key']!r}")
        model_a, model_b = parts
        pairs[idx] = (model_a, model_b)
        instruction, extra = (
            row.str("instruction", required=False).strip(),
            row.text("input").strip(),
        )
        if not (instruction or extra):
            raise row.error("instruction", "empty, and so is input")
        key = str(idx)
        yield PromptRecord(
            external_id=key,
            text="\n\n".join(part for part in (instruction, extra) if part),
            category=row.str("motivation_app", required=False),
            line=line,
        )
        yield OutputRecord(prompt_id=key, contestant=model_a, text=row.text("response1"), line=line)
        yield OutputRecord(prompt_id=key, contestant=model_b, text=row.text("response2"), line=line)
        labels = {n: row.choice(f"annotator{n}", HUMAN) for n in (1, 2, 3)}
        unanimous = labels[1] if len(set(labels.values())) == 1 else None
        for n, winner in labels.items():
            field = f"annotator{n}"
            yield JudgmentRecord(
                match_id=key,
                contestants=(model_a, model_b),
                winner=winner,
                voter=f"pandalm:{field}",
                prompt_id=key,
                category=row.str("motivation_app", required=False),
                verdict_label=str(item[field]),
                gold_winner=unanimous,
                line=line,
                path=str(testset),
            )
    for judge_file in judge_files:
        yield from _judge_verdicts(judge_file, pairs, options)


def _judge_verdicts(
    path: Path, pairs: dict[int, tuple[str, str]], options: dict
) -> Iterator[JudgmentRecord]:
    judge = path.name.removesuffix("-" + TESTSET).removesuffix(".json")
    seen: set[int] = set()
    for line, item in read_items(path, **options):
        row = Row(path, line, item)
        idx = row.int("idx", minimum=0)
        if idx not in pairs:
            raise row.error("idx", f"{idx} is not in the test set")
        if idx in seen:
            raise row.error("idx", f"duplicate idx {idx}")
        seen.add(idx)
        result_keys = [k for k in item if k.endswith("_result")]
        if len(result_keys) != 1:
            raise row.error("*_result", "expected exactly one <judge>_result field")
        prefix = result_keys[0].removesuffix("_result")
        raw = item[result_keys[0]]
        label = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
        if label in UNPARSED:
            winner = None
        elif label in JUDGE:
            winner = JUDGE[label]
        else:
            raise row.error(result_keys[0], f"expected 1, 2, 0/Tie or garbage; got {raw!r}")
        reason = item.get(f"{prefix}_reason")
        yield JudgmentRecord(
            match_id=str(idx),
            contestants=pairs[idx],
            winner=winner,
            judge=judge,
            prompt_id=str(idx),
            verdict_label=label,
            raw_text=reason if isinstance(reason, str) else "",
            meta={"reference": item.get(f"{prefix}_reference")},
            line=line,
            path=str(path),
        )
