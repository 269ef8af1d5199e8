"""PRP: Pairwise Ranking Prompting (Qin et al. 2023), a per-prompt sorting design.

Each prompt's N answers are sorted on their own by the judge's pairwise preferences; the
output is a ranking per prompt (best-of-N selection), and every verdict also feeds the
run's usual BT board. Every comparison is asked in **both orders** (two calls), and the
two orders' scores are averaged: ``a`` beats ``b`` when the mean score of ``a`` over
both orders is above ½. With verdicts of "A" or "B" only this is the paper's rule: ``a``
beats ``b`` when the judge prefers it in both orders; a disagreement (or a tie, or a
comparison whose calls all failed) is *not a win*, so a sort keeps the current order:
the item already higher stays (the paper's comparator, as in ``llm-rankers``). With
``scoring="probability"`` the scores are the judge's probability of "A" against "B"
(``Judgment.probabilities``, ties half) instead of its discrete verdicts.

Variants (``variant``):

- ``allpair``: all pairs in both orders in one round; ``s_i = Σ_j score(i, j)`` (1 for a
  win in both orders, ½ a disagreement; the soft score with probabilities); ties of
  ``s`` are broken by the initial order.
- ``heapsort``: heapsort with the judge as comparator, stopped after the best ``top``
  have been extracted (``top=None``: a full ranking). O(N log N) comparisons.
- ``sliding``: ``top`` passes of adjacent swaps from the bottom of the list (bubble-sort
  passes, the paper's sliding window of stride 1): after k passes the best k are in place.

The initial order (the tie-break) is a seeded random permutation per prompt. A pair is
never asked twice on one prompt: its first result is kept and reused, so the later
passes of the sliding window pay only for the pairs that moved.

The sorts are sequential (the next comparison depends on the verdicts), so the plan goes
in rounds: each round asks every unfinished prompt's next comparison at once. The state
of all prompts is held in arrays and stepped together (no loop over prompts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .plan import Plan, size_of

VARIANTS = ("allpair", "heapsort", "sliding")
SCORINGS = ("discrete", "probability")


@dataclass(frozen=True)
class PRP:
    """Per-prompt PRP sorting of the contestants' answers (module docstring).

    ``top``: the best this many are ranked (heapsort, sliding); None ranks everyone.
    ``scoring``: "discrete" verdicts, or the judge's "probability" of A against B.
    """

    variant: str = "heapsort"
    top: int | None = 1
    scoring: str = "discrete"
    name: str = "prp"

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(
                f"variant: expected one of {', '.join(VARIANTS)}; got {self.variant!r}"
            )
        if self.scoring not in SCORINGS:
            raise ValueError(
                f"scoring: expected one of {', '.join(SCORINGS)}; got {self.scoring!r}"
            )
        if self.top is not None and not (isinstance(self.top, int) and self.top >= 1):
            raise ValueError(
                f"top: expected a positive number of answers (or null); got {self.top!r}"
            )

    def ranked(self, n_models: int) -> int:
        """How many of the ``n_models`` answers the ranking puts in order, best first."""
        if self.variant == "allpair" or self.top is None:
            return n_models
        return min(self.top, n_models)

    def comparisons(self, n_models: int) -> int:
        """Most comparisons (pairs asked) per prompt; each is two calls."""
        n, pairs = n_models, math.comb(n_models, 2)
        if self.variant == "allpair":
            return pairs
        k = self.ranked(n)
        if self.variant == "sliding":
            passes = min(k, n - 1)
            return min(pairs, sum(n - 1 - p for p in range(passes)))
        depth = lambda i: int(math.floor(math.log2(i + 1)))  # noqa: E731
        build = sum(2 * (depth(n - 1) - depth(i)) for i in range(n // 2))
        extract = sum(2 * depth(m - 1) for m in range(max(n - k + 1, 2), n))
        return min(pairs, build + extract)

    def planned_calls(self, n_models: int, n_prompts: int, both_orders: bool = False) -> int:
        """At most this many calls (always both orders: two per comparison)."""
        return 2 * self.comparisons(n_models) * n_prompts

    def start(self, models, prompts, rng, both_orders=False) -> PrpPlan:
        return PrpPlan(self, size_of(models), size_of(prompts), rng)


class PrpPlan(Plan):
    """All prompts' sorts, stepped together (see the module docstring).

    Attributes
    ----------
    order : ndarray (P, N)
        Each prompt's list of model indices: the heap array for heapsort (the extracted
        best at its end), the list being bubbled for the sliding window.
    score : ndarray (P, N, N)
        ``score[p, a, b]``: mean score of ``a`` against ``b`` over both orders, NaN before
        it is known (or when every call of it failed).
    asked : ndarray of bool (P, N, N)
    prompt_calls : ndarray of int (P,)
        Calls issued per prompt.
    """

    def __init__(self, design: PRP, n_models: int, n_prompts: int, rng):
        super().__init__(n_models, n_prompts, rng, both_orders=True)
        self.design = design
        n, p = n_models, n_prompts
        self.top = design.ranked(n)
        self.order = rng.permuted(np.tile(np.arange(n), (p, 1)), axis=1)
        self.initial = self.order.copy()
        self.score = np.full((p, n, n), np.nan)
        self.asked = np.zeros((p, n, n), dtype=bool)
        self.prompt_calls = np.zeros(p, dtype=np.int64)
        self.finished = np.zeros(p, dtype=bool)
        self.rows = np.arange(p)
        if design.variant == "heapsort":
            self.size = np.full(p, n)  # heap size
            self.build = np.full(p, n // 2 - 1)  # the node the heap is being built from (-1: built)
            self.node = self.build.copy()  # the node being sifted down
            self.largest = self.node.copy()
            # 0: left child against the node, 1: right child against the larger, 2: swap down
            self.stage = np.zeros(p, dtype=np.int8)
            self.taken = np.zeros(p, dtype=np.int64)  # answers extracted (ranked)
        elif design.variant == "sliding":
            self.passes = np.zeros(p, dtype=np.int64)
            self.cursor = np.full(p, n - 1)  # compares order[cursor] with order[cursor - 1]
        self._allpair_asked = False

    # -- the plan protocol -----------------------------------------------------------------

    def _plan_matches(self):
        if self.design.variant == "allpair":
            return self._allpair()
        step = self._heapsort_step if self.design.variant == "heapsort" else self._sliding_step
        while True:  # apply every known result; stop when each prompt waits on a new pair
            waiting, a, b = step()
            if waiting is not None:
                break
        if self.finished.all():
            return None
        p = np.flatnonzero(waiting)
        return np.column_stack([p, a[p], b[p]])

    def _learn(self, matches, score_i):
        if len(matches) == 0:
            return
        p, a, b = matches.T
        self.asked[p, a, b] = self.asked[p, b, a] = True
        self.score[p, a, b] = score_i
        self.score[p, b, a] = 1.0 - score_i
        np.add.at(self.prompt_calls, p, 2)

    # -- comparisons ------------------------------------------------------------------------

    def beats(self, p, a, b) -> np.ndarray:
        """``a`` beats ``b`` on prompt ``p``: mean score over both orders above ½ (a tie,
        a disagreement or a failed comparison is not a win)."""
        with np.errstate(invalid="ignore"):
            return self.score[p, a, b] > 0.5

    def _allpair(self):
        if self._allpair_asked:
            self.finished[:] = True
            return None
        self._allpair_asked = True
        i, j = np.triu_indices(self.n_models, k=1)
        p = np.repeat(self.rows, i.size)
        return np.column_stack([p, np.tile(i, self.n_prompts), np.tile(j, self.n_prompts)])

    def _heapsort_step(self):
        """One transition of every unfinished prompt whose next comparison is known.

        Returns (None, None, None) when a transition happened (call again), else
        (waiting mask, a, b): the pair each waiting prompt needs.
        """
        live = ~self.finished
        rows, o, node, size = self.rows, self.order, self.node, self.size
        child = 2 * node + 1 + self.stage  # stage 0: left child, stage 1: right child
        has_child = live & (self.stage < 2) & (child < size)
        lacks_child = live & (self.stage < 2) & (child >= size)
        against = np.where(self.stage == 0, node, self.largest)
        c = child.clip(max=self.n_models - 1)
        a, b = o[rows, c], o[rows, against]
        known = has_child & self.asked[rows, a, b]
        wins = known & self.beats(rows, a, b)
        moved = lacks_child | known
        self.largest = np.where(wins, child, self.largest)
        self.stage = np.where(moved, np.where(self.stage == 0, 1, 2), self.stage).astype(np.int8)
        # Stage 2 (of prompts that were at 2 before this step): swap down, or end the sift.
        settle = live & ~moved & (self.stage == 2)
        down = settle & (self.largest != node)
        if down.any():
            r, x, y = rows[down], node[down], self.largest[down]
            o[r, x], o[r, y] = o[r, y], o[r, x].copy()
            self.node = np.where(down, self.largest, self.node)
            self.stage = np.where(down, 0, self.stage).astype(np.int8)
        ended = settle & ~down
        building = ended & (self.build > 0)
        self.build = np.where(building, self.build - 1, self.build)
        extract = ended & ~building
        self.build = np.where(extract, -1, self.build)
        if extract.any():  # the root is the best left: move it behind the heap
            r, last = rows[extract], self.size[extract] - 1
            o[r, 0], o[r, last] = o[r, last], o[r, 0].copy()
            self.size = np.where(extract, self.size - 1, self.size)
            self.taken = np.where(extract, self.taken + 1, self.taken)
            self.finished |= extract & ((self.taken >= self.top) | (self.size <= 1))
        restart = (building | extract) & ~self.finished
        self.node = np.where(building, self.build, np.where(extract, 0, self.node))
        self.largest = np.where(restart, self.node, self.largest)
        self.stage = np.where(restart, 0, self.stage).astype(np.int8)
        if (moved | settle).any():
            return None, None, None
        return has_child, a, b

    def _sliding_step(self):
        """One transition of every unfinished prompt whose next comparison is known (see
        :meth:`_heapsort_step` for what it returns)."""
        live = ~self.finished
        rows, o, cur = self.rows, self.order, self.cursor
        below, above = o[rows, cur], o[rows, (cur - 1).clip(min=0)]
        known = live & self.asked[rows, below, above]
        swap = known & self.beats(rows, below, above)
        if swap.any():
            r, x = rows[swap], cur[swap]
            o[r, x], o[r, x - 1] = o[r, x - 1], o[r, x].copy()
        self.cursor = np.where(known, cur - 1, cur)
        pass_done = known & (self.cursor <= self.passes)
        self.passes = np.where(pass_done, self.passes + 1, self.passes)
        self.cursor = np.where(pass_done, self.n_models - 1, self.cursor)
        self.finished |= pass_done & (
            (self.passes >= self.top) | (self.passes >= self.n_models - 1)
        )
        if known.any():
            return None, None, None
        return live, below, above

    # -- results ----------------------------------------------------------------------------

    def rankings(self) -> np.ndarray:
        """(P, N) model indices per prompt, best first. The first :attr:`top` are ranked
        (once the prompt is finished); the rest follow in no meaningful order."""
        if self.design.variant == "heapsort":
            return self.order[:, ::-1].copy()
        if self.design.variant == "sliding":
            return self.order.copy()
        points = np.take_along_axis(self.points(), self.initial, axis=1)  # in initial order
        ranked = np.argsort(-points, axis=1, kind="stable")  # ties keep the initial order
        return np.take_along_axis(self.initial, ranked, axis=1)

    def points(self) -> np.ndarray:
        """(P, N) allpair points per model (``Σ_j score``, NaN as a tie), for every variant:
        over the pairs asked only."""
        with np.errstate(invalid="ignore"):
            s = np.where(self.asked, np.where(np.isnan(self.score), 0.5, self.score), 0.0)
        return s.sum(axis=2)

    def report(self) -> dict:
        """The finished prompts' rankings (model and prompt indices), for the run page."""
        done = np.flatnonzero(self.finished)
        ranking = self.rankings()
        best = np.bincount(ranking[done, 0], minlength=self.n_models)
        return {
            "sorting": self.design.variant,
            "top": self.top,
            "scoring": self.design.scoring,
            "prompts_done": int(done.size),
            "best_counts": [  # how often each model's answer was the best one
                {"model": int(m), "prompts": int(best[m])}
                for m in np.argsort(-best, kind="stable")
                if best[m] > 0
            ],
            "prompts": [
                {
                    "prompt": int(p),
                    "ranking": ranking[p].tolist(),
                    "calls": int(self.prompt_calls[p]),
                }
                for p in done.tolist()
            ],
        }
