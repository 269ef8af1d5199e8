"""Human labels on an LLM-judge run: the anchor selection and the human-anchored board.

The data model both meet on (issue 20): a run's ``Match``es carry the judge's verdicts
(``Judgment`` rows with a ``judge``) and, on some of them, human labels (``Judgment``
rows with a ``voter``: annotators of a campaign, or anyone else who judged the run's
match; or the match's ``gold_winner``). A run's anchor selection (:class:`MatchAnchor`,
one row per match) says which matches humans should judge and with which probability
each was chosen (:func:`select_run_anchors`, the pure :mod:`arena.matchmaking.anchors`).
The run board's ``anchored`` option (:func:`anchored_option`, fitted with the board by
:func:`arena.fitting.fit_scope`) combines every judge verdict with the labels
(:mod:`arena.ratings.anchored`): with a selection, only labels on its chosen matches
count, each weighted by 1 / its probability; without one, the labelled matches are taken
as a uniform sample of the run's matches (which a note says).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import transaction

from arena import vocabulary
from arena.boards import BoardScope, model_names
from arena.errors import CONFLICT, Refusal
from arena.matchmaking.anchors import STRATA, select_anchors
from arena.models import EvaluationRun, Judgment, Match, MatchAnchor
from arena.ratings.anchored import AnchoredMatches, anchored_bt, judge_strengths

# A verdict's value for slot 0: a win 1, a loss 0, a tie (or "both bad") half.
GOLD_VALUE = {vocabulary.A: 1.0, vocabulary.B: 0.0, vocabulary.TIE: 0.5}
NO_SELECTION = (
    "no anchor selection was drawn for this run: its labelled matches are taken as a "
    "uniform sample of its matches"
)


@dataclass(frozen=True, eq=False)
class RunLabels:
    """A run's judged 2-way matches, one entry each (arrays of length N).

    ``judge`` is the judge's soft verdict for slot 0 (its verdict probabilities when it
    gave them, else its verdicts; averaged over orders, repeats and jurors), ``spread``
    the range of its verdicts on the match, ``human`` the mean human label (NaN: none),
    ``human_votes`` how many human verdicts, ``probability``/``chosen``/``stratum`` the
    anchor selection's (NaN / False / "" without one).
    """

    match_ids: np.ndarray
    models: tuple[str, ...]
    first: np.ndarray
    second: np.ndarray
    judge: np.ndarray
    spread: np.ndarray
    human: np.ndarray
    human_votes: np.ndarray
    probability: np.ndarray
    chosen: np.ndarray
    stratum: np.ndarray

    @property
    def has_selection(self) -> bool:
        return bool(np.isfinite(self.probability).any())

    def anchored_matches(self) -> tuple[AnchoredMatches, list[str]]:
        """The estimator's input: labels that count and their inclusion probabilities."""
        notes = []
        human = self.human
        if self.has_selection:
            framed = np.isfinite(self.probability)
            outside = int((~framed).sum())
            if outside:
                notes.append(f"{outside} matches judged after the anchor selection are left out")
            stray = int((framed & ~self.chosen & ~np.isnan(human)).sum())
            if stray:
                notes.append(
                    f"{stray} human labels on matches the selection did not choose are left "
                    "out (their chance of being labelled is unknown)"
                )
            keep = framed
            human = np.where(self.chosen, human, np.nan)[keep]
            inclusion = self.probability[keep]
        else:
            keep = np.ones(len(self.match_ids), bool)
            labelled = ~np.isnan(human)
            inclusion = np.full(keep.size, max(labelled.mean(), 1e-12))
            notes.append(NO_SELECTION)
        matches = AnchoredMatches(
            self.models,
            self.first[keep],
            self.second[keep],
            self.judge[keep],
            human,
            inclusion,
        )
        return matches, notes


