"""An LLM drafts a rubric per prompt (issue 15): the ``draft_rubrics`` command and
``POST /api/runs/rubrics/draft`` both call :func:`draft_rubrics`.

The drafting model is a judge row's endpoint (its base URL, model and key variable), called
through :mod:`llm` like every judge call (shared endpoint limits, retries): one request per
prompt, sent at once (:func:`llm.openai_compat.complete_each_sync`). A reply is read by
:func:`parse_draft` (the last JSON object with ``criteria`` in it, checked by
:func:`arena.rubrics.parse_criteria`); each good draft is stored as the prompt's own
``Rubric`` (source ``drafted by <judge>``), which staff edit in the admin. A prompt that
already has its own rubric keeps it unless ``overwrite``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.db import transaction

from arena.errors import BAD_REQUEST, NOT_FOUND, Refusal
from arena.models import Judge, Prompt, PromptSet, Rubric
from arena.rubrics import parse_criteria
from judges.judging import judge_config, retry_policy
from judges.prompts import rubric_draft_messages
from llm.errors import LLMError
from llm.openai_compat import complete_each_sync

MAX_PROMPTS = 200  # prompts one request may draft (the API answers when all are back)


@dataclass
class DraftOutcome:
    """What a drafting pass did: prompt ids drafted, kept (had one), failed (id -> why)."""

    drafted: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    cost: float = 0.0

    def as_dict(self) -> dict:
        return {
            "drafted": self.drafted,
            "kept": self.kept,
            "failed": {str(k): v for k, v in self.failed.items()},
            "cost": round(self.cost, 6),
        }


def parse_draft(text: str) -> tuple:
    """The criteria of a drafted rubric: the last JSON object of the reply that has a
    ``criteria`` list (a bare list of criteria is taken too). ValueError says why not."""
    decoder = json.JSONDecoder()
    found = None
    for start in (i for i, ch in enumerate(text or "") if ch in "{["):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("criteria"), list):
            found = value["criteria"]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            found = value if found is None else found
    if found is None:
        raise ValueError("the reply holds no JSON rubric with criteria")
    return parse_criteria(found)


def draft_rubrics(
    prompt_set: str,
    judge_id: int,
    prompt_ids: list[int] | None = None,
    *,
    overwrite: bool = False,
) -> DraftOutcome:
    """Draft the rubric of each public prompt of the set (or of ``prompt_ids``, which must
    be the set's) with the judge's model; refuses (nothing written) a missing set, judge or
    prompt, a judge without an endpoint, or more than :data:`MAX_PROMPTS` prompts."""
    found_set = PromptSet.objects.filter(slug=prompt_set).first()
    if found_set is None:
        raise Refusal(f"no prompt set {prompt_set!r}", field="prompt_set", status=NOT_FOUND)
    judge = Judge.objects.filter(pk=judge_id).first()
    if judge is None:
        raise Refusal(f"no judge {judge_id}", field="judge_id", status=NOT_FOUND)
    if not judge.base_url or not judge.model:
        raise Refusal("this judge has no endpoint to draft with", field="judge_id")
    prompts = Prompt.objects.filter(
        prompt_set=found_set, visibility=Prompt.Visibility.PUBLIC
    ).order_by("id")
    if prompt_ids is not None:
        prompts = list(prompts.filter(pk__in=set(prompt_ids)))
        missing = set(prompt_ids) - {p.id for p in prompts}
        if missing:
            raise Refusal(
                f"prompt {min(missing)} is not a public prompt of {prompt_set!r}",
                field="prompt_ids",
                status=NOT_FOUND,
            )
    else:
        prompts = list(prompts[: MAX_PROMPTS + 1])
    if len(prompts) > MAX_PROMPTS:
        raise Refusal(
            f"at most {MAX_PROMPTS} prompts a request; give prompt_ids",
            field="prompt_ids",
            status=BAD_REQUEST,
        )
    outcome = DraftOutcome()
    own = set(Rubric.objects.filter(prompt__in=prompts).values_list("prompt_id", flat=True))
    todo = [p for p in prompts if overwrite or p.id not in own]
    outcome.kept = sorted(p.id for p in prompts if p not in todo)
    if not todo:
        return outcome
    config = judge_config(judge)
    drafts = {}
    requests = [rubric_draft_messages(p.text) for p in todo]
    for chunk in complete_each_sync(config, requests, policy=retry_policy(config)):
        for index, reply in chunk:
            prompt = todo[index]
            if isinstance(reply, LLMError):
                outcome.failed[prompt.id] = reply.message[:500]
                continue
            outcome.cost += reply.cost or 0.0
            try:
                drafts[prompt.id] = [_as_json(c) for c in parse_draft(reply.text)]
            except ValueError as exc:
                outcome.failed[prompt.id] = str(exc)[:500]
    source = f"drafted by {judge}"[:300]
    with transaction.atomic():
        for prompt_id, criteria in sorted(drafts.items()):
            Rubric.objects.update_or_create(
                prompt_id=prompt_id, defaults={"criteria": criteria, "source": source}
            )
    outcome.drafted = sorted(drafts)
    return outcome


def _as_json(criterion) -> dict:
    weight = int(criterion.weight) if criterion.weight.is_integer() else criterion.weight
    return {
        "name": criterion.name,
        "weight": weight,
        "description": criterion.description,
        "levels": list(criterion.levels),
    }
