"""One LLM judge call and one generated answer: the work of a judge task.

A call is idempotent on ``Judgment``'s unique key (match, judge, presentation, repeat): a
call whose judgment exists is skipped, and a judgment is written once even when two
workers race (the loser's insert hits the key). It never pays twice: before calling, an
OK judgment by the same judge version on identical content is looked up by
``content_key`` (sha256 of the judge's version hash, the rendered messages, which hold the
prompt, the presented answers and their order, and the repeat index:
:func:`judges.clients.judge.request_key`) and copied at no cost.

Every call ends as a stored judgment: ``ok``; ``parse_failed`` with the raw text and the
parser's reason; or ``failed`` with the error (retries exhausted, a permanent error, a
missing answer). The run's counters move with ``F()`` in the same transaction, and the
run page hears about it (throttled). An OK verdict asks for a refit of the run's board
through the board throttle (:func:`arena.services.request_refit`): a judge task never fits.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from arena import services, vocabulary
from arena.boards import BoardScope, count_judgment
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
)
from judges import perturbations
from judges.clients.config import JudgeConfig
from judges.clients.judge import build_messages, parse_reply, reply_probabilities, request_key
from judges.events import broadcast_progress
from judges.verdicts import ParseFailure, SlotVerdict, to_slots
from llm.config import ModelConfig
from llm.errors import LLMPermanentError, LLMRetriesExhausted
from llm.openai_compat import complete_sync
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


@dataclass(frozen=True)
class CallOutcome:
    """What a judge call stored: ``ok``, ``parse_failed``, ``failed``, ``cached`` or why it did nothing."""

    status: str
    judgment_id: int | None = None


def judge_call(
    match_id: int, presentation: str, repeat: int, *, final_attempt: bool = True
) -> CallOutcome:
    """Judge one presentation of one match once, and store the judgment (see the module docstring).

    Raises
    ------
    LLMTransientError
        Only when ``final_attempt`` is False and the client's retries were exhausted: the
        task retries later. On the final attempt the call is stored as failed instead.
    """
    match = (
        Match.objects.select_related("run__judge", "run__prompt_set", "prompt")
        .filter(pk=match_id)
        .first()
    )
    if match is None or match.run is None:
        return CallOutcome("gone")
    run = match.run
    if run.status != RUNNING:
        return CallOutcome("cancelled")
    judge = run.judge
    slots = list(
        MatchSlot.objects.filter(match_id=match_id)
        .select_related("output", "contestant")
        .order_by("position")
    )
    own = Q(match_id=match_id, judge_id=judge.id, presentation=presentation, repeat=repeat)
    unanswered = [s for s in slots if s.output_id is None]
    if unanswered:
        if Judgment.objects.filter(own).exists():
            return CallOutcome("exists")
        return _store(run, match, slots, presentation, repeat, _no_answer(match, unanswered))
    config = judge_config(judge)
    reference = match.prompt.reference_answer or None
    if reference and config.judge_template.user_with_reference is None:
        reference = None
    answers = [s.output.text for s in slots]
    prompt_text = match.prompt.text
    if run.perturbation:
        prompt_text, answers = perturb(run, match, slots, prompt_text, answers)
    order = vocabulary.parse_presentation(presentation)
    order, messages = build_messages(config, prompt_text, answers, order, reference)
    key = request_key(config, messages, repeat)
    if (
        match.round
        and Judgment.objects.filter(
            match__run_id=run.id, match__round__lt=match.round, content_key=key
        ).exists()
    ):
        # The design asks this very call again (adaptive designs re-ask a pair's prompts
        # once they have used them all): a fresh sample, not a copy of the earlier verdict,
        # which the fit would count twice.
        key = request_key(config, messages, f"{repeat}@round{match.round}")
    # One query: this call's own judgment (stored before a redelivery), else the oldest OK
    # judgment of identical content by the same judge version.
    found = (
        Judgment.objects.filter(own | Q(content_key=key, status=Judgment.Status.OK))
        .annotate(mine=Case(When(own, then=Value(1)), default=Value(0)))
        .order_by("-mine", "id")
        .first()
    )
    if found is not None and found.mine:
        return CallOutcome("exists", found.id)
    if found is not None:
        return _store(run, match, slots, presentation, repeat, _copy(found), cached=True)
    try:
        reply = complete_sync(config, messages, policy=retry_policy(config))
    except LLMRetriesExhausted as exc:
        if not final_attempt:
            raise exc.last_error from None
        return _store(run, match, slots, presentation, repeat, _failure(f"{exc.message}"), key)
    except LLMPermanentError as exc:
        return _store(run, match, slots, presentation, repeat, _failure(exc.message), key)
    return _store(run, match, slots, presentation, repeat, _from_reply(config, reply, order), key)


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


def _from_reply(config: JudgeConfig, reply, order: tuple[int, ...]) -> dict:
    verdict = parse_reply(config.mode, reply.text)
    fields = {
        "raw_text": reply.text,
        "latency_ms": round(reply.latency_ms),
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "cost": Decimal(str(round(reply.cost, 6))),
        "probabilities": _probabilities(reply_probabilities(config.mode, reply), order),
    }
    if isinstance(verdict, ParseFailure):
        reason = verdict.reason
        if reply.finish_reason == "length":
            reason += " (the reply was cut off at max_tokens)"
        return {**fields, "status": Judgment.Status.PARSE_FAILED, "error": reason}
    slot: SlotVerdict = to_slots(verdict, order)
    return {
        **fields,
        "status": Judgment.Status.OK,
        "winner": vocabulary.winner_of_slot(slot.winner),
        "strength": 2 if slot.strength == 2 else 1,
        "verdict_label": slot.label,
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


def _copy(cached: Judgment) -> dict:
    """An identical earlier call's verdict, reused: not paid again (cost 0)."""
    return {
        "status": Judgment.Status.OK,
        "winner": cached.winner,
        "strength": cached.strength,
        "verdict_label": cached.verdict_label,
        "raw_text": cached.raw_text,
        "probabilities": cached.probabilities,
        "latency_ms": 0,
        "prompt_tokens": cached.prompt_tokens,
        "completion_tokens": cached.completion_tokens,
        "cost": Decimal(0),
        "content_key": cached.content_key,
    }


