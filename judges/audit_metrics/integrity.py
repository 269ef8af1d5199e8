"""Vote integrity for human voters: concentration, upsets, speed, and top-k fragility.

Inputs are per-vote arrays the Django layer builds from Judgments (one row per vote):
the voter, the contestant the vote went to, the two contestants' ratings, the seconds
between the battle being shown and the vote. Grouping is done with ``np.unique`` and
``np.lexsort``; there is no Python loop over votes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.special import expit

NO_WINNER = -1
_FLIP_EPS = 1e-9


class _Table:
    """Mixin for dataclasses of equal-length arrays: one row per voter."""

    def rows(self) -> list[dict]:
        cols = {f.name: getattr(self, f.name) for f in fields(self)}
        n = len(next(iter(cols.values())))
        return [{k: _plain(v[r]) for k, v in cols.items()} for r in range(n)]


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


def _segments(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths of the runs of equal values in a sorted array."""
    if codes.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return starts, np.diff(np.r_[starts, codes.size])


# -- concentration ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VoterConcentration(_Table):
    """Per-voter volume and concentration on one contestant (one row per voter).

    Attributes
    ----------
    voter : ndarray
        Sorted voter labels.
    n_votes : ndarray of int
        All of the voter's votes.
    n_decisive : ndarray of int
        Votes with a winner (ties and both-bad have none).
    top_contestant : ndarray
        The contestant the voter voted for most (lowest id on a tie; ``NO_WINNER`` for
        a voter without decisive votes).
    top_share : ndarray of float
        Share of the voter's decisive votes that went to ``top_contestant``.
    hhi : ndarray of float
        Herfindahl index of the decisive votes over contestants, ``Σ_c share_c²``
        (1: every vote for one contestant). NaN without decisive votes.
    top_win_rate : ndarray of float
        Of the voter's decisive votes in battles where ``top_contestant`` took part, the
        share it won (only when ``loser`` is given, else NaN). A voter pushing a model
        picks it every time it shows up, however rarely that is.
    """

    voter: np.ndarray
    n_votes: np.ndarray
    n_decisive: np.ndarray
    top_contestant: np.ndarray
    top_share: np.ndarray
    hhi: np.ndarray
    top_win_rate: np.ndarray


def voter_concentration(voter, winner, loser=None) -> VoterConcentration:
    """Volume of each voter and how concentrated their votes are on one contestant.

    A voter pushing one model votes for it whatever it is paired with: a high
    ``top_share`` and ``hhi`` at a volume where chance concentration is unlikely, and a
    ``top_win_rate`` near 1.

    Parameters
    ----------
    voter : array_like, shape (n,)
        Voter label per vote.
    winner : array_like of int, shape (n,)
        Contestant id (>= 0) the vote went to; ``NO_WINNER`` (-1) for a tie or both-bad.
    loser : array_like of int, shape (n,), optional
        The other contestant of each decisive vote (ignored where there is no winner).
    """
    voters, vi = np.unique(np.asarray(voter), return_inverse=True)
    winner = np.asarray(winner, dtype=np.int64)
    n_voters = len(voters)
    decisive = winner != NO_WINNER
    vd, wd = vi[decisive], winner[decisive]
    n_decisive = np.bincount(vd, minlength=n_voters)
    # (voter, contestant) cells; the largest per voter comes first after this sort.
    cells, cell_n = np.unique(np.stack([vd, wd]), axis=1, return_counts=True)
    cell_voter, cell_winner = cells
    order = np.lexsort((cell_winner, -cell_n, cell_voter))
    starts, _ = _segments(cell_voter[order])
    best = order[starts]
    who = cell_voter[best]
    top = np.full(n_voters, NO_WINNER, dtype=np.int64)
    top_share = np.full(n_voters, np.nan)
    top[who] = cell_winner[best]
    top_share[who] = cell_n[best] / n_decisive[who]
    squares = np.bincount(cell_voter, weights=cell_n.astype(np.float64) ** 2, minlength=n_voters)
    with np.errstate(invalid="ignore", divide="ignore"):
        hhi = np.where(n_decisive > 0, squares / n_decisive.astype(np.float64) ** 2, np.nan)
    top_win_rate = np.full(n_voters, np.nan)
    if loser is not None:
        ld = np.asarray(loser, dtype=np.int64)[decisive]
        # Battles (of this voter's decisive votes) in which the top contestant took part.
        appeared = np.bincount(vd, weights=(wd == top[vd]) | (ld == top[vd]), minlength=n_voters)
        top_win_rate[who] = cell_n[best] / appeared[who]
    n_votes = np.bincount(vi, minlength=n_voters)
    return VoterConcentration(voters, n_votes, n_decisive, top, top_share, hhi, top_win_rate)


