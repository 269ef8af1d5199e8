"""LMArena / FastChat battle logs (``clean_battle_*.json`` or JSONL).

One object per battle: ``model_a``, ``model_b``, ``winner`` in {model_a, model_b, tie,
tie (bothbad)}; optional ``question_id`` (the battle's conversation id), ``judge`` (the
voter), ``turn``, ``language``, ``anony``, ``tstamp``, ``category``,
``conversation_a``/``conversation_b`` (OpenAI-style message lists: the first user
message is the prompt, the assistant messages the answers) and ``conv_metadata``
(FastChat's style-control counts: ``sum_assistant_a_tokens``, ``header_count_a``,
``list_count_a``, ``bold_count_a`` ... as numbers or dicts of numbers, summed per key as
FastChat's style control does), ``dedup_tag`` and ``category_tag`` (kept in ``meta``).

Battle id: FastChat's ``clean_battle_data.py`` writes the conversation id of side A as
``question_id`` (dropped in its "simple" mode, kept in "conv_release"); with ``tstamp`` it
names the vote. Rows without one get a content hash of the row, and the n-th identical
row gets ``#n`` appended, so re-importing a file yields the same ids and two identical
rows stay two battles.

Options ``anony_only`` and ``sampled_only`` keep only anonymous battles and only those
whose ``dedup_tag.sampled`` is true, the filter of the published leaderboard (and of the
Chatbot Arena counts file); the rows they skip are not errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple, TextIO

from arena.importers.formats._common import (
    INT_MAX,
    Occurrences,
    Row,
    content_id,
    finite,
    json_line,
    read_items,
)
from arena.importers.records import (
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
    VoteColumns,
    judgment_maker,
)
from arena.vocabulary import BOTH_BAD, TIE, A, B

# FastChat's winner labels -> ours (arena.vocabulary).
WINNERS = {"model_a": A, "model_b": B, "tie": TIE, "tie (bothbad)": BOTH_BAD}
WINNER_NAMES = {v: k for k, v in WINNERS.items()}
# our style feature -> FastChat's conv_metadata key (numbers, or dicts summed as in
# FastChat's style control: header_count_a = {"h1": .., "h2": ..} -> their total)
STYLE_KEYS = {
    "tokens": "sum_assistant_{side}_tokens",
    "headers": "header_count_{side}",
    "lists": "list_count_{side}",
    "bold": "bold_count_{side}",
}


def parse(
    path, anony_only: bool = False, sampled_only: bool = False, **options
) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    ids = Occurrences()
    judgment = judgment_maker(_JUDGMENT_FIELDS)  # a record in a third of __init__'s time
    prompts_seen: set[str] = set()
    for line, item in read_items(path, **options):
        battle = _battle(Row(path, line, item), anony_only, sampled_only)
        if battle is not None:
            yield from _records(battle, item, ids, prompts_seen, judgment)


def _match_key(item: dict, question_id: str) -> str:
    """The battle id before :class:`Occurrences` numbers its repeats."""
    tstamp = item.get("tstamp")
    if question_id and tstamp is not None:
        return f"{question_id}:{tstamp}"
    return question_id or content_id(item)


def _records(battle: Battle, item: dict, ids: Occurrences, prompts_seen: set, judgment):
    """The records of one checked battle: its prompt and outputs (the first time its
    conversation is seen), then its judgment."""
    model_a, model_b, line = battle.model_a, battle.model_b, battle.row.line
    match_id = ids(_match_key(item, battle.question_id))
    prompt_id = None
    if battle.conversation is not None:
        users, answer_a, answer_b = battle.conversation
        prompt_id = match_id
        if prompt_id not in prompts_seen:
            prompts_seen.add(prompt_id)
            yield PromptRecord(
                external_id=prompt_id,
                text=users[0],
                turns=tuple(users[1:]),
                category=battle.category,
                language=battle.language,
                line=line,
            )
            yield OutputRecord(prompt_id=prompt_id, contestant=model_a, text=answer_a, line=line)
            yield OutputRecord(prompt_id=prompt_id, contestant=model_b, text=answer_b, line=line)
    yield judgment(
        (
            match_id,
            (model_a, model_b),
            battle.winner,
            f"fastchat:{battle.voter}",
            prompt_id,
            battle.category,
            battle.language,
            battle.turn,
            item["winner"],
            battle.style,
            {k: item[k] for k in _META if k in item},
            line,
        )
    )


def batches(
    path, size: int, anony_only: bool = False, sampled_only: bool = False, **options
) -> Iterator[VoteColumns | list]:
    """The battles of :func:`parse` in batches of at most ``size``, checked as it checks
    them (same errors): the votes of battles without a conversation as
    :class:`VoteColumns` (no record object per line), those with one as lists of records
    (prompt, outputs, judgment). A line is checked as :func:`battles` checks it: one whose
    (model_a, model_b, winner) has passed every check on an earlier line needs only the
    checks of its optional text fields and ``turn``; any other goes through :func:`_battle`.
    """
    ids = Occurrences()
    judgment = judgment_maker(_JUDGMENT_FIELDS)
    prompts_seen: set[str] = set()
    known: dict[tuple[str, str, str], tuple[str, str, str]] = {}  # as written -> ours
    voters: dict[str | None, str] = {}  # the judge as written -> our voter label
    fast = not sampled_only  # (sampled_only checks dedup_tag: every line)
    votes: list[tuple] = []  # a tuple a line, in VoteColumns.of's order
    records: list = []
    vote = votes.append
    for line, item in read_items(path, **options):
        if fast and (seen := _seen_battle(item, known)) is not None:
            battle, question_id, voter, category, language = seen
            if anony_only and item.get("anony") is not True:
                continue
            if records:
                yield records
                records = []
            label = voters.get(voter)
            if label is None:
                label = voters[voter] = f"fastchat:{voter or 'anonymous'}"
            vote((
                line, ids(_match_key(item, question_id or "")), *battle, label,
                category or "", language or "", item["winner"],
            ))  # fmt: skip
            if len(votes) >= size:
                yield VoteColumns.of(votes)
                votes = []
                vote = votes.append
            continue
        checked = _battle(Row(path, line, item), anony_only, sampled_only)
        if checked is None:
            continue
        if checked.conversation is None:
            known[(checked.model_a, checked.model_b, item["winner"])] = (
                checked.model_a, checked.model_b, checked.winner,
            )  # fmt: skip
            if records:
                yield records
                records = []
            vote((
                line, ids(_match_key(item, checked.question_id)), checked.model_a,
                checked.model_b, checked.winner, f"fastchat:{checked.voter}", checked.category,
                checked.language, item["winner"],
            ))  # fmt: skip
            if len(votes) >= size:
                yield VoteColumns.of(votes)
                votes = []
                vote = votes.append
            continue
        if votes:
            yield VoteColumns.of(votes)
            votes = []
            vote = votes.append
        records.extend(_records(checked, item, ids, prompts_seen, judgment))
        if len(records) >= size:
            yield records
            records = []
    if votes:
        yield VoteColumns.of(votes)
    if records:
        yield records


_JUDGMENT_FIELDS = (
    "match_id", "contestants", "winner", "voter", "prompt_id", "category", "language", "turn",
    "verdict_label", "style", "meta", "line",
)  # fmt: skip
_META = ("tstamp", "anony", "dedup_tag", "category_tag")  # the item's fields kept in meta


class Battle(NamedTuple):
    """One battle's fields, checked (what :func:`parse` builds its records from)."""

    row: Row
    model_a: str
    model_b: str
    winner: str
    question_id: str
    turn: int
    voter: str
    category: str
    language: str
    conversation: tuple[list[str], str, str] | None  # (user messages, answer a, answer b)
    style: tuple[dict, dict] | None


