"""Voter trust: flagged votes leave the public board (and come back), bursts of fresh
sessions are born flagged, the trust pass flags one-sided voters and their address
cluster but not honest voters from distinct addresses.

The running counts are checked against a rebuild from the raw judgments after every
move, and the public board against the board fitted without the flagged voters.
"""

import secrets
import uuid

import numpy as np
import pytest
from scipy.special import expit

from arena.battles import start_battle
from arena.boards import (
    FLAGGED_SOURCE,
    HUMAN_SOURCE,
    BoardScope,
    rebuild_pair_counts,
    scope_counts,
)
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import Judgment, PairOutcomeCount, PromptSet, Voter
from arena.ratings.leaderboard import leaderboard
from arena.trust import service as trust
from arena.trust.scores import BURST_REASON, VOTES_REASON
from arena.votes import cast_vote
from tests.e2e.seed import CONTESTANTS, seed
from tests.integration.test_votes import Browser

SET = "e2e-arena"
SCOPE = BoardScope(SET, "humans")


def _cells() -> dict:
    """Every running-count cell with a count, keyed by its identity (its prompt set last:
    two sets' cells of the same pair and outcome are two cells)."""
    return {
        (
            c.source, c.category, c.contestant_a_id, c.contestant_b_id, c.winner, c.a_first,
            c.prompt_set_id,
        ): c.count
        for c in PairOutcomeCount.objects.filter(count__gt=0)
    }  # fmt: skip


def _rebuilt() -> dict:
    """The cells a rebuild from the raw judgments makes (it replaces the running ones)."""
    for prompt_set in PromptSet.objects.all():
        rebuild_pair_counts(prompt_set)
    return _cells()


def _same_counts(one, other) -> bool:
    key = lambda c: sorted(  # noqa: E731
        zip(c.first.tolist(), c.second.tolist(), c.outcome.tolist(), c.votes.tolist(), strict=True)
    )
    return list(one.models) == list(other.models) and key(one) == key(other)


# --- flagged votes leave the public board and come back ------------------------------------


@pytest.mark.django_db
def test_a_flagged_voters_votes_leave_the_public_board_and_come_back(
    django_capture_on_commit_callbacks,
):
    rng = np.random.default_rng(3)
    records = []
    for k in range(300):
        i, j = rng.choice(4, 2, replace=False)
        voter = "shill" if k % 5 == 0 else f"honest{k % 7}"
        winner = ("a" if i == 3 else "b") if voter == "shill" and 3 in (i, j) else "ab"[k % 2]
        records.append(
            JudgmentRecord(
                match_id=f"m{k}",
                contestants=(CONTESTANTS[i], CONTESTANTS[j]),
                winner=winner,
                voter=voter,
                weight=1 + k % 3,  # aggregated rows move with their weight
            )
        )
    assert import_records(records, prompt_set="trust", source="t").ok
    scope = BoardScope("trust", "humans")
    public_before = scope_counts(scope)
    shill = Voter.objects.get(label="shill")
    shill_votes = sum(Judgment.objects.filter(voter=shill).values_list("weight", flat=True))

    with django_capture_on_commit_callbacks(execute=False) as refits:
        moved, scopes = trust.set_flags([shill.pk], True, "staff: test")
    assert moved == shill_votes and scopes == ["set=trust|by=humans|cat=|style=0"]
    assert len(refits) == 1  # the refit of the touched board, on commit
    shill.refresh_from_db()
    assert shill.flagged and shill.counted_flagged
    assert _cells() == _rebuilt()
    flagged_cells = PairOutcomeCount.objects.filter(source=FLAGGED_SOURCE)
    assert sum(flagged_cells.values_list("count", flat=True)) == shill_votes
    # The public board is the board without the flagged voter; the raw one has everyone.
    assert _same_counts(scope_counts(scope), scope_counts(scope, exclude_flagged=True))
    assert scope_counts(scope).total_votes == public_before.total_votes - shill_votes
    assert _same_counts(scope_counts(scope, raw=True), public_before)

    again, _ = trust.set_flags([shill.pk], True, "staff: test")
    assert again == 0  # idempotent

    moved, _ = trust.set_flags([shill.pk], False)
    assert moved == shill_votes
    assert not PairOutcomeCount.objects.filter(source=FLAGGED_SOURCE, count__gt=0).exists()
    assert _cells() == _rebuilt()
    assert _same_counts(scope_counts(scope), public_before)


