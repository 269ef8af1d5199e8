"""One judgment end to end: render the template, call the judge, parse, map to slots.

This is what a judge task calls; it stays pure (no Django) so the task only maps rows to
arguments and the :class:`JudgeResult` back to a Judgment row. A reply that does not parse
is a result with a :class:`~judges.verdicts.ParseFailure` verdict and the raw text, never
an exception: the caller stores it as a failure with its reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from judges import prompts, verdicts
from llm.openai_compat import ChatReply, complete, complete_with_retry, run_sync

from .config import JudgeConfig


@dataclass(frozen=True)
class JudgeResult:
    """A judge's reply to one match in one presentation order.

    Attributes
    ----------
    order : tuple of int
        Presentation order (slot shown at each position).
    messages : list of dict
        What was sent.
    reply : ChatReply
        Raw text, tokens, cost, latency, attempts.
    verdict
        Parsed, in presentation terms: Verdict, Ranking, Score or ParseFailure.
    slots
        The same in match-slot terms (:func:`judges.verdicts.to_slots`).
    probabilities : VerdictProbabilities or None
        From the verdict token's logprobs, when the endpoint gave them.
    """

    order: tuple[int, ...]
    messages: list[dict]
    reply: ChatReply
    verdict: object
    slots: object
    probabilities: verdicts.VerdictProbabilities | None

    @property
    def parsed(self) -> bool:
        return not isinstance(self.verdict, verdicts.ParseFailure)


def parse_reply(mode: str, text: str, k: int = 2, criteria: Sequence = ()):
    """Parse a reply with the parser of the judge's mode (``k`` answers for listwise, the
    rubric's ``criteria`` (:class:`arena.rubrics.Criterion`) for the rubric modes)."""
    if mode == prompts.PAIRWISE:
        return verdicts.parse_pairwise(text)
    if mode == prompts.PAIRWISE_MTBENCH:
        return verdicts.parse_mtbench(text)
    if mode == prompts.LISTWISE:
        return verdicts.parse_ranking(text, k)
    if mode in prompts.SINGLE_MODES:
        return verdicts.parse_score(text, *prompts.score_scale(mode))
    if mode == prompts.RUBRIC:
        return verdicts.parse_rubric_pairwise(text, [c.name for c in criteria])
    if mode == prompts.RUBRIC_SINGLE:
        return verdicts.parse_rubric_scores(text, {c.name: len(c.levels) for c in criteria})
    raise ValueError(f"unknown judge mode {mode!r}")


def reply_probabilities(mode: str, reply: ChatReply) -> verdicts.VerdictProbabilities | None:
    """Verdict probabilities from the reply's logprobs (None for rankings or no logprobs)."""
    if not reply.logprobs:
        return None
    if mode == prompts.PAIRWISE:
        labels, winners = verdicts.ARENA_HARD_CHOICES, verdicts.ARENA_HARD_LABELS
    elif mode == prompts.PAIRWISE_MTBENCH:
        labels, winners = tuple(verdicts.MT_BENCH_LABELS), verdicts.MT_BENCH_LABELS
    elif mode in prompts.SINGLE_MODES:
        low, high = prompts.score_scale(mode)
        labels, winners = tuple(str(s) for s in range(low, high + 1)), None
    else:
        return None
    return verdicts.verdict_probabilities(reply.text, reply.logprobs, labels, winners)


def request_key(config: JudgeConfig, messages: Sequence[dict], repeat: int | str = 0) -> str:
    """sha256 of judge version + messages + repeat index: the same key means the same call.

    Messages already contain the prompt, the outputs and their order, so a stored result
    under this key can be reused instead of paying for the call again. ``repeat`` names
    the sample: an int repeat index, or a label for a call asked again on purpose.
    """
    blob = json.dumps(
        [config.version_hash(), [[m.get("role"), m.get("content")] for m in messages], repeat],
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def build_messages(
    config: JudgeConfig,
    prompt: str,
    answers: Sequence[str],
    order: Sequence[int] | None = None,
    reference: str | None = None,
    criteria: Sequence = (),
) -> tuple[tuple[int, ...], list[dict]]:
    """(order, messages) for one match with the config's template (and the prompt's rubric
    criteria, :class:`arena.rubrics.Criterion`, for the rubric modes)."""
    order = tuple(range(len(answers))) if order is None else tuple(int(i) for i in order)
    rubric = prompts.rubric_block(criteria) if criteria else None
    return order, prompts.render(config.judge_template, prompt, answers, order, reference, rubric)


def _result(config, order, messages, reply, k) -> JudgeResult:
    verdict = parse_reply(config.mode, reply.text, k)
    return JudgeResult(
        order=order,
        messages=messages,
        reply=reply,
        verdict=verdict,
        slots=verdicts.to_slots(verdict, order),
        probabilities=reply_probabilities(config.mode, reply),
    )


async def judge(
    config: JudgeConfig,
    prompt: str,
    answers: Sequence[str],
    order: Sequence[int] | None = None,
    reference: str | None = None,
    *,
    retry: bool = True,
    **retry_options,
) -> JudgeResult:
    """Judge ``answers`` (in slot order) shown in ``order``; see :class:`JudgeResult`.

    Raises
    ------
    LLMPermanentError, LLMTransientError (``retry=False``), LLMRetriesExhausted
        When no reply came back at all.
    """
    order, messages = build_messages(config, prompt, answers, order, reference)
    if retry:
        reply = await complete_with_retry(config, messages, **retry_options)
    else:
        reply = await complete(config, messages)
    return _result(config, order, messages, reply, len(answers))


def judge_sync(
    config: JudgeConfig,
    prompt: str,
    answers: Sequence[str],
    order: Sequence[int] | None = None,
    reference: str | None = None,
    **options,
) -> JudgeResult:
    """Blocking :func:`judge` (for Celery tasks)."""
    return run_sync(lambda: judge(config, prompt, answers, order, reference, **options))
