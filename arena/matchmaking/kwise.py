"""K-wise (listwise) evaluation designs: a judge ranks K answers to one prompt per call.

A *group* is K models on one prompt. A call shows the group's answers in one order
(label A first) and the judge returns a ranking of the labels (ties allowed); the plan
fits Plackett-Luce on every ranking (:func:`arena.ratings.plackett_luce.fit_pl`), whose
two-model case is Bradley-Terry, so strengths are on the scale of the pairwise designs.

Designs
-------
:class:`RandomGroups` (``kwise-groups``)
    On every prompt, ``rounds`` random partitions of the models into groups of K (a
    group short of K is filled with other models drawn at random; a set of models drawn
    twice on a prompt is asked once); then, for every pair
    these left apart, one more group on a random prompt, so that every pair meets at
    least once. The default ``rounds = ceil((N-1)/(K-1))`` makes each pair meet about
    once per prompt, as in round robin, for about ``N²/K²`` calls per prompt instead of
    ``N²/2``: at N = 16, K = 4, 20 calls per prompt against 120 (one sixth).
:class:`SlidingWindows` (``kwise-windows``, adaptive)
    Random groups on a ``screen`` share of the prompts, then on each later prompt windows
    of K consecutive models of the current Plackett-Luce ranking, moved by ``stride``
    (RankGPT's sliding window over a leaderboard): neighbours, whose order is the least
    certain, meet most. The ranking is refitted after every ``refit_prompts`` prompts.

Order bias
----------
Each group is shown in the orders of a Latin square's rows (:func:`latin_square`: a
Williams square for even K, so that every model is shown at every position equally
often and follows every other model equally often). With one presentation per group
(``both_orders`` off) the rows are taken in turn over the groups of a model set, so the
positions balance over the run; with ``both_orders`` every group is shown in all K rows.
The Plackett-Luce fit over all presentations combines them: a first-position bonus
falls on every model equally often and cancels out of the differences.

The groups of :class:`RandomGroups` come from their own generator, seeded by the
design's ``seed`` and the sizes, so that ``planned_calls`` is exact and a replay draws
the same groups; the run's generator only orders the presentations.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from arena.ratings.plackett_luce import Rankings, fit_pl

from ._fit import PRIOR, laplace_covariance
from .pairing import POLICIES, pair_weights
from .plan import size_of

MAX_K = 16
"""The largest group: a ranking of 16 labels fits the parser's 40 characters of
``[[..]]`` and a stored presentation (``"0,1,..,15"``) its 40-character column."""


class GroupCall(NamedTuple):
    """One K-wise judge call: ``models`` in the order shown (label A first)."""

    prompt: int
    models: tuple[int, ...]


class GroupVerdict(NamedTuple):
    """A judged group call: ``ranks[i]`` is the rank of ``models[i]`` (1 = best; equal
    ranks tie), ``models`` as in the call."""

    prompt: int
    models: tuple[int, ...]
    ranks: tuple[int, ...]


def latin_square(k: int) -> np.ndarray:
    """A (k, k) Latin square of positions: row r is an order of the k slots.

    Even ``k``: Williams' design (row 0 is ``0, k-1, 1, k-2, 2, ...``, row r adds r mod
    k), balanced for position and for which slot follows which. Odd ``k``: the cyclic
    square (rotations), balanced for position.
    """
    if k < 1:
        raise ValueError("k: expected at least 1")
    if k % 2:
        first = np.arange(k)
    else:
        first = np.empty(k, np.int64)
        first[0::2] = np.arange(k // 2)
        first[1::2] = (k - np.arange(1, k // 2 + 1)) % k
    return (first[None, :] + np.arange(k)[:, None]) % k


def partition_groups(n: int, k: int, rng: np.random.Generator, count: int = 1) -> np.ndarray:
    """``count`` random partitions of ``n`` models into groups of ``k``, shape
    (count · ceil(n/k), k): the last group of each, when short, is filled with distinct
    other models of that partition at random."""
    perm = rng.permuted(np.tile(np.arange(n), (count, 1)), axis=1)
    g = -(-n // k)
    short = g * k - n
    if short:
        others = rng.permuted(perm[:, : (g - 1) * k], axis=1)[:, :short]
        perm = np.hstack([perm, others])
    return perm.reshape(count * g, k)


def cover_missing(groups: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Extra groups so that every pair of the ``n`` models meets in some group: for each
    pair still apart, a group of it and the ``k - 2`` models that close the most other
    open pairs with it (ties at random). Shape (extra, k)."""
    met = np.zeros((n, n), bool)
    if len(groups):
        a = np.repeat(groups, k, axis=1).ravel()
        b = np.tile(groups, (1, k)).ravel()
        met[a, b] = True
    np.fill_diagonal(met, True)
    extra = []
    while not met.all():
        i, j = np.argwhere(~met)[0]
        group = [int(i), int(j)]
        while len(group) < k:
            gain = (~met[group]).sum(axis=0) + rng.random(n) * 0.5
            gain[group] = -1.0
            group.append(int(np.argmax(gain)))
        g = np.asarray(group)
        met[np.ix_(g, g)] = True
        extra.append(g)
    return np.asarray(extra, np.int64).reshape(-1, k)