def _battle(row: Row, anony_only: bool, sampled_only: bool) -> Battle | None:
    """Every check of one line, in file-field order; None for a line the filters skip."""
    item = row.item
    if (anony_only and item.get("anony") is not True) or (sampled_only and not _sampled(row)):
        return None
    model_a, model_b = row.str("model_a"), row.str("model_b")
    if model_a == model_b:
        raise row.error("model_b", f"a model cannot battle itself ({model_a!r})")
    winner = row.choice("winner", WINNERS)
    question_id = row.str("question_id", required=False)
    turn = row.int("turn", required=False, default=1, minimum=0) or 1
    voter = row.str("judge", required=False) or "anonymous"
    category = row.str("category", required=False)
    language = row.str("language", required=False)
    conversation = None
    conv_a, conv_b = item.get("conversation_a"), item.get("conversation_b")
    if conv_a is not None or conv_b is not None:
        users, answer_a = _conversation(row, "conversation_a", conv_a)
        _, answer_b = _conversation(row, "conversation_b", conv_b)
        conversation = (users, answer_a, answer_b)
    style = conv_metadata_style(row, item.get("conv_metadata"))
    return Battle(
        row, model_a, model_b, winner, question_id, turn, voter, category, language,
        conversation, style,
    )  # fmt: skip