@pytest.mark.django_db
def test_a_flag_set_anywhere_is_applied_by_the_next_pass():
    records = [
        JudgmentRecord(match_id=f"m{k}", contestants=("x", "y"), winner="a", voter=f"v{k % 2}")
        for k in range(10)
    ]
    import_records(records, prompt_set="admin", source="t")
    Voter.objects.filter(label="v0").update(flagged=True, flag_reason="admin")  # as the admin
    assert PairOutcomeCount.objects.get(source=HUMAN_SOURCE).count == 10
    done = trust.score_voters()
    assert done.moved_votes == 5
    assert PairOutcomeCount.objects.get(source=HUMAN_SOURCE).count == 5
    assert PairOutcomeCount.objects.get(source=FLAGGED_SOURCE).count == 5
    assert Voter.objects.get(label="v0").flag_reason == "admin"  # a staff flag is kept
    assert _cells() == _rebuilt()


# --- the vote path: bursts are born flagged --------------------------------------------------


class ForwardedBrowser(Browser):
    """A browser behind the trusted proxy (127.0.0.1) with an address of its own."""

    def __init__(self, address: str):
        super().__init__()
        self.address = address

    def request(self, body, csrf=True, origin="http://testserver", cookies=None):
        raw, headers = super().request(body, csrf, origin, cookies)
        return raw, [*headers, (b"x-forwarded-for", self.address.encode())]


def _browser_vote(browser, winner="a") -> dict:
    response = browser.post("/api/battles", {})
    assert response.status_code == 201, response.content
    battle = response.json()
    vote = {"winner": winner, "idempotency_key": secrets.token_hex(8)}
    answer = browser.post(f"/api/battles/{battle['id']}/vote", vote)
    assert answer.status_code == 200, answer.content
    return battle


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_fresh_sessions_from_one_address_is_born_flagged(settings):
    seed()
    settings.ARENA_TRUSTED_PROXIES = "127.0.0.1"
    settings.ARENA_TRUST_BURST_SESSIONS = 3
    human = lambda: sum(  # noqa: E731
        PairOutcomeCount.objects.filter(source=HUMAN_SOURCE).values_list("count", flat=True)
    )
    public = human()
    battles = [_browser_vote(ForwardedBrowser("203.0.113.9")) for _ in range(8)]  # no cookie kept
    voters = list(Voter.objects.filter(kind="session").order_by("created_at", "pk"))
    assert len(voters) == 8
    assert len({v.ip_hash for v in voters}) == 1
    # The first three of the hour count on the public board until the pass; from the
    # fourth on, each vote is counted as flagged at once.
    assert [v.counted_flagged for v in voters] == [False] * 3 + [True] * 5
    assert all(v.flag_reason.startswith(BURST_REASON) for v in voters[3:])
    assert human() == public + 3
    assert _cells() == _rebuilt()
    # The pass flags the whole cluster, the first three included.
    done = trust.score_voters()
    assert sorted(done.flagged) == sorted(v.pk for v in voters[:3])
    assert done.moved_votes == 3 and human() == public
    assert Voter.objects.filter(kind="session", flagged=False).count() == 0
    # Another address is not touched by this burst.
    other = ForwardedBrowser("198.51.100.7")
    _browser_vote(other)
    newcomer = Voter.objects.filter(kind="session").order_by("-pk").first()
    assert not newcomer.counted_flagged and human() == public + 1
    assert len(battles) == 8


