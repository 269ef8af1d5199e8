"""Demo wiring for LLM judging: the fake server's candidates and judges as rows (idempotent).

``ensure_demo_judging(base_url)`` creates, or brings up to date, against a running fake
server (``python manage.py fake_llm_server --scenario demo``):

- one contestant per simulated candidate of the ``demo`` scenario, answering through the
  server (``base_url``, ``api_model``);
- the ``demo`` prompt set: 60 PandaLM test-set instructions (Apache-2.0);
- three judges: ``judge-sharp`` (good), ``judge-first`` (position-biased, prefers its own
  family) and ``judge-verbose`` (length- and cue-biased);
- one schedule template: an adaptive run of every candidate with the good judge, nightly.

:func:`start_demo_runs` then starts, once, an all-pairs run of every candidate judged by
``judge-sharp`` and a perturbation audit of ``judge-verbose``. Their tasks run in the
server's worker (``arena_serve`` hands running runs out again at start-up).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.db import transaction

from arena.models import Contestant, EvaluationRun, Judge, Prompt, PromptSet
from judges.clients.scenarios import demo as demo_scenario
from judges.runs.create import create_run, launch_perturbation_audit, start_run
from judges.schedules import schedule_run

PANDALM = (
    Path(settings.BASE_DIR) / "arena" / "fixtures" / "datasets" / "pandalm" / "testset-v1.json"
)
DEMO_SET = "demo"
N_PROMPTS = 60
JUDGES = {
    "judge-sharp": "A discriminating judge with little noise and no bias.",
    "judge-first": "Prefers the answer shown first (P = 0.7 at equal quality) and its own family.",
    "judge-verbose": "Rewards length and authority / refinement cues.",
}
SCHEDULE_NAME = "Nightly: every demo model, adaptive, judge-sharp"
SCHEDULE_CRON = "0 3 * * *"


@transaction.atomic
def ensure_demo_judging(base_url: str) -> dict:
    """Create or update the demo's judging objects; returns what exists (names and ids)."""
    scenario = demo_scenario()
    judge_names = set(JUDGES)
    candidates = [m for m in scenario.models if m.name not in judge_names]
    contestants = [
        Contestant.objects.update_or_create(
            name=m.name,
            defaults={
                "family": m.family,
                "provider": "fake-llm-server",
                "base_url": base_url,
                "api_model": m.name,
                "api_key_env": "",
                "generation_params": {"temperature": 0.0, "max_tokens": 1024},
            },
        )[0]
        for m in candidates
    ]
    prompt_set = _demo_prompts()
    judges = [_judge(m, base_url) for m in scenario.models if m.name in judge_names]
    template = _schedule(prompt_set, judges[0] if judges else None, contestants)
    return {
        "prompt_set": prompt_set.slug,
        "contestants": [c.name for c in contestants],
        "judges": {j.name: j.id for j in judges},
        "schedule": template.id if template else None,
    }


def _demo_prompts() -> PromptSet:
    prompt_set, _ = PromptSet.objects.update_or_create(
        slug=DEMO_SET,
        defaults={
            "name": "Demo evaluation prompts (60 PandaLM instructions)",
            "source": "WeOpenML/PandaLM @ 3871806, data/testset-v1.json",
            "license": "Apache-2.0",
        },
    )
    seen, rows = set(), []
    for item in json.loads(PANDALM.read_text()):
        text = item["instruction"].strip()
        if item.get("input"):
            text += "\n\n" + item["input"].strip()
        if text in seen:
            continue
        seen.add(text)
        rows.append(
            Prompt(
                prompt_set=prompt_set,
                external_id=f"pandalm-{item['idx']}",
                text=text,
                category=item.get("motivation_app", ""),
                language="en",
            )
        )
        if len(rows) == N_PROMPTS:
            break
    Prompt.objects.bulk_create(rows, ignore_conflicts=True)
    return prompt_set


def _judge(model, base_url: str) -> Judge:
    judge = Judge(
        name=model.name,
        description=JUDGES[model.name],
        family=model.family,
        base_url=base_url,
        model=model.name,
        temperature=0.0,
        both_orders=True,
        logprobs=True,
        requests_per_minute=0,
        tokens_per_minute=0,
        # Simulated prices (USD per 1k tokens), so that runs show what they would cost.
        price_per_1k_prompt=0.0025,
        price_per_1k_completion=0.01,
    )
    existing = Judge.objects.filter(name=judge.name, version=judge.compute_version()).first()
    if existing is not None:
        return existing
    judge.save()
    return judge


def _schedule(prompt_set, judge, contestants) -> EvaluationRun | None:
    if judge is None:
        return None
    template = EvaluationRun.objects.filter(name=SCHEDULE_NAME, template__isnull=True).first()
    if template is None:
        template = EvaluationRun.objects.create(
            name=SCHEDULE_NAME,
            prompt_set=prompt_set,
            judge=judge,
            design=EvaluationRun.Design.ADAPTIVE,
            design_params={"fraction": 0.2},
            max_prompts=30,
            tag="scheduled",
        )
    template.contestants.set(contestants)
    if template.cron != SCHEDULE_CRON:
        schedule_run(template, SCHEDULE_CRON)
    return template


FIRST_RUN = "Demo: every candidate, all pairs on 10 prompts, judge-sharp"
AUDITED_JUDGE = "judge-verbose"
AUDIT_CONTESTANTS = 6
AUDIT_PERTURBATIONS = ("padding", "authority", "refinement", "model_name", "repeat")


def start_demo_runs() -> list[EvaluationRun]:
    """The demo's first evaluation run and perturbation audit, unless they exist already."""
    started = []
    candidates = [m.name for m in demo_scenario().models if m.name not in JUDGES]
    if not EvaluationRun.objects.filter(name=FIRST_RUN).exists():
        run = create_run(
            prompt_set=DEMO_SET,
            judge="judge-sharp",
            contestants=candidates,
            max_prompts=10,
            name=FIRST_RUN,
        )
        started.append(start_run(run))
    if not EvaluationRun.objects.filter(perturbation__gt="", judge__name=AUDITED_JUDGE).exists():
        started += launch_perturbation_audit(
            prompt_set=DEMO_SET,
            judge=AUDITED_JUDGE,
            contestants=candidates[:AUDIT_CONTESTANTS],
            perturbations=AUDIT_PERTURBATIONS,
            repeats=3,
            max_prompts=10,
        )
    return started
