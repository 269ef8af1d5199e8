"""Transitivity of one judge's pairwise preferences among answers to the same prompt.

Within a group (the outputs of several models for one prompt), each judged pair gets a
relation from the sign of its net wins over all its judgments (both orders, repeats):
``i > j``, ``j > i`` or a tie (net 0, e.g. the two orders disagreed). With ``W`` the
strict "beats" adjacency matrix, ``S = W + Wᵀ`` (strictly decided pairs), ``T`` the
tie pairs and ``J = S + T`` (judged pairs), per group::

    3-cycles (i > j > k > i)                 = tr(W³) / 3
    strictly decided triples                 = tr(S³) / 6
    judged triples                           = tr(J³) / 6
    tie contradictions (i = j = k, i ≠ k)    = Σ_{i<k} S_ik (T²)_ik

TrustJudge (arXiv:2509.21117) calls both kinds "pairwise transitivity inconsistency":
circular chains and equivalence contradictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimate import LEVEL, N_BOOT, Estimate, bootstrap_estimate, patterns
from .estimate import ratio_statistic as _ratio
from .verdicts import FIRST, INVALID, MISSING, SECOND, as_verdicts


@dataclass(frozen=True)
class Transitivity:
    """Intransitive triples of one judge.

    Attributes
    ----------
    cycle_share : Estimate
        3-cycles / strictly decided triples (bootstrap over groups; ``n`` = groups).
    tie_contradiction_share : Estimate
        Triples with two ties and one strict preference / judged triples.
    n_cycles, n_strict_triples, n_tie_contradictions, n_judged_triples : int
    """

    cycle_share: Estimate
    tie_contradiction_share: Estimate
    n_cycles: int
    n_strict_triples: int
    n_tie_contradictions: int
    n_judged_triples: int

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["cycle_share"] = self.cycle_share.as_dict()
        d["tie_contradiction_share"] = self.tie_contradiction_share.as_dict()
        return d


def net_wins(group, i, j, verdicts) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the antisymmetric matrix of net wins and the judged-pair mask.

    Parameters
    ----------
    group : array_like, shape (n,)
        Group label of each judgment (the prompt).
    i, j : array_like, shape (n,)
        Labels of the two answers compared (answer A = ``i``).
    verdicts : array_like of int, shape (n,)
        Answer-terms verdicts; A means ``i`` won. INVALID and MISSING are ignored;
        ties and both-bad mark the pair as judged without a winner.

    Returns
    -------
    net : ndarray of int, shape (n_groups, K, K)
        ``net[g, i, j]`` = wins of i over j minus wins of j over i.
    judged : ndarray of bool, shape (n_groups, K, K)
    """
    v = as_verdicts(verdicts)
    keep = (v != MISSING) & (v != INVALID)
    _, g = np.unique(np.asarray(group)[keep], return_inverse=True)
    _, ij = np.unique(
        np.concatenate([np.asarray(i)[keep], np.asarray(j)[keep]]), return_inverse=True
    )
    a, b = np.split(ij, 2)
    v = v[keep]
    n_groups = int(g.max()) + 1 if g.size else 0
    k = int(ij.max()) + 1 if ij.size else 0
    net = np.zeros((n_groups, k, k), dtype=np.int64)
    judged = np.zeros(net.shape, dtype=bool)
    sign = np.where(v == FIRST, 1, np.where(v == SECOND, -1, 0))
    np.add.at(net, (g, a, b), sign)
    np.add.at(net, (g, b, a), -sign)
    judged[g, a, b] = True
    judged[g, b, a] = True
    return net, judged


def triple_counts(net: np.ndarray, judged: np.ndarray) -> dict[str, np.ndarray]:
    """Per group counts of cycles and triples (see the module docstring)."""
    w = (net > 0).astype(np.float64)
    s = w + np.swapaxes(w, 1, 2)
    t = (judged & (net == 0)).astype(np.float64)
    for m in (s, t):
        idx = np.arange(m.shape[1])
        m[:, idx, idx] = 0
    jm = s + t

    def trace_cube(m):
        return np.einsum("gij,gjk,gki->g", m, m, m)

    return {
        "cycles": np.rint(trace_cube(w) / 3),
        "strict": np.rint(trace_cube(s) / 6),
        "judged": np.rint(trace_cube(jm) / 6),
        "tie_contradictions": np.rint(np.einsum("gik,gij,gjk->g", s, t, t) / 2),
    }


def transitivity_violations(
    group, i, j, verdicts, rng=None, n_boot: int = N_BOOT, level: float = LEVEL
) -> Transitivity:
    """Share of 3-cycles among answer triples, for one judge over groups of answers.

    See the module docstring for definitions. Intervals: bootstrap over groups (a
    prompt's triples share answers, so they are resampled together).
    """
    net, judged = net_wins(group, i, j, verdicts)
    c = triple_counts(net, judged)
    (cyc, strict, tie, jud), counts = patterns(
        c["cycles"], c["strict"], c["tie_contradictions"], c["judged"]
    )
    return Transitivity(
        cycle_share=bootstrap_estimate(_ratio(cyc, strict), counts, rng, n_boot, level),
        tie_contradiction_share=bootstrap_estimate(_ratio(tie, jud), counts, rng, n_boot, level),
        n_cycles=int(c["cycles"].sum()),
        n_strict_triples=int(c["strict"].sum()),
        n_tie_contradictions=int(c["tie_contradictions"].sum()),
        n_judged_triples=int(c["judged"].sum()),
    )
