"""The trust pass: score recent voters and their address clusters, flag, move the counts.

``score_voters`` (the Celery task ``arena.tasks.score_voters``, on the beat schedule every
``ARENA_TRUST_INTERVAL_SECONDS``) reads, in a few queries, the voters who voted in the
last ``ARENA_TRUST_WINDOW_HOURS`` (or were minted in the last hour) and every voter
sharing an address with them, their decisive votes in the window, and the latest public
human board of each prompt set; scores them with :mod:`arena.trust.scores` (vectorised
over votes); flags and unflags; and then :func:`reconcile` moves the votes of every voter
whose flag changed (here, in the admin, anywhere) between the public and the flagged
running counts, in one transaction, and asks for the refits of the boards they touch.

A voter is flagged when its own score or its address cluster's reaches 1. Logged-in
voters answer for their own votes only (a cluster flag does not reach them). Burst flags
are never lifted automatically; vote-based ones are when both scores fall below 0.5.
Flags set by staff (any reason that does not start with "auto:") are never changed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from scipy.special import expit

from arena.boards import BoardScope, move_voter_counts
from arena.models import Contestant, Judgment, LeaderboardSnapshot, PromptSet, Voter
from arena.ratings.scale import ELO_SCALE
from arena.services import request_refit
from arena.trust import scores
from arena.trust.burst import BURST_WINDOW
from arena.vocabulary import A, B
from arena.votes import forget_open_boards, scopes_touched_by

SCORED_KINDS = (Voter.Kind.SESSION, Voter.Kind.USER)


@dataclass
class TrustPass:
    """What one pass did."""

    voters: int = 0
    votes: int = 0
    flagged: list[int] = field(default_factory=list)
    unflagged: list[int] = field(default_factory=list)
    moved_votes: int = 0
    scopes: list[str] = field(default_factory=list)


def score_voters(now=None) -> TrustPass:
    """One trust pass: score, flag/unflag, store trust and anomaly, reconcile the counts."""
    now = now or timezone.now()
    since = now - timedelta(hours=settings.ARENA_TRUST_WINDOW_HOURS)
    result = TrustPass()
    addresses = set(
        Judgment.objects.filter(voted_at__gte=since, voter__kind__in=SCORED_KINDS)
        .values_list("voter__ip_hash", flat=True)
        .distinct()
        .order_by()
    ) | set(
        Voter.objects.filter(created_at__gte=now - BURST_WINDOW, kind=Voter.Kind.SESSION)
        .values_list("ip_hash", flat=True)
        .distinct()
        .order_by()
    )
    addresses.discard("")
    voters = list(
        Voter.objects.filter(ip_hash__in=addresses, kind__in=SCORED_KINDS)
        .order_by("pk")
        .values_list("pk", "ip_hash", "kind", "created_at", "flagged", "flag_reason")
    )
    if voters:
        _score(voters, since, now, result)
    moved, scopes = reconcile()
    result.moved_votes, result.scopes = moved, scopes
    return result


def _score(voters: list, since, now, result: TrustPass) -> None:
    ids, address, kind, created, flagged, reason = (list(col) for col in zip(*voters, strict=True))
    ids_arr = np.asarray(ids, np.int64)
    n_voters = len(ids)
    logged_in = np.asarray([k == Voter.Kind.USER for k in kind])
    _, cluster = np.unique(np.asarray(address), return_inverse=True)
    cluster = cluster.ravel()
    n_clusters = int(cluster.max()) + 1
    young_session = np.asarray(
        [
            k == Voter.Kind.SESSION and c >= now - BURST_WINDOW
            for k, c in zip(kind, created, strict=True)
        ]
    )
    burst = np.bincount(cluster, weights=young_session, minlength=n_clusters)

    votes = _decisive_votes(ids, since)
    result.voters, result.votes = n_voters, len(votes.voter)
    who = np.searchsorted(ids_arr, votes.voter)
    gold_voter, gold_credit = _gold_votes(ids)
    gold_who = np.searchsorted(ids_arr, gold_voter)
    opts = dict(
        max_sessions=settings.ARENA_TRUST_BURST_SESSIONS,
        z_threshold=settings.ARENA_TRUST_Z,
        min_votes=settings.ARENA_TRUST_MIN_VOTES,
    )
    per = {}
    for name, group, gold_group, n_groups, group_burst in (
        ("voter", who, gold_who, n_voters, np.zeros(n_voters)),
        ("cluster", cluster[who], cluster[gold_who], n_clusters, burst),
    ):
        surprise = scores.surprise(group, votes.s_winner, votes.s_loser, n_groups)
        side = scores.one_sided(
            group,
            votes.winner,
            votes.loser,
            expit(votes.s_winner - votes.s_loser),
            n_groups,
            len(votes.names),
            min_votes=settings.ARENA_TRUST_MIN_VOTES,
        )
        known = scores.gold(gold_group, gold_credit, n_groups)
        found = scores.anomaly(
            group_burst, surprise.z, side.z, surprise.n, known.z, known.n, **opts
        )
        why = scores.reasons(found, group_burst, surprise.z, surprise.n, side, votes.names, known)
        per[name] = (found, why, surprise, known)
    (mine, my_why, my_surprise, my_gold), (theirs, their_why, _, _) = per["voter"], per["cluster"]
    cluster_size = np.bincount(cluster, minlength=n_clusters)
    score = np.maximum(mine.score, np.where(logged_in, 0.0, theirs.score[cluster]))
    flag = score >= 1
    changed = []
    for i in np.flatnonzero(flag & ~np.asarray(flagged)).tolist():
        why = my_why[i] or (
            f"{their_why[cluster[i]]} [address cluster of {cluster_size[cluster[i]]} voters]"
        )
        changed.append(Voter(pk=ids[i], flagged=True, flag_reason=why[:300]))
        result.flagged.append(ids[i])
    lift = (
        np.asarray(flagged)
        & np.asarray([r.startswith(scores.VOTES_REASON) for r in reason])
        & (mine.score < 0.5)
        & (np.where(logged_in, 0.0, theirs.score[cluster]) < 0.5)
    )
    for i in np.flatnonzero(lift).tolist():
        changed.append(Voter(pk=ids[i], flagged=False, flag_reason=""))
        result.unflagged.append(ids[i])
    age_days = np.asarray([(now - c).total_seconds() / 86400 for c in created])
    trust = scores.trust(
        logged_in,
        age_days,
        my_surprise.n,
        my_surprise.z,
        flag,
        gold_z=my_gold.z,
        z_threshold=settings.ARENA_TRUST_Z,
    )
    Voter.objects.bulk_update(changed, ["flagged", "flag_reason"], batch_size=500)
    Voter.objects.bulk_update(
        [
            Voter(pk=pk, trust=float(t), anomaly=float(s))
            for pk, t, s in zip(ids, trust.tolist(), score.tolist(), strict=True)
        ],
        ["trust", "anomaly"],
        batch_size=500,
    )


@dataclass(frozen=True)
class DecisiveVotes:
    """The window's decisive pairwise votes of the scored voters, as arrays."""

    voter: np.ndarray  # (N,) voter id
    winner: np.ndarray  # (N,) contestant index into names (per prompt set)
    loser: np.ndarray
    s_winner: np.ndarray  # (N,) BT strength on the set's public human board (log units)
    s_loser: np.ndarray
    names: list[str]


