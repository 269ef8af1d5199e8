"""A run's matches for annotation campaigns, in the domain's words (tests of issue 20)."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model

from arena.models import (
    Contestant,
    EvaluationRun,
    Judge,
    Match,
    MatchSlot,
    Output,
    Prompt,
    PromptSet,
)

# Names nobody could mistake for page text: the annotator page must never show them.
MODELS = ["secret-model-alpha", "secret-model-bravo", "secret-model-charlie", "secret-model-delta"]


def run_with_matches(n_items: int, n_gold: int = 0, k: int = 2, n_kwise: int = 0):
    """A run over ``MODELS`` with ``n_items`` pairwise matches (the first ``n_gold`` with a
    gold winner: "a" for even ones, "b" for odd ones) and ``n_kwise`` ``k``-way matches,
    every answer written."""
    prompt_set, _ = PromptSet.objects.get_or_create(slug="camp", defaults={"name": "camp"})
    judge, _ = Judge.objects.get_or_create(
        name="camp-judge", defaults={"base_url": "http://127.0.0.1:9/v1", "model": "j"}
    )
    contestants = [Contestant.objects.get_or_create(name=name)[0] for name in MODELS]
    # A run named after a model, as staff may: the annotators must never see it.
    run = EvaluationRun.objects.create(
        name=f"{MODELS[0]} vs the rest", prompt_set=prompt_set, judge=judge
    )
    run.contestants.set(contestants)
    shapes = [(2, i) for i in range(n_items)] + [(k, n_items + i) for i in range(n_kwise)]
    matches = []
    for size, i in shapes:
        prompt = Prompt.objects.create(
            prompt_set=prompt_set, external_id=f"r{run.pk}-q{i}", text=f"Question **{i}**?"
        )
        gold = ("a", "b")[i % 2] if i < n_gold else ""
        match = Match.objects.create(
            prompt_set=prompt_set,
            prompt=prompt,
            origin=Match.Origin.RUN,
            run=run,
            k=size,
            gold_winner=gold,
        )
        for position, contestant in enumerate(contestants[:size]):
            output = Output.objects.create(
                prompt=prompt, contestant=contestant, text=f"Answer {i} by writer {position}."
            )
            MatchSlot.objects.create(
                match=match, position=position, contestant=contestant, output=output
            )
        matches.append(match)
    return run, matches


def annotators(n: int, prefix: str = "annotator"):
    User = get_user_model()
    return [User.objects.create(username=f"{prefix}{i}") for i in range(n)]


def wait_for(predicate, timeout: float = 20.0, what: str = "the workers"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
