"""Test data and requests in the domain's words, shared by the test modules.

Plain functions over the real models, the real importer and the real client (no factory
library): a test says what it needs (``pair_results([("alpha", "beta", 30, 10, 4)])``)
and gets it the way the app makes it.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model

from arena.importers.records import JudgmentRecord
from arena.vocabulary import TIE, A, B


def pair_results(results, voter: str = "crowd") -> list[JudgmentRecord]:
    """Aggregated human votes as importer records: one weighted record per (pair, outcome).

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


def staff_user(username: str = "staff"):
    """A staff member (the audit and run pages)."""
    return get_user_model().objects.create(username=username, is_staff=True)


def post_json(client, url: str, body, **headers):
    """POST ``body`` as JSON, the API's content type."""
    return client.post(url, json.dumps(body), content_type="application/json", **headers)
