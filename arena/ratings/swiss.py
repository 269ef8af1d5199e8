"""Swiss standings: the expected score of each model in a simulated Swiss-system tournament.

The idea is "LLM Swiss Round" (Liu, Wu, Wu, Liu, Wang, Zhou, Huang, Namkoong 2025,
*Aggregating Multi-Benchmark Performance via Competitive Swiss-System Dynamics*,
arXiv:2512.21010): rank models by how they fare in a multi-round contest where, each
round, competitors with the same running score meet, and average many simulated
tournaments (Monte Carlo) into an *expected win score* ``E[S_m]`` that does not depend on
the luck of one draw. The paper plays its rounds on a sequence of benchmarks (a win
tensor ``W[i, j, k]``); an arena has pairwise votes instead, so here every round's game
between ``i`` and ``j`` is won by ``i`` with a probability ``P[i, j]`` estimated from the
votes.

Definition
----------
Given ``P`` (n x n, ``P[i, j] + P[j, i] = 1``), one tournament of ``R`` rounds
(default ``ceil(log2 n)``, the number a Swiss needs to single out one winner):

1. Every model starts at 0 points. With an odd ``n`` a phantom player is added: whoever
   meets it has a bye, worth ``bye_points`` (0 by default, the paper's zero-point bye,
   so byes do not inflate scores), at most one per model while avoidable.
2. Each round, models are ordered by score (ties in a random order) and paired greedily
   down that order: the highest unpaired model meets the next unpaired model it has not
   met yet. A pairing left with a rematch is repaired by swapping partners with the
   nearest pair that removes it (``(a, b), (c, d) -> (a, c), (b, d)``), so there is no
   rematch whenever one swap can avoid it, which is always when ``R <= n/2`` (the
   unplayed graph then has minimum degree ``>= n/2``; Dirac's condition).
3. Each game is won by ``i`` with probability ``P[i, j]``: one point to the winner,
   none to the loser (a tie vote counts half a win in ``P``, as in Bradley-Terry, so a
   game has no draws and every round hands out ``floor(n/2)`` points).
4. Standings: score, then Buchholz (the sum of the opponents' final scores), then a
   random draw.

Over ``T`` simulated tournaments (vectorised: every tournament advances together) the
result is each model's expected score, its standard deviation and percentile interval
across tournaments (the spread of one tournament's outcome, not uncertainty about the
votes), and its rank distribution (``P(rank = k)``).

Win probabilities
-----------------
:func:`win_probabilities` shrinks the observed head-to-head share toward Bradley-Terry::

    P[i, j] = (points_ij + m * sigma(s_i - s_j)) / (votes_ij + m)

a Beta prior centred on the BT prediction worth ``m`` votes (``prior_votes``). Plain BT
would make the standings a function of the BT ratings alone, dropping the head-to-head
(and intransitive) structure a tournament is meant to show; raw shares are undefined for
pairs that never met and say "certain" after one vote. With many votes between two
models their own record dominates; with few, BT does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .bootstrap import FALLBACK_PRIOR, percentile_interval
from .bt import fit_bt
from .counts import FIRST, SECOND, PairwiseCounts
from .graph import check_graph
from .leaderboard import Leaderboard, ranked_rows

DEFAULT_TOURNAMENTS = 2000
DEFAULT_PRIOR_VOTES = 10.0


@dataclass(frozen=True, eq=False)
class SwissStandings:
    """Simulated Swiss tournaments.

    Attributes
    ----------
    models : tuple of str, length n
    rounds : int
    expected : ndarray, shape (n,)
        Expected score ``E[S_m]`` (0..rounds).
    sd : ndarray, shape (n,)
        Standard deviation of the score across tournaments.
    lower, upper : ndarray, shape (n,)
        Percentile interval of the score across tournaments.
    rank_probabilities : ndarray, shape (n, n)
        ``[i, k]`` = probability that model ``i`` finishes at rank ``k + 1``.
    scores : ndarray, shape (T, n)
        Final score of each model in each tournament.
    opponents : ndarray of intp, shape (T, rounds, n)
        Opponent of each model in each round (-1 = a bye).
    """

    models: tuple[str, ...]
    rounds: int
    expected: np.ndarray
    sd: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rank_probabilities: np.ndarray
    scores: np.ndarray
    opponents: np.ndarray

    @property
    def mean_rank(self) -> np.ndarray:
        return self.rank_probabilities @ np.arange(1, len(self.models) + 1)


def win_probabilities(
    counts: PairwiseCounts, prior_votes: float = DEFAULT_PRIOR_VOTES
) -> np.ndarray:
    """``P[i, j]``: the chance ``i`` wins a game against ``j``, shape (n, n).

    The head-to-head share (ties and both-bad votes half a win, likelihood weights) shrunk
    toward the Bradley-Terry prediction with ``prior_votes`` pseudo-votes (see the module
    docstring). ``prior_votes = 0`` is the raw share where a pair met, BT elsewhere.
    """
    n = counts.n_models
    if n == 0:
        return np.zeros((0, 0))
    prior = 0.0 if n < 2 or check_graph(counts).mle_exists else FALLBACK_PRIOR
    s = fit_bt(counts, prior=prior).scores
    bt = 1.0 / (1.0 + np.exp(s[None, :] - s[:, None]))
    share = np.where(counts.outcome == FIRST, 1.0, np.where(counts.outcome == SECOND, 0.0, 0.5))
    points = np.zeros((n, n))
    games = np.zeros((n, n))
    np.add.at(points, (counts.first, counts.second), counts.weight * share)
    np.add.at(points, (counts.second, counts.first), counts.weight * (1.0 - share))
    np.add.at(games, (counts.first, counts.second), counts.weight)
    games = games + games.T
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (points + prior_votes * bt) / (games + prior_votes)
    p = np.where(games + prior_votes > 0, p, bt)
    np.fill_diagonal(p, 0.5)
    return p


def default_rounds(n_models: int) -> int:
    """``ceil(log2 n)``: enough rounds for a Swiss to leave one unbeaten player."""
    return max(1, math.ceil(math.log2(n_models))) if n_models > 1 else 0


def simulate_swiss(
    p: np.ndarray,
    models=None,
    *,
    rounds: int | None = None,
    tournaments: int = DEFAULT_TOURNAMENTS,
    seed: int | np.random.Generator | None = 0,
    bye_points: float = 0.0,
    ci: float = 0.95,
) -> SwissStandings:
    """Simulate ``tournaments`` Swiss tournaments on the win probabilities ``p``.

    Parameters
    ----------
    p : ndarray, shape (n, n)
        ``p[i, j]`` = probability that ``i`` beats ``j`` (``p + p.T = 1`` off the diagonal).
    models : sequence of str, optional
    rounds : int, optional
        Default :func:`default_rounds`.
    tournaments : int
    seed : int, Generator or None
    bye_points : float
        Points of a bye (odd ``n``).
    ci : float
        Coverage of the score interval.
    """
    p = np.asarray(p, np.float64)
    n = p.shape[0]
    models = tuple(models) if models is not None else tuple(str(i) for i in range(n))
    rounds = default_rounds(n) if rounds is None else int(rounds)
    rng = np.random.default_rng(seed)
    size = n + n % 2  # with a phantom player (index n) when n is odd
    t = int(tournaments)
    rows = np.arange(t)[:, None]
    score = np.zeros((t, size))
    played = np.zeros((t, size, size), bool)
    opponents = np.full((t, rounds, n), -1, np.intp)
    for r in range(rounds):
        key = score.copy()
        if size > n:
            key[:, n] = -np.inf  # the bye is handed out from the bottom
        order = np.lexsort((rng.random((t, size)), -key), axis=-1)
        a, b = _pair(order, played)  # (t, size/2) players
        real = (a < n) & (b < n)
        a_wins = rng.random(a.shape) < p[np.minimum(a, n - 1), np.minimum(b, n - 1)]
        gain_a = np.where(real, a_wins, np.where(b == n, bye_points, 0.0))
        gain_b = np.where(real, ~a_wins, np.where(a == n, bye_points, 0.0))
        np.add.at(score, (np.broadcast_to(rows, a.shape), a), gain_a)
        np.add.at(score, (np.broadcast_to(rows, b.shape), b), gain_b)
        played[rows, a, b] = True
        played[rows, b, a] = True
        opp = np.full((t, size), -1, np.intp)
        opp[rows, a] = np.where(b < n, b, -1)
        opp[rows, b] = np.where(a < n, a, -1)
        opponents[:, r, :] = opp[:, :n]
    final = score[:, :n]
    buchholz = np.einsum("tij,tj->ti", played[:, :n, :n], final)
    standing = np.lexsort((rng.random((t, n)), -buchholz, -final), axis=-1)
    rank = np.empty_like(standing)
    rank[rows, standing] = np.arange(n)
    rank_probabilities = np.zeros((n, n))
    np.add.at(rank_probabilities, (np.broadcast_to(np.arange(n), rank.shape), rank), 1.0)
    lower, upper = percentile_interval(final, ci) if t else (np.zeros(n), np.zeros(n))
    return SwissStandings(
        models=models,
        rounds=rounds,
        expected=final.mean(axis=0) if t else np.zeros(n),
        sd=final.std(axis=0) if t else np.zeros(n),
        lower=lower,
        upper=upper,
        rank_probabilities=rank_probabilities / max(t, 1),
        scores=final,
        opponents=opponents,
    )


def _pair(order: np.ndarray, played: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One round's pairs of every tournament: players ``(a[:, k], b[:, k])``, shape (t, size/2).

    Greedy down ``order`` (vectorised over tournaments, a loop over positions), then the
    rematches repaired by one swap with the nearest pair (a loop over pairs).
    """
    t, size = order.shape
    rows = np.arange(t)
    # met[t, x, y]: the players at positions x and y of the order have met.
    met = played[rows[:, None, None], order[:, :, None], order[:, None, :]]
    taken = np.zeros((t, size), bool)
    later = np.arange(size)
    pos_a = np.zeros((t, size // 2), np.intp)
    pos_b = np.zeros((t, size // 2), np.intp)
    made = np.zeros(t, np.intp)
    for x in range(size - 1):
        free = ~taken[:, x]
        if not free.any():
            continue
        open_ = ~taken & (later > x)
        fresh = open_ & ~met[:, x, :]
        y = np.where(fresh.any(axis=1), fresh.argmax(axis=1), open_.argmax(axis=1))
        idx = rows[free]
        taken[idx, x] = True
        taken[idx, y[free]] = True
        pos_a[idx, made[free]] = x
        pos_b[idx, made[free]] = y[free]
        made[free] += 1
    a = order[rows[:, None], pos_a]
    b = order[rows[:, None], pos_b]
    half = size // 2
    for k in range(half):
        rematch = played[rows, a[:, k], b[:, k]]
        if not rematch.any():
            continue
        sel = rows[rematch]
        pa, pb = a[sel, k][:, None], b[sel, k][:, None]  # (s, 1)
        ca, cb = a[sel], b[sel]  # (s, half)
        pl = played[sel]
        s_idx = np.arange(sel.size)[:, None]
        straight = ~pl[s_idx, pa, ca] & ~pl[s_idx, pb, cb]  # (a, c), (b, d)
        crossed = ~pl[s_idx, pa, cb] & ~pl[s_idx, pb, ca]  # (a, d), (b, c)
        ok = straight | crossed
        ok[:, k] = False
        distance = np.where(ok, np.abs(np.arange(half) - k), size + 1)
        j = distance.argmin(axis=1)
        can = np.flatnonzero(ok[np.arange(sel.size), j])
        if not can.size:
            continue
        use_straight = straight[can, j[can]]
        sel, j = sel[can], j[can]
        old_a, old_b, c, d = a[sel, k], b[sel, k], a[sel, j], b[sel, j]
        a[sel, k] = old_a
        b[sel, k] = np.where(use_straight, c, d)
        a[sel, j] = old_b
        b[sel, j] = np.where(use_straight, d, c)
    return a, b


def swiss_standings(
    counts: PairwiseCounts,
    *,
    rounds: int | None = None,
    tournaments: int = DEFAULT_TOURNAMENTS,
    seed: int | None = 0,
    prior_votes: float = DEFAULT_PRIOR_VOTES,
    ci: float = 0.95,
) -> SwissStandings:
    """Swiss standings of the models in ``counts`` (:func:`win_probabilities`, then
    :func:`simulate_swiss`)."""
    p = win_probabilities(counts, prior_votes)
    return simulate_swiss(
        p, counts.models, rounds=rounds, tournaments=tournaments, seed=seed, ci=ci
    )


def swiss_leaderboard(
    counts: PairwiseCounts,
    *,
    rounds: int | None = None,
    tournaments: int = DEFAULT_TOURNAMENTS,
    seed: int | None = 0,
    prior_votes: float = DEFAULT_PRIOR_VOTES,
    ci: float = 0.95,
    standings: SwissStandings | None = None,
) -> Leaderboard:
    """The Swiss standings as a leaderboard: ``score`` = expected score, its interval
    across tournaments, ``standard_error`` = the score's standard deviation; the
    coefficients say the rounds, tournaments and prior votes. ``standings`` reuses a
    simulation already made from these counts."""
    if counts.n_models == 0:
        return Leaderboard(method="swiss", rows=(), value_name="score", notes=("no votes yet",))
    st = standings or swiss_standings(
        counts, rounds=rounds, tournaments=tournaments, seed=seed, prior_votes=prior_votes, ci=ci
    )
    rows = ranked_rows(
        st.models,
        st.expected,
        counts.votes_per_model(),
        lower=st.lower,
        upper=st.upper,
        standard_error=st.sd,
    )
    return Leaderboard(
        method="swiss",
        rows=rows,
        value_name="score",
        n_votes=counts.total_votes,
        n_replicas=int(tournaments),
        seed=seed,
        coefficients={
            "rounds": float(st.rounds),
            "tournaments": float(tournaments),
            "prior_votes": float(prior_votes),
        },
        notes=(
            f"expected score in {tournaments} simulated Swiss tournaments of {st.rounds} "
            f"rounds; the interval is the spread of one tournament's score",
        ),
    )


def swiss_board(counts: PairwiseCounts, **options) -> dict:
    """:func:`swiss_leaderboard` as JSON (``Leaderboard.as_dict``), each row with its
    rank distribution's summary: ``p_first`` (the chance to win the tournament) and
    ``mean_rank``. ``options`` as for :func:`swiss_standings`."""
    if counts.n_models == 0:
        return swiss_leaderboard(counts).as_dict()
    st = swiss_standings(counts, **options)
    board = swiss_leaderboard(counts, **options, standings=st)
    out = board.as_dict()
    index = {m: i for i, m in enumerate(st.models)}
    mean_rank = st.mean_rank
    for row in out["rows"]:
        i = index[row["model"]]
        row["p_first"] = float(st.rank_probabilities[i, 0])
        row["mean_rank"] = float(mean_rank[i])
    return out
