"""The refit's online Elo is incremental: it continues the last board's Elo state, reads
only the votes cast since, and still equals a full replay of every vote in order, bit for
bit, after votes arrive between refits, a voter is flagged, a vote is deleted or one takes
an earlier place in the order."""

import math
import threading
from collections import defaultdict
from datetime import timedelta

import numpy as np
import pytest
from django.db import connections, transaction

from arena import fitting
from arena.boards import BoardScope, move_voter_counts, rebuild_pair_counts
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import Judgment, PromptSet, Voter
from arena.services import refit

pytestmark = pytest.mark.django_db

SCOPE = BoardScope("toy", "humans")
STRENGTH = {"alpha": 1.0, "beta": 0.2, "gamma": -0.4, "delta": -0.8, "epsilon": 0.5}
K = 8.0


def human_votes(start, n, names=("alpha", "beta", "gamma", "delta"), seed=0):
    """Single human votes ``v<start>``... in the order cast, by seven voters."""
    rng = np.random.default_rng(seed + start)
    records = []
    for t in range(start, start + n):
        a, b = rng.choice(list(names), 2, replace=False)
        p = 1 / (1 + math.exp(STRENGTH[b] - STRENGTH[a]))
        winner = "tie" if rng.random() < 0.08 else ("a" if rng.random() < p else "b")
        records.append(JudgmentRecord(f"v{t}", (a, b), winner=winner, voter=f"voter{t % 7}"))
    return records


def reference_elo(records):
    """FastChat's compute_online_elo written out (every model from 1000, base 10, scale
    400), on the records in the order given."""
    rating = defaultdict(lambda: 1000.0)
    for r in records:
        a, b = r.contestants
        expected = 1 / (1 + 10 ** ((rating[b] - rating[a]) / 400))
        score = {"a": 1.0, "b": 0.0, "tie": 0.5}[r.winner]
        rating[a] += K * (score - expected)
        rating[b] -= K * (score - expected)
    return dict(rating)


def ratings(option):
    return {row["model"]: row["rating"] for row in option["rows"]}


@pytest.fixture
def reads(monkeypatch, settings):
    """The number of votes each read of the refit's Elo returned (and the rows it asked
    for: "after" the id it read above, 0 for every vote)."""
    settings.ARENA_ELO_K = K
    settings.ARENA_SWISS_TOURNAMENTS = 20
    settings.ARENA_BOOTSTRAP_ROUNDS = 10
    seen = []
    original = fitting.scope_votes_in_order

    def counted(scope, after_id=0):
        votes = original(scope, after_id=after_id)
        seen.append(("after" if after_id else "all", len(votes)))
        return votes

    monkeypatch.setattr(fitting, "scope_votes_in_order", counted)
    return seen


def refit_and_check(reads, expected_records):
    """Refit the human board; its Elo equals a full replay (same code, no state) exactly
    and FastChat's loop on the records to 1e-9. Returns the reads the refit made."""
    reads.clear()
    snapshot = refit(SCOPE.key, final=True)
    made = list(reads)
    elo = snapshot.options["elo"]
    full = fitting.board_elo(SCOPE, K, None)
    assert ratings(elo) == ratings(full)  # bit for bit
    assert [row["votes"] for row in elo["rows"]] == [row["votes"] for row in full["rows"]]
    assert elo["n_votes"] == len(expected_records) == elo["state"]["n_votes"]
    assert ratings(elo) == pytest.approx(reference_elo(expected_records), abs=1e-9)
    return made


def cast(records):
    import_records(records, prompt_set="toy", source="test")


def test_interleaved_votes_and_refits_read_only_the_new_votes(reads):
    cast(first := human_votes(0, 120))
    assert refit_and_check(reads, first) == [("all", 120)]
    cast(second := human_votes(120, 37))
    assert refit_and_check(reads, first + second) == [("after", 37)]
    assert refit_and_check(reads, first + second) == [("after", 0)]  # nothing new
    cast(one := human_votes(157, 1))
    assert refit_and_check(reads, first + second + one) == [("after", 1)]
    # a model seen for the first time joins the continued Elo at 1000
    cast(newcomer := human_votes(158, 25, names=("alpha", "epsilon", "delta")))
    everything = first + second + one + newcomer
    assert refit_and_check(reads, everything) == [("after", 25)]
    assert "epsilon" in reference_elo(everything)
    # a judge's verdict is on another board: the human board reads none of it
    cast([JudgmentRecord("j1", ("delta", "alpha"), winner="a", judge="judgy")])
    assert refit_and_check(reads, everything) == [("after", 0)]