# The fields parse checks beyond model_a, model_b, winner and the optional text and turn:
# a line without them (or their value null) needs no other check once its
# (model_a, model_b, winner) has passed.
_CHECKED_FIELDS = ("conversation_a", "conversation_b", "conv_metadata")


def battles(
    path, anony_only: bool = False, sampled_only: bool = False, **options
) -> Iterator[tuple[str, str, str]]:
    """``(model_a, model_b, winner)`` of every battle, in file order, checked as :func:`parse`
    checks it (same errors), without building records: the ratings' fast path.

    ``winner`` is ours (:data:`arena.vocabulary.WINNERS`). A line without conversations
    or style counts, whose optional text fields are text and ``turn`` a small integer, and
    whose (model_a, model_b, winner) has been seen on a line that passed every check, needs
    no other check; any other line goes through the checks of :func:`parse`.
    """
    known: dict[tuple[str, str, str], tuple[str, str, str]] = {}  # as written -> ours
    fast = not sampled_only  # (sampled_only checks dedup_tag: every line)
    for line, item in read_items(path, **options):
        if fast and (seen := _seen_battle(item, known)) is not None:
            if not anony_only or item.get("anony") is True:
                yield seen[0]
            continue
        checked = _battle(Row(path, line, item), anony_only, sampled_only)
        if checked is None:
            continue
        battle = (checked.model_a, checked.model_b, checked.winner)
        known[(checked.model_a, checked.model_b, item["winner"])] = battle
        yield battle


def _seen_battle(item, known: dict) -> tuple | None:
    """The fast path of :func:`battles` and :func:`batches`: for a line without
    conversations or style counts, whose (model_a, model_b, winner) as written passed every
    check on an earlier line (``known``: as written -> ours), whose optional text fields are
    text and ``turn`` a small integer, ``(our battle, question_id, judge, category,
    language)``; None for any other line (it takes every check of :func:`_battle`)."""
    if type(item) is not dict:
        return None
    conv_a, conv_b, meta = _CHECKED_FIELDS
    get = item.get
    model_a, model_b, winner = get("model_a"), get("model_b"), get("winner")
    if (
        type(model_a) is str
        and type(model_b) is str
        and type(winner) is str
        and conv_a not in item
        and conv_b not in item
        and (battle := known.get((model_a, model_b, winner))) is not None
        and meta not in item
        and ((question_id := get("question_id")) is None or type(question_id) is str)
        and ((voter := get("judge")) is None or type(voter) is str)
        and ((category := get("category")) is None or type(category) is str)
        and ((language := get("language")) is None or type(language) is str)
        and ((v := get("turn")) is None or (type(v) is int and 0 <= v <= INT_MAX))
    ):
        return battle, question_id, voter, category, language
    return None


