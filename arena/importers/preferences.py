"""Preference data for training: chosen / rejected pairs (DPO) and ranked lists (LiPO).

``preference_pairs`` reads the pairwise verdicts of a board's scope (the one scope query,
``Judgment.objects.in_scope``: OK verdicts on 2-way matches, side-by-side votes left out)
and aggregates them per *answer pair* of a prompt: every verdict on the same two stored
answers, whoever gave it and in whichever order they were shown, is one row. Never
exported: votes of flagged voters (off the public board, off the training data too),
private typed prompts, matches whose answers are not stored texts.

Per row (the agreement figures are exported so that a trainer can filter: DPO matches
RLHF only where the preferred answer is the one the reward would prefer, so noisy pairs
matter):

- ``votes_chosen`` / ``votes_rejected`` / ``ties``: weighted verdicts (a tie or "both
  bad" is a tie);
- ``agreement``: ``votes_chosen / (votes_chosen + votes_rejected)``, in (0.5, 1];
- ``orders_agree``: the chosen answer won more decisive verdicts than the rejected one in
  *each* presentation order (``None`` when only one order was judged);
- ``probability``: the mean soft preference for the chosen answer where verdicts carry
  one (AlpacaEval's ``preference``), else ``None``;
- ``votes_when_chosen_first``: the decisive votes ``[for chosen, for rejected]`` given
  while the chosen answer was shown first (the rest were given in the other order).

``prompt_id``, ``chosen_model`` and ``rejected_model`` identify a row, so that
``arena_import --format dpo`` (``arena.importers.formats.dpo``) reads an export back as
judgments that export to the same rows, and a second import stores nothing twice.

``ranked_lists`` writes one row per K-wise ranking; with ``--by run:<id>`` of a PRP run
(the ``prp`` design) it writes the run's per-prompt rankings instead: every answer of the
prompt, best first (``_sorted_rows``).

A pair with as many votes each way is no preference and is left out. The aggregation is
numpy over one row per verdict: no per-verdict Python loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from arena.boards import BoardScope
from arena.models import EvaluationRun, Judgment, Match, MatchSlot, Output, Prompt, PromptSet
from arena.vocabulary import A, B, slot_zero_first_array

CHUNK = 2000


@dataclass(frozen=True)
class PreferenceFilters:
    """Which answer pairs an export keeps (see ``arena_export --help``)."""

    by: str = "all"  # humans | judges | all | judge:<id> | run:<id>
    min_votes: float = 1  # decisive verdicts (weighted)
    min_agreement: float = 0.0  # share of decisive verdicts for the chosen answer
    orders_agree: bool = False  # keep only pairs whose both presentation orders agree
    min_probability: float | None = None  # keep only pairs with a soft preference >= this

    def describe(self) -> list[str]:
        return [f"{k} = {v}" for k, v in asdict(self).items()]


@dataclass(frozen=True)
class PairTally:
    """Verdicts aggregated per answer pair of a prompt (arrays, one entry per pair)."""

    prompt: np.ndarray  # prompt id
    first: np.ndarray  # output id (the lower of the two)
    second: np.ndarray  # output id (the higher)
    first_votes: np.ndarray  # weighted verdicts for ``first``
    second_votes: np.ndarray
    ties: np.ndarray
    first_votes_shown_first: np.ndarray  # of first_votes, when ``first`` was shown first
    second_votes_shown_first: np.ndarray  # of second_votes, when ``first`` was shown first
    first_shown_first: np.ndarray  # decisive verdicts given with ``first`` shown first
    first_shown_second: np.ndarray  # ... with ``first`` shown second
    preference_sum: np.ndarray  # sum of P(first better) over verdicts that carry one
    preference_n: np.ndarray


def tally_pairs(
    prompt: np.ndarray,
    output0: np.ndarray,
    output1: np.ndarray,
    winner: np.ndarray,
    slot0_first: np.ndarray,
    weight: np.ndarray,
    preference: np.ndarray,
) -> PairTally:
    """Aggregate one row per pairwise verdict into one per (prompt, unordered answer pair).

    ``winner`` holds vocabulary names ("a" = slot 0); ``preference`` is AlpacaEval's soft
    preference in [1, 2] (1 = slot 0 better) or NaN.
    """
    output0, output1 = np.asarray(output0, np.int64), np.asarray(output1, np.int64)
    first, second = np.minimum(output0, output1), np.maximum(output0, output1)
    slot0_is_first = output0 == first
    w = np.asarray(weight, np.float64)
    winner = np.asarray(winner)
    for_first = np.where(winner == A, slot0_is_first, np.where(winner == B, ~slot0_is_first, False))
    for_second = np.isin(winner, (A, B)) & ~for_first
    tie = ~np.isin(winner, (A, B))
    first_shown_first = np.asarray(slot0_first, bool) == slot0_is_first
    pref = np.asarray(preference, np.float64)
    p_slot0 = 2.0 - pref
    p_first = np.where(slot0_is_first, p_slot0, 1.0 - p_slot0)
    has_pref = ~np.isnan(p_first)

    keys = np.stack([np.asarray(prompt, np.int64), first, second], axis=1)
    unique, index = np.unique(keys, axis=0, return_inverse=True)
    index = index.ravel()
    n = len(unique)

    def total(values):
        return np.bincount(index, weights=values, minlength=n)

    decisive = w * (for_first | for_second)
    return PairTally(
        prompt=unique[:, 0],
        first=unique[:, 1],
        second=unique[:, 2],
        first_votes=total(w * for_first),
        second_votes=total(w * for_second),
        ties=total(w * tie),
        first_votes_shown_first=total(w * (for_first & first_shown_first)),
        second_votes_shown_first=total(w * (for_second & first_shown_first)),
        first_shown_first=total(decisive * first_shown_first),
        first_shown_second=total(decisive * ~first_shown_first),
        preference_sum=total(np.where(has_pref, w * p_first, 0.0)),
        preference_n=total(w * has_pref),
    )


@dataclass(frozen=True)
class Chosen:
    """The preferred side of each tallied pair, with its agreement figures."""

    keep: np.ndarray  # bool: a preference that passes the filters
    chosen_is_first: np.ndarray
    votes_chosen: np.ndarray
    votes_rejected: np.ndarray
    agreement: np.ndarray
    orders_agree: np.ndarray  # 1 agree, 0 disagree, -1 one order only
    probability: np.ndarray  # NaN without soft preferences


def choose(t: PairTally, filters: PreferenceFilters) -> Chosen:
    """Pick the chosen answer of each pair and apply the filters (vectorised)."""
    chosen_is_first = t.first_votes > t.second_votes
    votes_chosen = np.maximum(t.first_votes, t.second_votes)
    votes_rejected = np.minimum(t.first_votes, t.second_votes)
    decisive = votes_chosen + votes_rejected
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(decisive > 0, votes_chosen / decisive, np.nan)
        p_first = np.where(t.preference_n > 0, t.preference_sum / t.preference_n, np.nan)
    # Per presentation order: the chosen side's decisive verdicts against the other's.
    first_ahead_when_first = t.first_votes_shown_first > t.second_votes_shown_first
    second_ahead_when_first = t.second_votes_shown_first > t.first_votes_shown_first
    first_when_second = t.first_votes - t.first_votes_shown_first
    second_when_second = t.second_votes - t.second_votes_shown_first
    first_ahead_when_second = first_when_second > second_when_second
    second_ahead_when_second = second_when_second > first_when_second
    agree = np.where(
        chosen_is_first,
        first_ahead_when_first & first_ahead_when_second,
        second_ahead_when_first & second_ahead_when_second,
    )
    both_orders = (t.first_shown_first > 0) & (t.first_shown_second > 0)
    orders_agree = np.where(both_orders, agree.astype(np.int8), -1)
    probability = np.where(chosen_is_first, p_first, 1.0 - p_first)
    keep = (votes_chosen > votes_rejected) & (decisive >= filters.min_votes)
    keep &= agreement >= filters.min_agreement
    if filters.orders_agree:
        keep &= orders_agree == 1
    if filters.min_probability is not None:
        keep &= ~np.isnan(probability) & (probability >= filters.min_probability)
    return Chosen(
        keep, chosen_is_first, votes_chosen, votes_rejected, agreement, orders_agree, probability
    )


def _verdicts(prompt_set: PromptSet, by: str):
    """The scope's pairwise verdicts on stored answers, as columns (one query)."""
    scope = BoardScope.validated(prompt_set.slug, by)
    rows = list(
        Judgment.objects.in_scope(scope)
        .with_slots()  # anonymous answers (LLMBar's) are training data too
        .filter(s0__output__isnull=False, s1__output__isnull=False)
        .exclude(voter__flagged=True)
        .exclude(match__prompt__visibility=Prompt.Visibility.PRIVATE)
        .values_list(
            "match__prompt_id",
            "s0__output_id",
            "s1__output_id",
            "winner",
            "presentation",
            "weight",
            "preference",
        )
        .order_by()
    )
    if not rows:
        return None
    prompt, o0, o1, winner, presentation, weight, preference = zip(*rows, strict=True)
    return (
        np.asarray(prompt, np.int64),
        np.asarray(o0, np.int64),
        np.asarray(o1, np.int64),
        np.asarray(winner),
        slot_zero_first_array(presentation),
        np.asarray(weight, np.float64),
        np.asarray([np.nan if p is None else p for p in preference], np.float64),
    )