def test_a_flagged_voter_replays_the_board_then_it_continues(reads):
    cast(first := human_votes(0, 140))
    refit_and_check(reads, first)
    cast(second := human_votes(140, 20))
    voter = Voter.objects.get(label__endswith="voter3")
    with transaction.atomic():
        moved, _ = move_voter_counts([voter.id], flagged=True)
    kept = [r for r in first + second if r.voter != "voter3"]
    assert moved == len(first + second) - len(kept) > 0
    # the votes replayed changed: one full replay, without the voter's votes
    new = [r for r in second if r.voter != "voter3"]
    assert refit_and_check(reads, kept) == [("after", len(new)), ("all", len(kept))]
    cast(third := human_votes(160, 30))
    new = [r for r in third if r.voter != "voter3"]  # a flagged voter's votes stay off
    assert refit_and_check(reads, kept + new) == [("after", len(new))]
    with transaction.atomic():  # counted again: replayed in their places
        move_voter_counts([voter.id], flagged=False)
    assert refit_and_check(reads, first + second + third) == [("after", 0), ("all", 190)]


def test_a_vote_deleted_or_cast_earlier_in_the_order_replays_the_board(reads):
    cast(first := human_votes(0, 80))
    refit_and_check(reads, first)
    Judgment.objects.filter(voter__isnull=False).order_by("created_at", "id").first().delete()
    rebuild_pair_counts(PromptSet.objects.get(slug="toy"))
    assert refit_and_check(reads, first[1:]) == [("after", 0), ("all", 79)]
    # a vote stamped before the last one replayed (committed late): it takes its place
    cast(late := human_votes(80, 3))
    late_vote = Judgment.objects.filter(voter__isnull=False).order_by("-id").first()
    earliest = Judgment.objects.order_by("created_at").values_list("created_at", flat=True)[0]
    Judgment.objects.filter(id=late_vote.id).update(created_at=earliest - timedelta(seconds=1))
    in_order = [late[-1], *first[1:], *late[:-1]]
    assert refit_and_check(reads, in_order) == [("after", 3), ("all", 82)]


def test_another_k_replays_the_board(reads, settings):
    cast(first := human_votes(0, 50))
    refit_and_check(reads, first)
    settings.ARENA_ELO_K = 16.0
    reads.clear()
    snapshot = refit(SCOPE.key, final=True)
    assert reads == [("all", 50)]
    assert snapshot.options["elo"]["coefficients"] == {"k": 16.0}


def test_votes_swapped_between_voters_of_as_many_votes_replay_the_board(reads):
    # the board keeps its number of votes, not its votes: the fingerprint tells them apart
    cast(first := human_votes(0, 140))
    three, five = (Voter.objects.get(label__endswith=v).id for v in ("voter3", "voter5"))
    with transaction.atomic():
        move_voter_counts([three], flagged=True)
    refit_and_check(reads, [r for r in first if r.voter != "voter3"])
    with transaction.atomic():
        move_voter_counts([five], flagged=True)
        move_voter_counts([three], flagged=False)
    kept = [r for r in first if r.voter != "voter5"]
    assert len(kept) == 120 == sum(r.voter != "voter3" for r in first)
    assert refit_and_check(reads, kept) == [("after", 0), ("all", 120)]


def test_an_elo_of_no_votes_yet_continues(reads):
    # e.g. a human board of K-wise rankings only: fitted, with no pairwise vote to replay
    cast([JudgmentRecord("j1", ("delta", "alpha"), winner="a", judge="judgy")])
    empty = fitting.board_elo(SCOPE, K, None)
    assert empty["rows"] == [] and empty["state"]["last"] is None
    cast(first := human_votes(0, 30))
    elo = fitting.board_elo(SCOPE, K, empty["state"])
    assert ratings(elo) == pytest.approx(reference_elo(first), abs=1e-9)
    assert ratings(elo) == ratings(fitting.board_elo(SCOPE, K, None))


@pytest.mark.django_db(transaction=True)
def test_a_vote_committed_between_the_two_reads_waits_for_the_next_refit(reads, monkeypatch):
    """The new votes and the tally are read in one snapshot: a vote committed between them
    is in neither, and the next refit reads it alone (no full replay)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a second writer during a read transaction: PostgreSQL")
    cast(first := human_votes(0, 60))
    refit_and_check(reads, first)
    cast(second := human_votes(60, 5))
    late = human_votes(65, 1)
    tally = fitting.scope_vote_tally

    def vote_elsewhere():  # another connection, committed at once
        try:
            cast(late)
        finally:
            connections.close_all()

    def tally_after_a_vote(scope):
        writer = threading.Thread(target=vote_elsewhere)
        writer.start()
        writer.join()
        return tally(scope)

    monkeypatch.setattr(fitting, "scope_vote_tally", tally_after_a_vote)
    reads.clear()
    snapshot = refit(SCOPE.key, final=True)
    assert reads == [("after", 5)]
    assert ratings(snapshot.options["elo"]) == pytest.approx(reference_elo(first + second))
    monkeypatch.setattr(fitting, "scope_vote_tally", tally)
    assert refit_and_check(reads, first + second + late) == [("after", 1)]