# --- the trust pass: one-sided voters are flagged, honest ones are not --------------------


def _strengths() -> dict[str, float]:
    return dict(zip(CONTESTANTS, [0.6, 0.2, -0.1, -0.7], strict=True))


@pytest.mark.django_db
def test_honest_voters_from_distinct_addresses_are_not_flagged_a_one_sided_cluster_is(settings):
    seed()
    settings.ARENA_VOTE_RATE_SESSION = "0/1"
    settings.ARENA_VOTE_RATE_IP = "0/1"
    prompt_set = PromptSet.objects.get(slug=SET)
    rng = np.random.default_rng(5)
    strength = _strengths()
    target = CONTESTANTS[-1]  # the weakest

    def vote(voter: Voter, one_sided: bool) -> None:
        match = start_battle(voter, prompt_set, rng=rng)
        a, b = (s.contestant.name for s in match.slots.order_by("position"))
        if one_sided and target in (a, b):
            winner = "a" if a == target else "b"
        else:
            winner = "a" if rng.random() < expit(strength[a] - strength[b]) else "b"
        cast_vote(voter.label, voter.ip_hash, match.public_id, {
            "winner": winner, "idempotency_key": uuid.uuid4().hex
        })  # fmt: skip

    honest = [
        Voter.objects.create(label=f"h{n}", kind="session", ip_hash=f"addr-{n}") for n in range(30)
    ]
    for voter in honest:
        for _ in range(12):
            vote(voter, False)
    # The shill spreads its votes over 4 cookies from one address: no single cookie has
    # enough votes to stand out, the address does.
    shills = [
        Voter.objects.create(label=f"s{n}", kind="session", ip_hash="addr-shill") for n in range(4)
    ]
    for _ in range(20):
        for voter in shills:
            vote(voter, True)
    done = trust.score_voters()
    flagged = set(Voter.objects.filter(flagged=True).values_list("label", flat=True))
    assert flagged == {"s0", "s1", "s2", "s3"}, done
    reason = Voter.objects.get(label="s0").flag_reason
    assert reason.startswith(VOTES_REASON) and target in reason and "cluster of 4" in reason
    assert done.moved_votes == 80
    assert _same_counts(scope_counts(SCOPE), scope_counts(SCOPE, exclude_flagged=True))
    assert _cells() == _rebuilt()
    # Trust: honest voters with 12 votes earn some, flagged ones none.
    trusts = dict(Voter.objects.values_list("label", "trust"))
    assert all(trusts[f"h{n}"] > 0 for n in range(30))
    assert all(trusts[f"s{n}"] == 0 for n in range(4))
    # A second pass changes nothing.
    again = trust.score_voters()
    assert again.flagged == [] and again.unflagged == [] and again.moved_votes == 0


# --- the integrity panel -----------------------------------------------------------------


