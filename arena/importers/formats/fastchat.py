"""LMArena / FastChat battle logs (``clean_battle_*.json`` or JSONL).

One object per battle: ``model_a``, ``model_b``, ``winner`` in {model_a, model_b, tie,
tie (bothbad)}; optional ``question_id`` (the battle's conversation id), ``judge`` (the
voter), ``turn``, ``language``, ``anony``, ``tstamp``, ``category``,
``conversation_a``/``conversation_b`` (OpenAI-style message lists: the first user
message is the prompt, the assistant messages the answers) and ``conv_metadata``
(FastChat's style-control counts: ``sum_assistant_a_tokens``, ``header_count_a``,
``list_count_a``, ``bold_count_a`` ... as numbers or dicts of numbers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TextIO

from arena.importers.formats._common import Occurrences, Row, content_id, read_items
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord

WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "bothbad"}
WINNER_NAMES = {v: k for k, v in WINNERS.items()}


def parse(path, **options) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    ids = Occurrences()
    prompts_seen: set[str] = set()
    for line, item in read_items(path):
        row = Row(path, line, item)
        model_a, model_b = row.str("model_a"), row.str("model_b")
        if model_a == model_b:
            raise row.error("model_b", f"a model cannot battle itself ({model_a!r})")
        winner = row.choice("winner", WINNERS)
        question_id = row.str("question_id", required=False)
        tstamp = item.get("tstamp")
        base = (
            f"{question_id}:{tstamp}"
            if question_id and tstamp is not None
            else question_id or content_id(item)
        )
        match_id = ids(base)
        turn = row.int("turn", required=False, default=1, minimum=0) or 1
        voter = row.str("judge", required=False) or "anonymous"
        category = row.str("category", required=False)
        language = row.str("language", required=False)
        prompt_id = None
        conv_a, conv_b = item.get("conversation_a"), item.get("conversation_b")
        if conv_a is not None or conv_b is not None:
            user, answer_a = _conversation(row, "conversation_a", conv_a)
            _, answer_b = _conversation(row, "conversation_b", conv_b)
            prompt_id = match_id
            if prompt_id not in prompts_seen:
                prompts_seen.add(prompt_id)
                yield PromptRecord(
                    external_id=prompt_id,
                    text=user,
                    category=category,
                    language=language,
                    line=line,
                )
                yield OutputRecord(
                    prompt_id=prompt_id, contestant=model_a, text=answer_a, line=line
                )
                yield OutputRecord(
                    prompt_id=prompt_id, contestant=model_b, text=answer_b, line=line
                )
        yield JudgmentRecord(
            match_id=match_id,
            contestants=(model_a, model_b),
            winner=winner,
            voter=f"fastchat:{voter}",
            prompt_id=prompt_id,
            category=category,
            language=language,
            turn=turn,
            verdict_label=item["winner"],
            style=_style(row, item.get("conv_metadata")),
            meta={"tstamp": tstamp, "anony": item.get("anony")},
            line=line,
        )


def _conversation(row: Row, field: str, messages) -> tuple[str, str]:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise row.error(field, "expected a list of {role, content} messages")
    user = next((m.get("content") for m in messages if m.get("role") == "user"), None)
    answers = [m.get("content") for m in messages if m.get("role") == "assistant"]
    if not isinstance(user, str) or not all(isinstance(a, str) for a in answers):
        raise row.error(field, "needs a user message and assistant messages with string content")
    return user, "\n\n".join(answers)


def _style(row: Row, meta) -> tuple[dict, dict] | None:
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise row.error("conv_metadata", "expected an object")

    def total(key: str) -> float:
        value = meta.get(key, 0)
        if isinstance(value, dict):
            value = sum(value.values())
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise row.error(
                f"conv_metadata.{key}", f"expected a number or an object of numbers, got {value!r}"
            )
        return float(value)

    return tuple(
        {
            "tokens": total(f"sum_assistant_{side}_tokens"),
            "headers": total(f"header_count_{side}"),
            "lists": total(f"list_count_{side}"),
            "bold": total(f"bold_count_{side}"),
        }
        for side in ("a", "b")
    )


def export(records: Iterable, out: TextIO, **options) -> None:
    """JSONL, one line per vote (a weighted record is written ``weight`` times)."""
    prompts: dict[str, str] = {}
    outputs: dict[tuple[str, str], str] = {}
    for r in records:
        if isinstance(r, PromptRecord):
            prompts[r.external_id] = r.text
        elif isinstance(r, OutputRecord):
            outputs[(r.prompt_id, r.contestant)] = r.text
        elif (
            isinstance(r, JudgmentRecord)
            and r.kind == "pairwise"
            and r.winner is not None
            and len(r.contestants) == 2
        ):
            who = r.voter or f"judge:{r.judge}"
            row = {
                "model_a": r.contestants[0],
                "model_b": r.contestants[1],
                "winner": WINNER_NAMES[r.winner],
                "judge": who.removeprefix("fastchat:"),
                "turn": r.turn,
                "language": r.language or None,
                "category": r.category or None,
            }
            if r.prompt_id in prompts:
                row["conversation_a"] = _messages(
                    prompts[r.prompt_id], outputs.get((r.prompt_id, r.contestants[0]), "")
                )
                row["conversation_b"] = _messages(
                    prompts[r.prompt_id], outputs.get((r.prompt_id, r.contestants[1]), "")
                )
            for k in range(r.weight):
                row["question_id"] = (
                    f"{r.match_id}|{','.join(map(str, r.presentation))}|{r.repeat}|{who}"
                    + (f"|{k}" if r.weight > 1 else "")
                )
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _messages(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
