"""Tournament designs: seeded single elimination per prompt, and Swiss rounds.

Single elimination (Varco Arena, Son et al. 2024; ArenaRL) runs one bracket on every
prompt: winners advance, each match eliminates one model, so a bracket costs exactly
``N - 1`` matches whatever the byes — ``(N - 1) · P · o`` calls against round robin's
``N(N-1)/2 · P · o`` (12.5 % for N = 16). Strong models play more matches (up to
``⌈log₂ N⌉`` per prompt), which is where a ranking needs resolution; the leaderboard is
one BT fit over every match played, not the bracket placings.

Swiss rounds pair models of similar current strength (the running BT fit) and avoid
rematches: ``R · ⌊N/2⌋ · k · o`` calls for ``R`` rounds of ``k`` prompts per pairing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._fit import laplace_covariance
from .plan import Plan, orders, size_of


def bracket_order(size: int) -> np.ndarray:
    """Seeds (0 = best) in bracket slot order, so seeds ``a < b`` can only meet once every
    better seed is gone: 4 → [0, 3, 1, 2], 8 → [0, 7, 3, 4, 1, 6, 2, 5]."""
    if size < 1 or size & (size - 1):
        raise ValueError("size: expected a power of two")
    order = np.zeros(1, dtype=np.intp)
    while order.size < size:
        order = np.column_stack([order, 2 * order.size - 1 - order]).ravel()
    return order


@dataclass(frozen=True)
class SingleElimination:
    """A single-elimination bracket on every prompt, then one BT fit over all matches.

    Parameters
    ----------
    seeding : {"random", "ratings", "adaptive"}
        "random": a fresh random bracket per prompt (Varco Arena), so every model meets
        varied opponents. "ratings": classic seeding from ``ratings`` (e.g. the current
        leaderboard; seed 1 meets seed N in round one, best seeds apart until the
        final), the same bracket on every prompt. "adaptive": prompts are played in
        ``waves``; the first wave is random, each later prompt ranks the models by a
        draw from the running BT posterior ``N(μ, Σ)`` (Thompson sampling) and lays the
        bracket out in that order, so round one pairs neighbours (1 v 2, 3 v 4, ...),
        where a comparison is closest to a coin flip and carries the most information,
        and the draw varies the pairings where the order is still uncertain.
    ratings : tuple of float, optional
        One rating per model, for ``seeding="ratings"``.
    prompts : int, optional
        Play only this many prompts, sampled without replacement.
    waves : int
        ``seeding="adaptive"`` only: rounds of refitting (``waves · ⌈log₂ N⌉`` batches).

    A drawn match (a tie, both orders disagreeing, or a failed call) goes to the better
    seed.
    """

    seeding: str = "random"
    ratings: tuple[float, ...] | None = None
    prompts: int | None = None
    waves: int = 10
    name: str = "single-elimination"

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        return (n_models - 1) * self._used(n_prompts) * orders(both_orders)

    def start(self, models, prompts, rng, both_orders=False) -> Plan:
        n, n_prompts = size_of(models), size_of(prompts)
        if self.seeding not in SEEDINGS:
            raise ValueError(f"seeding: expected one of {SEEDINGS}, got {self.seeding!r}")
        if self.seeding == "ratings" and (self.ratings is None or len(self.ratings) != n):
            raise ValueError(f"ratings: seeding='ratings' needs one rating per model ({n})")
        if self.waves < 1:
            raise ValueError("waves: expected a positive integer")
        chosen = rng.permutation(n_prompts)[: self._used(n_prompts)]
        waves = self.waves if self.seeding == "adaptive" else 1
        return _BracketPlan(n, n_prompts, rng, both_orders, chosen, self, waves)

    def _used(self, n_prompts: int) -> int:
        return n_prompts if self.prompts is None else min(int(self.prompts), n_prompts)


SEEDINGS = ("random", "ratings", "adaptive")


class _BracketPlan(Plan):
    """The brackets of one wave of prompts advance together: a batch is one round of
    every bracket in the wave."""

    def __init__(self, n_models, n_prompts, rng, both_orders, prompts, design, waves):
        super().__init__(n_models, n_prompts, rng, both_orders)
        self.design = design
        self.size = 1 << math.ceil(math.log2(n_models))
        self.waves = [w for w in np.array_split(prompts, min(waves, len(prompts))) if w.size]
        self.wave = -1
        self.alive = np.zeros((0, 1), dtype=np.intp)  # (prompts, slots): model or -1 (bye)
        self._played = (np.zeros(0, np.intp), np.zeros(0, np.intp))
        self._winners = self.alive

    def _plan_matches(self):
        while self.alive.shape[1] <= 1:  # this wave's brackets are decided: start the next
            self.wave += 1
            if self.wave >= len(self.waves):
                return None
            self._start_wave(self.waves[self.wave])
        left, right = self.alive[:, 0::2], self.alive[:, 1::2]
        self._winners = np.where(left >= 0, left, right)  # a bye advances its opponent
        rows, cols = np.nonzero((left >= 0) & (right >= 0))
        self._played = rows, cols
        return np.column_stack([self.prompts[rows], left[rows, cols], right[rows, cols]])

    def _start_wave(self, prompts: np.ndarray) -> None:
        n, m = self.n_models, prompts.size
        seeding = self.design.seeding
        if seeding == "ratings":
            ranked = np.tile(
                np.argsort(-np.asarray(self.design.ratings, float), kind="stable"), (m, 1)
            )
        elif seeding == "adaptive" and self.verdicts_seen:
            ranked = self._posterior_orders(m)
        else:
            ranked = self.rng.permuted(np.tile(np.arange(n), (m, 1)), axis=1)
        padded = np.column_stack([ranked, np.full((m, self.size - n), -1)])
        layout = np.arange(self.size) if seeding == "adaptive" else bracket_order(self.size)
        self.prompts = prompts
        self.alive = padded[:, layout]
        self.seed_rank = np.empty_like(ranked)  # (prompts, models): 0 = top seed
        np.put_along_axis(self.seed_rank, ranked, np.arange(n)[None, :], axis=1)

    def _posterior_orders(self, m: int) -> np.ndarray:
        """``m`` rankings, each sorting one draw from ``N(μ, Σ)`` (Laplace posterior)."""
        mu = self.scores()
        cov = laplace_covariance(mu, self.games)
        draws = self.rng.multivariate_normal(mu, cov, size=m, method="cholesky")
        return np.argsort(-draws, axis=1)

    def _learn(self, matches, score_i):
        rows, cols = self._played
        i, j = matches[:, 1], matches[:, 2]
        drawn = ~(np.abs(score_i - 0.5) > 0)  # a tie, split orders, or no verdict (NaN)
        better_seed = self.seed_rank[rows, i] < self.seed_rank[rows, j]
        i_advances = np.where(drawn, better_seed, score_i > 0.5)
        self._winners[rows, cols] = np.where(i_advances, i, j)
        self.alive = self._winners


@dataclass(frozen=True)
class Swiss:
    """Swiss rounds: pair neighbours in the current standings, never twice if avoidable.

    Each round fits BT on everything so far, sorts the models (random order in round
    one), and pairs each model with the nearest-ranked one it has not met (a
    backtracking search, so a rematch happens only when no rematch-free pairing exists).
    With an odd number of models the lowest-ranked model with the fewest byes sits out.
    Every pairing is judged on the round's block of ``prompts_per_round`` prompts.

    Parameters
    ----------
    rounds : int, optional
        Default ``2 ⌈log₂ N⌉``.
    prompts_per_round : int, optional
        Default ``max(1, P // rounds)`` (every prompt used about once per pairing); at
        most ``P``. Blocks cycle through a random order of the prompts.
    """

    rounds: int | None = None
    prompts_per_round: int | None = None
    name: str = "swiss"

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        rounds, per_round = self._shape(n_models, n_prompts)
        return rounds * (n_models // 2) * per_round * orders(both_orders)

    def start(self, models, prompts, rng, both_orders=False) -> Plan:
        n, n_prompts = size_of(models), size_of(prompts)
        rounds, per_round = self._shape(n, n_prompts)
        return _SwissPlan(n, n_prompts, rng, both_orders, rounds, per_round)

    def _shape(self, n_models: int, n_prompts: int) -> tuple[int, int]:
        rounds = self.rounds or 2 * math.ceil(math.log2(max(n_models, 2)))
        per_round = self.prompts_per_round or max(1, n_prompts // rounds)
        if rounds < 1 or per_round < 1:
            raise ValueError("rounds, prompts_per_round: expected positive integers")
        return int(rounds), min(int(per_round), n_prompts)  # a prompt once per round


class _SwissPlan(Plan):
    def __init__(self, n_models, n_prompts, rng, both_orders, rounds, per_round):
        super().__init__(n_models, n_prompts, rng, both_orders)
        self.rounds, self.per_round = rounds, per_round
        self.round = 0
        self.met = np.zeros((n_models, n_models), dtype=bool)
        self.byes = np.zeros(n_models, dtype=np.intp)
        self.rematches = 0
        self._prompt_cycle = rng.permutation(n_prompts)

    def _plan_matches(self):
        if self.round >= self.rounds:
            return None
        standings = self._standings()
        pairs, bye = swiss_pairing(standings, self.met, self.byes)
        if bye is not None:
            self.byes[bye] += 1
        self.rematches += int(self.met[pairs[:, 0], pairs[:, 1]].sum())
        self.met[pairs[:, 0], pairs[:, 1]] = self.met[pairs[:, 1], pairs[:, 0]] = True
        start = self.round * self.per_round
        block = self._prompt_cycle[np.arange(start, start + self.per_round) % self.n_prompts]
        self.round += 1
        p = np.repeat(block, len(pairs))
        return np.column_stack([p, np.tile(pairs, (len(block), 1))])

    def _standings(self) -> np.ndarray:
        """Models best first: BT on the verdicts so far, random among equals."""
        shuffle = self.rng.permutation(self.n_models)
        if self.verdicts_seen == 0:
            return shuffle
        scores = self.scores()
        return shuffle[np.argsort(-scores[shuffle], kind="stable")]


SEARCH_LIMIT = 200_000


def swiss_pairing(
    standings: np.ndarray, met: np.ndarray, byes: np.ndarray | None = None
) -> tuple[np.ndarray, int | None]:
    """Pair neighbours in ``standings`` (best first) without rematches when possible.

    Depth-first: the best unpaired model takes the nearest-ranked opponent it has not
    met; on a dead end the search backtracks. The first complete pairing found is the
    one closest to "1 v 2, 3 v 4, ..." in lexicographic order. With an odd count, the
    bye goes to the lowest-ranked model among those with the fewest ``byes`` (or the
    next candidate if that leaves no rematch-free pairing). If no rematch-free pairing
    exists (or the search exceeds ``SEARCH_LIMIT`` steps) neighbours are paired in
    order, rematches included.

    Returns
    -------
    pairs : ndarray of int, shape (⌊N/2⌋, 2)
    bye : int or None
    """
    order = [int(m) for m in standings]
    byes = np.zeros(len(order), np.intp) if byes is None else byes
    if len(order) % 2 == 0:
        candidates: list[int | None] = [None]
    else:  # fewest byes first, then lowest-ranked first
        candidates = sorted(order, key=lambda m: (byes[m], -order.index(m)))
    budget = [SEARCH_LIMIT]
    for bye in candidates:
        rest = [m for m in order if m != bye]
        found = _pair_up(rest, met, budget)
        if found is not None:
            return np.array(found, dtype=np.intp).reshape(-1, 2), bye
        if budget[0] <= 0:
            break
    bye = candidates[0]
    rest = [m for m in order if m != bye]
    return np.array(rest, dtype=np.intp).reshape(-1, 2), bye


def _pair_up(order: list[int], met: np.ndarray, budget: list[int]) -> list[tuple[int, int]] | None:
    if not order:
        return []
    budget[0] -= 1
    if budget[0] <= 0:
        return None
    a = order[0]
    for k in range(1, len(order)):
        b = order[k]
        if met[a, b]:
            continue
        rest = _pair_up(order[1:k] + order[k + 1 :], met, budget)
        if rest is not None:
            return [(a, b), *rest]
        if budget[0] <= 0:
            return None
    return None
