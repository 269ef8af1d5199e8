"""Arena-Hard-Auto judgment files (``model_judgment/<judge>/<model>.jsonl``), v0.1 and v2.0.

One line per (question, model): the question id (``question_id`` in v0.1, ``uid`` in
v2.0), ``model``, ``judge``, ``games`` (two games with the positions swapped) and, in
v2.0, ``category`` and ``baseline``. Each game holds ``score``, the verdict label the
judge's reply matched (``A>>B``, ``A>B``, ``A=B``, ``B>A``, ``B>>A``, and in v2.0 also
``A<<B``, ``A<B``, ``B=A``, ``B<<A``, ``B<A``), or null when no label could be found; a
whole game may be null in v2.0 when the judge call failed.

Which answer is A: in both versions game 1 shows the baseline as answer A and game 2
shows the model as answer A (``gen_judgment.py`` swaps the answers for the second game;
``show_result.py`` reads game 1 from the baseline's side). The baseline is the line's
``baseline`` field (v2.0) or the ``baseline`` option (v0.1 files do not name it; the
default is gpt-4-0314, Arena-Hard v0.1's).

Records: slots (model, baseline); game 1 has presentation (1, 0) (slot 1, the baseline,
shown first), game 2 (0, 1); a strong verdict (>> or <<) has strength 2; both games share
one ``match_id`` (question, model, baseline), so the bootstrap resamples them together and
other judges' verdicts on the same answers join the same match. A null score is a
judgment with no winner (a parse failure, kept with its text). The same (question,
model, judge) appearing again is a repeat (``repeat`` 1, 2 ...).

The judge prompt (``user_prompt`` in v0.1, ``prompt`` messages in v2.0) is Arena-Hard's
template ``<|User Prompt|>\\n{question}\\n\\n<|The Start of Assistant A's Answer|>\\n{A}...``:
the question becomes the prompt and the two answers the contestants' outputs. A
``user_prompt`` without the template is taken as the question itself.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import TextIO

from arena.importers.formats._common import Row, read_items
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.vocabulary import BOTH_BAD, TIE, winner_of_slot

# label -> (does the answer shown first (A) win? None = tie, strength)
SCORES: dict[str, tuple[bool | None, int]] = {
    "A>>B": (True, 2),
    "A>B": (True, 1),
    "A=B": (None, 1),
    "B>A": (False, 1),
    "B>>A": (False, 2),
    # Arena-Hard v2.0 also accepts the mirrored spellings
    "A<<B": (False, 2),
    "A<B": (False, 1),
    "B=A": (None, 1),
    "B<A": (True, 1),
    "B<<A": (True, 2),
}
DEFAULT_BASELINE = "gpt-4-0314"
# Game 1 shows the baseline (slot 1) as answer A; game 2 shows the model (slot 0) first.
PRESENTATIONS = ((1, 0), (0, 1))

QUESTION_OPEN = "<|User Prompt|>\n"
A_OPEN = "\n\n<|The Start of Assistant A's Answer|>\n"
A_CLOSE = "\n<|The End of Assistant A's Answer|>"
B_OPEN = "\n\n<|The Start of Assistant B's Answer|>\n"
B_CLOSE = "\n<|The End of Assistant B's Answer|>"


def parse(
    path, baseline: str | None = None, **options
) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    """Judgments (two per line), plus the question and both answers when the prompt has them.

    Parameters
    ----------
    path : str or Path
        A judgment JSONL file (or a JSON list of the same objects).
    baseline : str, optional
        The baseline model of a v0.1 file (default ``gpt-4-0314``). A v2.0 line's own
        ``baseline`` field wins over it.
    """
    prompts: set[str] = set()
    outputs: set[tuple[str, str]] = set()
    repeats: Counter[tuple[str, str, str, str]] = Counter()
    for line, item in read_items(path, **options):
        row = Row(path, line, item)
        question_id = _question_id(row)
        model, judge = row.str("model"), row.str("judge")
        base = row.str("baseline", required=False) or baseline or DEFAULT_BASELINE
        if model == base:
            raise row.error("model", f"is the baseline {base!r} itself")
        games = item.get("games")
        if not isinstance(games, list) or len(games) != 2:
            raise row.error("games", "expected a list of two games (positions swapped)")
        category = row.str("category", required=False)
        verdicts = [_game(row, k, game) for k, game in enumerate(games)]

        texts = _prompt_texts(games)
        has_prompt = question_id in prompts
        if texts is not None and not has_prompt:
            prompts.add(question_id)
            has_prompt = True
            yield PromptRecord(external_id=question_id, text=texts[0], category=category, line=line)
        if texts is not None and texts[1] is not None:
            for name, text in zip((base, model), texts[1], strict=True):
                if (question_id, name) not in outputs:
                    outputs.add((question_id, name))
                    yield OutputRecord(prompt_id=question_id, contestant=name, text=text, line=line)

        key = (question_id, model, judge, base)
        repeat = repeats[key]
        repeats[key] += 1
        for presentation, (label, raw_text) in zip(PRESENTATIONS, verdicts, strict=True):
            winner, strength = _winner(label, presentation)
            yield JudgmentRecord(
                match_id=f"{question_id}|{model}|{base}",
                contestants=(model, base),
                winner=winner,
                strength=strength,
                presentation=presentation,
                repeat=repeat,
                judge=judge,
                prompt_id=question_id if has_prompt else None,
                category=category,
                verdict_label=label or "",
                raw_text=raw_text,
                line=line,
            )


def _question_id(row: Row) -> str:
    for field in ("question_id", "uid"):
        value = row.item.get(field)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise row.error(field, f"expected a string, got {type(value).__name__}")
            if not str(value).strip():
                raise row.error(field, "empty")
            return str(value)
    raise row.error("question_id", "missing (neither question_id nor uid is given)")


def _game(row: Row, k: int, game) -> tuple[str | None, str]:
    """(verdict label or None, the judge's reply) of one game; a null game has neither."""
    if game is None:
        return None, ""
    if not isinstance(game, dict):
        raise row.error(f"games[{k}]", f"expected an object or null, got {type(game).__name__}")
    score = game.get("score")
    if score is not None and score not in SCORES:
        raise row.error(
            f"games[{k}].score", f"expected one of {', '.join(SCORES)} or null; got {score!r}"
        )
    return score, _reply_text(game.get("judgment"))


def _reply_text(judgment) -> str:
    """v0.1 stores the reply as a string; v2.0 as the completion object ``{"answer": ...}``."""
    if isinstance(judgment, str):
        return judgment
    if isinstance(judgment, dict) and isinstance(judgment.get("answer"), str):
        return judgment["answer"]
    return json.dumps(judgment, ensure_ascii=False) if judgment else ""


def _winner(label: str | None, presentation: tuple[int, int]) -> tuple[str | None, int]:
    """Slot winner of one game: the label speaks of positions, the record of slots."""
    if label is None:
        return None, 1
    first_wins, strength = SCORES[label]
    if first_wins is None:
        return TIE, strength
    return winner_of_slot(presentation[0] if first_wins else presentation[1]), strength


def _prompt_texts(games: list) -> tuple[str, tuple[str, str] | None] | None:
    """(question, (baseline's answer, model's answer) or None) from a judge prompt, if any."""
    for k, game in enumerate(games):
        text = _user_prompt(game)
        if text is None:
            continue
        parts = split_template(text)
        if parts is None:
            return (text, None) if text.strip() else None
        question, answer_a, answer_b = parts
        # game 1 shows (baseline, model), game 2 (model, baseline)
        return question, ((answer_a, answer_b) if k == 0 else (answer_b, answer_a))
    return None


def _user_prompt(game) -> str | None:
    if not isinstance(game, dict):
        return None
    prompt = game.get("user_prompt")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str):
        return prompt[0]  # v0.1 with images: [text, image hashes]
    if isinstance(prompt, str):
        return prompt
    messages = game.get("prompt")  # v2.0: the chat messages sent to the judge
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else None
    return None


