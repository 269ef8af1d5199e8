"""Arena's own JSONL format: one object per line, the kind given by "type".

See docs/formats.md for every field. In short::

    {"type": "prompt", "id": "p1", "text": "What is 2+2?", "category": "math"}
    {"type": "output", "prompt": "p1", "contestant": "model-x", "text": "4"}
    {"type": "rubric", "criteria": [{"name": "correctness", "levels": ["wrong", "right"]}]}
    {"type": "judgment", "match": "m1", "contestants": ["model-x", "model-y"],
     "winner": "a", "voter": "alice", "prompt": "p1"}
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TextIO

from arena.importers.formats._common import Row, finite, json_line, read_items
from arena.importers.records import (
    WINNERS,
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
    RubricRecord,
    VoterRecord,
)
from arena.rubrics import NAME as CRITERION_NAME
from arena.rubrics import parse_criteria

KINDS = ("pairwise", "ranking", "score")
NO_VERDICT = ("failed", "parse_failed")  # a judgment's status without a verdict
# fields written even when empty (an output's text may be "")
ALWAYS = {
    "prompt": {"type", "id", "text"},
    "output": {"type", "prompt", "contestant", "text"},
    "rubric": {"type", "criteria"},
    "voter": {"type", "label", "flagged"},
    "judgment": {"type", "match", "contestants"},
}


def parse(
    path, **options
) -> Iterator[PromptRecord | OutputRecord | RubricRecord | VoterRecord | JudgmentRecord]:
    for line, item in read_items(path, **options):
        row = Row(path, line, item)
        kind = row.choice(
            "type", {k: k for k in ("prompt", "output", "rubric", "voter", "judgment")}
        )
        if kind == "prompt":
            turns = item.get("turns", [])
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise row.error("turns", "expected a list of strings")
            yield PromptRecord(
                external_id=row.str("id"),
                text=row.str("text"),
                category=row.str("category", required=False),
                language=row.str("language", required=False),
                reference_answer=row.str("reference", required=False),
                turns=tuple(turns),
                line=line,
            )
        elif kind == "output":
            yield OutputRecord(
                prompt_id=row.str("prompt"),
                contestant=row.str("contestant"),
                text=row.str("text", allow_empty=True),
                generation_config=row.str("config", required=False),
                line=line,
            )
        elif kind == "rubric":
            yield _rubric(row, line)
        elif kind == "voter":
            flagged = item.get("flagged", False)
            if not isinstance(flagged, bool):
                raise row.error("flagged", f"expected true or false, got {flagged!r}")
            yield VoterRecord(
                label=row.str("label"),
                flagged=flagged,
                reason=row.str("reason", required=False),
                line=line,
            )
        else:
            yield _judgment(row, line)


def _rubric(row: Row, line: int) -> RubricRecord:
    criteria = row.item.get("criteria")
    try:
        parse_criteria(criteria)
    except ValueError as exc:
        raise row.error("criteria", str(exc)) from None
    return RubricRecord(
        criteria=tuple(criteria),
        prompt_id=row.str("prompt", required=False) or None,
        source=row.str("source", required=False),
        line=line,
    )


def _judgment(row: Row, line: int) -> JudgmentRecord:
    item = row.item
    contestants = item.get("contestants")
    if (
        not isinstance(contestants, list)
        or len(contestants) < 2
        or not all(isinstance(c, str) and c for c in contestants)
    ):
        raise row.error("contestants", "expected a list of at least 2 contestant names")
    if len(set(contestants)) != len(contestants):
        raise row.error("contestants", "a contestant appears twice")
    k = len(contestants)
    kind = row.choice("kind", {x: x for x in KINDS}, required=False) or (
        "ranking" if "ranking" in item else "score" if "score" in item else "pairwise"
    )
    voter, judge = row.str("voter", required=False), row.str("judge", required=False)
    if bool(voter) == bool(judge):
        raise row.error("voter", "give exactly one of voter (a person) or judge (an LLM judge)")
    winner = ranking = score = preference = None
    if kind == "pairwise":
        if k != 2:
            raise row.error("contestants", "a pairwise judgment has exactly 2 contestants")
        winner = row.choice("winner", {w: w for w in WINNERS}, required=False)
        if "preference" in item and item["preference"] is not None:
            preference = item["preference"]
            if (
                isinstance(preference, bool)
                or not isinstance(preference, int | float)
                or not 1 <= preference <= 2
            ):
                raise row.error("preference", f"expected a number in [1, 2], got {preference!r}")
    elif kind == "ranking":
        ranking = item.get("ranking")
        if ranking is not None and (
            not isinstance(ranking, list)
            or len(ranking) != k
            or not all(
                isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= k for r in ranking
            )
        ):
            raise row.error("ranking", f"expected {k} ranks from 1 (best) to {k}")
    else:
        score = item.get("score")
        if score is not None and not finite(score):
            raise row.error("score", f"expected a finite number, got {score!r}")
    order = item.get("order", list(range(k)))
    if (
        not isinstance(order, list)
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in order)
        or sorted(order) != list(range(k))
    ):
        raise row.error(
            "order", f"expected a permutation of 0..{k - 1} (the slots in the order shown)"
        )
    strength = row.int("strength", required=False, default=1)
    if strength not in (1, 2):
        raise row.error("strength", f"expected 1 or 2 (2 = strong, A>>B), got {strength}")
    gold = row.choice("gold", {w: w for w in WINNERS}, required=False)
    status = row.choice("status", {s: s for s in ("ok", *NO_VERDICT)}, required=False) or ""
    verdict = winner is not None or ranking is not None or score is not None
    if status and verdict != (status == "ok"):
        said = "with" if verdict else "without"
        raise row.error("status", f"{status!r} for a judgment {said} a verdict")
    status = "" if status == "ok" else status
    return JudgmentRecord(
        match_id=row.str("match"),
        contestants=tuple(contestants),
        kind=kind,
        winner=winner,
        strength=strength,
        ranking=tuple(ranking) if ranking is not None else None,
        score=score,
        preference=preference,
        presentation=tuple(order),
        repeat=row.int("repeat", required=False, minimum=0),
        weight=row.int("weight", required=False, default=1, minimum=1),
        voter=voter or None,
        judge=judge or None,
        prompt_id=row.str("prompt", required=False) or None,
        category=row.str("category", required=False),
        language=row.str("language", required=False),
        turn=row.int("turn", required=False, default=1, minimum=1),
        raw_text=row.str("raw_text", required=False),
        verdict_label=row.str("verdict", required=False),
        gold_winner=gold,
        style=_style(row, k),
        output_configs=_configs(row, k),
        criteria=_criteria(row, kind),
        probabilities=_object(row, "probabilities"),
        status=status,
        error=row.str("error", required=False),
        meta=_object(row, "meta") or {},
        line=line,
    )


def _style(row: Row, k: int) -> tuple[dict, ...] | None:
    """Per-slot style features for style control: ``[{"tokens": 120, "bold": 2}, ...]``."""
    style = row.item.get("style")
    if style is None:
        return None
    if (
        not isinstance(style, list)
        or len(style) != k
        or not all(
            isinstance(s, dict) and all(finite(v) and v >= 0 for v in s.values()) for s in style
        )
    ):
        raise row.error(
            "style", f"expected {k} objects (one per slot) of non-negative feature counts"
        )
    return tuple(dict(s) for s in style)


def _configs(row: Row, k: int) -> tuple[str, ...]:
    """Per slot, the ``config`` of the answer it showed (a prompt with several answers by
    one contestant); absent: each slot shows the contestant's answer without a config."""
    configs = row.item.get("configs")
    if configs is None:
        return ()
    if (
        not isinstance(configs, list)
        or len(configs) != k
        or not all(isinstance(c, str) for c in configs)
    ):
        raise row.error("configs", f"expected {k} strings (one answer config per slot)")
    return tuple(configs)


