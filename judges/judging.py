"""LLM judge calls, many at once, and generated answers: the work of the judge tasks.

One path for every judge call: :func:`judge_batch` takes the calls of a batch task
(``(match id, presentation, repeat)`` each; a single call is a batch of one). A jury run's
calls name their juror too, ``(match id, presentation, repeat, judge id)``: each juror's
call is an ordinary judge call of that judge, stored, cached and paid like any other.

A call is idempotent on ``Judgment``'s unique key (match, judge, presentation, repeat): a
call whose judgment exists is skipped, and a judgment is written once even when two
workers race (the loser's insert is left out). It never pays twice: before calling, an
OK judgment by the same judge version on identical content is looked up by
``content_key`` (sha256 of the judge's version hash, the rendered messages, which hold the
prompt, the presented answers and their order, and the repeat index:
:func:`judges.clients.judge.request_key`) and copied at no cost; a reply paid for by an
earlier attempt that died before storing it is taken from the cache's stash (below).

Every call ends as a stored judgment: ``ok``; ``parse_failed`` with the raw text and the
parser's reason; or ``failed`` with the error (retries exhausted, a permanent error, a
missing answer). Replies are stored in chunks as they arrive, one transaction each: the
judgments in one insert, the running counts aggregated per cell, the run's counters moved
once with ``F()``; the run page hears about it (throttled). An OK verdict asks for a refit
of the run's board through the board throttle (:func:`arena.services.request_refit`): a
judge task never fits.

Paid but not stored: between a reply's arrival and its chunk's commit, the reply is kept
in the cache (Redis when ``REDIS_URL`` is set) under its content key. A worker killed in
that moment, or a write that fails for good (the task is retried), leaves it there; the
batch's next attempt stores it instead of calling again. Only the calls still in flight
at a kill are paid twice. The stash is insurance, best effort: with the cache down a reply
is stored all the same (uninsured meanwhile); a stash that cannot be read before the calls
raises the outage (nothing paid), and the task tries the batch again later.

Paid twice at once: a batch that outlives the broker's visibility timeout is handed to a
second worker while the first still runs it. Each attempt claims its calls by content key
(:mod:`llm.claims`) before it reads what was paid and sends; the claims on calls in flight
are renewed, and each is released once its reply is stored. Calls another attempt holds
are waited for and read as stored, or made here once their holder's claims expired (it
died): never lost, and paid twice only when a holder died with them in flight.

A single-score judge (``single``, ``single_100``: TrustJudge's pointwise runs) grades one
answer per call: a pair's match is asked in both presentations, and each call shows the
judge only the answer shown first, so it grades that slot. Its messages hold only that
answer, so every pair with the same answer to the same prompt has the same content key
and the answer is paid for once. The judgment is a ``score`` judgment: ``score`` the
rating as written, ``probabilities["score"]`` TrustJudge's distribution-sensitive score
(:func:`judges.audit_metrics.trustjudge.distribution_score`) when the endpoint returned
logprobs. A pairwise reply with token logprobs but no verdict probabilities keeps the
reply's ``perplexity`` (TrustJudge's fallback for ties). A jury sits no single-score
judge (:func:`judges.runs.jury.check_juror`). A pointwise rubric judge (``rubric_single``)
runs the same way: each call grades the answer shown first on every criterion of the
prompt's rubric; ``criteria`` holds its level per criterion and ``score`` the rubric's
weighted total of the normalised levels (:func:`arena.rubrics.grade_totals`, in [0, 1]).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from arena import rubrics, services, vocabulary
from arena.boards import BoardScope, count_judgments
from arena.errors import SERVICE_DOWN
from arena.generation import answer_messages, contestant_config, generation_label
from arena.models import (
    Contestant,
    EvaluationRun,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    Output,
    Prompt,
    Rubric,
)
from judges import perturbations, prompts
from judges.audit_metrics.trustjudge import distribution_score, perplexity
from judges.clients.config import JudgeConfig
from judges.clients.judge import build_messages, parse_reply, reply_probabilities, request_key
from judges.events import broadcast_progress
from judges.listwise import LABELS, first_ranking, first_token_probabilities
from judges.verdicts import ParseFailure, RubricScores, Score, SlotRubricVerdict, to_slots
from llm.claims import claims, holding
from llm.config import ModelConfig
from llm.errors import LLMError, LLMPermanentError, LLMRetriesExhausted, LLMTransientError
from llm.openai_compat import complete_each_sync, complete_sync
from llm.retry import RetryPolicy

log = logging.getLogger(__name__)

RUNNING = EvaluationRun.Status.RUNNING


def judge_config(judge: Judge) -> JudgeConfig:
    """The client configuration of a judge row (the API key stays in the environment)."""
    return JudgeConfig.from_object(judge)


def retry_policy(config: ModelConfig) -> RetryPolicy:
    """In-call retries: the judge's (or contestant's) ``max_retries``, backoff from ARENA_JUDGE_RETRY_BASE_DELAY."""
    return RetryPolicy(
        max_retries=config.max_retries, base_delay=settings.ARENA_JUDGE_RETRY_BASE_DELAY
    )


def run_scope(run: EvaluationRun) -> BoardScope:
    """The leaderboard of one run's verdicts."""
    return BoardScope(run.prompt_set.slug, f"run:{run.id}")


