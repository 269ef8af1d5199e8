"""What every evaluation design shares: calls out, verdicts in, one BT fit at the end.

A *design* (round robin, anchor, bracket, Swiss, adaptive) is a planner. It says up
front how many judge calls it plans (``design.planned_calls(n_models, n_prompts,
both_orders)``) and, once started, hands out batches of calls and learns from their
verdicts::

    plan = design.start(n_models, n_prompts, rng)
    while not plan.done:
        batch = plan.next_batch()          # [Call(prompt, first, second), ...]
        plan.observe(judge(batch))         # [Verdict(prompt, first, second, score), ...]
    scores = plan.scores()                 # one BT fit over every verdict

A *match* is one comparison of two models on one prompt; it costs one call, or two with
``both_orders`` (``(p, i, j)`` and ``(p, j, i)``: PRP-style, position bias cancels).
With one order the slot order is drawn at random. A call whose verdict never arrives (the
judge failed for good) is simply missing from ``observe``: designs treat the match as
undecided and never re-issue it, so the calls issued by a non-adaptive design always
equal its plan.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from ._fit import PRIOR, fit_scores


class Call(NamedTuple):
    """One judge call: ``first`` is shown in slot 0 (A), ``second`` in slot 1 (B)."""

    prompt: int
    first: int
    second: int


class Verdict(NamedTuple):
    """A judged call; ``score`` is the first-shown model's: 1 win, ½ tie, 0 loss."""

    prompt: int
    first: int
    second: int
    score: float


class Design(Protocol):
    name: str

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        """Judge calls the design will issue (adaptive designs: at most this many)."""
        ...

    def start(self, models, prompts, rng: np.random.Generator, both_orders: bool = False):
        """A fresh :class:`Plan` over ``models`` and ``prompts`` (counts or sequences)."""
        ...


def size_of(items) -> int:
    """``models`` / ``prompts`` may be given as a count or as a sequence of ids."""
    n = int(items) if np.ndim(items) == 0 else len(items)
    if n < 0:
        raise ValueError("expected a non-negative count")
    return n


def orders(both_orders: bool) -> int:
    return 2 if both_orders else 1