# -- upsets -------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UpsetScores(_Table):
    """Per-voter upset rate and how unusual it is (one row per voter).

    Attributes
    ----------
    voter : ndarray
    n : ndarray of int
        Decisive votes between contestants of different rating.
    upsets : ndarray of int
        Votes for the lower-rated contestant.
    upset_rate : ndarray of float
    expected : ndarray of float
        Upsets expected under Bradley-Terry, ``Σ q`` with ``q = σ(-|Δ| / scale)``.
    z_model : ndarray of float
        ``(upsets - expected) / sqrt(Σ q (1 - q))``: the voter vs the rating model, for
        the very battles the voter saw.
    z_peers : ndarray of float
        ``(rate - p₋) / sqrt(p₋ (1 - p₋) / n)`` with ``p₋`` the pooled upset rate of
        all *other* voters: the outlier score against other voters.
    """

    voter: np.ndarray
    n: np.ndarray
    upsets: np.ndarray
    upset_rate: np.ndarray
    expected: np.ndarray
    z_model: np.ndarray
    z_peers: np.ndarray


def upset_scores(voter, winner_rating, loser_rating, scale: float = 1.0) -> UpsetScores:
    """Upset rate per voter (votes against the Bradley-Terry favourite) as outlier scores.

    An upset is a decisive vote for the contestant with the lower rating. Votes between
    equally rated contestants are left out. A random voter has an upset rate near 1/2,
    an honest one near the model's ``Σ q / n``; a voter far above both is suspect.

    Parameters
    ----------
    voter : array_like, shape (n,)
        Voter per decisive vote (leave ties out).
    winner_rating, loser_rating : array_like of float, shape (n,)
        Ratings of the contestant voted for and of the other one.
    scale : float
        Rating units per logit: 1 for BT strengths, ``400 / ln 10`` for Elo-scale
        ratings, so that ``P(i beats j) = σ((r_i - r_j) / scale)``.
    """
    voters, vi = np.unique(np.asarray(voter), return_inverse=True)
    gap = (
        np.asarray(winner_rating, dtype=np.float64) - np.asarray(loser_rating, dtype=np.float64)
    ) / scale
    keep = gap != 0
    vi, gap = vi[keep], gap[keep]
    q = expit(-np.abs(gap))  # BT probability that the underdog wins
    m = len(voters)
    n = np.bincount(vi, minlength=m)
    upsets = np.bincount(vi, weights=(gap < 0).astype(np.float64), minlength=m)
    expected = np.bincount(vi, weights=q, minlength=m)
    variance = np.bincount(vi, weights=q * (1 - q), minlength=m)
    others_n = n.sum() - n
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = upsets / n
        z_model = (upsets - expected) / np.sqrt(variance)
        p_others = (upsets.sum() - upsets) / others_n
        z_peers = (rate - p_others) / np.sqrt(p_others * (1 - p_others) / n)
    return UpsetScores(voters, n, upsets.astype(np.int64), rate, expected, z_model, z_peers)


# -- time to vote -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VoteTiming(_Table):
    """Per-voter time-to-vote statistics, in seconds (one row per voter).

    Attributes
    ----------
    voter, n : ndarray
    median, minimum : ndarray of float
    fast_share : ndarray of float
        Share of the voter's votes cast in under ``fast`` seconds (too fast to read two
        answers).
    """

    voter: np.ndarray
    n: np.ndarray
    median: np.ndarray
    minimum: np.ndarray
    fast_share: np.ndarray


