"""LMArena's published human-preference datasets, as Parquet or JSON/JSONL.

Two row shapes, told apart row by row (one file may be a concatenation):

- **55k** (``lmarena-ai/arena-human-preference-55k``, the Kaggle competition's train set):
  ``id``, ``model_a``, ``model_b``, ``prompt``, ``response_a``, ``response_b`` (each a
  JSON-encoded list of strings, one per turn; a null answer is an empty one) and the
  one-hot ``winner_model_a`` / ``winner_model_b`` / ``winner_tie``. No language, no
  category, no voter.
- **Conversations** (``arena-human-preference-100k``, ``-140k``, and the 33k
  ``lmsys/chatbot_arena_conversations``): ``model_a``, ``model_b``, ``winner``
  (``model_a``, ``model_b``, ``tie``, ``tie (bothbad)`` or 140k's ``both_bad``),
  ``conversation_a`` / ``conversation_b`` (lists of ``{role, content}`` messages, or the
  same list JSON-encoded; ``content`` a string, FastChat's vision ``[text, [images]]`` or
  140k's parts ``[{type, text, image, mimeType}]``, whose text parts are joined), the
  battle id ``question_id`` (100k, 33k) or ``id`` (140k), and optionally ``turn``,
  ``language``, ``category_tag``, ``is_code``, ``conv_metadata`` (style control, as in
  :mod:`fastchat`), ``judge_hash`` / ``judge`` (the voter), ``anony``, ``dedup_tag``,
  ``tstamp`` / ``timestamp``, ``evaluation_session_id``, ``evaluation_order``.

Multi-turn battles: the prompt is the conversation's user messages (the first is the
prompt's text, the later ones its ``turns``), each side's answer is its assistant
messages joined by a blank line, as :mod:`fastchat` reads a conversation.

Stored deduplicated by content: a prompt's id is a hash of its user messages, so the same
conversation asked in many battles is one prompt; an answer's ``generation_config`` is
``text:`` + a hash of its text, so one model's identical answers to one prompt are one
output and its different answers stay apart, each battle's slots pointing at the answer
shown (``JudgmentRecord.output_configs``).

Category (one per battle) from the dataset's own tags, the first that holds of
:data:`CATEGORY_ORDER`: ``math`` (``category_tag.math_v0.1.math``), ``coding``
(``is_code``), ``creative_writing`` (``creative_writing_v0.1.creative_writing``),
``instruction_following`` (``if_v0.1.if``), ``hard_prompt`` (at least 6 of the 7
``criteria_v0.1`` criteria, the leaderboard's "hard prompts" rule); else none. The
language is the row's ``language``. Both go on the battle and on the prompt (the first
battle of a prompt names them).

Parquet files (``.parquet``, or the ``PAR1`` magic) are read with pyarrow a record batch
at a time; an error names the row (1-based) as its line. Options ``anony_only`` and
``sampled_only`` filter as in :mod:`fastchat` (a row without ``anony`` / ``dedup_tag`` is
skipped by them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from arena.importers.formats._common import (
    MAX_RECORD_BYTES,
    Occurrences,
    Row,
    read_items,
    unstorable,
)
from arena.importers.formats.fastchat import conv_metadata_style
from arena.importers.records import ImportRowError, JudgmentRecord, OutputRecord, PromptRecord
from arena.vocabulary import BOTH_BAD, TIE, A, B

WINNERS = {"model_a": A, "model_b": B, "tie": TIE, "tie (bothbad)": BOTH_BAD, "both_bad": BOTH_BAD}
ONE_HOT = {"winner_model_a": A, "winner_model_b": B, "winner_tie": TIE}  # the 55k columns
CATEGORY_ORDER = ("math", "coding", "creative_writing", "instruction_following", "hard_prompt")
HARD_CRITERIA = 6  # of criteria_v0.1's 7, for "hard_prompt"
META_KEYS = (
    "tstamp",
    "timestamp",
    "anony",
    "is_code",
    "is_refusal",
    "dedup_tag",
    "category_tag",
    "evaluation_session_id",
    "evaluation_order",
)
PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH = 1024  # rows decoded at a time


def parse(
    path, anony_only: bool = False, sampled_only: bool = False, **options
) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    ids = Occurrences()
    prompts: set[str] = set()
    outputs: set[tuple[str, str, str]] = set()
    for line, item in rows(path, **options):
        row = Row(path, line, item)
        if not _kept(row, anony_only, sampled_only):
            continue
        battle = _battle(row)
        prompt_id = battle["prompt_id"]
        if prompt_id not in prompts:
            prompts.add(prompt_id)
            users = battle["users"]
            yield PromptRecord(
                external_id=prompt_id,
                text=users[0],
                turns=tuple(users[1:]),
                category=battle["category"],
                language=battle["language"],
                line=line,
            )
        configs = []
        for model, answer in zip(battle["models"], battle["answers"], strict=True):
            config = answer_config(answer)
            configs.append(config)
            if (prompt_id, model, config) not in outputs:
                outputs.add((prompt_id, model, config))
                yield OutputRecord(
                    prompt_id=prompt_id,
                    contestant=model,
                    text=answer,
                    generation_config=config,
                    line=line,
                )
        yield JudgmentRecord(
            match_id=ids(battle["id"]),
            contestants=battle["models"],
            winner=battle["winner"],
            voter=f"lmarena:{battle['voter']}",
            prompt_id=prompt_id,
            category=battle["category"],
            language=battle["language"],
            turn=battle["turn"],
            verdict_label=battle["label"],
            style=battle["style"],
            output_configs=tuple(configs),
            meta={k: _plain(item[k]) for k in META_KEYS if item.get(k) is not None},
            line=line,
        )


def answer_config(text: str) -> str:
    """The ``generation_config`` naming one answer by its content."""
    return "text:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def prompt_id(users: list[str]) -> str:
    """A prompt's id from its user messages (the same conversation, the same id)."""
    blob = json.dumps(users, ensure_ascii=False).encode("utf-8")
    return "lmarena:" + hashlib.sha1(blob).hexdigest()[:16]