@pytest.mark.django_db
def test_the_panel_shows_raw_and_robust_boards_and_each_flagged_clusters_effect(staff):
    rng = np.random.default_rng(9)
    strength = dict(zip(CONTESTANTS, [0.6, 0.2, -0.1, -0.7], strict=True))
    records = []
    for k in range(400):
        i, j = rng.choice(4, 2, replace=False)
        a, b = CONTESTANTS[i], CONTESTANTS[j]
        voter = f"honest{k % 10}"
        winner = "a" if rng.random() < expit(strength[a] - strength[b]) else "b"
        records.append(
            JudgmentRecord(match_id=f"m{k}", contestants=(a, b), winner=winner, voter=voter)
        )
    for k in range(60):  # a shill for the weakest model
        j = int(rng.integers(0, 3))
        records.append(
            JudgmentRecord(
                match_id=f"s{k}",
                contestants=(CONTESTANTS[3], CONTESTANTS[j]),
                winner="a",
                voter="shill",
            )
        )
    assert import_records(records, prompt_set="panel", source="t").ok
    Voter.objects.filter(label="shill").update(ip_hash="attacker-address")
    trust.set_flags(Voter.objects.filter(label="shill").values_list("pk", flat=True), True, "staff")
    scope = BoardScope("panel", "humans")
    report = staff.get("/audit/integrity/", {"set": "panel"}).context["report"]
    board = report["board"]

    def series(name):
        return {r["label"]: r["value"] for r in board["rows"] if r["series"] == name}

    raw = leaderboard(scope_counts(scope, raw=True), bootstrap=0)
    robust = leaderboard(scope_counts(scope), bootstrap=0)
    assert series("all votes") == pytest.approx({r.model: r.rating for r in raw.rows})
    assert series("without flagged voters") == pytest.approx(
        {r.model: r.rating for r in robust.rows}
    )
    [cluster] = board["clusters"]
    assert cluster["cluster"] == "address attacker" and cluster["votes"] == 60
    assert cluster["voters"] == 1 and cluster["flagged"] == 1 and cluster["reason"] == "staff"
    expected = {r.model: r.rating for r in raw.rows}
    for effect in cluster["effects"]:
        base = {r.model: r.rating for r in robust.rows}[effect["model"]]
        assert effect["delta"] == pytest.approx(expected[effect["model"]] - base, abs=1e-6)
    assert cluster["top_model"] == CONTESTANTS[3] and cluster["top_delta"] > 0
    page = staff.get("/audit/integrity/", {"set": "panel"})
    assert b'id="clusters"' in page.content
    csv = staff.get("/audit/integrity/cluster_effects.csv", {"set": "panel"})
    assert csv.status_code == 200 and CONTESTANTS[3].encode() in csv.content


@pytest.mark.django_db
def test_the_trust_pass_is_a_task_on_the_beat_schedule(settings):
    from arena import tasks  # the task module: nothing else imports it (queued by name)
    from config.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["arena-voter-trust"]
    assert entry["task"] == "arena.tasks.score_voters" and entry["task"] in app.tasks
    assert entry["schedule"] == settings.ARENA_TRUST_INTERVAL_SECONDS
    assert tasks.score_voters() == {"flagged": 0, "unflagged": 0, "moved": 0}


@pytest.mark.django_db
def test_a_flagged_voters_next_vote_goes_straight_to_the_flagged_cells():
    seed()
    prompt_set = PromptSet.objects.get(slug=SET)
    voter = Voter.objects.create(label="later", kind="session", ip_hash="addr-later")
    trust.set_flags([voter.pk], True, "staff")
    before = _cells()
    match = start_battle(voter, prompt_set)
    ballot = {"winner": "b", "idempotency_key": uuid.uuid4().hex}
    cast_vote(voter.label, voter.ip_hash, match.public_id, ballot)
    changed = {k: v - before.get(k, 0) for k, v in _cells().items() if v != before.get(k, 0)}
    [(cell, added)] = changed.items()
    assert cell[0] == FLAGGED_SOURCE and added == 1
    assert _cells() == _rebuilt()


# --- gold battles: known right answers earn trust, or flag ---------------------------------


def _gold_labels(rng) -> dict[tuple[str, frozenset], str]:
    """Import a known right answer for every pair of seeded answers (random, so that it
    says nothing about the board), plus one disputed pair; returns prompt, pair -> winner."""
    records, gold = [], {}
    for pid in ("p1", "p2", "p3", "p4", "p5", "p6"):
        for i in range(4):
            for j in range(i + 1, 4):
                a, b = CONTESTANTS[i], CONTESTANTS[j]
                label = "a" if rng.random() < 0.5 else "b"
                gold[pid, frozenset((a, b))] = a if label == "a" else b
                records.append(
                    JudgmentRecord(
                        match_id=f"gold-{pid}-{i}{j}", contestants=(a, b), winner=label,
                        voter="expert", prompt_id=pid, gold_winner=label,
                    )
                )  # fmt: skip
    # A second expert disagrees on one pair: it has no known answer any more.
    a, b = CONTESTANTS[0], CONTESTANTS[1]
    loser = "b" if gold["p1", frozenset((a, b))] == a else "a"
    records.append(
        JudgmentRecord(
            match_id="gold-dispute", contestants=(a, b), winner=loser, voter="expert-2",
            prompt_id="p1", gold_winner=loser,
        )
    )  # fmt: skip
    del gold["p1", frozenset((a, b))]
    assert import_records(records, prompt_set=SET, source="gold-labels").ok
    return gold