def _store(
    run, match, slots, presentation, repeat, values: dict, key: str = "", cached: bool = False
) -> CallOutcome:
    """Write the judgment once (unique key), bump counts and the run's counters, announce."""
    values = {"content_key": key, **values}
    outcome = _with_write_retries(
        lambda: _write(run, match, slots, presentation, repeat, values, cached)
    )
    if outcome.judgment_id is not None and outcome.status != "exists":
        _announce(run, board_changed=values["status"] == Judgment.Status.OK)
    return outcome


def _with_write_retries(write, attempts: int = 12):
    """Run a short write transaction, retrying a locked database (SQLite) in-process.

    The judge's reply is only in memory here: failing the task would pay for the call
    again, so a busy database is waited for (``0.05 · 2^n`` s, capped at 2 s, jittered).
    """
    for attempt in range(attempts):
        try:
            return write()
        except OperationalError:
            if connection.in_atomic_block or attempt == attempts - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")


def _write(run, match, slots, presentation, repeat, values: dict, cached: bool) -> CallOutcome:
    status = values["status"]
    cost = values.get("cost") or Decimal(0)
    try:
        with transaction.atomic():
            judgment = Judgment.objects.create(
                match=match,
                judge_id=run.judge_id,
                kind=Judgment.Kind.PAIRWISE,
                presentation=presentation,
                repeat=repeat,
                voted_at=timezone.now(),
                **values,
            )
            if status == Judgment.Status.OK:
                count_judgment(judgment, match, slots[0].contestant_id, slots[1].contestant_id)
            EvaluationRun.objects.filter(pk=run.pk).update(
                calls_made=F("calls_made") + 1,
                calls_failed=F("calls_failed") + int(status != Judgment.Status.OK),
                calls_cached=F("calls_cached") + int(cached),
                cost=F("cost") + cost,
            )
    except IntegrityError:
        # Another worker stored this call first (the unique key); anything else is a bug.
        if Judgment.objects.filter(
            match=match, judge_id=run.judge_id, presentation=presentation, repeat=repeat
        ).exists():
            return CallOutcome("exists")
        raise
    return CallOutcome("cached" if cached else status, judgment.id)


def _announce(run: EvaluationRun, board_changed: bool) -> None:
    """Progress to the run page at most once a second; after an OK verdict, a refit of the
    run's provisional board through the board throttle, asked at most every
    ARENA_RUN_REFIT_SECONDS (the throttle's own interval limits the fits further)."""
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


def record_internal_failure(
    match_id: int, presentation: str, repeat: int, error: str
) -> CallOutcome:
    """A judge task that crashed on something else than the judge: store the call as failed."""
    match = Match.objects.select_related("run").filter(pk=match_id).first()
    if match is None or match.run is None:
        return CallOutcome("gone")
    slots = list(match.slots.order_by("position"))
    return _store(
        match.run, match, slots, presentation, repeat, _failure(f"internal error: {error}")
    )


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
    if Output.objects.filter(
        prompt=prompt, contestant=contestant, generation_config=label
    ).exists():
        return "exists"
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