def split_template(text: str) -> tuple[str, str, str] | None:
    """(question, answer A, answer B) from Arena-Hard's judge template, or None if it is not one."""
    if not (text.startswith(QUESTION_OPEN) and text.endswith(B_CLOSE)):
        return None
    a_open = text.find(A_OPEN)
    b_open = text.rfind(A_CLOSE + B_OPEN)
    if a_open < 0 or b_open < a_open:
        return None
    question = text[len(QUESTION_OPEN) : a_open]
    answer_a = text[a_open + len(A_OPEN) : b_open]
    answer_b = text[b_open + len(A_CLOSE) + len(B_OPEN) : -len(B_CLOSE)]
    return question, answer_a, answer_b


def fill_template(question: str, answer_a: str, answer_b: str) -> str:
    return f"{QUESTION_OPEN}{question}{A_OPEN}{answer_a}{A_CLOSE}{B_OPEN}{answer_b}{B_CLOSE}"


def export(records: Iterable, out: TextIO, baseline: str = DEFAULT_BASELINE, **options) -> None:
    """v0.1 lines for an LLM judge's matches of a model against ``baseline``.

    A missing order is written as a null score; each repeat is its own line; when the
    prompt and both answers are among the records, the games carry the judge prompt, so
    reading the file back restores them.
    """
    prompts: dict[str, str] = {}
    outputs: dict[tuple[str, str], str] = {}
    games: dict[tuple[str, str, str, int], dict[int, JudgmentRecord]] = defaultdict(dict)
    for r in records:
        if isinstance(r, PromptRecord):
            prompts[r.external_id] = r.text
        elif isinstance(r, OutputRecord):
            outputs[(r.prompt_id, r.contestant)] = r.text
        elif (
            isinstance(r, JudgmentRecord)
            and r.kind == "pairwise"
            and r.judge
            and len(r.contestants) == 2
            and baseline in r.contestants
        ):
            base_slot = r.contestants.index(baseline)
            model = r.contestants[1 - base_slot]
            game = 0 if r.presentation[0] == base_slot else 1
            question_id = r.prompt_id or r.match_id.split("|", 1)[0]
            games[(question_id, model, r.judge, r.repeat)][game] = r
    if not games:
        raise ValueError(
            f"arena-hard: nothing to export (no LLM-judge matches against the baseline {baseline!r})"
        )
    for (question_id, model, judge, _repeat), by_game in games.items():
        answers = (outputs.get((question_id, baseline)), outputs.get((question_id, model)))
        line = {"question_id": question_id, "model": model, "judge": judge, "games": []}
        for game in (0, 1):
            r = by_game.get(game)
            entry = {
                "user_prompt": _user_prompt_for(prompts.get(question_id), answers, game),
                "judgment": r.raw_text if r else None,
                "score": _label(r, baseline) if r else None,
            }
            line["games"].append({k: v for k, v in entry.items() if v is not None})
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _user_prompt_for(question: str | None, answers: tuple, game: int) -> str | None:
    if question is None:
        return None
    if None in answers:
        return question
    first, second = answers if game == 0 else answers[::-1]
    return fill_template(question, first, second)


def _label(r: JudgmentRecord, baseline: str) -> str | None:
    if r.winner is None:
        return None
    if r.winner in (TIE, BOTH_BAD):
        return "A=B"
    first_wins = r.presentation[0] == "ab".index(r.winner)
    marks = ">>" if r.strength == 2 else ">"
    return f"A{marks}B" if first_wins else f"B{marks}A"