# --- reading ---------------------------------------------------------------------------


def rows(path, max_record_bytes: int = MAX_RECORD_BYTES, progress=None, **options):
    """(line, row dict) of a Parquet file (line = 1-based row) or a JSON list / JSONL file."""
    if is_parquet(path):
        yield from _parquet_rows(Path(path), progress)
    else:
        yield from read_items(path, max_record_bytes=max_record_bytes, progress=progress)


def is_parquet(path) -> bool:
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return True
    with path.open("rb") as f:
        return f.read(4) == PARQUET_MAGIC


def _parquet_rows(path: Path, progress) -> Iterator[tuple[int, dict]]:
    import pyarrow as pa  # only Parquet input needs pyarrow (a large import)
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportRowError(path, 0, "parquet", f"not a Parquet file ({exc})") from None
    total = parquet.metadata.num_rows or 1
    size = path.stat().st_size
    line = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH):
            for item in batch.to_pylist():
                line += 1
                yield line, item
            if progress is not None:
                progress(size * batch.num_rows // total)


# --- one row ---------------------------------------------------------------------------


def _kept(row: Row, anony_only: bool, sampled_only: bool) -> bool:
    item = row.item
    if anony_only and item.get("anony") is not True:
        return False
    if sampled_only:
        tag = _json_field(row, "dedup_tag")
        return isinstance(tag, dict) and tag.get("sampled") is True
    return True


def _battle(row: Row) -> dict[str, Any]:
    item = row.item
    model_a, model_b = row.str("model_a"), row.str("model_b")
    if model_a == model_b:
        raise row.error("model_b", f"a model cannot battle itself ({model_a!r})")
    if "winner" in item or "conversation_a" in item:
        winner, label = _winner(row), item.get("winner")
        users, answer_a = _conversation(row, "conversation_a")
        _, answer_b = _conversation(row, "conversation_b")
        battle_id = _conversation_battle_id(row)
    else:
        winner, label = _one_hot(row)
        users = _turns(row, "prompt")
        answer_a = "\n\n".join(_turns(row, "response_a"))
        answer_b = "\n\n".join(_turns(row, "response_b"))
        battle_id = _plain_id(row, "id")
    if not any(u.strip() for u in users):
        raise row.error("prompt" if "prompt" in item else "conversation_a", "no user text")
    for field, text in (("prompt", users), ("answer", [answer_a, answer_b])):
        for t in text:
            problem = unstorable(t)
            if problem:
                raise row.error(field, problem)
    language = row.str("language", required=False)
    voter = _voter(row)
    turn = row.int("turn", required=False, default=0, minimum=0) or len(users)
    return {
        "id": battle_id,
        "models": (model_a, model_b),
        "winner": winner,
        "label": label if isinstance(label, str) else str(label),
        "users": users,
        "answers": (answer_a, answer_b),
        "prompt_id": prompt_id(users),
        "category": category(row),
        "language": language,
        "voter": voter,
        "turn": turn,
        "style": _style(row),
    }


def _winner(row: Row) -> str:
    return row.choice("winner", WINNERS)


def _one_hot(row: Row) -> tuple[str, str]:
    """The 55k release's verdict: exactly one of the three columns is 1."""
    set_ = []
    for field, winner in ONE_HOT.items():
        value = row.item.get(field)
        if isinstance(value, bool) or value not in (0, 1):
            raise row.error(field, f"expected 0 or 1, got {value!r}")
        if value == 1:
            set_.append((field, winner))
    if len(set_) != 1:
        raise row.error(
            "winner_model_a", "exactly one of winner_model_a, winner_model_b, winner_tie is 1"
        )
    field, winner = set_[0]
    return winner, field


def _turns(row: Row, field: str) -> list[str]:
    """A 55k column: a JSON-encoded list of strings (null: an empty answer)."""
    value = row.item.get(field)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, ValueError):
            raise row.error(field, "expected a JSON-encoded list of strings") from None
    if not isinstance(value, list) or not value:
        raise row.error(field, "expected a non-empty list of strings (one per turn)")
    if not all(isinstance(v, str) or v is None for v in value):
        raise row.error(field, "expected a list of strings (one per turn)")
    return [v or "" for v in value]