Item = tuple  # (match id, presentation, repeat[, judge id of a jury run's juror]): one call


def item_judge(item, run) -> int:
    """The judge of a call: its juror on a jury run, else the run's judge."""
    return int(item[3]) if len(item) > 3 else run.judge_id


@dataclass(frozen=True)
class CallOutcome:
    """What a judge call stored: ``ok``, ``parse_failed``, ``failed``, ``cached`` or why it did nothing."""

    status: str
    judgment_id: int | None = None


@dataclass
class BatchOutcome:
    """What a batch of judge calls did.

    Attributes
    ----------
    outcomes : dict
        Item -> :class:`CallOutcome`, for every item handled.
    retry : list of Item
        Items whose in-call retries were exhausted on a non-final attempt: nothing stored,
        the task tries them again later.
    last_error : LLMTransientError or None
        The error of the last of those.
    """

    outcomes: dict = field(default_factory=dict)
    retry: list = field(default_factory=list)
    last_error: LLMTransientError | None = None

    def summary(self) -> str:
        """``ok`` when every item ended alike, else counts: ``ok×12, cached×3``."""
        counts = Counter(o.status for o in self.outcomes.values())
        if self.retry:
            counts["retry"] += len(self.retry)
        if len(counts) == 1:
            return next(iter(counts))
        return ", ".join(f"{status}×{n}" for status, n in sorted(counts.items()))


@dataclass
class _Call:
    """One item on its way: its match and slots, then what it will store."""

    item: Item
    match: Match
    slots: list
    messages: list | None = None
    order: tuple[int, ...] = ()
    key: str = ""
    criteria: tuple = ()  # the prompt's rubric (rubric judges): arena.rubrics.Criterion
    problem: str = ""  # why the call cannot be made (a rubric judge on a prompt without one)


def judge_batch(items, *, final_attempt: bool = True) -> BatchOutcome:
    """Judge many calls at once and store each as it finishes (see the module docstring).

    A batch reads its matches, slots, stored judgments and reusable verdicts in a few
    queries, sends every call that needs the judge at once (:func:`llm.openai_compat.
    complete_each_sync`: the endpoint's shared limits decide how many are in flight), and
    stores the replies in chunks as they come, one transaction each. A reply is put in the
    cache (:func:`_stash`) before its chunk is written and taken out after, so a batch
    handed out again after its worker died, or whose write failed, stores what was paid
    instead of paying again.
    """
    items = list(dict.fromkeys(tuple(i) for i in items))
    outcome = BatchOutcome()
    matches = {
        m.id: m
        for m in Match.objects.select_related("run__judge", "run__prompt_set", "prompt").filter(
            pk__in={i[0] for i in items}
        )
    }
    by_judge: dict[tuple[int, int], list[Item]] = {}
    for item in items:
        match = matches.get(item[0])
        if match is None or match.run is None:
            outcome.outcomes[item] = CallOutcome("gone")
        elif match.run.status != RUNNING:
            outcome.outcomes[item] = CallOutcome("cancelled")
        else:
            by_judge.setdefault((match.run_id, item_judge(item, match.run)), []).append(item)
    jurors = _jurors({run_id for run_id, _ in by_judge}, matches)
    for (run_id, judge_id), judge_items in by_judge.items():
        run = matches[judge_items[0][0]].run
        judge = run.judge if judge_id == run.judge_id else jurors.get((run_id, judge_id))
        if judge is None:  # not a juror of this run: nothing to call
            outcome.outcomes.update((item, CallOutcome("gone")) for item in judge_items)
            continue
        _judge_run_batch(run, judge, judge_items, matches, final_attempt, outcome)
    return outcome


def _jurors(run_ids, matches) -> dict[tuple[int, int], Judge]:
    """(run id, judge id) -> Judge of the jury runs among ``run_ids`` (one query)."""
    jury_runs = {m.run_id for m in matches.values() if m.run is not None and m.run.jury}
    through = EvaluationRun.jurors.through.objects.filter(
        evaluationrun_id__in=set(run_ids) & jury_runs
    ).select_related("judge")
    return {(row.evaluationrun_id, row.judge_id): row.judge for row in through}


def _judge_run_batch(
    run, judge, items, matches, final_attempt: bool, outcome: BatchOutcome
) -> None:
    """Judge one judge's calls of a batch. Calls another attempt holds (:mod:`llm.claims`:
    the same batch delivered twice) are waited for, then read as that attempt stored them,
    or made here if its claims expired (it died)."""
    owner, pause = uuid.uuid4().hex, CLAIM_POLL_SECONDS
    while items := _judge_unclaimed(run, judge, items, matches, final_attempt, outcome, owner):
        if pause == CLAIM_POLL_SECONDS:
            log.info("%d calls of run %s are being made by another attempt", len(items), run.pk)
        time.sleep(pause * (0.5 + random.random() / 2))
        pause = min(2 * pause, CLAIM_POLL_MAX_SECONDS)