def run_labels(run_id: int) -> RunLabels | None:
    """Read a run's judged matches, judge verdicts, human labels and anchor selection
    (three queries and the models' names); None when no match was judged."""
    rows = list(
        Judgment.objects.filter(
            match__run_id=run_id,
            match__k=2,
            kind=Judgment.Kind.PAIRWISE,
            status=Judgment.Status.OK,
        )
        .with_slots(models_only=True)
        .values_list(
            "match_id",
            "judge_id",
            "winner",
            "probabilities",
            "weight",
            "s0__contestant_id",
            "s1__contestant_id",
        )
    )
    if not rows:
        return None
    match, judge_id, winner, probabilities, weight, c0, c1 = (
        list(col) for col in zip(*rows, strict=True)
    )
    match = np.asarray(match, np.int64)
    is_judge = np.not_equal(np.asarray(judge_id, object), None)
    winner = np.asarray(winner, object)
    value = np.select([winner == vocabulary.A, winner == vocabulary.B], [1.0, 0.0], 0.5)
    soft = value.copy()
    has_probabilities = is_judge & np.not_equal(np.asarray(probabilities, object), None)
    for i in np.flatnonzero(has_probabilities):  # JSON objects: read one by one
        soft[i] = _probability_of_slot_zero(probabilities[i], value[i])
    weight = np.asarray(weight, np.float64)

    ids, index = np.unique(match, return_inverse=True)
    n = ids.size
    judge_w = np.bincount(index, weight * is_judge, n)
    judge = np.divide(
        np.bincount(index, weight * soft * is_judge, n),
        judge_w,
        out=np.full(n, np.nan),
        where=judge_w > 0,
    )
    high = np.full(n, -np.inf)
    low = np.full(n, np.inf)
    np.maximum.at(high, index[is_judge], value[is_judge])
    np.minimum.at(low, index[is_judge], value[is_judge])
    spread = np.where(judge_w > 0, high - low, 0.0)
    human_w = np.bincount(index, weight * ~is_judge, n)
    human = np.divide(
        np.bincount(index, weight * value * ~is_judge, n),
        human_w,
        out=np.full(n, np.nan),
        where=human_w > 0,
    )
    gold = dict(
        Match.objects.filter(id__in=ids.tolist())
        .exclude(gold_winner="")
        .values_list("id", "gold_winner")
    )
    if gold:  # a gold answer labels a match no human judged
        pos = np.searchsorted(ids, np.fromiter(gold, np.int64, len(gold)))
        gold_value = np.array([GOLD_VALUE[g] for g in gold.values()])
        human[pos] = np.where(np.isnan(human[pos]), gold_value, human[pos])
        human_w[pos] = np.maximum(human_w[pos], 1)

    slot0 = np.zeros(n, np.int64)
    slot1 = np.zeros(n, np.int64)
    slot0[index] = np.asarray(c0, np.int64)
    slot1[index] = np.asarray(c1, np.int64)
    judged = ~np.isnan(judge)  # the population: matches the judge gave a verdict on
    if not judged.any():
        return None
    contestants = np.unique(np.concatenate([slot0[judged], slot1[judged]]))
    names = model_names(contestants)
    contestants = contestants[np.argsort([names[int(c)] for c in contestants], kind="stable")]
    order = np.argsort(contestants)

    def model_index(values):
        return order[np.searchsorted(contestants[order], values)]

    probability = np.full(n, np.nan)
    chosen = np.zeros(n, bool)
    stratum = np.full(n, "", object)
    anchors = list(
        MatchAnchor.objects.filter(run_id=run_id).values_list(
            "match_id", "probability", "chosen", "stratum"
        )
    )
    if anchors:
        a_ids, a_prob, a_chosen, a_stratum = (np.asarray(col) for col in zip(*anchors, strict=True))
        pos = np.searchsorted(ids, a_ids.astype(np.int64))
        found = (pos < n) & (ids[np.minimum(pos, n - 1)] == a_ids)
        probability[pos[found]] = a_prob[found].astype(np.float64)
        chosen[pos[found]] = a_chosen[found].astype(bool)
        stratum[pos[found]] = a_stratum[found]
    return RunLabels(
        match_ids=ids[judged],
        models=tuple(names[int(c)] for c in contestants),
        first=model_index(slot0[judged]),
        second=model_index(slot1[judged]),
        judge=judge[judged],
        spread=spread[judged],
        human=human[judged],
        human_votes=human_w[judged],
        probability=probability[judged],
        chosen=chosen[judged],
        stratum=stratum[judged],
    )


def _probability_of_slot_zero(found: dict, fallback: float) -> float:
    """Slot 0's share of a verdict's probabilities (``winner`` in slot terms, ties half)."""
    by_winner = found.get("winner") if isinstance(found, dict) else None
    if not isinstance(by_winner, dict):
        return fallback
    total = sum(v for v in by_winner.values() if isinstance(v, int | float))
    if total <= 0:
        return fallback
    a = by_winner.get(vocabulary.A, 0.0)
    half = by_winner.get(vocabulary.TIE, 0.0) + by_winner.get(vocabulary.BOTH_BAD, 0.0)
    return float(min(max((a + 0.5 * half) / total, 0.0), 1.0))


def anchored_option(scope: BoardScope, anchor=None) -> dict | None:
    """The ``anchored`` option of a run's board: its judge verdicts anchored by human
    labels (module docstring), or None for other boards and runs nobody labelled. A fit
    that cannot be made is an option with no rows and a note saying why."""
    if scope.run_id is None or scope.category or scope.style_control:
        return None
    if not _has_labels(scope.run_id):  # one cheap query before reading every verdict
        return None
    labels = run_labels(scope.run_id)
    if labels is None or np.isnan(labels.human).all():
        return None
    matches, notes = labels.anchored_matches()
    try:
        fit = anchored_bt(matches)
    except ValueError as exc:
        return {
            "method": "anchored",
            "value": "rating",
            "n_votes": len(matches.first),
            "rows": [],
            "coefficients": {},
            "notes": [*notes, str(exc)],
        }
    usable = anchor if anchor and anchor[0] in fit.models else None
    return fit.option(anchor=usable, notes=notes)


