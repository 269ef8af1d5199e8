"""Arena-Hard-Auto judgment files (``model_judgment/<judge>/<model>.jsonl``).

One line per (question, model): ``question_id``, ``model``, ``judge`` and ``games``, two
games with the positions swapped, each with ``score`` in A>>B, A>B, A=B, B>A, B>>A (or
null when the judge's answer had no verdict) and the ``judgment`` text. As in
Arena-Hard's ``show_result.py``: in game 1 the baseline is answer A, in game 2 it is
answer B. The baseline's name is not in the file (``--baseline``, default gpt-4-0314).

Records: slots (model, baseline); game 1 is presentation (1, 0) (the baseline shown
first), game 2 is (0, 1); a strong verdict (>>) has strength 2.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TextIO

from arena.importers.formats._common import Row, read_items
from arena.importers.records import JudgmentRecord, PromptRecord

# score -> (who was shown first wins?, strength); None first = tie
SCORES = {
    "A>>B": ("first", 2),
    "A>B": ("first", 1),
    "A=B": ("tie", 1),
    "B>A": ("second", 1),
    "B>>A": ("second", 2),
}
DEFAULT_BASELINE = "gpt-4-0314"


def parse(
    path, baseline: str = DEFAULT_BASELINE, **options
) -> Iterator[JudgmentRecord | PromptRecord]:
    prompts: dict[str, bool] = {}  # question id -> a PromptRecord was emitted
    for line, item in read_items(path):
        row = Row(path, line, item)
        question_id, model, judge = row.str("question_id"), row.str("model"), row.str("judge")
        if model == baseline:
            raise row.error("model", f"is the baseline {baseline!r} itself")
        games = item.get("games")
        if not isinstance(games, list) or len(games) != 2:
            raise row.error("games", "expected a list of two games (positions swapped)")
        if question_id not in prompts:
            text = _user_prompt(games)
            prompts[question_id] = bool(text)
            if text:
                yield PromptRecord(external_id=question_id, text=text, line=line)
        for number, game in enumerate(games, start=1):
            if not isinstance(game, dict):
                raise row.error(f"games[{number - 1}]", "expected an object")
            score = game.get("score")
            if score is not None and score not in SCORES:
                raise row.error(
                    f"games[{number - 1}].score",
                    f"expected one of {', '.join(SCORES)} or null; got {score!r}",
                )
            presentation = (1, 0) if number == 1 else (0, 1)
            winner, strength = None, 1
            if score is not None:
                side, strength = SCORES[score]
                if side == "tie":
                    winner = "tie"
                else:
                    shown_first_wins = side == "first"
                    winner = "a" if (presentation[0] == 0) == shown_first_wins else "b"
            judgment = game.get("judgment")
            yield JudgmentRecord(
                match_id=f"{question_id}|{model}",
                contestants=(model, baseline),
                winner=winner,
                strength=strength,
                presentation=presentation,
                judge=judge,
                prompt_id=question_id if prompts[question_id] else None,
                verdict_label=score or "",
                raw_text=judgment
                if isinstance(judgment, str)
                else json.dumps(judgment)
                if judgment
                else "",
                line=line,
            )


def _user_prompt(games: list) -> str:
    prompt = games[0].get("user_prompt") if isinstance(games[0], dict) else None
    return prompt if isinstance(prompt, str) else ""


def export(records: Iterable, out: TextIO, baseline: str = DEFAULT_BASELINE, **options) -> None:
    """Lines for matches of a model against ``baseline`` by an LLM judge; a missing order is a null game."""
    games: dict[tuple[str, str, str], dict[int, JudgmentRecord]] = defaultdict(dict)
    for r in records:
        if not (
            isinstance(r, JudgmentRecord)
            and r.kind == "pairwise"
            and r.judge
            and len(r.contestants) == 2
            and baseline in r.contestants
        ):
            continue
        model = r.contestants[0] if r.contestants[1] == baseline else r.contestants[1]
        baseline_slot = r.contestants.index(baseline)
        game = 1 if r.presentation[0] == baseline_slot else 2
        games[(r.prompt_id or r.match_id, model, r.judge)][game] = r
    if not games:
        raise ValueError(
            f"arena-hard: nothing to export (no LLM-judge matches against the baseline {baseline!r})"
        )
    for (question_id, model, judge), by_game in games.items():
        line = {"question_id": question_id, "model": model, "judge": judge, "games": []}
        for game in (1, 2):
            r = by_game.get(game)
            line["games"].append(
                {"score": _score(r, baseline) if r else None, "judgment": r.raw_text if r else None}
            )
        out.write(json.dumps(line, ensure_ascii=False) + "\n")


def _score(r: JudgmentRecord, baseline: str) -> str | None:
    if r.winner is None:
        return None
    if r.winner in ("tie", "bothbad"):
        return "A=B"
    winner_slot = 0 if r.winner == "a" else 1
    first_wins = r.presentation[0] == winner_slot
    return (
        ("A>>B" if first_wins else "B>>A") if r.strength == 2 else ("A>B" if first_wins else "B>A")
    )