def ranking_information(k: int) -> float:
    """Pairwise comparisons a K-ranking is worth at equal strengths: the trace of its
    Plackett-Luce Fisher information, ``Σ_{m=2..K} (m-1)/m``, over a pair's ``½``."""
    return 2.0 * sum((m - 1) / m for m in range(2, k + 1))


class GroupPlan:
    """A running K-wise design: hands out group calls, keeps every ranking, fits PL.

    Subclasses implement :meth:`_plan_groups` (the next groups, shape (g, 1 + K) of
    ``(prompt, model...)`` in slot order, or None when finished) and may override
    :meth:`_learn`. Like :class:`arena.matchmaking.plan.Plan` it is deterministic given
    its generator and the verdicts, so a run replays it from its stored verdicts.
    """

    def __init__(self, n_models, n_prompts, rng, k: int, presentations: int):
        if n_models < 2:
            raise ValueError("models: a design needs at least 2")
        if n_prompts < 1:
            raise ValueError("prompts: a design needs at least 1")
        self.n_models, self.n_prompts, self.k = n_models, n_prompts, k
        self.rng, self.presentations = rng, presentations
        self.square = latin_square(k)
        self.calls_issued = 0
        self.verdicts_seen = 0
        self._rows: list[tuple[tuple[int, ...], tuple[int, ...]]] = []  # (models, ranks)
        self._turn: dict[tuple[int, ...], int] = {}  # next Latin-square row per model set
        self._pending: set[GroupCall] | None = None
        self._queued: np.ndarray | None = None
        self._finished = False

    @property
    def done(self) -> bool:
        if self._pending is not None:
            return False
        if not self._finished and self._queued is None:
            self._queued = self._prepare()
        return self._finished

    def next_batch(self) -> list[GroupCall]:
        """The next group calls (empty once done). Observe them before asking again."""
        if self._pending is not None:
            raise RuntimeError("observe() the previous batch before asking for the next one")
        if self._finished:
            return []
        groups = self._queued if self._queued is not None else self._prepare()
        self._queued = None
        return [] if groups is None else self._issue(groups)

    def _prepare(self):
        while True:
            groups = self._plan_groups()
            if groups is None:
                self._finished = True
                return None
            groups = np.asarray(groups, np.intp).reshape(-1, 1 + self.k)
            if len(groups):
                return groups

    def _issue(self, groups: np.ndarray) -> list[GroupCall]:
        calls = []
        for p, *members in groups.tolist():
            if len(set(members)) != self.k:
                raise AssertionError("a design put a model twice in one group")
            key = tuple(sorted(members))
            if self.presentations == self.k:
                rows = range(self.k)
            else:  # one row of the square per group, in turn over the groups of a model set
                turn = self._turn.get(key, int(self.rng.integers(self.k)))
                rows = [turn % self.k]
                self._turn[key] = turn + 1
            for r in rows:
                calls.append(GroupCall(int(p), tuple(members[s] for s in self.square[r])))
        if len(set(calls)) != len(calls):
            raise AssertionError("a design issued the same call twice in one batch")
        self._pending = set(calls)
        self.calls_issued += len(calls)
        return calls

    def observe(self, verdicts) -> None:
        """Take the rankings of the last batch (repeats allowed); calls missing failed."""
        if self._pending is None:
            raise RuntimeError("no batch is waiting for verdicts")
        got = []
        for v in verdicts:
            v = GroupVerdict(int(v[0]), tuple(int(m) for m in v[1]), tuple(int(r) for r in v[2]))
            if GroupCall(v.prompt, v.models) not in self._pending:
                raise ValueError("results: a verdict for a call that is not in this batch")
            if len(v.ranks) != len(v.models) or min(v.ranks) < 1:
                raise ValueError("ranks: expected a rank of at least 1 per model shown")
            got.append(v)
        self._rows.extend((v.models, v.ranks) for v in got)
        self.verdicts_seen += len(got)
        self._pending = None
        self._learn(got)

    def rankings(self) -> Rankings:
        """Every ranking observed, aggregated (models named by their index)."""
        return Rankings.from_lists(tuple(str(i) for i in range(self.n_models)), self._rows)

    def scores(self, prior: float = PRIOR) -> np.ndarray:
        """Plackett-Luce strengths (logits, MAP with ``prior``) from every ranking so far."""
        if not self._rows:
            return np.zeros(self.n_models)
        return fit_pl(self.rankings(), prior=prior).scores

    def ranking(self) -> np.ndarray:
        """Model indices, best first."""
        return np.argsort(-self.scores(), kind="stable")

    def _plan_groups(self):
        raise NotImplementedError

    def _learn(self, verdicts: list[GroupVerdict]) -> None:
        """Called with the batch's verdicts."""


