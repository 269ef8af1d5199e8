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
``"thompson"``
    Adjacent pairs of posterior draws: draw ``draws`` strength vectors from the Gaussian
    (Laplace) posterior ``N(s, Σ)`` (per-contestant variances: independent draws) and
    sort each. Each draw spreads ``1 - focus`` of its mass over its ``n - 1`` adjacent
    pairs (the order everywhere: Kendall τ) and ``focus`` on the pair at its ranks
    ``top`` and ``top + 1`` (the boundary of the top set, Thompson sampling for top-k
    identification); a pair's share is its mass averaged over the draws (eligible pairs
    only). The draws come from a fixed ``seed``, so the same board gives the same
    probabilities and the stored probability is exact. Mixed with uniform.
``"misorder"``
    Pairs whose order is likely wrong, where one vote removes much of the doubt
    (Kendall τ counts misordered pairs; the top set is right when no pair across its
    boundary is). Under the Gaussian (Laplace) posterior the difference
    ``d = s_i - s_j`` is ``N(Δ, v)``; its fitted sign is wrong with probability
    ``Φ(-|Δ|/√v)``, and one more vote (Fisher information ``p(1 - p)``) shrinks ``v``
    to ``v' = v / (1 + p(1 - p) v)``. A pair's gain is the product

    .. math:: g_{ij} = Φ\\bigl(-|Δ_{ij}|/\\sqrt{v_{ij}}\\bigr)\\,
              \\frac{p_{ij}(1 - p_{ij})\\, v_{ij}}{1 + p_{ij}(1 - p_{ij})\\, v_{ij}}

    (the probability the order is wrong times the share of the doubt one vote removes:
    information gain aimed at τ, which tolerates a few misordered pairs, so a pair of
    near-equals already known to be near-equal gets little; the exact one-step drop
    of the misorder probability, :func:`arena.matchmaking.adaptive.misorder_after`,
    spent votes on such ties and did worse in ``bench/judging.py``'s tuning). The top
    set tolerates none: ``focus`` of the non-floor mass goes to the pairs across the
    fitted top ``top``'s boundary in proportion to ``Φ(-|Δ|/√v)`` alone (the pairs
    still in doubt, near-ties included, as top-k identification samples them),
    ``1 - focus`` to all pairs by ``g``, and the uniform floor keeps the graph
    connected and re-weighting bounded:
    ``P(i, j) = (1 - floor)((1 - focus) g_ij / Σ g + focus · b_ij m_ij / Σ b m) + floor / P``
    (``m_ij = Φ(-|Δ_ij|/√v_ij)``; ``b_ij``: one of the pair in the fitted top set, the
    other not).
``"ucb"``
    After K-Sort Arena's exploration-exploitation matchmaking (Li et al. 2024,
    arXiv:2408.14468: a UCB on the score gap ``|S_i - S_q|`` with the bonus
    ``α √(ln n / n_iq)``, similar strengths exploited, seldom-compared pairs explored).
    Here a designated contestant ``i`` (uniformly at random) meets the opponent
    minimising ``|s_i - s_q| - α √(ln V / (1 + n_iq))`` (``V`` votes in all, ``n_iq`` on
    the pair, ``s`` in logits; ties share equally).
    ``P(i, j) = (1 - floor)(δ_{j = q*(i)} + δ_{i = q*(j)}) / n + floor / P``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from ._fit import _sigmoid, difference_variance

POLICIES = ("uniform", "boost-new", "info-gain", "misorder", "thompson", "ucb")