@pytest.mark.django_db
def test_a_battle_serving_a_gold_pair_knows_its_right_answer_and_never_shows_it():
    from arena.battles import battle_view

    seed()
    gold = _gold_labels(np.random.default_rng(1))
    prompt_set = PromptSet.objects.get(slug=SET)
    voter = Voter.objects.create(label="v", kind="session", ip_hash="addr")
    rng = np.random.default_rng(2)
    seen = {"a": 0, "b": 0, "": 0}
    for _ in range(80):
        match = start_battle(voter, prompt_set, rng=rng)
        names = [s.contestant.name for s in match.slots.order_by("position")]
        known = gold.get((match.prompt.external_id, frozenset(names)))
        expected = "" if known is None else "ab"[names.index(known)]
        assert match.gold_winner == expected
        seen[match.gold_winner] += 1
        assert "gold" not in str(battle_view(match))
    # Both slot orders occur, and the disputed pair is served without a known answer.
    assert seen["a"] and seen["b"] and seen[""]


@pytest.mark.django_db
def test_voters_earn_trust_on_gold_battles_and_a_cluster_wrong_on_them_is_flagged(settings):
    seed()
    settings.ARENA_VOTE_RATE_SESSION = "0/1"
    settings.ARENA_VOTE_RATE_IP = "0/1"
    gold = _gold_labels(np.random.default_rng(4))
    prompt_set = PromptSet.objects.get(slug=SET)
    rng = np.random.default_rng(6)

    def vote(voter: Voter, how: str) -> None:
        while True:  # gold battles only
            match = start_battle(voter, prompt_set, rng=rng)
            if match.gold_winner:
                break
        if how == "tie":
            winner = "tie"
        else:
            right = match.gold_winner
            winner = right if how == "right" else ("b" if right == "a" else "a")
        cast_vote(voter.label, voter.ip_hash, match.public_id, {
            "winner": winner, "idempotency_key": uuid.uuid4().hex
        })  # fmt: skip

    assert gold
    careful = Voter.objects.create(label="careful", kind="session", ip_hash="addr-1")
    undecided = Voter.objects.create(label="undecided", kind="session", ip_hash="addr-2")
    # Wrong on every known answer, spread over 3 cookies of one address (7 votes each:
    # fewer than ARENA_TRUST_MIN_VOTES per cookie, 21 for the address).
    careless = [
        Voter.objects.create(label=f"c{n}", kind="session", ip_hash="addr-3") for n in range(3)
    ]
    for _ in range(20):
        vote(careful, "right")
        vote(undecided, "tie")
    for _ in range(7):
        for voter in careless:
            vote(voter, "wrong")
    trust.score_voters()
    voters = {v.label: v for v in Voter.objects.all()}
    assert not voters["careful"].flagged and not voters["undecided"].flagged
    # 20 right of 20: z = 4.5 >= ARENA_TRUST_Z, the whole gold share (0.3) of trust.
    assert voters["careful"].trust >= 0.3
    assert voters["undecided"].trust < 0.05  # ties are no record: no gold credit
    for n in range(3):
        assert voters[f"c{n}"].flagged
        assert "gold battles" in voters[f"c{n}"].flag_reason
        assert "cluster of 3" in voters[f"c{n}"].flag_reason
        assert voters[f"c{n}"].trust == 0
