"""Multi-aspect human ballots (issue 15 part 3): optional per-aspect verdicts sent with a
vote, stored on its judgment, a board per aspect; a bad aspect is refused and writes nothing."""

import pytest

from arena.boards import BoardScope, scope_counts
from arena.models import BoardState, Judgment, Voter
from arena.services import refit
from tests.e2e.seed import seed
from tests.integration.test_votes import _battle, _state, _vote_url, _voter

pytestmark = pytest.mark.django_db(transaction=True)
SLUG = "e2e-arena"


@pytest.fixture(autouse=True)
def arena():
    seed()


def test_aspect_ballots_are_stored_with_the_vote_and_each_aspect_has_a_board():
    voter = _voter("anonymous")
    battle = _battle(voter)
    response = voter.post(
        _vote_url(battle),
        {
            "winner": "a",
            "aspects": {"correctness": "a", "style": "b"},
            "idempotency_key": "aspects-0001",
        },
    )
    assert response.status_code == 200, response.content
    judgment = Judgment.objects.get(idempotency_key="aspects-0001")
    assert judgment.criteria == {"correctness": "a", "style": "b"}
    # the aspects' boards are asked for, the unanswered aspect's is not
    requested = set(BoardState.objects.values_list("scope", flat=True))
    assert BoardScope(SLUG, "humans", criterion="correctness").key in requested
    assert BoardScope(SLUG, "humans", criterion="style").key in requested
    assert BoardScope(SLUG, "humans", criterion="helpfulness").key not in requested

    # a second voter says the opposite on style only
    other = _voter("user")
    battle = _battle(other)
    response = other.post(
        _vote_url(battle),
        {"winner": "tie", "aspects": {"style": "a"}, "idempotency_key": "aspects-0002"},
    )
    assert response.status_code == 200, response.content

    correctness = scope_counts(BoardScope.validated(SLUG, "humans", criterion="correctness"))
    style = scope_counts(BoardScope.validated(SLUG, "humans", criterion="style"))
    assert correctness.votes.sum() == 1 and style.votes.sum() == 2
    snapshot = refit(BoardScope(SLUG, "humans", criterion="style").key, final=True)
    assert snapshot is not None and snapshot.n_votes == 2
    # a flagged voter's aspects leave the public aspect boards, as their votes leave the board
    Voter.objects.filter(judgments__idempotency_key="aspects-0002").update(counted_flagged=True)
    assert scope_counts(BoardScope(SLUG, "humans", criterion="style")).votes.sum() == 1
    assert scope_counts(BoardScope(SLUG, "humans", criterion="style"), raw=True).votes.sum() == 2


@pytest.mark.parametrize(
    "aspects,message",
    [
        ({"tone": "a"}, "unknown aspect"),
        ({"correctness": "slot0"}, "aspect correctness: expected one of"),
        (["correctness"], None),  # the schema's 422
    ],
)
def test_a_bad_aspect_ballot_is_refused_and_writes_nothing(aspects, message):
    voter = _voter("anonymous")
    battle = _battle(voter)
    before = _state()
    response = voter.post(
        _vote_url(battle), {"winner": "a", "aspects": aspects, "idempotency_key": "aspects-0003"}
    )
    assert response.status_code in (400, 422), response.content
    assert response.json()["field"] == "aspects" or "aspects" in str(response.json())
    if message:
        assert message in response.json()["detail"]
    assert _state() == before


def test_a_criterion_scope_is_checked_like_every_scope(client):
    assert client.get(f"/api/leaderboard?set={SLUG}&crit=correctness").status_code == 200
    assert client.get(f"/api/leaderboard?set={SLUG}&crit=tone").status_code == 404
    bad = client.get(f"/api/leaderboard?set={SLUG}&crit=Bad%20Name")
    assert bad.status_code == 400 and bad.json()["field"] == "crit"
    styled = client.get(f"/api/leaderboard?set={SLUG}&crit=style&style=1")
    assert styled.status_code == 400 and styled.json()["field"] == "style"
    page = client.get(f"/?set={SLUG}&crit=style")
    assert page.status_code == 200
    assert '<option value="style" selected>style</option>' in page.content.decode()
    assert "crit=style" in page.content.decode()  # the page's API reads keep the criterion
    assert client.get(f"/?set={SLUG}&crit=tone").status_code == 404
    # a key round-trips, and a key without crit keeps its old meaning
    scope = BoardScope.validated(SLUG, "humans", criterion="style")
    assert scope.key.endswith("|crit=style")
    assert BoardScope.from_key(scope.key) == scope
    assert BoardScope.from_key(BoardScope(SLUG).key).criterion == ""


def test_flagging_a_voter_refits_the_aspect_boards_their_votes_leave():
    """The trust pass (or staff) flagging a voter moves their votes off the public boards
    and asks for the refit of every board those votes were on, aspect boards included."""
    from arena.trust import service as trust

    shill = _voter("anonymous")
    response = shill.post(
        _vote_url(_battle(shill)),
        {"winner": "a", "aspects": {"style": "a"}, "idempotency_key": "aspects-shill"},
    )
    assert response.status_code == 200, response.content
    style = BoardScope(SLUG, "humans", criterion="style")
    assert refit(style.key, final=True).n_votes == 1
    voter = Voter.objects.get(judgments__idempotency_key="aspects-shill")
    _, scopes = trust.set_flags([voter.pk], True, "staff: test")
    assert style.key in scopes and BoardScope(SLUG, "humans").key in scopes
    assert refit(style.key, final=True).n_votes == 0
