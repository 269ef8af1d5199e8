"""Arena's own DPO export (``arena_export --format dpo``) read back as judgments.

One JSON line per answer pair of a prompt (``arena.importers.preferences``): ``prompt_id``,
``category``, ``prompt``, ``chosen``, ``rejected``, ``chosen_model``, ``rejected_model``,
``votes_chosen``, ``votes_rejected``, ``ties``, ``probability`` (and ``agreement``,
``orders_agree``, which follow from the rest), and ``votes_when_chosen_first``: the
decisive votes ``[for chosen, for rejected]`` given while the chosen answer was shown
first (missing in files of other tools: then every vote is taken as given in that order).

Identity: a row is the comparison of two models' answers to one prompt, so its match id is
``content_id("dpo", prompt_id, model, model)`` (the two names sorted, slot 0 the first):
re-importing a file, or another export of the same board, stores nothing twice, and a row
that says otherwise about a stored pair is a conflict. A prompt is its ``prompt_id``; an
answer is (prompt, model), so one file may give each only one text.

Each row becomes up to five weighted judgments of one voter (``voter``, default "dpo"):
chosen and rejected wins in each presentation order (``repeat`` 0 and 1) and the ties
(``repeat`` 2), each carrying the row's soft preference. Exporting them again gives the
same row: the same votes, ties, agreement, orders and probability.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from arena.importers.formats._common import Row, content_id, read_items
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.vocabulary import TIE, WINNERS


def parse(
    path, voter: str = "dpo", **options
) -> Iterator[PromptRecord | OutputRecord | JudgmentRecord]:
    prompts: dict[str, tuple[str, str, int]] = {}
    answers: dict[tuple[str, str], tuple[str, int]] = {}
    for line, item in read_items(path, **options):
        row = Row(path, line, item)
        prompt_id = row.str("prompt_id")
        prompt = (row.str("prompt"), row.str("category", required=False))
        chosen_model, rejected_model = row.str("chosen_model"), row.str("rejected_model")
        if chosen_model == rejected_model:
            raise row.error("rejected_model", "the same model as chosen_model")
        votes_chosen = row.int("votes_chosen", minimum=0)
        votes_rejected = row.int("votes_rejected", minimum=0)
        ties = row.int("ties", required=False, minimum=0)
        if votes_chosen <= votes_rejected:
            raise row.error(
                "votes_chosen", "a preference needs more votes for chosen than rejected"
            )
        first = _chosen_first(row, votes_chosen, votes_rejected)
        probability = _probability(row)

        seen = prompts.setdefault(prompt_id, (*prompt, line))
        if seen[:2] != prompt:
            raise row.error(
                "prompt", f"prompt {prompt_id!r} has another text or category on line {seen[2]}"
            )
        if seen[2] == line:
            yield PromptRecord(prompt_id, prompt[0], category=prompt[1], line=line)
        for field, model in (("chosen", chosen_model), ("rejected", rejected_model)):
            text = row.text(field)
            known = answers.setdefault((prompt_id, model), (text, line))
            if known[0] != text:
                raise row.error(
                    field, f"{model}'s answer to {prompt_id!r} differs from line {known[1]}"
                )
            if known[1] == line:
                yield OutputRecord(prompt_id, model, text, line=line)

        slots = tuple(sorted((chosen_model, rejected_model)))
        chosen = slots.index(chosen_model)
        shown_chosen_first = (chosen, 1 - chosen)
        shown_rejected_first = (1 - chosen, chosen)
        preference = None
        if probability is not None:  # soft preference in [1, 2], 1 = slot 0 better
            preference = 2.0 - (probability if chosen == 0 else 1.0 - probability)
        verdicts = (
            (WINNERS[chosen], shown_chosen_first, 0, first[0]),
            (WINNERS[1 - chosen], shown_chosen_first, 1, first[1]),
            (WINNERS[chosen], shown_rejected_first, 0, votes_chosen - first[0]),
            (WINNERS[1 - chosen], shown_rejected_first, 1, votes_rejected - first[1]),
            (TIE, shown_chosen_first, 2, ties),
        )
        match_id = content_id("dpo", prompt_id, *slots)
        for winner, order, repeat, weight in verdicts:
            if weight:
                yield JudgmentRecord(
                    match_id=match_id,
                    contestants=slots,
                    winner=winner,
                    presentation=order,
                    repeat=repeat,
                    weight=weight,
                    preference=preference,
                    voter=voter,
                    prompt_id=prompt_id,
                    category=prompt[1],
                    line=line,
                )


def _chosen_first(row: Row, votes_chosen: int, votes_rejected: int) -> tuple[int, int]:
    value = row.item.get("votes_when_chosen_first")
    if value is None:
        return votes_chosen, votes_rejected
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] <= votes_chosen
        and 0 <= value[1] <= votes_rejected
    ):
        raise row.error(
            "votes_when_chosen_first",
            "expected [votes for chosen, votes for rejected], each within the row's votes",
        )
    return value[0], value[1]


def _probability(row: Row) -> float | None:
    value = row.item.get("probability")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and 0 <= value <= 1)
    ):
        raise row.error("probability", f"expected a number in [0, 1] or null, got {value!r}")
    return float(value)