def _criteria(row: Row, kind: str) -> dict | None:
    """Per criterion or aspect its verdict, a slot's winner name on a pairwise judgment
    (``{"correctness": "a"}``), a level (a number) on a score; empty or absent: none."""
    criteria = _object(row, "criteria")
    if not criteria:
        return None
    if kind == "ranking":
        raise row.error("criteria", "a ranking takes no criteria (pairwise and score do)")
    for name, value in criteria.items():
        if not CRITERION_NAME.fullmatch(name):
            raise row.error(
                "criteria",
                f"{name!r}: a criterion's name is 1-40 lower-case letters, digits, '-' or '_', "
                "starting with a letter (as a rubric's)",
            )
        if kind == "pairwise" and value not in WINNERS:
            raise row.error(
                "criteria", f"{name}: expected one of {', '.join(WINNERS)}, got {value!r}"
            )
        if kind == "score" and not finite(value):
            raise row.error("criteria", f"{name}: expected a level (a number), got {value!r}")
    return criteria


def _object(row: Row, field: str) -> dict | None:
    """A field that holds a JSON object as it is (absent or null: None)."""
    value = row.item.get(field)
    if value is not None and not isinstance(value, dict):
        raise row.error(field, f"expected an object, got {type(value).__name__}")
    return value


def export(records: Iterable, out: TextIO, **options) -> None:
    """One line per record; a field that is empty (None, "", []) is left out unless
    :data:`ALWAYS` names it (a judgment's fields one by one: an export writes millions)."""
    write = out.write
    for r in records:
        if isinstance(r, JudgmentRecord):
            write(json_line(_judgment_row(r)))
            continue
        if isinstance(r, PromptRecord):
            row = {
                "type": "prompt",
                "id": r.external_id,
                "text": r.text,
                "category": r.category,
                "language": r.language,
                "reference": r.reference_answer,
                "turns": list(r.turns),
            }
        elif isinstance(r, VoterRecord):
            row = {"type": "voter", "label": r.label, "flagged": r.flagged, "reason": r.reason}
        elif isinstance(r, RubricRecord):
            row = {
                "type": "rubric",
                "prompt": r.prompt_id,
                "criteria": r.criteria,
                "source": r.source,
            }
        else:
            row = {
                "type": "output",
                "prompt": r.prompt_id,
                "contestant": r.contestant,
                "text": r.text,
                "config": r.generation_config,
            }
        always = ALWAYS[row["type"]]
        kept = {k: v for k, v in row.items() if k in always or v not in (None, "", [])}
        write(json_line(kept))


