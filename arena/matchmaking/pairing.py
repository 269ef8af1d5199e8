"""Live pairing policies for human battles: a probability for every eligible pair.

The battle page draws one pair at a time and stores the probability it was drawn with
(so analyses can re-weight votes by ``1 / probability``). Every policy returns the full
probability vector over the eligible (unordered) pairs, so that probability is exact.

Policies
--------
``"uniform"``
    Every eligible pair equally likely.
``"boost-new"``
    ``P(i, j) ∝ b_i · b_j`` with ``b_i = boost`` if contestant ``i`` has fewer than
    ``new_votes`` votes, else 1 (the rule of :func:`arena.battles.contestant_weights`),
    so newcomers get rated fast.
``"info-gain"``
    Favour pairs whose outcome is most uncertain *and* whose rating difference is least
    known. One comparison of ``i`` and ``j`` carries Fisher information
    ``p_ij (1 - p_ij)``, ``p_ij = σ(s_i - s_j)``, about ``d = s_i - s_j``; with the
    difference's current variance ``v_ij``, the expected information gain of one vote
    under the Gaussian (Laplace) approximation of the BT posterior is

    .. math:: g_{ij} = \\tfrac12 \\log\\bigl(1 + p_{ij}(1 - p_{ij})\\, v_{ij}\\bigr)
              \\approx \\tfrac12\\, p_{ij}(1 - p_{ij})\\, v_{ij},

    also the log-determinant gain of the Fisher information (D-optimal design). It is
    mixed with uniform so every pair keeps a floor probability:
    ``P(i, j) = (1 - floor) · g_ij / Σ g + floor / P`` (re-weighting by
    ``1 / P(i, j)`` stays bounded by ``P / floor``).
    ``v_ij = σ_i² + σ_j²`` from per-contestant variances, or ``Σ_ii + Σ_jj - 2 Σ_ij``
    from a covariance matrix (bootstrap, or :func:`arena.matchmaking.laplace_covariance`).
    A pair with an infinite variance (a contestant never rated) is maximally
    informative: such pairs share the non-floor mass equally.
"""

from __future__ import annotations

import numpy as np

from ._fit import _sigmoid, difference_variance

POLICIES = ("uniform", "boost-new", "info-gain")

NEW_VOTES = 300  # the default of settings.ARENA_NEW_CONTESTANT_VOTES
NEW_BOOST = 3.0  # the default of settings.ARENA_NEW_CONTESTANT_BOOST
FLOOR = 0.2


def pair_weights(
    policy: str,
    strengths: np.ndarray,
    variances: np.ndarray,
    pairs: np.ndarray,
    votes: np.ndarray,
    *,
    floor: float = FLOOR,
    new_votes: int = NEW_VOTES,
    boost: float = NEW_BOOST,
) -> np.ndarray:
    """Probability of drawing each eligible pair under ``policy``.

    Parameters
    ----------
    policy : {"uniform", "boost-new", "info-gain"}
    strengths : ndarray, shape (n,)
        Current BT strengths (natural-log units); used by "info-gain".
    variances : ndarray, shape (n,) or (n, n)
        Per-contestant variances of the strengths, or their covariance matrix; used by
        "info-gain" (``np.inf`` marks a contestant without any rating yet).
    pairs : ndarray of int, shape (P, 2)
        Eligible pairs, as indices into ``strengths``.
    votes : ndarray, shape (n,)
        Votes per contestant so far; used by "boost-new".
    floor : float in [0, 1]
        "info-gain" only: probability mass spread uniformly over all pairs.
    new_votes, boost : int, float
        "boost-new" only: contestants with fewer than ``new_votes`` votes weigh ``boost``
        (pass ``settings.ARENA_NEW_CONTESTANT_VOTES`` / ``..._BOOST``).

    Returns
    -------
    ndarray, shape (P,)
        Non-negative, sums to 1.
    """
    n = len(strengths)
    pairs = _check_pairs(pairs, n)
    if policy == "uniform":
        return np.full(len(pairs), 1.0 / len(pairs))
    if policy == "boost-new":
        votes = np.asarray(votes)
        if votes.shape != (n,):
            raise ValueError(f"votes: expected one count per contestant, shape ({n},)")
        if boost <= 0:
            raise ValueError("boost: must be positive")
        b = np.where(votes < new_votes, float(boost), 1.0)
        w = b[pairs[:, 0]] * b[pairs[:, 1]]
        return w / w.sum()
    if policy == "info-gain":
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"floor: expected a probability in [0, 1], got {floor}")
        gain = expected_information(strengths, variances, pairs)
        return (1.0 - floor) * _normalise(gain) + floor / len(pairs)
    raise ValueError(f"policy: unknown matchmaking policy {policy!r}; known: {', '.join(POLICIES)}")


def expected_information(
    strengths: np.ndarray, variances: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """``g_ij = ½ log(1 + p_ij (1 - p_ij) v_ij)`` per pair (module docstring), in nats.

    ``inf`` where ``v_ij`` is infinite.
    """
    s = np.asarray(strengths, dtype=np.float64)
    if s.ndim != 1 or not np.all(np.isfinite(s)):
        raise ValueError("strengths: expected a finite 1-d array")
    pairs = _check_pairs(pairs, s.size)
    first, second = pairs[:, 0], pairs[:, 1]
    var = np.asarray(variances, dtype=np.float64)
    if var.shape in ((s.size,), (s.size, s.size)):
        own = var if var.ndim == 1 else np.diagonal(var)
        if np.any(np.isnan(var)) or np.any(own < 0):
            raise ValueError("variances: must be non-negative (inf marks an unrated contestant)")
    if var.shape == (s.size,):
        v = var[first] + var[second]
    elif var.shape == (s.size, s.size):
        with np.errstate(invalid="ignore"):  # inf - inf for an unrated contestant
            v = difference_variance(var, first, second)
        unrated = ~np.isfinite(np.diagonal(var))
        v = np.where(unrated[first] | unrated[second], np.inf, v)
    else:
        raise ValueError(f"variances: expected shape ({s.size},) or ({s.size}, {s.size})")
    v = np.maximum(v, 0.0)  # a covariance's rounding error, never a real negative
    p = _sigmoid(s[first] - s[second])
    return 0.5 * np.log1p(p * (1.0 - p) * v)


def draw_pair(probabilities: np.ndarray, rng: np.random.Generator) -> tuple[int, float]:
    """Draw one pair index from :func:`pair_weights`; return it with its exact probability."""
    k = int(rng.choice(len(probabilities), p=probabilities))
    return k, float(probabilities[k])


def _normalise(gain: np.ndarray) -> np.ndarray:
    infinite = np.isinf(gain)
    if infinite.any():  # the limit of g / Σg as some variances grow without bound
        return infinite / infinite.sum()
    total = gain.sum()
    if total <= 0:  # nothing left to learn anywhere: uniform
        return np.full(gain.size, 1.0 / gain.size)
    return gain / total


def _check_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=np.intp)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
        raise ValueError("pairs: expected a non-empty (P, 2) array of contestant indices")
    if pairs.min() < 0 or pairs.max() >= n:
        raise ValueError("pairs: contestant index out of range")
    if np.any(pairs[:, 0] == pairs[:, 1]):
        raise ValueError("pairs: a contestant cannot be paired with itself")
    return pairs