def _has_labels(run_id: int) -> bool:
    """Whether any human judged one of the run's matches, or any has a gold answer."""
    return (
        Judgment.objects.filter(match__run_id=run_id, voter__isnull=False).exists()
        or Match.objects.filter(run_id=run_id).exclude(gold_winner="").exists()
    )


def _budget(value: float, n: int) -> float:
    """A label budget: a share of the matches below 1, else a count (at most all)."""
    budget = value * n if 0 < value < 1 else value
    if not 0 < budget <= n:  # (a NaN fails too)
        raise Refusal(
            f"budget: expected a share in (0, 1) or a count up to the run's {n} judged "
            f"matches, got {value:g}",
            field="budget",
        )
    return float(budget)


def select_run_anchors(
    run: EvaluationRun, budget: float, *, uniform_share: float = 0.3, seed: int | None = None
) -> list[dict]:
    """Draw the run's anchor selection (module docstring) and store it, one
    :class:`MatchAnchor` per judged match; returns the per-stratum summary.

    Refused (nothing written): a run not done (its matches are not all there), a run
    with no judged match, a budget out of range, a uniform share outside [0, 1], and a
    new draw once humans labelled the current selection's chosen matches (their
    probabilities would no longer be those of the draw).
    """
    if run.status != EvaluationRun.Status.DONE:
        raise Refusal(
            f"run {run.pk} is {run.status}: anchors are drawn once its matches are all judged",
            field="run",
            status=CONFLICT,
        )
    if not 0 <= uniform_share <= 1:
        raise Refusal("uniform_share: expected a share in [0, 1]", field="uniform_share")
    labels = run_labels(run.pk)
    if labels is None:
        raise Refusal(f"run {run.pk} has no judged match to anchor", field="run", status=CONFLICT)
    n = len(labels.match_ids)
    amount = _budget(float(budget), n)
    if labels.has_selection and (labels.chosen & ~np.isnan(labels.human)).any():
        raise Refusal(
            f"humans already labelled run {run.pk}'s anchors: its selection stays",
            field="run",
            status=CONFLICT,
        )
    try:
        scores = judge_strengths(len(labels.models), labels.first, labels.second, labels.judge)
    except ValueError:  # no finite judge fit (a model won everything): its win shares rank
        m = len(labels.models)
        wins = np.bincount(labels.first, labels.judge, m) + np.bincount(
            labels.second, 1 - labels.judge, m
        )
        played = np.bincount(labels.first, minlength=m) + np.bincount(labels.second, minlength=m)
        scores = wins / np.maximum(played, 1)
    rng = np.random.default_rng(run.seed if seed is None else seed)
    plan = select_anchors(
        labels.first,
        labels.second,
        labels.judge,
        labels.spread,
        scores,
        amount,
        rng,
        uniform_share=uniform_share,
    )
    rows = [
        MatchAnchor(
            match_id=int(match_id),
            run_id=run.pk,
            stratum=STRATA[int(stratum)],
            probability=float(probability),
            chosen=bool(chosen),
        )
        for match_id, stratum, probability, chosen in zip(
            labels.match_ids, plan.stratum, plan.inclusion, plan.chosen, strict=True
        )
    ]
    with transaction.atomic():
        MatchAnchor.objects.filter(run_id=run.pk).delete()
        MatchAnchor.objects.bulk_create(rows, batch_size=1000)
    return plan.summary()


def anchor_export(run: EvaluationRun, chosen_only: bool = True) -> list[dict]:
    """The run's anchor selection as rows (staff and API tokens only: it names the models
    of each match): match id and public id, prompt, the two models in slot order, stratum,
    probability, whether chosen, the judge's soft verdict and the human labels so far."""
    labels = run_labels(run.pk)
    if labels is None or not labels.has_selection:
        return []
    keep = np.isfinite(labels.probability)
    if chosen_only:
        keep &= labels.chosen
    idx = np.flatnonzero(keep)
    info = dict(
        (m, (str(public), prompt))
        for m, public, prompt in Match.objects.filter(
            id__in=labels.match_ids[idx].tolist()
        ).values_list("id", "public_id", "prompt_id")
    )
    return [
        {
            "match": int(labels.match_ids[i]),
            "public_id": info[int(labels.match_ids[i])][0],
            "prompt": info[int(labels.match_ids[i])][1],
            "models": [labels.models[labels.first[i]], labels.models[labels.second[i]]],
            "stratum": labels.stratum[i],
            "probability": float(labels.probability[i]),
            "chosen": bool(labels.chosen[i]),
            "judge": float(labels.judge[i]),
            "human_labels": int(labels.human_votes[i]),
        }
        for i in idx.tolist()
    ]