def _stored(match_ids, judge) -> dict[tuple, int]:
    """(match id, presentation, repeat) -> judgment id of the judge's stored calls."""
    return {
        (m, p, r): pk
        for m, p, r, pk in Judgment.objects.filter(
            match_id__in=match_ids, judge_id=judge.id
        ).values_list("match_id", "presentation", "repeat", "id")
    }


def _judge_unclaimed(
    run, judge, items, matches, final_attempt: bool, outcome: BatchOutcome, owner: str
) -> list:
    """Judge the calls no other attempt holds; the items it holds, to wait for."""
    match_ids = {i[0] for i in items}
    slots: dict[int, list] = {}
    for slot in (
        MatchSlot.objects.filter(match_id__in=match_ids)
        .select_related("output", "contestant")
        .order_by("match_id", "position")
    ):
        slots.setdefault(slot.match_id, []).append(slot)
    stored = _stored(match_ids, judge)
    calls, ready = [], []  # to build, and (call, values, cached) to store
    for item in items:
        if item[:3] in stored:
            outcome.outcomes[item] = CallOutcome("exists", stored[item[:3]])
            continue
        call = _Call(item, matches[item[0]], slots.get(item[0], []))
        unanswered = [s for s in call.slots if s.output_id is None]
        if unanswered or len(call.slots) != call.match.k:
            ready.append((call, _no_answer(call.match, unanswered), False))
        else:
            calls.append(call)
    config = judge_config(judge)
    _build_requests(run, config, calls)
    ready.extend((c, _failure(c.problem), False) for c in calls if c.problem)
    calls = [c for c in calls if not c.problem]
    # Claim before reading what was paid: a holder lets go only once it has stored.
    mine = claims().take({c.key for c in calls}, owner, settings.ARENA_JUDGE_CLAIM_SECONDS)
    held_elsewhere = [c.item for c in calls if c.key not in mine]
    calls = [c for c in calls if c.key in mine]
    try:
        if calls:  # a holder may have stored and let go of some since the first read
            stored = _stored({c.item[0] for c in calls}, judge)
            for call in [c for c in calls if c.item[:3] in stored]:
                outcome.outcomes[call.item] = CallOutcome("exists", stored[call.item[:3]])
            calls = [c for c in calls if c.item[:3] not in stored]
        _judge_claimed(run, config, calls, ready, final_attempt, outcome, owner)
    finally:  # what this attempt did not store is free for the next one at once
        _let_go(mine, owner)
    return held_elsewhere


def _judge_claimed(run, config, calls, ready, final_attempt: bool, outcome, owner: str) -> None:
    """Reuse, take from the stash or send the calls this attempt holds; store them all."""
    reusable = _reusable_verdicts([c.key for c in calls])
    stash = cache.get_many([_stash_key(c.key) for c in calls if c.key not in reusable])
    to_send: dict[str, list[_Call]] = {}
    for call in calls:
        if call.key in reusable:
            ready.append((call, _copy(reusable[call.key]), True))
        elif _stash_key(call.key) in stash:  # paid by an earlier attempt that did not store it
            ready.append((call, stash[_stash_key(call.key)], False))
        else:
            to_send.setdefault(call.key, []).append(call)
    if ready:
        _store_chunk(run, ready, outcome)
    if not to_send:
        return
    groups = list(to_send.values())
    requests = [group[0].messages for group in groups]
    replies = complete_each_sync(config, requests, policy=retry_policy(config))
    held, since = [], time.monotonic()
    in_flight, renewed = set(to_send), time.monotonic()
    for chunk in replies:
        rows = []
        for index, reply in chunk:
            group = groups[index]
            if isinstance(reply, LLMRetriesExhausted) and not final_attempt:
                outcome.retry.extend(c.item for c in group)
                outcome.last_error = reply.last_error
                continue
            if isinstance(reply, LLMError):
                values = _failure(reply.message)
            else:
                values = _from_reply(config, reply, group[0].order, group[0].criteria)
            rows.append((group[0], values, False))
            # the same content twice in one batch (identical answers): paid once
            rows.extend(
                (c, {**values, "cost": Decimal(0), "latency_ms": 0}, True) for c in group[1:]
            )
        if rows:  # paid: into the stash at once, into the database a second's worth at a time
            _stash({_stash_key(call.key): values for call, values, cached in rows if not cached})
            if not held:
                since = time.monotonic()
            held.extend(rows)
        if held and time.monotonic() - since >= STORE_EVERY_SECONDS:
            _store_held(run, held, outcome)
            _let_go({call.key for call, _, _ in held}, owner, in_flight)
            held = []
        if time.monotonic() - renewed >= settings.ARENA_JUDGE_CLAIM_SECONDS / 4:
            _renew(in_flight, owner)
            renewed = time.monotonic()
    if held:
        _store_held(run, held, outcome)