def _json_field(row: Row, field: str):
    """A nested field that a JSON export may hold JSON-encoded (100k's card says string)."""
    value = row.item.get(field)
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, ValueError):
            raise row.error(field, "expected JSON") from None
    return value


def _conversation(row: Row, field: str) -> tuple[list[str], str]:
    """(the user messages, the assistant messages joined by a blank line)."""
    messages = _json_field(row, field)
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise row.error(field, "expected a list of {role, content} messages")
    users, answers = [], []
    for m in messages:
        role = m.get("role")
        if role not in ("user", "assistant"):
            continue
        text = message_text(m.get("content"))
        if text is None:
            raise row.error(field, f"a {role} message without text content")
        (users if role == "user" else answers).append(text)
    if not users:
        raise row.error(field, "needs a user message")
    return users, "\n\n".join(answers)


def message_text(content) -> str | None:
    """A message's text: a string; FastChat's vision ``[text, [images]]``; 140k's parts
    ``[{"type": "text", "text": ...}, {"type": "image", ...}]`` (text parts joined); null
    (an answer that never came) is empty."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        if content and isinstance(content[0], str):
            return content[0]
        if all(isinstance(p, dict) for p in content):
            texts = [p.get("text") for p in content if p.get("type", "text") == "text"]
            if all(isinstance(t, str) or t is None for t in texts):
                return "\n\n".join(t for t in texts if t)
    return None


def _conversation_battle_id(row: Row) -> str:
    """``id`` (140k), else ``question_id`` with the vote's ``tstamp`` (as :mod:`fastchat`)."""
    if row.item.get("id") is not None:
        return _plain_id(row, "id")
    question_id = _plain_id(row, "question_id")
    tstamp = row.item.get("tstamp")
    return f"{question_id}:{tstamp}" if tstamp is not None else question_id


def _plain_id(row: Row, field: str) -> str:
    value = row.item.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise row.error(field, f"expected an id (text or integer), got {value!r}")
    return str(value)


def _voter(row: Row) -> str:
    for field in ("judge_hash", "judge"):
        value = row.str(field, required=False)
        if value:
            return value
    return "anonymous"


def _style(row: Row):
    meta = _json_field(row, "conv_metadata")
    if meta is None:
        return None
    return conv_metadata_style(row, meta)


def category(row: Row) -> str:
    """The battle's category from its tags: the first of :data:`CATEGORY_ORDER` that holds."""
    tags = _json_field(row, "category_tag")
    tags = tags if isinstance(tags, dict) else {}

    def flag(group: str, key: str) -> bool:
        inner = tags.get(group)
        return isinstance(inner, dict) and inner.get(key) is True

    criteria = tags.get("criteria_v0.1")
    hard = isinstance(criteria, dict) and sum(v is True for v in criteria.values()) >= HARD_CRITERIA
    holds = {
        "math": flag("math_v0.1", "math"),
        "coding": row.item.get("is_code") is True,
        "creative_writing": flag("creative_writing_v0.1", "creative_writing"),
        "instruction_following": flag("if_v0.1", "if"),
        "hard_prompt": hard,
    }
    return next((name for name in CATEGORY_ORDER if holds[name]), "")


def _plain(value):
    """A metadata value as JSON can hold it (Parquet gives timestamps as datetimes)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