@dataclass
class ExportSummary:
    """What an export wrote, for its dataset card."""

    pairs_seen: int = 0
    rows: int = 0
    verdicts: float = 0.0
    models: set[str] | None = None


def preference_pairs(
    prompt_set: PromptSet, filters: PreferenceFilters, summary: ExportSummary | None = None
) -> Iterator[dict]:
    """One row per kept answer pair: prompt, chosen, rejected and the agreement figures,
    in prompt order. The texts are read in chunks, one query per chunk."""
    columns = _verdicts(prompt_set, filters.by)
    summary = summary if summary is not None else ExportSummary()
    summary.models = set()
    if columns is None:
        return
    tally = tally_pairs(*columns)
    chosen = choose(tally, filters)
    summary.pairs_seen = len(tally.prompt)
    kept = np.flatnonzero(chosen.keep)
    for start in range(0, len(kept), CHUNK):
        part = kept[start : start + CHUNK]
        winners = np.where(chosen.chosen_is_first[part], tally.first[part], tally.second[part])
        losers = np.where(chosen.chosen_is_first[part], tally.second[part], tally.first[part])
        outputs = {
            o.pk: o
            for o in Output.objects.filter(pk__in=np.r_[winners, losers].tolist()).select_related(
                "contestant"
            )
        }
        prompts = {
            p.pk: p for p in Prompt.objects.filter(pk__in=np.unique(tally.prompt[part]).tolist())
        }
        # Decisive votes (for chosen, for rejected) given while the chosen answer was shown first.
        when_first = np.where(
            chosen.chosen_is_first[part],
            [tally.first_votes_shown_first[part], tally.second_votes_shown_first[part]],
            [
                tally.second_votes[part] - tally.second_votes_shown_first[part],
                tally.first_votes[part] - tally.first_votes_shown_first[part],
            ],
        )
        for k, (i, win, lose) in enumerate(
            zip(part.tolist(), winners.tolist(), losers.tolist(), strict=True)
        ):
            prompt, good, bad = prompts[int(tally.prompt[i])], outputs[win], outputs[lose]
            summary.rows += 1
            summary.verdicts += float(
                chosen.votes_chosen[i] + chosen.votes_rejected[i] + tally.ties[i]
            )
            summary.models.update((good.contestant.name, bad.contestant.name))
            yield {
                "prompt_id": prompt.external_id,
                "category": prompt.category,
                "prompt": prompt.text,
                "chosen": good.text,
                "rejected": bad.text,
                "chosen_model": good.contestant.name,
                "rejected_model": bad.contestant.name,
                "votes_chosen": _number(chosen.votes_chosen[i]),
                "votes_rejected": _number(chosen.votes_rejected[i]),
                "ties": _number(tally.ties[i]),
                "agreement": round(float(chosen.agreement[i]), 6),
                "orders_agree": None
                if chosen.orders_agree[i] < 0
                else bool(chosen.orders_agree[i]),
                "probability": None
                if np.isnan(chosen.probability[i])
                else round(float(chosen.probability[i]), 6),
                "votes_when_chosen_first": [_number(when_first[0, k]), _number(when_first[1, k])],
            }


