"""Replaying a run's design from its stored verdicts: the run's only memory is the database.

A design (:mod:`arena.matchmaking`) is a deterministic function of its seed and the
verdicts it observed. :func:`replay` starts it with the run's seed and, for each batch
``r``, feeds back the stored verdicts of the matches with ``Match.round == r``, until the
first batch that is not fully judged: the batches replayed are exactly the ones handed out
before a crash, a restart or a resume. Stored rows that the replay does not ask for raise
:class:`ReplayError` (the run fails) instead of being mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena import vocabulary
from arena.matchmaking import Call, GroupPlan, Verdict
from arena.models import EvaluationRun, Judgment, MatchSlot
from judges.prompts import POINTWISE_MODES
from judges.runs.create import build_design, shows_both_orders
from judges.runs.errors import ReplayError
from judges.runs.jury import juror_ids, panel_size
from judges.runs.kwise import StoredRankings

__all__ = ["ReplayError", "RunState", "StoredVerdicts", "SwappedPlan", "replay"]

# The slot a winner code names (ties and "both bad" name none).
SLOT_WON = {vocabulary.A: 0, vocabulary.B: 1}


class SwappedPlan:
    """A plan whose every call is shown in the other order (the ``swap`` perturbation).

    Verdicts come back in the shown order and are turned round before the plan sees them,
    so the design replays exactly as for its baseline.
    """

    def __init__(self, plan):
        self.plan = plan

    def next_batch(self) -> list[Call]:
        return [Call(p, b, a) for p, a, b in self.plan.next_batch()]

    def observe(self, verdicts) -> None:
        self.plan.observe([Verdict(v.prompt, v.second, v.first, 1.0 - v.score) for v in verdicts])

    def __getattr__(self, name):
        return getattr(self.plan, name)


# --- replay --------------------------------------------------------------------------------


@dataclass
class RunState:
    """Where a run stands: the plan after every complete batch, and the batch being judged."""

    plan: object
    round_index: int
    calls: list[Call]
    done: bool


class StoredVerdicts:
    """A run's stored judgments as arrays keyed by (round, prompt, first, second) in design indices.

    ``key = ((round · P + prompt) · N + first) · N + second`` where ``first`` is the model
    shown first. Each key has up to ``repeats`` judgments (times the panel's size on a jury
    run: the design sees the mean of its jurors' scores); ``score`` is the first-shown
    model's (1 win, ½ tie or both bad, 0 loss), NaN for a failed call. With ``soft`` (a
    design that scores by probability, PRP's ``scoring="probability"``) it is the judge's
    probability of the first-shown answer (:func:`soft_scores`) where the judgment has one.
    A single-score judge's judgment scores the answer it graded against the other answer's
    grade (:func:`_graded_scores`).
    """

    def __init__(self, run: EvaluationRun, soft: bool = False):
        self.n, self.p = len(run.contestant_ids), len(run.prompt_ids)
        contestants = np.asarray(run.contestant_ids)
        prompt_ids = np.asarray(run.prompt_ids)
        # list() first: numpy would turn a database error raised while it iterates a
        # queryset into a TypeError, and the task would not retry it.
        slots = np.asarray(
            list(
                MatchSlot.objects.filter(match__run=run)
                .values_list("match_id", "position", "contestant_id")
                .order_by()
            ),
            dtype=np.int64,
        ).reshape(-1, 3)
        rows = list(
            Judgment.objects.filter(match__run=run, judge_id__in=juror_ids(run))
            .values_list(
                "match__round",
                "match_id",
                "match__prompt_id",
                "presentation",
                "status",
                "winner",
                "repeat",
                "score",
                "probabilities__score",
                *(("probabilities",) if soft else ()),
            )
            .order_by()
        )
        self.rounds = np.zeros(0, np.int64)
        self.keys = np.zeros(0, np.int64)
        self.scores = np.zeros(0)
        if not rows:
            return
        rounds, match_ids, prompt_of, presentation, status, winner, *rest = zip(*rows, strict=True)
        repeat, rating, trust, *probabilities = rest
        match_ids = np.asarray(match_ids, np.int64)
        slot_of = {}
        for position in (0, 1):
            at = slots[slots[:, 1] == position]
            order = np.argsort(at[:, 0])
            slot_of[position] = (at[order, 0], at[order, 2])
        s0 = _lookup(*slot_of[0], match_ids)
        s1 = _lookup(*slot_of[1], match_ids)
        first_slot = (~vocabulary.slot_zero_first_array(presentation)).astype(int)
        first = np.where(first_slot == 0, s0, s1)
        second = np.where(first_slot == 0, s1, s0)
        order = np.argsort(contestants)
        first_i = order[np.searchsorted(contestants, first, sorter=order)]
        second_i = order[np.searchsorted(contestants, second, sorter=order)]
        prompt_i = np.searchsorted(prompt_ids, np.asarray(prompt_of, np.int64))
        if np.any(contestants[first_i] != first) or np.any(contestants[second_i] != second):
            raise ReplayError("a stored match has a contestant that is not in the run")
        if np.any(prompt_i >= self.p) or np.any(
            prompt_ids[prompt_i.clip(max=self.p - 1)] != prompt_of
        ):
            raise ReplayError("a stored match has a prompt that is not in the run")
        slot_won = np.fromiter(
            (SLOT_WON.get(w, -1) for w in winner), np.int64, len(rows)
        )  # -1: a tie, both bad, or no verdict
        ok = np.fromiter((s == Judgment.Status.OK for s in status), bool, len(rows))
        score = np.where(slot_won == -1, 0.5, (slot_won == first_slot).astype(float))
        if probabilities:  # the judge's probability of the first-shown answer, where stored
            soft = soft_scores(probabilities[0], first_slot)
            score = np.where(np.isnan(soft), score, soft)
        if run.judge.mode in POINTWISE_MODES:  # the graded answer against the other one's
            ok, score = _graded_scores(match_ids, presentation, status, repeat, rating, trust)
        self.rounds = np.asarray(rounds, np.int64)
        self.keys = self._key(self.rounds, prompt_i, first_i, second_i)
        self.scores = np.where(ok, score, np.nan)
        sort = np.argsort(self.keys, kind="stable")
        self.keys, self.scores, self.rounds = self.keys[sort], self.scores[sort], self.rounds[sort]

    def _key(self, round_index, p, a, b) -> np.ndarray:
        return ((np.asarray(round_index, np.int64) * self.p + p) * self.n + a) * self.n + b

    def last_round(self) -> int | None:
        """The last round with a stored judgment, None without any."""
        return int(self.rounds.max()) if self.rounds.size else None

    def round_results(
        self, round_index: int, calls: list[Call], repeats: int
    ) -> tuple[bool, list[Verdict]]:
        """(every call judged ``repeats`` times?, the verdicts: mean score over OK repeats)."""
        batch = np.asarray(calls, np.int64).reshape(-1, 3)
        keys = self._key(round_index, batch[:, 0], batch[:, 1], batch[:, 2])
        lo = np.searchsorted(self.keys, keys, "left")
        hi = np.searchsorted(self.keys, keys, "right")
        stored_in_round = int(np.count_nonzero(self.rounds == round_index))
        if int((hi - lo).sum()) != stored_in_round:
            raise ReplayError(
                f"round {round_index}: stored judgments that the design's replay does not ask for "
                "(the run's contestants, prompts, seed or code changed)"
            )
        if np.any(hi - lo < repeats):
            return False, []
        valid = ~np.isnan(self.scores)
        csum = np.concatenate([[0.0], np.cumsum(np.where(valid, self.scores, 0.0))])
        ccount = np.concatenate([[0], np.cumsum(valid)])
        total, count = csum[hi] - csum[lo], ccount[hi] - ccount[lo]
        keep = count > 0
        mean = total[keep] / count[keep]
        verdicts = [
            Verdict(int(p), int(a), int(b), float(s))
            for (p, a, b), s in zip(batch[keep].tolist(), mean.tolist(), strict=True)
        ]
        return True, verdicts


def _graded_scores(match_ids, presentation, status, repeat, rating, trust):
    """For a single-score (or pointwise rubric) judge's judgments: whether each can be compared, and the design's
    score of the answer it graded (the one shown first) against the other answer of its
    match (same repeat): 1 higher, ½ equal, 0 lower. The distribution-sensitive score
    (``probabilities["score"]``, TrustJudge) when the judgment has one, else the rating as
    written."""
    value = {}
    keys = []
    for match_id, shown, r, st, rated, expected in zip(
        match_ids.tolist(), presentation, repeat, status, rating, trust, strict=True
    ):
        slot = 0 if vocabulary.slot_zero_first(shown) else 1
        keys.append((match_id, r, slot))
        if st == Judgment.Status.OK and rated is not None:
            value[match_id, r, slot] = float(expected if expected is not None else rated)
    mine = np.array([value.get(k, np.nan) for k in keys])
    other = np.array([value.get((m, r, 1 - s), np.nan) for m, r, s in keys])
    ok = ~np.isnan(mine) & ~np.isnan(other)
    return ok, np.where(mine > other, 1.0, np.where(mine < other, 0.0, 0.5))


def soft_scores(probabilities, first_slot: np.ndarray) -> np.ndarray:
    """The first-shown answer's score from each judgment's verdict probabilities
    (``Judgment.probabilities["winner"]``, in slot terms): ``P(first) + ½ P(tie)`` over the
    three's sum; NaN where a judgment has none."""
    slots = (vocabulary.A, vocabulary.B, vocabulary.TIE)
    p = np.array(
        [
            [float(w.get(k) or 0.0) for k in slots]
            if isinstance(found, dict) and isinstance(w := found.get("winner"), dict)
            else [np.nan] * 3
            for found in probabilities
        ],
        dtype=np.float64,
    ).reshape(-1, 3)
    total = p.sum(axis=1)
    first = np.where(np.asarray(first_slot) == 0, p[:, 0], p[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (first + 0.5 * p[:, 2]) / total, np.nan)


def _lookup(sorted_ids: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    at = np.searchsorted(sorted_ids, wanted).clip(max=max(len(sorted_ids) - 1, 0))
    if len(sorted_ids) == 0 or np.any(sorted_ids[at] != wanted):
        raise ReplayError("a judged match has no slots")
    return values[at]


def replay(run: EvaluationRun) -> RunState:
    """Rebuild the run's plan from its stored verdicts (see the module docstring)."""
    if not run.contestant_ids or not run.prompt_ids:
        raise ReplayError("the run was never started (no frozen contestants and prompts)")
    design = build_design(run)
    rng = np.random.default_rng(run.seed)
    plan = design.start(
        len(run.contestant_ids), len(run.prompt_ids), rng, shows_both_orders(run.judge)
    )
    if run.perturbation == "swap":
        plan = SwappedPlan(plan)
    # K-wise designs hand out group calls and learn from rankings (judges.runs.kwise)
    if isinstance(plan, GroupPlan):
        stored = StoredRankings(run)
    else:
        stored = StoredVerdicts(run, soft=getattr(design, "scoring", "") == "probability")
    round_index = 0
    while True:
        calls = plan.next_batch()
        if not calls:
            last = stored.last_round()
            if last is not None and last >= round_index:
                raise ReplayError(f"stored judgments in round {last} after the plan ended")
            return RunState(plan, round_index, [], True)
        complete, verdicts = stored.round_results(round_index, calls, run.repeats * panel_size(run))
        if not complete:
            return RunState(plan, round_index, calls, False)
        plan.observe(verdicts)
        round_index += 1
