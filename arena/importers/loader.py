"""Load parsed records into the database: atomic per file, idempotent on re-import.

A file is read as a stream of records (``arena.importers.formats.parse``) and written in
batches inside ONE transaction: a bad line anywhere rolls the whole file back, so a
file is either stored completely or not at all. Every row has a natural key (prompt:
set + external id; match: set + source + external id; judgment: match + judge/voter +
presentation + repeat), and rows whose key already exists are skipped, so importing
the same file twice stores nothing twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from arena.boards import rebuild_pair_counts
from arena.importers.formats import parse
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord
from arena.models import (
    Contestant,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    Output,
    Prompt,
    PromptSet,
    Voter,
)
from arena.vocabulary import presentation

BATCH_SIZE = 2000

DEFAULT_PROMPT_SETS = {
    "counts": "chatbot-arena",
    "fastchat": "fastchat",
    "arena-hard": "arena-hard",
    "alpaca-eval": "alpaca-eval",
    "pandalm": "pandalm",
    "llmbar": "llmbar",
    "jsonl": "default",
}


@dataclass
class ImportReport:
    path: str
    prompts: int = 0
    outputs: int = 0
    matches: int = 0
    judgments: int = 0
    votes: int = 0  # judgments weighted by multiplicity
    skipped: int = 0  # records whose row was already stored
    errors: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if self.errors:
            return f"{self.path}: NOT imported: " + "; ".join(
                f"line {e['line']}: {e['field']}: {e['message']}" for e in self.errors
            )
        return (
            f"{self.path}: {self.prompts} prompts, {self.outputs} outputs, {self.matches} matches, "
            f"{self.judgments} judgments ({self.votes} votes) stored; {self.skipped} already present"
        )


def import_file(
    fmt: str, path: str | Path, prompt_set: str | None = None, **options
) -> ImportReport:
    """Parse and store one file; on any error store nothing and report it."""
    report = ImportReport(path=str(path))
    slug = prompt_set or DEFAULT_PROMPT_SETS.get(fmt, fmt)
    try:
        with transaction.atomic():
            loader = _Loader(_prompt_set(slug, fmt, path), source=fmt, report=report)
            for batch in _batched(parse(fmt, path, **options), BATCH_SIZE):
                loader.store(batch)
            loader.finish()
    except ImportRowError as exc:
        report.errors.append(exc.as_dict())
        report.prompts = report.outputs = report.matches = report.judgments = report.votes = (
            report.skipped
        ) = 0
    return report


def import_records(
    records: Iterable, prompt_set: str, source: str, path: str = "<records>"
) -> ImportReport:
    """Store records that are already parsed (used by tests and by the export/import round trip)."""
    report = ImportReport(path=path)
    with transaction.atomic():
        loader = _Loader(_prompt_set(prompt_set, source, path), source=source, report=report)
        for batch in _batched(iter(records), BATCH_SIZE):
            loader.store(batch)
        loader.finish()
    return report


def _batched(it: Iterator, n: int) -> Iterator[list]:
    while batch := list(itertools.islice(it, n)):
        yield batch


def _prompt_set(slug: str, fmt: str, path) -> PromptSet:
    prompt_set, _ = PromptSet.objects.get_or_create(
        slug=slug,
        defaults={
            "name": slug.replace("-", " ").title(),
            "source": f"{fmt}: {Path(str(path)).name}",
        },
    )
    return prompt_set


class _Loader:
    """Maps records to rows for one prompt set, with name -> id caches across batches."""

    def __init__(self, prompt_set: PromptSet, source: str, report: ImportReport):
        self.prompt_set, self.source, self.report = prompt_set, source, report
        self.contestants: dict[str, int] = {}
        self.voters: dict[str, int] = {}
        self.judges: dict[str, int] = {}
        self.prompts: dict[str, int] = dict(
            Prompt.objects.filter(prompt_set=prompt_set).values_list("external_id", "id")
        )

    def store(self, batch: list) -> None:
        prompts = [r for r in batch if isinstance(r, PromptRecord)]
        outputs = [r for r in batch if isinstance(r, OutputRecord)]
        judgments = [r for r in batch if isinstance(r, JudgmentRecord)]
        if prompts:
            self._store_prompts(prompts)
        if outputs:
            self._store_outputs(outputs)
        if judgments:
            self._store_judgments(judgments)

    def finish(self) -> None:
        """Bring the running pair counts in line with the raw judgments (same transaction)."""
        if self.report.judgments:
            rebuild_pair_counts(self.prompt_set)

    # --- names ---------------------------------------------------------------------------
    def _contestant_ids(self, names: set[str]) -> dict[str, int]:
        missing = names - self.contestants.keys()
        if missing:
            known = dict(Contestant.objects.filter(name__in=missing).values_list("name", "id"))
            new = [
                Contestant(
                    name=n,
                    kind=Contestant.Kind.ANONYMOUS
                    if n.startswith("llmbar:")
                    else Contestant.Kind.MODEL,
                    family=_family(n),
                )
                for n in sorted(missing - known.keys())
            ]
            Contestant.objects.bulk_create(new)
            known.update({c.name: c.id for c in new})
            self.contestants.update(known)
        return self.contestants

    def _voter_ids(self, labels: set[str]) -> dict[str, int]:
        missing = labels - self.voters.keys()
        if missing:
            known = dict(Voter.objects.filter(label__in=missing).values_list("label", "id"))
            new = [
                Voter(label=label, kind=Voter.Kind.IMPORTED)
                for label in sorted(missing - known.keys())
            ]
            Voter.objects.bulk_create(new)
            known.update({v.label: v.id for v in new})
            self.voters.update(known)
        return self.voters

    def _judge_ids(self, names: set[str]) -> dict[str, int]:
        for name in names - self.judges.keys():
            # Imported verdicts belong to an endpoint-less judge of that name.
            judge = Judge.objects.filter(name=name, base_url="").order_by("created_at").first()
            if judge is None:
                judge = Judge.objects.create(
                    name=name,
                    model=name,
                    family=_family(name),
                    description="Imported verdicts",
                    both_orders=False,
                )
            self.judges[name] = judge.id
        return self.judges

    # --- prompts and outputs ---------------------------------------------------------------
    def _store_prompts(self, records: list[PromptRecord]) -> None:
        new = {}
        for r in records:
            if r.external_id in self.prompts or r.external_id in new:
                self.report.skipped += 1
                continue
            new[r.external_id] = Prompt(
                prompt_set=self.prompt_set,
                external_id=r.external_id,
                text=r.text,
                turns=list(r.turns),
                category=r.category,
                language=r.language,
                reference_answer=r.reference_answer,
            )
        Prompt.objects.bulk_create(new.values())
        self.prompts.update({p.external_id: p.id for p in new.values()})
        self.report.prompts += len(new)

    def _store_outputs(self, records: list[OutputRecord]) -> None:
        ids = self._contestant_ids({r.contestant for r in records})
        for r in records:
            if r.prompt_id not in self.prompts:
                raise ImportRowError(
                    self.report.path,
                    r.line,
                    "prompt_id",
                    f"unknown prompt {r.prompt_id!r} (prompts must come before their outputs)",
                )
        keys = {
            (self.prompts[r.prompt_id], ids[r.contestant], r.generation_config) for r in records
        }
        existing = set(
            Output.objects.filter(prompt_id__in={k[0] for k in keys}).values_list(
                "prompt_id", "contestant_id", "generation_config"
            )
        )
        new = {}
        for r in records:
            key = (self.prompts[r.prompt_id], ids[r.contestant], r.generation_config)
            if key in existing or key in new:
                self.report.skipped += 1
                continue
            output = Output(
                prompt_id=key[0],
                contestant_id=key[1],
                generation_config=r.generation_config,
                text=r.text,
            )
            output.fill_stats()
            new[key] = output
        Output.objects.bulk_create(new.values())
        self.report.outputs += len(new)

    # --- matches and judgments -------------------------------------------------------------
    def _store_judgments(self, records: list[JudgmentRecord]) -> None:
        contestants = self._contestant_ids({name for r in records for name in r.contestants})
        voters = self._voter_ids({r.voter for r in records if r.voter})
        judges = self._judge_ids({r.judge for r in records if r.judge})
        for r in records:
            if r.prompt_id and r.prompt_id not in self.prompts:
                raise ImportRowError(
                    self.report.path, r.line, "prompt_id", f"unknown prompt {r.prompt_id!r}"
                )
        matches = self._match_ids(records, contestants)

        keys = []
        for r in records:
            who = ("judge", judges[r.judge]) if r.judge else ("voter", voters[r.voter])
            keys.append((matches[r.match_id], who, presentation(r.presentation), r.repeat))
        existing = set()
        for who_field in ("judge", "voter"):
            rows = Judgment.objects.filter(
                match_id__in={k[0] for k in keys if k[1][0] == who_field},
                **{f"{who_field}__isnull": False},
            )
            existing.update(
                (m, (who_field, w), p, rep)
                for m, w, p, rep in rows.values_list(
                    "match_id", f"{who_field}_id", "presentation", "repeat"
                )
            )
        new = {}
        for key, r in zip(keys, records, strict=True):
            if key in existing or key in new:
                self.report.skipped += 1
                continue
            new[key] = _judgment(r, key)
        Judgment.objects.bulk_create(new.values())
        self.report.judgments += len(new)
        self.report.votes += sum(j.weight for j in new.values())

    def _match_ids(
        self, records: list[JudgmentRecord], contestants: dict[str, int]
    ) -> dict[str, int]:
        first = {}
        for r in records:
            seen = first.setdefault(r.match_id, r)
            if seen.contestants != r.contestants:
                raise ImportRowError(
                    self.report.path,
                    r.line,
                    "contestants",
                    f"match {r.match_id!r} was given other contestants on line {seen.line}",
                )
        ids = dict(
            Match.objects.filter(
                prompt_set=self.prompt_set, source=self.source, external_id__in=first.keys()
            ).values_list("external_id", "id")
        )
        self._check_existing_slots(ids, first, contestants)
        new = [
            Match(
                prompt_set=self.prompt_set,
                prompt_id=self.prompts.get(r.prompt_id) if r.prompt_id else None,
                origin=Match.Origin.IMPORT,
                source=self.source,
                external_id=match_id,
                k=len(r.contestants),
                category=r.category,
                language=r.language,
                gold_winner=r.gold_winner or "",
            )
            for match_id, r in first.items()
            if match_id not in ids
        ]
        Match.objects.bulk_create(new)
        ids.update({m.external_id: m.id for m in new})
        self.report.matches += len(new)

        outputs = self._output_ids([first[m.external_id] for m in new if m.prompt_id], contestants)
        MatchSlot.objects.bulk_create(
            MatchSlot(
                match_id=m.id,
                position=pos,
                contestant_id=contestants[name],
                output_id=outputs.get((m.prompt_id, contestants[name])),
            )
            for m in new
            for pos, name in enumerate(first[m.external_id].contestants)
        )
        return ids

    def _check_existing_slots(
        self, ids: dict[str, int], first: dict[str, JudgmentRecord], contestants: dict[str, int]
    ) -> None:
        if not ids:
            return
        stored: dict[int, list[int]] = {}
        for match_id, contestant_id in (
            MatchSlot.objects.filter(match_id__in=ids.values())
            .order_by("match_id", "position")
            .values_list("match_id", "contestant_id")
        ):
            stored.setdefault(match_id, []).append(contestant_id)
        for external_id, match_id in ids.items():
            r = first[external_id]
            if stored.get(match_id) != [contestants[n] for n in r.contestants]:
                raise ImportRowError(
                    self.report.path,
                    r.line,
                    "contestants",
                    f"match {external_id!r} is already stored with other contestants",
                )

    def _output_ids(
        self, records: list[JudgmentRecord], contestants: dict[str, int]
    ) -> dict[tuple[int, int], int]:
        prompt_ids = {self.prompts[r.prompt_id] for r in records}
        if not prompt_ids:
            return {}
        return {
            (p, c): o
            for o, p, c in Output.objects.filter(
                prompt_id__in=prompt_ids, generation_config=""
            ).values_list("id", "prompt_id", "contestant_id")
        }


def _judgment(r: JudgmentRecord, key) -> Judgment:
    match_id, (who_field, who_id), presentation, repeat = key
    if r.kind == "pairwise":
        ok = r.winner is not None
    elif r.kind == "ranking":
        ok = r.ranking is not None
    else:
        ok = r.score is not None
    return Judgment(
        match_id=match_id,
        **{f"{who_field}_id": who_id},
        kind=r.kind,
        status=Judgment.Status.OK if ok else Judgment.Status.PARSE_FAILED,
        winner=r.winner if ok else None,
        strength=r.strength,
        ranking=list(r.ranking) if r.ranking is not None else None,
        score=r.score,
        preference=r.preference,
        presentation=presentation,
        repeat=repeat,
        weight=r.weight,
        verdict_label=r.verdict_label[:100],
        raw_text=r.raw_text,
        probabilities=r.meta.get("probabilities"),
    )


_FAMILIES = (
    "cerebras",
    "gpt",
    "claude",
    "gemini",
    "llama",
    "mistral",
    "mixtral",
    "qwen",
    "yi",
    "command",
    "vicuna",
    "palm",
    "falcon",
    "bloom",
    "opt",
    "pythia",
    "cerebras",
    "deepseek",
    "phi",
    "gemma",
    "glm",
    "chatglm",
)


def _family(name: str) -> str:
    """A best guess from the name (editable in the admin): the family the name starts with,
    else one named after a vendor prefix ("meta/llama-3" -> llama). "cerebras-gpt" is Cerebras'."""
    lowered = name.lower().rsplit("/", 1)[-1]
    if lowered.startswith("chatgpt"):
        return "gpt"
    starts = [family for family in _FAMILIES if lowered.startswith(family)]
    if starts:
        return max(starts, key=len)
    inner = [family for family in _FAMILIES if f"-{family}" in lowered]
    return inner[0] if inner else ""