def _renew(keys: set, owner: str) -> None:
    """Keep this attempt's claims on the calls in flight. Best effort: a claim lost (Redis
    restarted, or this worker stalled past the claim's life) only lets a second attempt
    pay for the call too, never loses it."""
    try:
        claims().renew(keys, owner, settings.ARENA_JUDGE_CLAIM_SECONDS)
    except SERVICE_DOWN as exc:
        log.warning("claims on %d calls in flight not renewed (Redis down): %s", len(keys), exc)


def _let_go(keys: set, owner: str, in_flight: set | None = None) -> None:
    """Release this attempt's claims on ``keys`` (stored, or not to be made here after all).
    Best effort: an unreleased claim expires after ``ARENA_JUDGE_CLAIM_SECONDS``."""
    if in_flight is not None:
        keys = keys & in_flight
        in_flight.difference_update(keys)
    if not keys:
        return
    try:
        claims().release(keys, owner)
    except SERVICE_DOWN as exc:
        log.warning("claims on %d calls not released (Redis down): %s", len(keys), exc)


def _store_held(run, rows, outcome: BatchOutcome) -> None:
    """Store the replies held, then take them out of the stash."""
    _store_chunk(run, rows, outcome)
    try:
        cache.delete_many([_stash_key(call.key) for call, _, cached in rows if not cached])
    except SERVICE_DOWN as exc:  # stored: a stale stash entry is never read (the judgment exists)
        log.warning("paid replies stored, not taken out of the stash (cache down): %s", exc)


def _stash(values: dict) -> None:
    """Paid replies into the stash. Best effort: with the cache down they are stored all the
    same, only not insured against the worker dying before their chunk is written."""
    try:
        cache.set_many(values, timeout=STASH_SECONDS)
    except SERVICE_DOWN as exc:
        log.warning("%d paid replies not stashed (cache down): %s", len(values), exc)


def perturb(run, match: Match, slots, prompt: str, answers: list[str]):
    """The texts a perturbation run shows the judge (:mod:`judges.perturbations`).

    ``swap`` and ``repeat`` change no text (the order is swapped by the run's plan; a
    repeat run judges each comparison ``repeats`` times). The cues (padding, authority,
    model name, refinement) go to the answer that lost the baseline's verdict on the same
    comparison, to see whether the cue rescues it; after a tie or a failed baseline call,
    to the answer in slot 1 (B).
    """
    kind = run.perturbation
    if kind in ("swap", "repeat"):
        return prompt, answers
    target = _baseline_loser_slot(run, match, slots)
    params = {"model_name": {"name": FAMOUS_MODEL}, "padding": {"seed": match.prompt_id}}
    prompt, changed = perturbations.apply(kind, prompt, answers, target, **params.get(kind, {}))
    return prompt, list(changed)


FAMOUS_MODEL = "GPT-4"


def _baseline_loser_slot(run, match: Match, slots) -> int:
    """Slot (in ``match``) of the answer that scored less in the baseline's OK verdicts, else 1."""
    same = {"match__run_id": run.baseline_id, "match__external_id": match.external_id}
    baseline_slots = dict(MatchSlot.objects.filter(**same).values_list("position", "contestant_id"))
    winners = list(
        Judgment.objects.filter(
            **same, judge__name=run.judge.name, status=Judgment.Status.OK
        ).values_list("winner", flat=True)
    )
    first_points = sum({vocabulary.A: 1.0, vocabulary.B: 0.0}.get(w, 0.5) for w in winners)
    if not winners or len(baseline_slots) != 2 or 2 * first_points == len(winners):
        return 1
    loser = baseline_slots[1 if 2 * first_points > len(winners) else 0]
    return next((i for i, slot in enumerate(slots) if slot.contestant_id == loser), 1)


def _no_answer(match: Match, unanswered: list) -> dict:
    names = ", ".join(s.contestant.name for s in unanswered)
    reasons = "; ".join(
        cache.get(_generation_failure_key(match.prompt_id, s.contestant_id)) or "no reason recorded"
        for s in unanswered
    )
    return _failure(f"no answer from {names} to this prompt: {reasons}")


def _failure(reason: str) -> dict:
    return {"status": Judgment.Status.FAILED, "error": reason[:4000]}