def _judgment_row(r: JudgmentRecord) -> dict:
    """A judgment's line, its empty fields left out. Tuples go in as they are (JSON arrays,
    as lists would be) and the fields are tested one by one, not in a loop over pairs: an
    export writes millions of these, and the lists and pairs made a third of its time."""
    row = {"type": "judgment", "match": r.match_id, "contestants": r.contestants}
    if r.kind:
        row["kind"] = r.kind
    if r.winner:
        row["winner"] = r.winner
    if r.strength is not None:
        row["strength"] = r.strength
    if r.ranking:
        row["ranking"] = r.ranking
    if r.score is not None:
        row["score"] = r.score
    if r.preference is not None:
        row["preference"] = r.preference
    if r.presentation:
        row["order"] = r.presentation
    if r.repeat is not None:
        row["repeat"] = r.repeat
    if r.weight is not None:
        row["weight"] = r.weight
    if r.voter:
        row["voter"] = r.voter
    if r.judge:
        row["judge"] = r.judge
    if r.prompt_id:
        row["prompt"] = r.prompt_id
    if r.category:
        row["category"] = r.category
    if r.language:
        row["language"] = r.language
    if r.turn != 1 and r.turn is not None:
        row["turn"] = r.turn
    if r.raw_text:
        row["raw_text"] = r.raw_text
    if r.verdict_label:
        row["verdict"] = r.verdict_label
    if r.gold_winner:
        row["gold"] = r.gold_winner
    if r.style:
        row["style"] = r.style
    if r.output_configs:
        row["configs"] = r.output_configs
    if r.criteria:
        row["criteria"] = r.criteria
    if r.probabilities is not None:
        row["probabilities"] = r.probabilities
    if r.status:
        row["status"] = r.status
    if r.error:
        row["error"] = r.error
    if r.meta:
        row["meta"] = r.meta
    return row