def _sampled(row: Row) -> bool:
    tag = row.item.get("dedup_tag")
    if tag is None:
        return False
    if not isinstance(tag, dict):
        raise row.error("dedup_tag", f"expected an object, got {type(tag).__name__}")
    return tag.get("sampled") is True


def _conversation(row: Row, field: str, messages) -> tuple[list[str], str]:
    """(the user messages, the assistant messages joined by a blank line)."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise row.error(field, "expected a list of {role, content} messages")
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    answers = [_text(m.get("content")) for m in messages if m.get("role") == "assistant"]
    if not users or None in users or None in answers:
        raise row.error(field, "needs a user message and assistant messages with text content")
    return users, "\n\n".join(answers)


def _text(content) -> str | None:
    """Message text; vision battles store ``[text, [image ...]]`` (FastChat's ``get_content``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and isinstance(content[0], str):
        return content[0]
    return None


def conv_metadata_style(row: Row, meta) -> tuple[dict, dict] | None:
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise row.error("conv_metadata", "expected an object")

    def total(key: str) -> float:
        value = meta.get(key, 0)
        parts = list(value.values()) if isinstance(value, dict) else [value]
        if not all(finite(v) for v in parts):
            raise row.error(
                f"conv_metadata.{key}",
                f"expected a finite number or an object of them, got {value!r}",
            )
        if not finite(sum(parts)):
            raise row.error(f"conv_metadata.{key}", "the total is too large")
        return float(sum(parts))

    return tuple(
        {key: total(name.format(side=side)) for key, name in STYLE_KEYS.items()} for side in "ab"
    )


def export(records: Iterable, out: TextIO, **options) -> None:
    """JSONL, one line per vote (a weighted record is written ``weight`` times)."""
    prompts: dict[str, str] = {}
    answers: dict[tuple[str, str], str] = {}  # (prompt, contestant): its (last) answer
    shown: dict[tuple[str, str, str], str] = {}  # (prompt, contestant, config): that answer
    orders: dict[tuple[int, ...], str] = {}  # a presentation -> its text in the key (a few)
    write = out.write
    for r in records:  # judgments first: an export holds millions of them
        if isinstance(r, JudgmentRecord):
            if r.kind != "pairwise" or r.winner is None or len(r.contestants) != 2:
                continue
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
            if r.style is not None and len(r.style) == 2:
                row["conv_metadata"] = _conv_metadata(r.style)
            if r.meta:
                for key in ("tstamp", "anony"):
                    if r.meta.get(key) is not None:
                        row[key] = r.meta[key]
            if r.prompt_id in prompts:
                prompt = prompts[r.prompt_id]
                for side, name, config in zip(
                    "ab", r.contestants, r.output_configs or (None, None), strict=True
                ):
                    answer = (
                        answers.get((r.prompt_id, name), "")
                        if config is None
                        else shown.get((r.prompt_id, name, config), "")
                    )
                    row[f"conversation_{side}"] = _messages(prompt, answer)
            order = orders.get(r.presentation)
            if order is None:
                order = orders[r.presentation] = ",".join(map(str, r.presentation))
            key = f"{r.match_id}|{order}|{r.repeat}|{who}"
            if r.weight == 1:
                row["question_id"] = key
                write(json_line(row))
                continue
            for k in range(r.weight):
                row["question_id"] = f"{key}|{k}"
                write(json_line(row))
        elif isinstance(r, PromptRecord):
            prompts[r.external_id] = r.text
        elif isinstance(r, OutputRecord):
            answers[(r.prompt_id, r.contestant)] = r.text
            shown[(r.prompt_id, r.contestant, r.generation_config)] = r.text


def _conv_metadata(style: tuple[dict, ...]) -> dict:
    """The inverse of :func:`conv_metadata_style`: FastChat's flat per-side totals."""
    out = {}
    for side, features in zip("ab", style, strict=True):
        for key, name in STYLE_KEYS.items():
            value = features.get(key, 0)
            out[name.format(side=side)] = int(value) if float(value).is_integer() else value
    return out


def _messages(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