def _from_reply(config: JudgeConfig, reply, order: tuple[int, ...], criteria=()) -> dict:
    verdict = parse_reply(config.mode, reply.text, len(order), criteria=criteria)
    found = reply_probabilities(config.mode, reply)
    single = config.mode in prompts.SINGLE_MODES
    pointwise = config.mode in prompts.POINTWISE_MODES
    fields = {
        "kind": Judgment.Kind.SCORE if pointwise else Judgment.Kind.PAIRWISE,
        "raw_text": reply.text,
        "latency_ms": round(reply.latency_ms),
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "cost": Decimal(str(round(reply.cost, 6))),
        "probabilities": _score_probabilities(found, config.mode)
        if single
        else _probabilities(found, order),
    }
    if config.mode == prompts.LISTWISE:
        return _ranking_values({**fields, "kind": Judgment.Kind.RANKING}, reply, verdict, order)
    if fields["probabilities"] is None and reply.logprobs:  # TrustJudge's fallback
        fields["probabilities"] = {"perplexity": perplexity([t.logprob for t in reply.logprobs])}
    if isinstance(verdict, ParseFailure):
        reason = verdict.reason
        if reply.finish_reason == "length":
            reason += " (the reply was cut off at max_tokens)"
        return {**fields, "status": Judgment.Status.PARSE_FAILED, "error": reason}
    if isinstance(verdict, Score):
        return {
            **fields,
            "status": Judgment.Status.OK,
            "score": verdict.value,
            "verdict_label": verdict.label,
        }
    if isinstance(verdict, RubricScores):
        return {**fields, "status": Judgment.Status.OK, **_rubric_grade(verdict, criteria)}
    slot = to_slots(verdict, order)
    if isinstance(slot, SlotRubricVerdict):
        return {**fields, "status": Judgment.Status.OK, **_rubric_total(slot, criteria)}
    return {
        **fields,
        "status": Judgment.Status.OK,
        "winner": vocabulary.winner_of_slot(slot.winner),
        "strength": 2 if slot.strength == 2 else 1,
        "verdict_label": slot.label,
    }


def _parse_failed(fields: dict, reply, failure: ParseFailure) -> dict:
    reason = failure.reason
    if reply.finish_reason == "length":
        reason += " (the reply was cut off at max_tokens)"
    return {**fields, "status": Judgment.Status.PARSE_FAILED, "error": reason}


def _ranking_values(fields: dict, reply, generated, order: tuple[int, ...]) -> dict:
    """A listwise reply's ranking (FIRST, :mod:`judges.listwise`): by the first ranking
    token's label probabilities when the reply has logprobs, else as generated; stored as
    the rank of each slot (1 = best). ``probabilities`` keeps the first token's
    probabilities per slot; ``verdict_label`` the generated ranking."""
    k = len(order)
    first = first_token_probabilities(reply.text, reply.logprobs, k)
    parsed = None if isinstance(generated, ParseFailure) else generated
    ranking = first_ranking(first, parsed, k)
    if ranking is None:
        return _parse_failed(fields, reply, generated)
    slot_of = {LABELS[p]: slot for p, slot in enumerate(order)}
    if first is not None:
        fields["probabilities"] = {
            "method": "first",
            "labels": first.by_label,
            "first": {str(slot_of[label]): p for label, p in first.by_label.items()},
            "coverage": first.coverage,
        }
    return {
        **fields,
        "status": Judgment.Status.OK,
        "ranking": [r + 1 for r in to_slots(ranking, order).ranks()],
        "verdict_label": parsed.label if parsed is not None else ranking.label,
    }


def _rubric_total(verdict: SlotRubricVerdict, criteria) -> dict:
    """A rubric judge's judgment: each criterion's verdict in slot terms, and the rubric's
    weighted total as the judgment's winner (:mod:`arena.rubrics`)."""
    names = [c.name for c in criteria]
    by_name = {n: vocabulary.winner_of_slot(v.winner) for n, v in verdict.criteria.items()}
    codes = rubrics.verdict_codes([by_name], names)
    total = float(rubrics.weighted_totals(codes, [c.weight for c in criteria])[0])
    return {
        "winner": rubrics.total_winner(by_name, criteria),
        "strength": 2 if abs(total) >= 1 - 1e-9 else 1,  # every criterion named the winner
        "verdict_label": f"weighted total {total:+.2f}",
        "criteria": by_name,
    }


def _rubric_grade(verdict: RubricScores, criteria) -> dict:
    """A pointwise rubric judge's grade of the answer shown first: its level per criterion,
    and the rubric's weighted total of the normalised levels (in [0, 1],
    :func:`arena.rubrics.grade_totals`) as the score."""
    total = float(rubrics.grade_totals([verdict.levels], criteria)[0])
    return {
        "score": round(total, 9),  # equal totals compare equal on the boards
        # the levels in the rubric's order (names would not fit the label's 100 characters)
        "verdict_label": f"levels {'/'.join(str(v) for v in verdict.levels.values())}, "
        f"total {total:.2f}",
        "criteria": dict(verdict.levels),
    }


def _probabilities(found, order: tuple[int, ...]) -> dict | None:
    """Logprob verdict probabilities; ``winner`` in slot terms (a = slot 0), labels as shown."""
    if found is None:
        return None
    slot_of = {
        "A": vocabulary.winner_of_slot(order[0]),
        "B": vocabulary.winner_of_slot(order[1]),
        "tie": vocabulary.TIE,
    }
    return {
        "labels": found.by_label,
        "winner": {slot_of.get(k, k): v for k, v in found.winner.items()},
        "coverage": found.coverage,
    }


def _score_probabilities(found, mode: str) -> dict | None:
    """A rating's label probabilities and its distribution-sensitive score."""
    if found is None:
        return None
    low, high = prompts.score_scale(mode)
    return {
        "labels": found.by_label,
        "score": distribution_score(found.by_label, low, high),
        "coverage": found.coverage,
    }


