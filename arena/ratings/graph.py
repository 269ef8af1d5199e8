"""Health of the comparison graph: can these votes be fitted at all?

Two things break a Bradley-Terry fit:

- **Disconnected models.** If the comparison graph (an edge for every pair that met)
  has several connected components, ratings in different components share no scale:
  any shift of one component fits the votes equally well.
- **No MLE.** The maximum-likelihood strengths exist (and are unique up to a shift) iff
  the directed "beats" graph — an edge ``j → i`` when ``i`` scored against ``j``, a tie
  or both-bad vote counting both ways — is strongly connected (Zermelo 1929, Ford
  1957, Hunter 2004 assumption 1). A model that never lost is pushed to ``+∞``, one
  that never won to ``-∞``.

:func:`check_graph` reports both; the leaderboard then fits with a small Gaussian
prior (finite, shrunk ratings), labels every row with its component, and shows the
report's messages — never a crash and never a silently arbitrary number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .counts import BOTH_BAD, FIRST, SECOND, TIE, PairwiseCounts


@dataclass(frozen=True)
class GraphReport:
    """What the UI shows above a leaderboard.

    Attributes
    ----------
    models : tuple of str
    component : ndarray of int, shape (n,)
        Connected component of each model; 0 is the largest.
    n_components : int
    never_won, never_lost : tuple of str
        Models with votes but no (half-)win, or no (half-)loss.
    no_votes : tuple of str
    strongly_connected : bool
        The MLE exists and is unique up to a shift.
    """

    models: tuple[str, ...]
    component: np.ndarray
    n_components: int
    never_won: tuple[str, ...]
    never_lost: tuple[str, ...]
    no_votes: tuple[str, ...]
    strongly_connected: bool

    @property
    def connected(self) -> bool:
        return self.n_components <= 1

    @property
    def mle_exists(self) -> bool:
        return self.strongly_connected

    def messages(self) -> list[str]:
        """Plain-language warnings, empty when the graph is healthy."""
        out = []
        if self.no_votes:
            out.append(f"no votes yet for: {', '.join(self.no_votes)}")
        if self.n_components > 1:
            sizes = np.bincount(self.component)
            out.append(
                f"the models fall into {self.n_components} groups that were never compared "
                f"with each other (sizes {', '.join(map(str, sizes))}); ratings are only "
                "comparable within a group"
            )
        if self.never_lost:
            out.append(f"never lost a vote (rating unbounded above): {', '.join(self.never_lost)}")
        if self.never_won:
            out.append(f"never won a vote (rating unbounded below): {', '.join(self.never_won)}")
        if not self.strongly_connected and not out:
            out.append("some group of models never lost to the rest; their ratings are unbounded")
        return out

    def as_dict(self) -> dict:
        return {
            "connected": self.connected,
            "n_components": self.n_components,
            "component": {m: int(c) for m, c in zip(self.models, self.component, strict=True)},
            "never_won": list(self.never_won),
            "never_lost": list(self.never_lost),
            "no_votes": list(self.no_votes),
            "mle_exists": self.mle_exists,
            "warnings": self.messages(),
        }


def check_graph(counts: PairwiseCounts, *, bothbad: str = "tie") -> GraphReport:
    """Connected components and MLE existence for ``counts`` (ties count both ways).

    Parameters
    ----------
    counts : PairwiseCounts
    bothbad : {"tie", "drop"}
        Whether both-bad votes link the two models (as they do in the fit).
    """
    n = counts.n_models
    keep = counts.weight > 0
    if bothbad == "drop":
        keep &= counts.outcome != BOTH_BAD
    first, second, outcome = counts.first[keep], counts.second[keep], counts.outcome[keep]
    # i "scores against" j: i won, or it was a tie; edge j -> i.
    first_scores = (outcome == FIRST) | (outcome == TIE) | (outcome == BOTH_BAD)
    second_scores = (outcome == SECOND) | (outcome == TIE) | (outcome == BOTH_BAD)
    src = np.r_[second[first_scores], first[second_scores]]
    dst = np.r_[first[first_scores], second[second_scores]]
    beats = sp.csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
    met = sp.csr_matrix((np.ones(first.size), (first, second)), shape=(n, n))
    n_comp, label = connected_components(met, directed=False)
    n_strong, _ = connected_components(beats, directed=True, connection="strong")
    label = _largest_first(label, n_comp)
    voted = (np.bincount(first, minlength=n) + np.bincount(second, minlength=n)) > 0
    scored = np.asarray(beats.sum(axis=0)).ravel() > 0  # in-edges: times it scored
    conceded = np.asarray(beats.sum(axis=1)).ravel() > 0
    models = counts.models
    return GraphReport(
        models=models,
        component=label,
        n_components=int(n_comp),
        never_won=tuple(models[i] for i in np.flatnonzero(voted & ~scored)),
        never_lost=tuple(models[i] for i in np.flatnonzero(voted & ~conceded)),
        no_votes=tuple(models[i] for i in np.flatnonzero(~voted)),
        strongly_connected=bool(n_strong == 1 and n > 0),
    )


def _largest_first(label: np.ndarray, n_comp: int) -> np.ndarray:
    sizes = np.bincount(label, minlength=n_comp)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(n_comp, int)
    rank[order] = np.arange(n_comp)
    return rank[label]


def strongly_connected_columns(
    n_models: int,
    first: np.ndarray,
    second: np.ndarray,
    first_scored: np.ndarray,
    second_scored: np.ndarray,
) -> np.ndarray:
    """MLE existence for many data sets on the same rows at once.

    Parameters
    ----------
    first, second : ndarray of intp, shape (R,)
    first_scored, second_scored : ndarray of bool, shape (R, B)
        Whether ``first`` (``second``) scored against the other in row ``r`` of data set
        ``b``.

    Returns
    -------
    ndarray of bool, shape (B,)
        True where the "beats" graph is strongly connected (checked on one
        block-diagonal graph of ``n · B`` nodes).
    """
    n_sets = first_scored.shape[1]
    offset = np.arange(n_sets) * n_models
    r1, b1 = np.nonzero(first_scored)
    r2, b2 = np.nonzero(second_scored)
    src = np.r_[second[r1] + offset[b1], first[r2] + offset[b2]]
    dst = np.r_[first[r1] + offset[b1], second[r2] + offset[b2]]
    size = n_models * n_sets
    graph = sp.csr_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(size, size))
    _, label = connected_components(graph, directed=True, connection="strong")
    per_set = label.reshape(n_sets, n_models)
    return np.all(per_set == per_set[:, :1], axis=1)