def _decisive_votes(voter_ids: list[int], since) -> DecisiveVotes:
    rows = list(
        Judgment.objects.filter(
            voter_id__in=voter_ids,
            voted_at__gte=since,
            kind=Judgment.Kind.PAIRWISE,
            status=Judgment.Status.OK,
            match__k=2,
            winner__in=("a", "b"),
        )
        .exclude(match__origin="side_by_side")  # named votes say nothing of anonymous ones
        .with_slots(models_only=True)
        .values_list(
            "voter_id", "match__prompt_set_id", "s0__contestant_id", "s1__contestant_id", "winner"
        )
        .order_by()
    )
    if not rows:
        empty = np.zeros(0, np.int64)
        return DecisiveVotes(empty, empty, empty, np.zeros(0), np.zeros(0), [])
    voter, prompt_set, a, b, winner = (np.asarray(col) for col in zip(*rows, strict=True))
    a_won = winner == "a"
    win_id, lose_id = np.where(a_won, a, b), np.where(a_won, b, a)
    # One contestant index per (prompt set, contestant): a model is judged on each set's board.
    keys, index = np.unique(
        np.concatenate([prompt_set * 2**32 + win_id, prompt_set * 2**32 + lose_id]),
        return_inverse=True,
    )
    index = index.ravel()
    n = len(rows)
    strength = _strengths(keys)
    names = _names(keys)
    return DecisiveVotes(
        voter=voter.astype(np.int64),
        winner=index[:n],
        loser=index[n:],
        s_winner=strength[index[:n]],
        s_loser=strength[index[n:]],
        names=names,
    )