NEW_VOTES = 300  # the default of settings.ARENA_NEW_CONTESTANT_VOTES
NEW_BOOST = 3.0  # the default of settings.ARENA_NEW_CONTESTANT_BOOST
FLOOR = 0.2
UCB_ALPHA = 0.5  # logits; see "ucb" in the module docstring
THOMPSON_DRAWS = 256
TOP = 10  # "thompson", "misorder": the top set whose boundary gets a share ``focus``
FOCUS = 0.25  # "thompson": of each draw's mass
MISORDER_FOCUS = 0.5  # "misorder": of the non-floor mass


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
    pair_votes: np.ndarray | None = None,
    alpha: float = UCB_ALPHA,
    seed: int = 0,
    top: int = TOP,
    focus: float | None = None,
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
        Every policy but "uniform" and "boost-new": probability mass spread uniformly
        over all pairs (exploration, and a bound ``P / floor`` on re-weighting).
    new_votes, boost : int, float
        "boost-new" only: contestants with fewer than ``new_votes`` votes weigh ``boost``
        (pass ``settings.ARENA_NEW_CONTESTANT_VOTES`` / ``..._BOOST``).
    pair_votes : ndarray, shape (P,), optional
        "ucb" only: votes on each eligible pair so far (default none).
    alpha : float
        "ucb" only: weight of the exploration bonus, in logits.
    seed : int
        "thompson" only: seed of the posterior draws.
    top, focus : int, float
        "thompson": the share ``focus`` of each draw goes to the boundary of its top
        ``top`` (0: adjacent pairs only; default ``FOCUS``); "misorder": the share
        ``focus`` of the non-floor mass goes to pairs across the fitted top ``top``'s
        boundary (default ``MISORDER_FOCUS``).

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
    if policy not in POLICIES:
        raise ValueError(
            f"policy: unknown matchmaking policy {policy!r}; known: {', '.join(POLICIES)}"
        )
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor: expected a probability in [0, 1], got {floor}")
    if policy == "info-gain":
        share = _normalise(expected_information(strengths, variances, pairs))
    elif policy == "misorder":
        focus = MISORDER_FOCUS if focus is None else focus
        share = likely_misordered(strengths, variances, pairs, top=top, focus=focus)
    elif policy == "thompson":
        focus = FOCUS if focus is None else focus
        share = adjacent_in_draws(strengths, variances, pairs, seed=seed, top=top, focus=focus)
    else:
        share = closest_opponents(strengths, pairs, pair_votes, alpha)
    return (1.0 - floor) * share + floor / len(pairs)