class _StaticGroups(GroupPlan):
    def __init__(self, n_models, n_prompts, rng, k, presentations, batches):
        super().__init__(n_models, n_prompts, rng, k, presentations)
        self._batches = list(batches)

    def _plan_groups(self):
        return self._batches.pop(0) if self._batches else None


def _check_k(k: int, n_models: int) -> int:
    if not 2 <= int(k) <= MAX_K:
        raise ValueError(f"k: expected 2..{MAX_K}, got {k}")
    return min(int(k), n_models)


def _presentations(k: int, both_orders: bool) -> int:
    return k if both_orders else 1


@dataclass(frozen=True)
class RandomGroups:
    """Random groups of ``k`` that cover every pair (module docstring)."""

    k: int = 4
    rounds: int | None = None
    seed: int = 0
    name: str = "kwise-groups"

    def groups(self, n_models: int, n_prompts: int) -> np.ndarray:
        """Every group of the design, shape (G, 1 + k): ``(prompt, model...)``, by prompt
        (read-only: the same sizes give the same array, drawn once)."""
        k = _check_k(self.k, n_models)
        return _random_groups(int(self.seed), n_models, n_prompts, k, self._rounds(n_models, k))

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        """Exact up to :data:`EXACT_GROUPS` groups; beyond (a power search's hypothetical
        prompt counts), ``rounds · ceil(N/K)`` groups per prompt, which a set drawn twice
        on a prompt can only lower (and at such sizes every pair has met)."""
        k = _check_k(self.k, n_models)
        rounds = self._rounds(n_models, k)
        per_prompt = rounds * -(-n_models // k)
        if per_prompt * n_prompts > EXACT_GROUPS:
            return per_prompt * n_prompts * _presentations(k, both_orders)
        return len(self.groups(n_models, n_prompts)) * _presentations(k, both_orders)

    def pair_comparisons(self, n_models: int, n_prompts: int, both_orders: bool = False):
        """Pairwise comparisons the plan is worth per pair, (n, n) symmetric (for power):
        each of its calls spread evenly over the pairs, a ranking worth
        :func:`ranking_information` comparisons."""
        k = _check_k(self.k, n_models)
        return _spread_evenly(self.planned_calls(n_models, n_prompts, both_orders), k, n_models)

    def start(self, models, prompts, rng, both_orders=False) -> GroupPlan:
        n, n_prompts = size_of(models), size_of(prompts)
        k = _check_k(self.k, n)
        return _StaticGroups(
            n, n_prompts, rng, k, _presentations(k, both_orders), [self.groups(n, n_prompts)]
        )

    def _rounds(self, n: int, k: int) -> int:
        if self.rounds is None:
            return max(1, math.ceil((n - 1) / (k - 1)))
        if not 1 <= int(self.rounds) <= 1000:
            raise ValueError(f"rounds: expected 1..1000, got {self.rounds}")
        return int(self.rounds)


EXACT_GROUPS = 200_000


@functools.lru_cache(maxsize=16)
def _random_groups(seed: int, n_models: int, n_prompts: int, k: int, rounds: int) -> np.ndarray:
    """:meth:`RandomGroups.groups`, drawn once per sizes (a run replays it every step)."""
    if rounds * -(-n_models // k) * n_prompts > 10 * EXACT_GROUPS:
        raise ValueError(f"rounds: {rounds} partitions of {n_prompts} prompts are too many calls")
    rng = np.random.default_rng([seed, n_models, n_prompts, k, rounds])
    drawn = partition_groups(n_models, k, rng, n_prompts * rounds)
    prompts = np.repeat(np.arange(n_prompts), len(drawn) // n_prompts)
    extra = cover_missing(drawn, n_models, k, rng)
    groups = np.column_stack(
        [np.r_[prompts, rng.integers(n_prompts, size=len(extra))], np.vstack([drawn, extra])]
    )
    # a set of models drawn twice on a prompt is asked once (the first kept), by prompt
    key = np.column_stack([groups[:, :1], np.sort(groups[:, 1:], axis=1)])
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first)
    groups = groups[first[np.argsort(groups[first, 0], kind="stable")]]
    groups.flags.writeable = False
    return groups


@dataclass(frozen=True)
class SlidingWindows:
    """Windows of ``k`` over the fitted ranking, after random screening (module docstring)."""

    k: int = 4
    stride: int | None = None
    screen: float = 0.2
    refit_prompts: int = 10
    seed: int = 0
    name: str = "kwise-windows"

    def _sizes(self, n_models: int, n_prompts: int) -> tuple[int, int, int]:
        k = _check_k(self.k, n_models)
        stride = max(1, k // 2) if self.stride is None else int(self.stride)
        if not 1 <= stride <= k:
            raise ValueError(f"stride: expected 1..{k}, got {self.stride}")
        if not 0.0 < self.screen <= 1.0:
            raise ValueError("screen: expected a share of the prompts in (0, 1]")
        if not 1 <= int(self.refit_prompts) <= 10_000:
            raise ValueError("refit_prompts: expected 1..10000")
        return k, stride, max(1, min(n_prompts, round(self.screen * n_prompts)))

    def windows_per_prompt(self, n_models: int, k: int, stride: int) -> int:
        """At most this many windows on a prompt (the two ends and one every ``stride``)."""
        return min(n_models - k + 1, 2 + math.ceil(max(n_models - k - 1, 0) / stride))

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        """At most this many calls (a prompt's windows depend on its random offset)."""
        k, stride, screen = self._sizes(n_models, n_prompts)
        cover = RandomGroups(k=k, seed=self.seed).planned_calls(n_models, screen)
        windows = (n_prompts - screen) * self.windows_per_prompt(n_models, k, stride)
        return (cover + windows) * _presentations(k, both_orders)

    def pair_comparisons(self, n_models: int, n_prompts: int, both_orders: bool = False):
        """Spread evenly over the pairs (the windows follow the verdicts)."""
        k = _check_k(self.k, n_models)
        return _spread_evenly(self.planned_calls(n_models, n_prompts, both_orders), k, n_models)

    def start(self, models, prompts, rng, both_orders=False) -> GroupPlan:
        n, n_prompts = size_of(models), size_of(prompts)
        k, stride, screen = self._sizes(n, n_prompts)
        cover = RandomGroups(k=k, seed=self.seed).groups(n, screen)
        return _WindowPlan(
            n, n_prompts, rng, k, _presentations(k, both_orders), cover, stride, screen,
            int(self.refit_prompts),
        )  # fmt: skip


def _spread_evenly(calls: int, k: int, n_models: int) -> np.ndarray:
    """The pairwise comparisons ``calls`` K-wise rankings are worth, spread evenly over the
    pairs, (n, n) symmetric: a ranking worth :func:`ranking_information` comparisons."""
    graph = np.full((n_models, n_models), calls * ranking_information(k))
    graph /= max(math.comb(n_models, 2), 1)
    np.fill_diagonal(graph, 0.0)
    return graph


class _WindowPlan(GroupPlan):
    def __init__(self, n, n_prompts, rng, k, presentations, cover, stride, screen, refit):
        super().__init__(n, n_prompts, rng, k, presentations)
        self.cover, self.stride, self.screen, self.refit = cover, stride, screen, refit
        self._next_prompt = -1  # -1: the screening batch comes first

    def _plan_groups(self):
        if self._next_prompt < 0:
            self._next_prompt = self.screen
            return self.cover
        if self._next_prompt >= self.n_prompts:
            return None
        prompts = np.arange(self._next_prompt, min(self.n_prompts, self._next_prompt + self.refit))
        self._next_prompt = int(prompts[-1]) + 1
        ranked = self.ranking()
        n, k, s = self.n_models, self.k, self.stride
        out = []
        for p in prompts.tolist():
            # a random offset per prompt moves the window borders; the two ends always
            # have a window (the top and the bottom of the ranking)
            offset = int(self.rng.integers(s))
            at = np.unique(np.r_[0, np.arange(offset, n - k, s), n - k])
            windows = ranked[at[:, None] + np.arange(k)[None, :]]
            out.append(np.column_stack([np.full(len(windows), p), windows]))
        return np.vstack(out)


@dataclass(frozen=True)
class AdaptiveGroups:
    """Groups drawn by the live pairing policy (:func:`arena.matchmaking.pair_weights`).

    Random groups on a ``screen`` share of the prompts; then, every ``refit_prompts``
    prompts, the Plackett-Luce fit so far and its Laplace covariance (each ranking's pairs
    counted at the information a ranking carries, :func:`ranking_information`) give every
    pair the ``criterion``'s weight (``"misorder"``: the live arena's default); each of a
    prompt's ``groups_per_prompt`` groups (default ``ceil(N/K)``: one partition's worth)
    starts from a pair drawn by those weights and adds, one by one, the model whose pairs
    with the members weigh most. ``planned_calls`` is at most (a set drawn twice on a
    prompt is asked once).
    """

    k: int = 4
    groups_per_prompt: int | None = None
    screen: float = 0.2
    refit_prompts: int = 10
    criterion: str = "misorder"
    seed: int = 0
    name: str = "kwise-adaptive"

    def _sizes(self, n_models: int, n_prompts: int) -> tuple[int, int, int]:
        k = _check_k(self.k, n_models)
        g = -(-n_models // k) if self.groups_per_prompt is None else int(self.groups_per_prompt)
        if not 1 <= g <= 10_000:
            raise ValueError(f"groups_per_prompt: expected 1..10000, got {self.groups_per_prompt}")
        if self.criterion not in POLICIES:
            raise ValueError(f"criterion: expected one of {', '.join(POLICIES)}")
        windows = SlidingWindows(
            k=k, screen=self.screen, refit_prompts=self.refit_prompts, seed=self.seed
        )
        _, _, screen = windows._sizes(n_models, n_prompts)
        return k, g, screen

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        k, g, screen = self._sizes(n_models, n_prompts)
        cover = RandomGroups(k=k, seed=self.seed).planned_calls(n_models, screen)
        return (cover + (n_prompts - screen) * g) * _presentations(k, both_orders)

    def pair_comparisons(self, n_models: int, n_prompts: int, both_orders: bool = False):
        """Spread evenly over the pairs (the groups follow the verdicts)."""
        k = _check_k(self.k, n_models)
        return _spread_evenly(self.planned_calls(n_models, n_prompts, both_orders), k, n_models)

    def start(self, models, prompts, rng, both_orders=False) -> GroupPlan:
        n, n_prompts = size_of(models), size_of(prompts)
        k, g, screen = self._sizes(n, n_prompts)
        cover = RandomGroups(k=k, seed=self.seed).groups(n, screen)
        return _AdaptivePlan(
            n, n_prompts, rng, k, _presentations(k, both_orders), cover, g, screen,
            int(self.refit_prompts), self.criterion,
        )  # fmt: skip


class _AdaptivePlan(GroupPlan):
    def __init__(self, n, n_prompts, rng, k, presentations, cover, g, screen, refit, criterion):
        super().__init__(n, n_prompts, rng, k, presentations)
        self.cover, self.per_prompt, self.screen = cover, g, screen
        self.refit, self.criterion = refit, criterion
        self._next_prompt = -1  # -1: the screening batch comes first

    def pair_weight_matrix(self) -> np.ndarray:
        """(n, n) symmetric weights of every pair under the criterion, from the fit so far."""
        n, k = self.n_models, self.k
        scores = self.scores()
        games = np.zeros((n, n))
        for models, _ in self._rows:
            m = np.asarray(models)
            games[np.ix_(m, m)] += ranking_information(k) / math.comb(k, 2)
        np.fill_diagonal(games, 0.0)
        cov = laplace_covariance(scores, games)
        i, j = np.triu_indices(n, 1)
        pairs = np.column_stack([i, j])
        w = pair_weights(self.criterion, scores, cov, pairs, np.zeros(n), seed=self.calls_issued)
        weights = np.zeros((n, n))
        weights[i, j] = weights[j, i] = w
        return weights

    def _plan_groups(self):
        if self._next_prompt < 0:
            self._next_prompt = self.screen
            return self.cover
        if self._next_prompt >= self.n_prompts:
            return None
        prompts = range(self._next_prompt, min(self.n_prompts, self._next_prompt + self.refit))
        self._next_prompt = prompts[-1] + 1
        weights = self.pair_weight_matrix()
        i, j = np.triu_indices(self.n_models, 1)
        first = weights[i, j] / weights[i, j].sum()
        out = []
        for p in prompts:
            seen = set()
            for _ in range(self.per_prompt):
                a = int(self.rng.choice(first.size, p=first))
                group = [int(i[a]), int(j[a])]
                while len(group) < self.k:
                    gain = weights[group].sum(axis=0) + self.rng.random(self.n_models) * 1e-12
                    gain[group] = -1.0
                    group.append(int(np.argmax(gain)))
                key = tuple(sorted(group))
                if key not in seen:
                    seen.add(key)
                    out.append([p, *group])
        return np.asarray(out, np.int64).reshape(-1, 1 + self.k)