def _copy(cached: Judgment) -> dict:
    """An identical earlier call's verdict, reused: not paid again (cost 0)."""
    return {
        "status": Judgment.Status.OK,
        "kind": cached.kind,
        "score": cached.score,
        "winner": cached.winner,
        "strength": cached.strength,
        "verdict_label": cached.verdict_label,
        "ranking": cached.ranking,
        "raw_text": cached.raw_text,
        "probabilities": cached.probabilities,
        "criteria": cached.criteria,
        "latency_ms": 0,
        "prompt_tokens": cached.prompt_tokens,
        "completion_tokens": cached.completion_tokens,
        "cost": Decimal(0),
        "content_key": cached.content_key,
    }


def _build_requests(run, config: JudgeConfig, calls: list[_Call]) -> None:
    """Each call's messages, presentation order and content key (in place)."""
    template = config.judge_template
    rubric_of = (
        Rubric.objects.for_prompts({c.match.prompt for c in calls})
        if config.mode in prompts.RUBRIC_MODES
        else None
    )
    for call in calls:
        match, slots = call.match, call.slots
        if rubric_of is not None:
            call.criteria, call.problem = _criteria_of(rubric_of.get(match.prompt_id))
            if call.problem:
                continue
        reference = match.prompt.reference_answer or None
        if reference and template.user_with_reference is None:
            reference = None
        answers = [s.output.text for s in slots]
        prompt_text = match.prompt.text
        if run.perturbation:
            prompt_text, answers = perturb(run, match, slots, prompt_text, answers)
        order = vocabulary.parse_presentation(call.item[1])
        if config.mode in prompts.POINTWISE_MODES:  # grade the answer shown first, alone
            _, call.messages = build_messages(
                config, prompt_text, [answers[order[0]]], None, reference, call.criteria
            )
            call.order = order
        else:
            call.order, call.messages = build_messages(
                config, prompt_text, answers, order, reference, call.criteria
            )
        call.key = request_key(config, call.messages, call.item[2])
    later = [c for c in calls if c.match.round and not c.problem]
    if not later:
        return
    if config.mode in prompts.POINTWISE_MODES:
        _fresh_grades_for_asked_pairs(run, config, later)
        return
    # The design asks a call of an earlier round again (adaptive designs re-ask a pair's
    # prompts once they have used them all): a fresh sample, not a copy of the earlier
    # verdict, which the fit would count twice.
    earlier = {}
    for key, round_index in Judgment.objects.filter(
        match__run_id=run.id, content_key__in={c.key for c in later}
    ).values_list("content_key", "match__round"):
        earlier[key] = min(round_index, earlier.get(key, round_index))
    for call in later:
        if earlier.get(call.key, call.match.round) < call.match.round:
            call.key = request_key(config, call.messages, f"{call.item[2]}@round{call.match.round}")


def _fresh_grades_for_asked_pairs(run, config: JudgeConfig, later: list[_Call]) -> None:
    """A single-score judge's grade is of one answer, so a copy serves every pair the
    answer is in, in any round; only a comparison (prompt and pair: the match's external
    id without its round) that an earlier round asked already gets fresh grades, which
    the replay and the fit would otherwise count twice."""
    first_round: dict[str, int] = {}
    for external, round_index in Match.objects.filter(
        run_id=run.id, round__lt=max(c.match.round for c in later)
    ).values_list("external_id", "round"):
        comparison = external.split(":", 1)[-1]
        first_round[comparison] = min(round_index, first_round.get(comparison, round_index))
    for call in later:
        comparison = call.match.external_id.split(":", 1)[-1]
        if first_round.get(comparison, call.match.round) < call.match.round:
            call.key = request_key(config, call.messages, f"{call.item[2]}@round{call.match.round}")


def _criteria_of(rubric: Rubric | None) -> tuple[tuple, str]:
    """(the rubric's criteria, "") or ((), why a rubric judge cannot judge this prompt)."""
    if rubric is None:
        return (), "a rubric judge needs a rubric: neither the prompt nor its set has one"
    try:
        return rubric.parsed(), ""
    except ValueError as exc:
        return (), f"the prompt's rubric is not valid: {exc}"


def _reusable_verdicts(keys) -> dict[str, Judgment]:
    """The oldest OK judgment of each content key (same judge version, same messages)."""
    found: dict[str, Judgment] = {}
    if keys:
        for judgment in Judgment.objects.filter(
            content_key__in=set(keys), status=Judgment.Status.OK
        ).order_by("-id"):
            found[judgment.content_key] = judgment
    return found


STASH_SECONDS = 7 * 86400
# Replies are stashed as they arrive, and stored together once the first has waited this
# long (one transaction): a batch task writes about once a second, whatever its calls' pace.
STORE_EVERY_SECONDS = 1.0


# A second attempt at calls another attempt holds polls for them every 0.2 s, up to every 2 s.
CLAIM_POLL_SECONDS, CLAIM_POLL_MAX_SECONDS = 0.2, 2.0


def _stash_key(content_key: str) -> str:
    return f"judges:paid:{content_key}"