def ranked_lists(
    prompt_set: PromptSet, filters: PreferenceFilters, summary: ExportSummary | None = None
) -> Iterator[dict]:
    """One row per K-wise ranking (LiPO-style lists): the prompt, the answers best first,
    their models and ranks (ties share a rank), and a score per answer (K - rank)."""
    summary = summary if summary is not None else ExportSummary()
    summary.models = set()
    scope = BoardScope.validated(prompt_set.slug, filters.by)
    run = EvaluationRun.objects.filter(pk=scope.run_id, design=EvaluationRun.Design.PRP).first()
    if run is not None:  # a PRP run: its per-prompt sorts are the rankings
        yield from _sorted_rows(run, summary)
        return
    judgments = (
        Judgment.objects.in_scope(scope, kind=Judgment.Kind.RANKING)
        .exclude(voter__flagged=True)
        .exclude(match__prompt__visibility=Prompt.Visibility.PRIVATE)
        .filter(ranking__isnull=False)
        .values_list("match_id", "ranking")
        .order_by("match_id", "id")
    )
    batch: list[tuple[int, list]] = []
    for row in judgments.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) >= CHUNK:
            yield from _ranked_rows(batch, summary)
            batch = []
    yield from _ranked_rows(batch, summary)


def _ranked_rows(batch: list[tuple[int, list]], summary: ExportSummary) -> Iterator[dict]:
    if not batch:
        return
    matches = {
        m.pk: m
        for m in Match.objects.filter(pk__in={match_id for match_id, _ in batch})
        .select_related("prompt")
        .prefetch_related("slots__output", "slots__contestant")
    }
    for match_id, ranking in batch:
        match = matches[match_id]
        slots = sorted(match.slots.all(), key=lambda s: s.position)
        if match.prompt is None or any(s.output is None for s in slots):
            continue  # nothing to train on without the texts
        if len(ranking) != len(slots):
            continue
        order = sorted(range(len(slots)), key=lambda i: ranking[i])
        summary.rows += 1
        summary.verdicts += 1
        summary.models.update(s.contestant.name for s in slots)
        yield {
            "prompt_id": match.prompt.external_id,
            "category": match.prompt.category,
            "prompt": match.prompt.text,
            "responses": [slots[i].output.text for i in order],
            "models": [slots[i].contestant.name for i in order],
            "ranks": [int(ranking[i]) for i in order],
            "scores": [len(slots) - int(ranking[i]) for i in order],
        }