class Plan:
    """Base of every running design: issues calls, checks verdicts, keeps the wins.

    Subclasses implement :meth:`_plan_matches` (the next matches, shape (m, 3) of
    ``(prompt, i, j)``, or ``None`` when finished) and may override :meth:`_learn`.

    Attributes
    ----------
    wins : ndarray, shape (n, n)
        ``wins[i, j]``: verdicts won by ``i`` against ``j`` (ties ½ each way).
    prompt_games : ndarray of int, shape (n, n, n_prompts), or None
        Matches issued per unordered pair (both triangles) and prompt, kept only by
        plans that set ``track_prompts`` (the adaptive one: it is ``n² P`` integers).
    calls_issued, verdicts_seen : int

    A plan holds only numpy arrays and its generator: it pickles, so a run can be
    checkpointed between batches and resumed after a crash. It is also deterministic
    given the generator's seed and the verdicts, so replaying the stored verdicts
    batch by batch into a fresh plan rebuilds the same state.
    """

    track_prompts = False

    def __init__(self, n_models: int, n_prompts: int, rng: np.random.Generator, both_orders: bool):
        if n_models < 2:
            raise ValueError("models: a design needs at least 2")
        if n_prompts < 1:
            raise ValueError("prompts: a design needs at least 1")
        self.n_models, self.n_prompts = n_models, n_prompts
        self.rng, self.both_orders = rng, bool(both_orders)
        self.wins = np.zeros((n_models, n_models))
        self.prompt_games = (
            np.zeros((n_models, n_models, n_prompts), dtype=np.int32)
            if self.track_prompts
            else None
        )
        self.calls_issued = 0
        self.verdicts_seen = 0
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._queued: np.ndarray | None = None
        self._finished = False

    # -- the protocol ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """True once every planned call has been issued and observed."""
        if self._pending is not None:
            return False
        if not self._finished and self._queued is None:
            self._queued = self._prepare()  # look ahead: is there another batch?
        return self._finished

    def next_batch(self) -> list[Call]:
        """The next calls to judge (empty once done). Observe them before asking again."""
        if self._pending is not None:
            raise RuntimeError("observe() the previous batch before asking for the next one")
        if self._finished:
            return []
        matches = self._queued if self._queued is not None else self._prepare()
        self._queued = None
        return [] if matches is None else self._issue(matches)

    def _prepare(self) -> np.ndarray | None:
        """The next non-empty matches, or None (and finished) when the design is over."""
        while True:  # a round may need no call at all (every match a bye): skip it
            matches = self._plan_matches()
            if matches is None:
                self._finished = True
                return None
            matches = np.asarray(matches, dtype=np.intp).reshape(-1, 3)
            if len(matches):
                return matches
            self._learn(matches, np.zeros(0))

    def observe(self, results) -> None:
        """Take the verdicts of the last batch; calls missing from ``results`` failed.

        Raises ``ValueError`` for a verdict on a call not in the batch, a duplicate, or a
        score outside [0, 1].
        """
        if self._pending is None:
            raise RuntimeError("no batch is waiting for verdicts")
        keys, match_of, matches = self._pending
        got = np.asarray(list(results), dtype=np.float64).reshape(-1, 4)
        p, a, b = (got[:, k].astype(np.intp) for k in range(3))
        score = got[:, 3]
        if not np.all((score >= 0) & (score <= 1)):
            raise ValueError("score: expected the first model's score in [0, 1]")
        key = self._key(p, a, b)
        at = np.searchsorted(keys, key).clip(max=max(len(keys) - 1, 0))
        if len(key) and (len(keys) == 0 or np.any(keys[at] != key)):
            raise ValueError("results: a verdict for a call that is not in this batch")
        if np.unique(key).size != key.size:
            raise ValueError("results: the same call was reported twice")
        np.add.at(self.wins, (a, b), score)
        np.add.at(self.wins, (b, a), 1.0 - score)
        self.verdicts_seen += len(key)
        m = match_of[at]
        score_of_i = np.where(a == matches[m, 1], score, 1.0 - score)
        n = len(matches)
        total = np.bincount(m, score_of_i, minlength=n)
        seen = np.bincount(m, minlength=n)
        with np.errstate(invalid="ignore"):
            mean = np.where(seen > 0, total / np.maximum(seen, 1), np.nan)
        self._pending = None
        self._learn(matches, mean)

    # -- results ---------------------------------------------------------------------------

    def scores(self, prior: float = PRIOR) -> np.ndarray:
        """BT strengths (logits) from one fit over every verdict so far."""
        return fit_scores(self.n_models, self.wins, prior)

    def ranking(self) -> np.ndarray:
        """Model indices, best first."""
        return np.argsort(-self.scores(), kind="stable")

    @property
    def games(self) -> np.ndarray:
        """Verdicts per pair, symmetric."""
        return self.wins + self.wins.T

    # -- for subclasses --------------------------------------------------------------------

    def _plan_matches(self) -> np.ndarray | None:
        raise NotImplementedError

    def _learn(self, matches: np.ndarray, score_i: np.ndarray) -> None:
        """``score_i``: mean score of ``matches[:, 1]`` over its verdicts, NaN if none."""

    def _issue(self, matches: np.ndarray) -> list[Call]:
        p, i, j = matches.T
        if np.any(i == j):
            raise AssertionError("a design paired a model with itself")
        m = np.arange(len(matches))
        if self.both_orders:
            cp, cf, cs, cm = np.r_[p, p], np.r_[i, j], np.r_[j, i], np.r_[m, m]
        else:
            flip = self.rng.random(len(matches)) < 0.5
            cp, cf, cs, cm = p, np.where(flip, j, i), np.where(flip, i, j), m
        key = self._key(cp, cf, cs)
        order = np.argsort(key, kind="stable")
        if np.any(np.diff(key[order]) == 0):
            raise AssertionError("a design issued the same call twice in one batch")
        if self.prompt_games is not None:
            np.add.at(self.prompt_games, (i, j, p), 1)
            np.add.at(self.prompt_games, (j, i, p), 1)
        self._pending = (key[order], cm[order], matches)
        self.calls_issued += len(key)
        return [Call(*c) for c in zip(cp.tolist(), cf.tolist(), cs.tolist(), strict=True)]

    def _key(self, p, a, b) -> np.ndarray:
        n = self.n_models
        return (np.asarray(p, np.int64) * n + a) * n + b