def expected_information(
    strengths: np.ndarray, variances: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """``g_ij = ½ log(1 + p_ij (1 - p_ij) v_ij)`` per pair (module docstring), in nats.

    ``inf`` where ``v_ij`` is infinite.
    """
    s, pairs, v = _pair_state(strengths, variances, pairs)
    p = _sigmoid(s[pairs[:, 0]] - s[pairs[:, 1]])
    return 0.5 * np.log1p(p * (1.0 - p) * v)


def misorder_gain(
    strengths: np.ndarray, variances: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, ``(Φ(-|Δ|/√v), p(1 - p) v / (1 + p(1 - p) v))`` ("misorder"): the
    probability its fitted order is wrong and the share of its doubt one vote removes.

    ``(0.5, 1)`` where ``v`` is infinite (a contestant never rated).
    """
    s, pairs, v = _pair_state(strengths, variances, pairs)
    d = s[pairs[:, 0]] - s[pairs[:, 1]]
    p = _sigmoid(d)
    info = p * (1.0 - p) * v
    unrated = np.isinf(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        wrong = np.where(unrated, 0.5, np.nan_to_num(ndtr(-np.abs(d) / np.sqrt(v))))
        removed = np.where(unrated, 1.0, np.nan_to_num(info / (1.0 + info)))
    return wrong, removed


def likely_misordered(
    strengths: np.ndarray,
    variances: np.ndarray,
    pairs: np.ndarray,
    *,
    top: int = TOP,
    focus: float = MISORDER_FOCUS,
) -> np.ndarray:
    """Each eligible pair's share under "misorder" (module docstring), no floor."""
    if not 0.0 <= focus <= 1.0:
        raise ValueError(f"focus: expected a share in [0, 1], got {focus}")
    wrong, removed = misorder_gain(strengths, variances, pairs)
    share = _normalise(wrong * removed)
    s = np.asarray(strengths, dtype=np.float64)
    inside = np.zeros(s.size, dtype=bool)
    inside[np.argsort(-s, kind="stable")[:top]] = True
    across = inside[pairs[:, 0]] != inside[pairs[:, 1]]
    if focus == 0 or not (wrong[across] > 0).any():
        return share
    return (1.0 - focus) * share + focus * _normalise(np.where(across, wrong, 0.0))


def adjacent_in_draws(
    strengths: np.ndarray,
    variances: np.ndarray,
    pairs: np.ndarray,
    *,
    draws: int = THOMPSON_DRAWS,
    seed: int = 0,
    top: int = 0,
    focus: float = 0.0,
) -> np.ndarray:
    """Each eligible pair's share of adjacency in posterior draws ("thompson").

    Sums to 1 over the eligible pairs (uniform if no draw puts an eligible pair side by
    side). An unrated contestant (infinite variance) is drawn with a variance of 100
    logits², i.e. anywhere on the board.
    """
    s, pairs, _ = _pair_state(strengths, variances, pairs)
    n = s.size
    var = np.asarray(variances, dtype=np.float64)
    own = np.minimum(var if var.ndim == 1 else np.diagonal(var), 100.0)
    z = np.random.default_rng(seed).standard_normal((draws, n))
    if var.ndim == 2 and np.all(np.isfinite(var)):
        try:
            theta = s + z @ np.linalg.cholesky(var + 1e-12 * np.eye(n)).T
        except np.linalg.LinAlgError:  # not positive definite: independent draws
            theta = s + z * np.sqrt(own)
    else:
        theta = s + z * np.sqrt(own)
    order = np.argsort(-theta, axis=1)
    lo = np.minimum(order[:, :-1], order[:, 1:]).ravel()
    hi = np.maximum(order[:, :-1], order[:, 1:]).ravel()
    index = np.full((n, n), -1, dtype=np.intp)
    index[pairs.min(axis=1), pairs.max(axis=1)] = np.arange(len(pairs))
    hit = index[lo, hi]
    weight = np.full((draws, n - 1), (1.0 - focus) / (n - 1))
    if 0 < top < n:  # the draw's boundary of the top set: its top-th and (top + 1)-th
        weight[:, top - 1] += focus
    weight = weight.ravel()
    count = np.bincount(hit[hit >= 0], weight[hit >= 0], minlength=len(pairs))
    return _normalise(count)


def closest_opponents(
    strengths: np.ndarray,
    pairs: np.ndarray,
    pair_votes: np.ndarray | None = None,
    alpha: float = UCB_ALPHA,
) -> np.ndarray:
    """Probability of each eligible pair under K-Sort's opponent rule ("ucb"), no floor.

    A designated contestant, uniform among those with an eligible pair, meets the
    opponent minimising ``|s_i - s_q| - α √(ln V / (1 + n_iq))``; ties share.
    """
    s = np.asarray(strengths, dtype=np.float64)
    if s.ndim != 1 or not np.all(np.isfinite(s)):
        raise ValueError("strengths: expected a finite 1-d array")
    pairs = _check_pairs(pairs, s.size)
    votes = np.zeros(len(pairs)) if pair_votes is None else np.asarray(pair_votes, float)
    if votes.shape != (len(pairs),) or np.any(votes < 0):
        raise ValueError(f"pair_votes: expected {len(pairs)} non-negative counts")
    bonus = alpha * np.sqrt(np.log(max(votes.sum(), 2.0)) / (1.0 + votes))
    cost = np.abs(s[pairs[:, 0]] - s[pairs[:, 1]]) - bonus
    # both orientations: (designated, opponent, pair index, cost)
    designated = np.r_[pairs[:, 0], pairs[:, 1]]
    k = np.r_[np.arange(len(pairs)), np.arange(len(pairs))]
    c = np.r_[cost, cost]
    best = np.full(s.size, np.inf)
    np.minimum.at(best, designated, c)
    chosen = np.isclose(c, best[designated], rtol=0.0, atol=1e-12)
    ties = np.bincount(designated[chosen], minlength=s.size)
    players = np.count_nonzero(ties)
    share = np.zeros(len(pairs))
    np.add.at(share, k[chosen], 1.0 / (players * ties[designated[chosen]]))
    return share


def _pair_state(strengths, variances, pairs):
    """Checked strengths, pairs and ``Var(s_i - s_j)`` per pair (inf: unrated)."""
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
    return s, pairs, np.maximum(v, 0.0)  # a covariance's rounding error, never a real negative


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
