"""Test data in the domain's words: prompt sets, contestants, judges, votes and requests.

Plain functions over the real models and the real importer (no factory library): a test
says what world it needs (``crowd_votes([("alpha", "beta", 30, 10, 4)])``) and gets rows
stored the way the app stores them.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import Contestant, Judge, PromptSet
from arena.vocabulary import TIE, A, B


def prompt_set(slug: str = "set", **fields) -> PromptSet:
    return PromptSet.objects.get_or_create(slug=slug, defaults={"name": slug, **fields})[0]


def contestants(*names: str, **fields) -> list[Contestant]:
    return [Contestant.objects.get_or_create(name=n, defaults=fields)[0] for n in names]


def judge(name: str = "judge", **fields) -> Judge:
    """An LLM judge configuration (no endpoint unless ``base_url``/``model`` are given)."""
    return Judge.objects.create(name=name, **fields)


def pair_results(results, voter: str = "crowd") -> list[JudgmentRecord]:
    """Aggregated human votes as records: one weighted record per (pair, outcome).

    ``results`` holds ``(a, b, a_wins, b_wins, ties)`` tuples; zero counts are left out.
    """
    records = []
    for a, b, a_wins, b_wins, ties in results:
        for winner, weight in ((A, a_wins), (B, b_wins), (TIE, ties)):
            if weight:
                records.append(
                    JudgmentRecord(
                        match_id=f"{a}-{b}-{winner}",
                        contestants=(a, b),
                        winner=winner,
                        weight=weight,
                        voter=voter,
                    )
                )
    return records


def crowd_votes(results, prompt_set: str = "set", voter: str = "crowd"):
    """Store :func:`pair_results` in ``prompt_set`` through the importer (counts included)."""
    return import_records(pair_results(results, voter), prompt_set=prompt_set, source="test")


def staff_user(username: str = "staff"):
    return get_user_model().objects.create(username=username, is_staff=True)


def post_json(client, url: str, body, **headers):
    """POST ``body`` as JSON (the API's content type)."""
    return client.post(url, json.dumps(body), content_type="application/json", **headers)