def vote_timing(voter, seconds, fast: float = 3.0) -> VoteTiming:
    """Median and minimum time to vote per voter, and the share of very fast votes.

    Parameters
    ----------
    voter : array_like, shape (n,)
    seconds : array_like of float, shape (n,)
        Voted-at minus shown-at; NaN where unknown (left out).
    fast : float
        Threshold in seconds for ``fast_share``.
    """
    voters, vi = np.unique(np.asarray(voter), return_inverse=True)
    t = np.asarray(seconds, dtype=np.float64)
    keep = np.isfinite(t)
    vi, t = vi[keep], t[keep]
    order = np.lexsort((t, vi))
    vs, ts = vi[order], t[order]
    starts, lengths = _segments(vs)
    who = vs[starts]
    m = len(voters)
    median = np.full(m, np.nan)
    minimum = np.full(m, np.nan)
    median[who] = (ts[starts + (lengths - 1) // 2] + ts[starts + lengths // 2]) / 2
    minimum[who] = ts[starts]
    n = np.bincount(vi, minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        fast_share = np.bincount(vi, weights=(t < fast).astype(np.float64), minlength=m) / n
    return VoteTiming(voters, n, median, minimum, fast_share)


# -- leaderboard fragility ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TopKChange:
    """How the top ``k`` differs between two rating vectors of the same contestants.

    Attributes
    ----------
    k : int
    top_before, top_after : ndarray of int
        Contestant indices in rank order.
    set_changed : bool
        A contestant entered or left the top ``k``.
    order_changed : bool
        The top ``k`` is not the same sequence (includes ``set_changed``).
    n_moved : int
        Rank positions ``1..k`` held by a different contestant.
    entered, left : ndarray of int
        Contestants new to / gone from the top ``k``.
    """

    k: int
    top_before: np.ndarray
    top_after: np.ndarray
    set_changed: bool
    order_changed: bool
    n_moved: int
    entered: np.ndarray
    left: np.ndarray

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in d.items()}


def rank_order(ratings) -> np.ndarray:
    """Contestant indices from best to worst (stable: equal ratings keep index order)."""
    return np.argsort(-np.asarray(ratings, dtype=np.float64), kind="stable")


def top_k_change(ratings_before, ratings_after, k: int) -> TopKChange:
    """Compare the top ``k`` of two leaderboards (e.g. with and without flagged voters)."""
    before = rank_order(ratings_before)[:k]
    after = rank_order(ratings_after)[:k]
    moved = int(np.sum(before != after))
    return TopKChange(
        k=k,
        top_before=before,
        top_after=after,
        set_changed=set(before.tolist()) != set(after.tolist()),
        order_changed=moved > 0,
        n_moved=moved,
        entered=np.setdiff1d(after, before),
        left=np.setdiff1d(before, after),
    )


def bt_strengths(wins, prior: float = 1e-6, tol: float = 1e-10, max_iter: int = 200) -> np.ndarray:
    """Bradley-Terry strengths from a dense win matrix, by damped Newton steps.

    Maximises ``Σ_ij W_ij log σ(s_i - s_j) - prior/2 · ||s||²`` where ``W_ij`` counts
    votes won by ``i`` over ``j`` (a tie is half a win each way, as in Chatbot Arena).
    The small prior keeps the estimate finite when a contestant never won or lost; the
    result is centred (``Σ s = 0``). This is the same model as ``arena.ratings.bt``
    (``ties="half"``); it is here so the flip search below needs no Django or
    board objects.

    Parameters
    ----------
    wins : array_like, shape (K, K)
    """
    w = np.asarray(wins, dtype=np.float64)
    n = w + w.T
    s = np.zeros(len(w))

    def loss(x):
        d = x[:, None] - x[None, :]
        return -np.sum(w * -np.logaddexp(0, -d)) + prior / 2 * x @ x

    current = loss(s)
    for _ in range(max_iter):
        p = expit(s[:, None] - s[None, :])
        grad = (n * p - w).sum(axis=1) + prior * s
        h = n * p * (1 - p)
        hess = np.diag(h.sum(axis=1)) - h + prior * np.eye(len(s)) + 1.0 / len(s)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8:
            trial = loss(s - t * step)
            if trial <= current + 1e-12:
                break
            t /= 2
        s, current = s - t * step, trial
        if np.max(np.abs(t * step)) < tol:
            break
    return s - s.mean()


def votes_to_flip(wins, k: int, prior: float = 1e-6, max_votes: int | None = None) -> np.ndarray:
    """Votes needed to swap each adjacent pair of ranks ``1..k+1`` on a BT leaderboard.

    Definition: for the contestants at ranks ``r`` and ``r + 1`` (``r = 1..k``), the
    margin is the smallest number ``m`` of *added* head-to-head votes "rank ``r + 1``
    beats rank ``r``" after which the refitted Bradley-Terry strengths put rank ``r + 1``
    strictly above rank ``r``. Entry ``k - 1`` (the ``k``/``k+1`` boundary) is what it
    takes to change the top-``k`` *set*; the minimum over entries is what it takes to
    change the top-``k`` *ranking* at all. Adding votes to one pair is the cheapest
    targeted attack on that pair, so a margin well above the number of flagged votes
    means those voters cannot have decided that boundary.

    Found by doubling ``m`` and then bisecting (monotone: extra wins for ``j`` over ``i``
    only raise ``s_j - s_i``), each step a refit of a ``K x K`` problem.

    Parameters
    ----------
    wins : array_like, shape (K, K)
        ``wins[i, j]``: votes won by ``i`` over ``j`` (ties as half a win each way).
    k : int
        ``1 <= k < K``.
    max_votes : int, optional
        Give up above this (returns ``inf``); default 10 x the total vote count.

    Returns
    -------
    ndarray of float, shape (k,)
        Margins for boundaries 1|2, 2|3, ..., k|k+1.
    """
    w = np.asarray(wins, dtype=np.float64)
    if not 1 <= k < len(w):
        raise ValueError(f"k must be in 1..{len(w) - 1}, got {k}")
    cap = max_votes if max_votes is not None else max(1, int(10 * w.sum()))
    order = rank_order(bt_strengths(w, prior))
    margins = np.full(k, np.inf)
    for r in range(k):  # k refit searches, each O(log votes) small Newton solves
        i, j = order[r], order[r + 1]

        def flipped(m, i=i, j=j):
            trial = w.copy()
            trial[j, i] += m
            s = bt_strengths(trial, prior)
            return s[j] - s[i] > _FLIP_EPS  # an exact tie (common with integer counts) is no flip

        hi = 1
        while hi <= cap and not flipped(hi):
            hi *= 2
        if hi > cap and not flipped(cap):
            continue
        lo, hi = hi // 2, min(hi, cap)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if flipped(mid) else (mid, hi)
        margins[r] = hi
    return margins


@dataclass(frozen=True, eq=False)
class FlaggedVoteImpact:
    """The leaderboard with and without flagged voters, and how fragile its top is.

    Attributes
    ----------
    change : TopKChange
        Top ``k`` with all votes (before) vs without the flagged voters (after).
    n_flagged_votes : float
        Votes removed (sum of the difference of the two win matrices).
    margins : ndarray of float, shape (k,)
        :func:`votes_to_flip` on the board *without* the flagged voters.
    could_flip : bool
        ``n_flagged_votes >= min(margins)``: the flagged votes are enough to reorder the
        clean top ``k``.
    """

    change: TopKChange
    n_flagged_votes: float
    margins: np.ndarray
    could_flip: bool

    def as_dict(self) -> dict:
        return {
            "change": self.change.as_dict(),
            "n_flagged_votes": self.n_flagged_votes,
            "margins": self.margins.tolist(),
            "could_flip": self.could_flip,
        }


def flagged_vote_impact(wins_all, wins_clean, k: int, prior: float = 1e-6) -> FlaggedVoteImpact:
    """Compare the board with and without flagged voters and measure the clean top-k margin.

    Parameters
    ----------
    wins_all, wins_clean : array_like, shape (K, K)
        Win matrices with every vote and without the flagged voters' votes.
    """
    wa = np.asarray(wins_all, dtype=np.float64)
    wc = np.asarray(wins_clean, dtype=np.float64)
    change = top_k_change(bt_strengths(wa, prior), bt_strengths(wc, prior), k)
    margins = votes_to_flip(wc, k, prior)
    removed = float(np.sum(wa - wc))
    return FlaggedVoteImpact(change, removed, margins, bool(removed >= np.min(margins)))