def _sorted_rows(run: EvaluationRun, summary: ExportSummary) -> Iterator[dict]:
    """A PRP run's per-prompt rankings (``design_report["prompts"]``, best first): the
    answers its matches showed, ranks 0 .. top - 1 for the sorted best and ``top`` shared by
    the rest. Texts are read in chunks, one query per chunk."""
    rows = (run.design_report or {}).get("prompts") or []
    top = run.design_report.get("top") if rows else None
    shown = dict(
        ((prompt_id, name), output_id)
        for prompt_id, name, output_id in MatchSlot.objects.filter(
            match__run=run, output__isnull=False
        )
        .values_list("match__prompt_id", "contestant__name", "output_id")
        .order_by()
    )
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        prompts = Prompt.objects.filter(pk__in=[r["prompt"] for r in part]).exclude(
            visibility=Prompt.Visibility.PRIVATE
        )
        prompts = {p.pk: p for p in prompts}
        wanted = [shown.get((r["prompt"], m)) for r in part for m in r["ranking"]]
        texts = dict(
            Output.objects.filter(pk__in=[o for o in wanted if o]).values_list("pk", "text")
        )
        for row in part:
            prompt = prompts.get(row["prompt"])
            outputs = [shown.get((row["prompt"], m)) for m in row["ranking"]]
            if prompt is None or any(o not in texts for o in outputs):
                continue  # nothing to train on without the texts
            k = len(outputs)
            ranks = [min(i, top if top is not None else k) for i in range(k)]
            summary.rows += 1
            summary.verdicts += row["calls"]
            summary.models.update(row["ranking"])
            yield {
                "prompt_id": prompt.external_id,
                "category": prompt.category,
                "prompt": prompt.text,
                "responses": [texts[o] for o in outputs],
                "models": list(row["ranking"]),
                "ranks": ranks,
                "scores": [k - r for r in ranks],
            }


def dataset_card(
    prompt_set: PromptSet, fmt: str, filters: PreferenceFilters, summary: ExportSummary
) -> str:
    """A Hugging Face dataset card (README.md): counts, filters, source, licence."""
    licence = prompt_set.license or "unknown"
    columns = (
        "prompt, chosen, rejected, chosen_model, rejected_model, votes_chosen, "
        "votes_rejected, ties, agreement, orders_agree, probability, votes_when_chosen_first"
        if fmt == "dpo"
        else "prompt, responses (best first), models, ranks, scores"
    )
    lines = [
        "---",
        f"license: {_card_licence(licence)}",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- preference",
        "- dpo" if fmt == "dpo" else "- listwise-ranking",
        "---",
        "",
        f"# {prompt_set.name or prompt_set.slug}: {'preference pairs' if fmt == 'dpo' else 'ranked lists'}",
        "",
        f"Exported by Arena (`arena_export --format {fmt}`) from the prompt set "
        f"`{prompt_set.slug}`.",
        "",
        f"- Source data: {prompt_set.source or 'not recorded'}",
        f"- Licence of the source data: {licence}",
        f"- Rows: {summary.rows}"
        + (f" of {summary.pairs_seen} answer pairs judged" if fmt == "dpo" else ""),
        f"- Verdicts behind them: {_number(summary.verdicts)}",
        f"- Models: {len(summary.models or ())}",
        f"- Columns: {columns}",
        "- Left out: votes of flagged voters, private typed prompts, side-by-side (named) votes.",
        "",
        "## Filters",
        "",
        *(f"- {line}" for line in filters.describe()),
        "",
    ]
    return "\n".join(lines)


def _card_licence(licence: str) -> str:
    known = {"Apache-2.0": "apache-2.0", "MIT": "mit", "BSD-3-Clause": "bsd-3-clause"}
    return known.get(licence, "other")


def _number(x) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() else round(x, 6)
