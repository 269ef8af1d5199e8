"""Exported voters: the arena's own people (browser sessions, logged-in users) go out under
keyed pseudonyms, never their cookie token or user id, and flagged ones stay flagged; an
import may not give its voters the labels of the arena's own people."""

import json

import pytest
from django.core.management import call_command

from arena.importers.loader import import_file
from arena.models import Judgment, Voter
from arena.trust.service import set_flags
from tests.e2e.seed import seed
from tests.integration.test_votes import _battle, _vote_url, _voter

pytestmark = pytest.mark.django_db(transaction=True)
SLUG = "e2e-arena"


@pytest.fixture(autouse=True)
def arena():
    seed()


def _vote(browser, winner: str, key: str) -> None:
    battle = _battle(browser)
    response = browser.post(_vote_url(battle), {"winner": winner, "idempotency_key": key})
    assert response.status_code == 200, response.content


def _export(path) -> list[dict]:
    call_command("arena_export", "--format", "jsonl", "--prompt-set", SLUG, "-o", str(path))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_arenas_own_voters_go_out_under_pseudonyms_and_flagged_ones_stay_flagged(tmp_path):
    anonymous, user = _voter("anonymous"), _voter("user")
    _vote(anonymous, "a", "export-voters-1")
    _vote(anonymous, "b", "export-voters-2")
    _vote(user, "tie", "export-voters-3")
    session = Voter.objects.get(kind=Voter.Kind.SESSION)
    logged_in = Voter.objects.get(kind=Voter.Kind.USER)
    set_flags([session.id], True, "one-sided")

    first = _export(tmp_path / "first.jsonl")
    text = (tmp_path / "first.jsonl").read_text()
    assert session.label not in text and logged_in.label not in text  # no token, no user id
    voters = [  # (the seed's own votes are of imported voters, seed-voter-N: kept by name)
        row["voter"]
        for row in first
        if row["type"] == "judgment" and not row.get("voter", "seed-").startswith("seed-")
    ]
    assert len(voters) == 3 and len(set(voters)) == 2
    assert all(label.startswith("voter:") for label in voters)
    flagged = [row for row in first if row["type"] == "voter"]
    assert len(flagged) == 1 and flagged[0]["flagged"] and flagged[0]["reason"] == "one-sided"
    assert voters.count(flagged[0]["label"]) == 2  # the session's two votes
    # the same pseudonyms in every export of this arena: a second export imports as the first
    assert _export(tmp_path / "second.jsonl") == first

    report = import_file("jsonl", tmp_path / "first.jsonl", prompt_set="copy")
    assert report.ok, report.error_lines()
    copied = Voter.objects.filter(judgments__match__prompt_set__slug="copy").distinct()
    assert {(v.kind, v.flagged) for v in copied} == {("imported", True), ("imported", False)}
    # the arena's own voters are as they were, with their own votes only
    assert Judgment.objects.filter(voter=logged_in).count() == 1
    assert Judgment.objects.filter(voter=session).count() == 2


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ({"type": "voter", "label": "user:1", "flagged": True}, "label", "has the form"),
        ({"type": "voter", "label": "annotator:7"}, "label", "has the form"),
        ({"type": "judgment", "match": "m1", "contestants": ["x", "y"], "winner": "a",
          "voter": "user:12"}, "voter", "has the form"),
        ({"type": "voter", "label": "SESSION"}, "label", "a voter of this arena's own"),
        ({"type": "judgment", "match": "m1", "contestants": ["x", "y"], "winner": "a",
          "voter": "SESSION"}, "voter", "a voter of this arena's own"),
    ],
)  # fmt: skip
def test_an_import_may_not_give_its_voters_the_labels_of_the_arenas_own_people(
    tmp_path, line, field, message
):
    _vote(_voter("anonymous"), "a", "own-label-1")
    session = Voter.objects.get(kind=Voter.Kind.SESSION)
    for key, value in line.items():
        if value == "SESSION":  # a session's label: its cookie's token
            line[key] = session.label
    path = tmp_path / "own.jsonl"
    path.write_text(json.dumps(line) + "\n")
    before = (Voter.objects.count(), Judgment.objects.count())
    report = import_file("jsonl", path, prompt_set="copy")
    [error] = report.errors
    assert (error["line"], error["field"]) == (1, field) and message in error["message"]
    assert (Voter.objects.count(), Judgment.objects.count()) == before
    assert not session.judgments.exclude(idempotency_key="own-label-1").exists()