def _judgment(run, call: _Call, values: dict, now) -> Judgment:
    match_id, presentation, repeat = call.item[:3]
    return Judgment(
        match=call.match,
        judge_id=item_judge(call.item, run),
        kind=values.get("kind") or _kind_of(run.judge),
        presentation=presentation,
        repeat=repeat,
        voted_at=now,
        **{"content_key": call.key, **{k: v for k, v in values.items() if k != "kind"}},
    )


def _kind_of(judge: Judge) -> str:
    """The kind of judgment a judge's calls store (a failed call's too)."""
    if judge.mode == prompts.LISTWISE:
        return Judgment.Kind.RANKING
    pointwise = judge.mode in prompts.POINTWISE_MODES
    return Judgment.Kind.SCORE if pointwise else Judgment.Kind.PAIRWISE


def _store_chunk(run, rows, outcome: BatchOutcome) -> None:
    """Write one judge's finished calls ``(call, values, cached)`` in one transaction, note
    their outcomes, and tell the run page (throttled)."""
    written = _with_write_retries(lambda: _write_chunk(run, rows))
    fresh_ok = False
    for (call, values, cached), judgment_id in zip(rows, written, strict=True):
        if judgment_id is None:  # another worker stored it first (the unique key)
            outcome.outcomes[call.item] = CallOutcome("exists")
            continue
        outcome.outcomes[call.item] = CallOutcome(
            "cached" if cached else values["status"], judgment_id
        )
        fresh_ok = fresh_ok or values["status"] == Judgment.Status.OK
    if any(w is not None for w in written):
        _announce(run, board_changed=fresh_ok)


def with_write_retries(write, attempts: int = 12):
    """Run a short write transaction, retrying a locked database (SQLite) or a lost
    connection (PostgreSQL restarted) in-process.

    The judge's replies are only in memory (and the stash) here: failing the task would
    pay for the calls again, so a busy database is waited for (``0.05 · 2^n`` s, capped at
    2 s, jittered).
    """
    for attempt in range(attempts):
        try:
            return write()
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block or attempt == attempts - 1:
                raise
            connection.close_if_unusable_or_obsolete()
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


_with_write_retries = with_write_retries  # the judge path's (tests replace it)


def _write_chunk(run, rows) -> list[int | None]:
    """Insert the judgments not stored yet (in key order: concurrent writers of the same
    keys wait for each other instead of deadlocking), add the OK ones to the running
    counts, and move the run's counters once; the new judgments' ids, None where stored."""
    order = sorted(range(len(rows)), key=lambda i: rows[i][0].item)
    judge_id = item_judge(rows[0][0].item, run)  # one judge's calls (a jury run: one juror's)
    now = timezone.now()
    with transaction.atomic():
        stored = set(
            Judgment.objects.filter(
                match_id__in={rows[i][0].item[0] for i in order}, judge_id=judge_id
            ).values_list("match_id", "presentation", "repeat")
        )
        fresh = [i for i in order if rows[i][0].item[:3] not in stored]
        made = {i: _judgment(run, rows[i][0], rows[i][1], now) for i in fresh}
        try:
            with transaction.atomic():
                Judgment.objects.bulk_create(list(made.values()))
        except IntegrityError:
            # A duplicate of this batch stored some of them since the read: one at a time.
            made = {}
            for i in fresh:
                judgment = _judgment(run, rows[i][0], rows[i][1], now)
                try:
                    with transaction.atomic():
                        judgment.save(force_insert=True)
                except IntegrityError:
                    continue
                made[i] = judgment
        ok = Judgment.Status.OK
        count_judgments(
            (
                j,
                rows[i][0].match,
                rows[i][0].slots[0].contestant_id,
                rows[i][0].slots[1].contestant_id,
            )
            for i, j in made.items()
            if j.status == ok and j.kind == Judgment.Kind.PAIRWISE  # rankings: read per row
        )
        if made:
            EvaluationRun.objects.filter(pk=run.pk).update(
                calls_made=F("calls_made") + len(made),
                calls_failed=F("calls_failed") + sum(j.status != ok for j in made.values()),
                calls_cached=F("calls_cached") + sum(rows[i][2] for i in made),
                cost=F("cost") + sum((j.cost or Decimal(0) for j in made.values()), Decimal(0)),
            )
    return [made[i].pk if i in made else None for i in range(len(rows))]


def _announce(run: EvaluationRun, board_changed: bool) -> None:
    """Progress to the run page at most once a second; after an OK verdict, a refit of the
    run's provisional board through the board throttle, asked at most every
    ARENA_RUN_REFIT_SECONDS (the throttle's own interval limits the fits further). Both
    are best effort: with Redis down (the cache) the verdicts are stored all the same."""
    try:
        _announce_through_cache(run, board_changed)
    except SERVICE_DOWN as exc:
        log.warning("run %s: progress not announced, the cache is down: %s", run.id, exc)