def _gold_votes(voter_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Every vote of these voters on a gold battle (a known right answer, decisive), ever:
    gold is a track record. Returns (voter id, credit) arrays: credit 1 for the gold
    winner, 0 for the other answer, 0.5 for a tie or "both bad" (it did not pick the
    wrong one)."""
    rows = list(
        Judgment.objects.filter(
            voter_id__in=voter_ids,
            kind=Judgment.Kind.PAIRWISE,
            status=Judgment.Status.OK,
            match__k=2,
            match__gold_winner__in=(A, B),
        )
        .values_list("voter_id", "winner", "match__gold_winner")
        .order_by()
    )
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0)
    voter, winner, gold = (np.asarray(col) for col in zip(*rows, strict=True))
    credit = np.where(winner == gold, 1.0, np.where(np.isin(winner, (A, B)), 0.0, 0.5))
    return voter.astype(np.int64), credit


def _strengths(keys: np.ndarray) -> np.ndarray:
    """BT strength (natural-log units, centred per set) of each (set, contestant) key on
    the set's latest public human board; 0 for a contestant the board does not rate."""
    set_ids = np.unique(keys >> 32).tolist()
    slugs = dict(PromptSet.objects.filter(pk__in=set_ids).values_list("pk", "slug"))
    strength = np.zeros(len(keys))
    for set_id in set_ids:  # one snapshot per prompt set
        snapshot = LeaderboardSnapshot.objects.latest_of(BoardScope(slugs[set_id], "humans").key)
        if snapshot is None:
            continue
        rated = {r["model"]: r["rating"] for r in snapshot.rows if r.get("rating") is not None}
        if not rated:
            continue
        mean = float(np.mean(list(rated.values())))
        in_set = np.flatnonzero((keys >> 32) == set_id)
        names = dict(
            Contestant.objects.filter(pk__in=(keys[in_set] & (2**32 - 1)).tolist()).values_list(
                "pk", "name"
            )
        )
        for k in in_set.tolist():
            name = names.get(int(keys[k] & (2**32 - 1)))
            if name in rated:
                strength[k] = (rated[name] - mean) / ELO_SCALE
    return strength


def _names(keys: np.ndarray) -> list[str]:
    names = dict(
        Contestant.objects.filter(pk__in=(keys & (2**32 - 1)).tolist()).values_list("pk", "name")
    )
    return [names.get(int(k & (2**32 - 1)), "?") for k in keys.tolist()]


def reconcile() -> tuple[int, list[str]]:
    """Move the votes of every voter whose flag differs from where its votes are counted;
    one transaction; refits of the touched boards are asked for on commit. Returns the
    votes moved and the scope keys."""
    with transaction.atomic():
        moved_in, touched_in = move_voter_counts(
            Voter.objects.filter(flagged=True, counted_flagged=False).values_list("pk", flat=True),
            flagged=True,
        )
        moved_out, touched_out = move_voter_counts(
            Voter.objects.filter(flagged=False, counted_flagged=True).values_list("pk", flat=True),
            flagged=False,
        )
        scopes = _scopes(touched_in | touched_out)
        if scopes:
            request_refit(scopes)
    return moved_in + moved_out, scopes


def set_flags(voter_ids, flagged: bool, reason: str = "") -> tuple[int, list[str]]:
    """Flag (or unflag) voters by hand and move their votes at once (staff, tests)."""
    with transaction.atomic():
        Voter.objects.filter(pk__in=list(voter_ids)).update(
            flagged=flagged, flag_reason=reason if flagged else ""
        )
        return reconcile()


def _scopes(touched: set[tuple[int, str]]) -> list[str]:
    if not touched:
        return []
    slugs = dict(
        PromptSet.objects.filter(pk__in={ps for ps, _ in touched}).values_list("pk", "slug")
    )
    forget_open_boards()  # read the open boards afresh: a board opened since must not be missed
    keys: set[str] = set()
    for prompt_set_id, category in touched:
        # the moved votes may carry aspect verdicts: the open aspect boards move with them
        keys.update(
            scopes_touched_by(prompt_set_id, slugs[prompt_set_id], category, any_aspect=True)
        )
    return sorted(keys)