def _announce_through_cache(run: EvaluationRun, board_changed: bool) -> None:
    if cache.add(f"judges:run-progress:{run.id}", 1, timeout=1):
        fresh = EvaluationRun.objects.filter(pk=run.pk).first()
        if fresh is not None:
            broadcast_progress(fresh)
    if board_changed and cache.add(
        f"judges:run-refit:{run.id}", 1, timeout=settings.ARENA_RUN_REFIT_SECONDS
    ):
        try:
            services.request_refit([run_scope(run).key])
        except Exception:  # a provisional board must never fail a judge call
            log.exception("provisional leaderboard of run %s not requested", run.id)


def record_internal_failure(items, error: str) -> BatchOutcome:
    """Judge tasks that crashed on something else than the judge: store their calls as failed."""
    outcome = BatchOutcome()
    items = list(dict.fromkeys(tuple(i) for i in items))
    matches = Match.objects.select_related("run").filter(pk__in={i[0] for i in items})
    matches = {m.id: m for m in matches.prefetch_related("slots")}
    by_judge: dict[tuple[int, int], list] = {}
    for item in items:
        match = matches.get(item[0])
        if match is None or match.run is None:
            outcome.outcomes[item] = CallOutcome("gone")
            continue
        slots = sorted(match.slots.all(), key=lambda s: s.position)
        by_judge.setdefault((match.run_id, item_judge(item, match.run)), []).append(
            (_Call(item, match, slots), _failure(f"internal error: {error}"), False)
        )
    for rows in by_judge.values():
        _store_chunk(rows[0][0].match.run, rows, outcome)
    return outcome


# --- answers -----------------------------------------------------------------------------------


def _generation_failure_key(prompt_id: int, contestant_id: int) -> str:
    return f"judges:generation-failed:{prompt_id}:{contestant_id}"


def generate_output(
    prompt_id: int, contestant_id: int, run_id: int | None = None, *, final_attempt: bool = True
) -> str:
    """Make sure the contestant's answer to the prompt exists (idempotent on Output's unique key).

    The answer goes through the contestant's endpoint with the same client as the judges.
    A failure is logged and remembered for a day (the judge calls that needed the answer
    are stored as failed with the reason); ``run_id`` is charged the generation's cost.
    The answer is claimed (:mod:`llm.claims`) while it is generated: a task handed out
    again meanwhile waits for it instead of paying for it again.

    Raises
    ------
    LLMTransientError
        When ``final_attempt`` is False and the client's retries were exhausted.
    """
    prompt = Prompt.objects.filter(pk=prompt_id).first()
    contestant = Contestant.objects.filter(pk=contestant_id).first()
    if prompt is None or contestant is None:
        return "gone"
    if run_id is not None and not EvaluationRun.objects.filter(pk=run_id, status=RUNNING).exists():
        return "cancelled"
    label = generation_label(contestant)
    answered = Output.objects.filter(prompt=prompt, contestant=contestant, generation_config=label)
    if answered.exists():
        return "exists"
    # Claimed like a judge call: a task handed out twice waits for the other's answer.
    key, owner, pause = f"answer:{prompt.pk}:{contestant.pk}:{label}", uuid.uuid4().hex, 0.0
    while not claims().take({key}, owner, settings.ARENA_JUDGE_CLAIM_SECONDS):
        pause = min(2 * pause or CLAIM_POLL_SECONDS, CLAIM_POLL_MAX_SECONDS)
        time.sleep(pause * (0.5 + random.random() / 2))
        if answered.exists():
            return "exists"
    with holding({key}, owner, settings.ARENA_JUDGE_CLAIM_SECONDS):
        if answered.exists():  # stored by the holder that let go just now
            return "exists"
        return _generate_answer(prompt, contestant, label, run_id, final_attempt)


def _generate_answer(prompt, contestant, label: str, run_id, final_attempt: bool) -> str:
    try:
        config = contestant_config(contestant)
        reply = complete_sync(config, answer_messages(prompt.text), policy=retry_policy(config))
    except LLMRetriesExhausted as exc:
        if not final_attempt:
            raise exc.last_error from None
        return _generation_failed(prompt, contestant, exc.message)
    except (LLMPermanentError, ValueError) as exc:
        return _generation_failed(prompt, contestant, str(exc))
    if not reply.text.strip():
        return _generation_failed(prompt, contestant, "the endpoint returned an empty answer")
    with transaction.atomic():
        _, created = Output.objects.get_or_create(
            prompt=prompt,
            contestant=contestant,
            generation_config=label,
            defaults={
                "text": reply.text,
                "meta": {
                    "model": reply.model,
                    "finish_reason": reply.finish_reason,
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "latency_ms": round(reply.latency_ms),
                    "cost": reply.cost,
                },
            },
        )
        if created and run_id is not None and reply.cost:
            EvaluationRun.objects.filter(pk=run_id).update(
                cost=F("cost") + Decimal(str(round(reply.cost, 6)))
            )
    return "generated" if created else "exists"


def _generation_failed(prompt: Prompt, contestant: Contestant, reason: str) -> str:
    log.warning("no answer from %s to prompt %s: %s", contestant.name, prompt.pk, reason)
    cache.set(_generation_failure_key(prompt.pk, contestant.pk), reason[:1000], timeout=86400)
    return "failed"
