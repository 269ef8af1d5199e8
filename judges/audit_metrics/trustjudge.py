"""TrustJudge (Wang et al., arXiv:2509.21117): probability-aware scores and pair relations,
and the paper's two inconsistency measures.

Discrete judging loses information twice: a single-answer rating keeps only the sampled
rating token (two answers rated 7 look equal although one had most of its mass on 8), and
a pair judged in both orders becomes a tie whenever the orders disagree (which makes
"A = B = C but A > C" triples). TrustJudge keeps the judge's token probabilities:

- **distribution-sensitive score** (:func:`expected_scores`): the expectation of the
  rating over the rating tokens' probabilities, renormalised over the valid ratings,
  ``s = Σ_r r p(r) / Σ_r p(r)``. On a fine scale (1-100) an endpoint returns only the top
  20 alternatives of the rating token; there the paper's code
  (``ConflictCalculator.compute_softmax_weighted_score``) weights each returned rating by
  a softmax of its logit ``log(p / (1 - p)) / T`` with ``T = 0.2``
  (:data:`FINE_SCALE_TEMPERATURE`), which :func:`scale_temperature` picks for scales of
  more than 20 ratings.
- **likelihood-aware aggregation** (:func:`likelihood_relation`): the pair's relation is
  the argmax of the win / loss / tie probabilities summed over both orders (the second
  order's swapped back to the pair's terms); with a ``tolerance``, a margin
  ``(first - second) / 2`` below it is a tie (``NonTransitivityCalculator``, method
  ``likelihood``). When a reply has no verdict probabilities,
  :func:`perplexity_relation` keeps the verdict of the order whose reply had the lower
  perplexity (method ``ppl``).

The measures (the paper's section 2):

- **Score-comparison inconsistency** is
  :func:`judges.audit_metrics.score_pairwise_inconsistency`'s ``conflict``: the share of
  pairs judged in both orders whose pair relation differs from the relation the two single
  scores imply (``ConflictCalculator``). Each way of judging is measured against itself:
  discrete judging's ratings as written against its both-orders relation (A only if both
  orders say A, else a tie), TrustJudge's distribution-sensitive scores against its own
  pair relation (likelihood-aware, else perplexity, else discrete: what the audit and
  boards of TrustJudge use). Distribution-sensitive scores against the discrete relation
  mix the two: continuous scores never tie, so every pair whose orders disagree counts as a
  conflict there, whatever the scores (``bench/_trustjudge.py`` prints that row too).
- **Pairwise transitivity inconsistency** (:func:`transitivity_inconsistency`): the share
  of answer triples of one prompt whose three pair relations fit no weak order: a circular
  chain (``A > B > C > A``, also through a tie: ``A > B = C > A``) or an equivalence
  contradiction (``A = B = C`` with ``A ≠ C``, or ``A > B > C`` with ``A = C``).
  With ``r_ab = sign(s_a - s_b)`` a triple ``a < b < c`` fits a weak order iff the
  relations of ``(a, b)`` and ``(b, c)`` point opposite ways or
  ``r_ac = sign(r_ab + r_bc)``; it is circular when ``r_ac = -sign(r_ab + r_bc) ≠ 0``
  and an equivalence contradiction otherwise (``evaluate_triple`` of the paper's code,
  ``length = 3``).

Pure numpy; verdict codes of :mod:`.verdicts` in answer terms (``A`` = the pair's first
answer wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .estimate import LEVEL, N_BOOT, Estimate, bootstrap_estimate, patterns
from .estimate import ratio_statistic as _ratio
from .score_pairwise import score_pairwise_inconsistency
from .verdicts import BOTH_BAD, INVALID, MISSING, TIE, A, B, as_verdicts

FINE_SCALE_TEMPERATURE = 0.2  # the paper's softmax temperature for the 1-100 scale
TOP_LOGPROBS = 20  # the most alternatives an OpenAI-compatible endpoint returns per token
_EPS = 1e-8


# --- distribution-sensitive scores ----------------------------------------------------------


def scale_temperature(low: int, high: int) -> float | None:
    """The softmax temperature the paper uses for a rating scale: None (plain expectation)
    when every rating fits in the top logprobs, :data:`FINE_SCALE_TEMPERATURE` above."""
    return None if high - low + 1 <= TOP_LOGPROBS else FINE_SCALE_TEMPERATURE


def expected_scores(probabilities, ratings, temperature: float | None = None) -> np.ndarray:
    """Distribution-sensitive scores of many single-answer judgments at once.

    Parameters
    ----------
    probabilities : array_like, shape (n, R)
        Probability of each valid rating per judgment (any mass on other tokens already
        left out; rows need not sum to 1). 0 where a rating was not among the returned
        alternatives.
    ratings : array_like, shape (R,)
        The rating each column stands for.
    temperature : float, optional
        None: the expectation renormalised over the valid ratings. A number ``T``: weights
        ``softmax(log(p / (1 - p)) / T)`` over the ratings with ``p > 0`` (fine scales).

    Returns
    -------
    ndarray, shape (n,)
        NaN where a row has no mass on any valid rating.
    """
    p = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    r = np.asarray(ratings, dtype=np.float64)
    if p.shape[1] != r.size:
        raise ValueError(f"probabilities have {p.shape[1]} columns for {r.size} ratings")
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError("probabilities must be finite and non-negative")
    present = p > 0
    if temperature is None:
        w = p
    else:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        q = np.clip(p, _EPS, 1 - _EPS)
        z = np.where(present, np.log(q / (1 - q)) / temperature, -np.inf)
        top = np.max(z, axis=1, keepdims=True)
        w = np.where(present, np.exp(z - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w @ r) / total, np.nan)


def rating_matrix(by_label: list[dict | None], low: int, high: int) -> np.ndarray:
    """Stored label probabilities (``{"7": 0.6, "8": 0.3, ...}`` per judgment, None when
    the reply had none) as the ``(n, high - low + 1)`` matrix of :func:`expected_scores`;
    labels outside the scale are left out."""
    out = np.zeros((len(by_label), high - low + 1))
    for row, labels in enumerate(by_label):
        for label, p in (labels or {}).items():
            try:
                value = float(label)
            except (TypeError, ValueError):
                continue
            if value.is_integer() and low <= value <= high:
                out[row, int(value) - low] += float(p)
    return out


def distribution_score(by_label: dict | None, low: int, high: int) -> float | None:
    """The distribution-sensitive score of one judgment's label probabilities (None when
    none of them is a valid rating), with the scale's temperature."""
    score = expected_scores(
        rating_matrix([by_label], low, high), np.arange(low, high + 1), scale_temperature(low, high)
    )[0]
    return None if np.isnan(score) else float(score)


# --- pair relations from both orders -----------------------------------------------------


def both_orders_relation(first, second) -> np.ndarray:
    """The discrete relation of a pair judged in both orders (both in answer terms): A or
    B when both orders name it, TIE on any disagreement, MISSING when either is missing
    or invalid. Both-bad counts as a tie."""
    v1 = _tie_both_bad(as_verdicts(first))
    v2 = _tie_both_bad(as_verdicts(second))
    out = np.where((v1 == v2) & ((v1 == A) | (v1 == B)), v1, TIE)
    gone = (v1 == MISSING) | (v2 == MISSING) | (v1 == INVALID) | (v2 == INVALID)
    return np.where(gone, MISSING, out)


def likelihood_relation(first, second, tolerance: float = 0.0) -> np.ndarray:
    """TrustJudge's likelihood-aware relation from both orders' verdict probabilities.

    Parameters
    ----------
    first, second : array_like, shape (n, 3)
        ``[P(A wins), P(B wins), P(tie)]`` of each order, in answer terms (the order
        shown swapped already mapped back); NaN rows where an order has none.
    tolerance : float
        A margin ``(largest - second largest) / 2`` of the summed probabilities below this
        is a tie.

    Returns
    -------
    ndarray of int
        A, B or TIE; MISSING where either order has no probabilities.
    """
    p1 = np.atleast_2d(np.asarray(first, dtype=np.float64))
    p2 = np.atleast_2d(np.asarray(second, dtype=np.float64))
    merged = p1 + p2
    gone = ~np.all(np.isfinite(merged), axis=1)
    merged = np.where(gone[:, None], 0.0, merged)
    codes = np.array([A, B, TIE])
    choice = codes[np.argmax(merged, axis=1)]
    ranked = np.sort(merged, axis=1)
    margin = (ranked[:, -1] - ranked[:, -2]) / 2
    choice = np.where((margin < tolerance) | (margin == 0), TIE, choice)
    return np.where(gone, MISSING, choice)


def perplexity_relation(first, second, ppl_first, ppl_second, tolerance: float = 0.0):
    """TrustJudge's fallback without verdict probabilities: the verdict (answer terms) of
    the order whose reply had the lower perplexity; a tie when the perplexities differ by
    no more than ``tolerance`` (method ``ppl`` of the paper's code)."""
    v1 = _tie_both_bad(as_verdicts(first))
    v2 = _tie_both_bad(as_verdicts(second))
    q1 = np.asarray(ppl_first, dtype=np.float64)
    q2 = np.asarray(ppl_second, dtype=np.float64)
    decided = np.abs(q1 - q2) > tolerance
    out = np.where(decided, np.where(q1 < q2, v1, v2), TIE)
    gone = (v1 == MISSING) | (v2 == MISSING) | (v1 == INVALID) | (v2 == INVALID)
    gone |= ~(np.isfinite(q1) & np.isfinite(q2))
    return np.where(gone, MISSING, out)


def perplexity(token_logprobs) -> float:
    """``exp(-mean log p)`` of a reply's tokens (NaN for no tokens)."""
    lp = np.asarray(token_logprobs, dtype=np.float64)
    return float(np.exp(-lp.mean())) if lp.size else float("nan")


def _tie_both_bad(v: np.ndarray) -> np.ndarray:
    return np.where(v == BOTH_BAD, TIE, v)


# --- pairwise transitivity inconsistency -------------------------------------------------


@dataclass(frozen=True)
class TransitivityInconsistency:
    """The paper's pairwise transitivity inconsistency of one judge.

    Attributes
    ----------
    share : Estimate
        Non-transitive triples / triples with all three pairs judged (bootstrap over
        groups, ``n`` = groups).
    n_triples, n_circular, n_equivalence : int
        Judged triples, circular chains, equivalence contradictions.
    """

    share: Estimate
    n_triples: int
    n_circular: int
    n_equivalence: int

    def as_dict(self) -> dict:
        return {
            "share": self.share.as_dict(),
            "n_triples": self.n_triples,
            "n_circular": self.n_circular,
            "n_equivalence": self.n_equivalence,
        }


def relation_matrices(group, i, j, relation) -> tuple[np.ndarray, np.ndarray]:
    """Per group, the antisymmetric relation matrix (+1: row beats column, 0: tie) and the
    judged-pair mask. A pair with several relations (repeats) takes the sign of their sum."""
    v = _tie_both_bad(as_verdicts(relation))
    keep = (v == A) | (v == B) | (v == TIE)
    _, g = np.unique(np.asarray(group)[keep], return_inverse=True)
    _, ij = np.unique(
        np.concatenate([np.asarray(i)[keep], np.asarray(j)[keep]]), return_inverse=True
    )
    a, b = np.split(ij.ravel(), 2)
    g, v = g.ravel(), v[keep]
    n_groups = int(g.max()) + 1 if g.size else 0
    k = int(ij.max()) + 1 if ij.size else 0
    net = np.zeros((n_groups, k, k), dtype=np.int64)
    judged = np.zeros(net.shape, dtype=bool)
    sign = np.where(v == A, 1, np.where(v == B, -1, 0))
    np.add.at(net, (g, a, b), sign)
    np.add.at(net, (g, b, a), -sign)
    judged[g, a, b] = True
    judged[g, b, a] = True
    return np.sign(net), judged


def triple_violations(rel: np.ndarray, judged: np.ndarray) -> dict[str, np.ndarray]:
    """Per group: judged triples, circular chains and equivalence contradictions."""
    n_groups, k = rel.shape[0], rel.shape[1] if rel.ndim == 3 else 0
    if k < 3:
        zero = np.zeros(n_groups)
        return {"triples": zero, "circular": zero, "equivalence": zero}
    a, b, c = (np.asarray(x) for x in zip(*combinations(range(k), 3), strict=True))
    r_ab, r_bc, r_ac = rel[:, a, b], rel[:, b, c], rel[:, a, c]
    full = judged[:, a, b] & judged[:, b, c] & judged[:, a, c]
    implied = np.sign(r_ab + r_bc)
    bad = full & (r_ab * r_bc >= 0) & (r_ac != implied)
    circular = bad & (implied != 0) & (r_ac == -implied)
    return {
        "triples": full.sum(axis=1).astype(np.float64),
        "circular": circular.sum(axis=1).astype(np.float64),
        "equivalence": (bad & ~circular).sum(axis=1).astype(np.float64),
    }


def transitivity_inconsistency(
    group, i, j, relation, rng=None, n_boot: int = N_BOOT, level: float = LEVEL
) -> TransitivityInconsistency:
    """Share of answer triples of a prompt whose pair relations fit no weak order.

    Parameters
    ----------
    group : array_like, shape (n,)
        The prompt of each pair.
    i, j : array_like, shape (n,)
        The pair's two answers (A = ``i``).
    relation : array_like of int, shape (n,)
        The pair's relation in answer terms (A, B, TIE; both-bad is a tie; MISSING and
        INVALID are left out): :func:`both_orders_relation` for discrete verdicts,
        :func:`likelihood_relation` or :func:`perplexity_relation` for TrustJudge.
    """
    rel, judged = relation_matrices(group, i, j, relation)
    c = triple_violations(rel, judged)
    bad = c["circular"] + c["equivalence"]
    (nb, nt), counts = patterns(bad, c["triples"])
    return TransitivityInconsistency(
        share=bootstrap_estimate(_ratio(nb, nt), counts, rng, n_boot, level),
        n_triples=int(c["triples"].sum()),
        n_circular=int(c["circular"].sum()),
        n_equivalence=int(c["equivalence"].sum()),
    )


# --- the audit: discrete against TrustJudge, side by side --------------------------------


@dataclass(frozen=True)
class TrustJudgeAudit:
    """Both inconsistency measures of one judge, discrete against TrustJudge.

    Attributes
    ----------
    score_discrete, score_trust : Estimate or None
        Score-comparison inconsistency: the ratings as written against the both-orders
        discrete relation, and the distribution-sensitive scores against TrustJudge's
        relation (``transitivity_trust``'s); None when the judge's answers were not
        graded, or graded without probabilities.
    transitivity_discrete, transitivity_trust : TransitivityInconsistency
        Pairwise transitivity inconsistency of the discrete both-orders relations, and of
        TrustJudge's (likelihood-aware where both orders have verdict probabilities, else
        the perplexity fallback, else the discrete relation).
    n_pairs, n_likelihood, n_perplexity : int
        Pairs judged in both orders, and how many of them each TrustJudge rule decided.
    """

    score_discrete: Estimate | None
    score_trust: Estimate | None
    transitivity_discrete: TransitivityInconsistency
    transitivity_trust: TransitivityInconsistency
    n_pairs: int
    n_likelihood: int
    n_perplexity: int


def trustjudge_audit(
    group,
    i,
    j,
    first,
    second,
    p_first,
    p_second,
    ppl_first=None,
    ppl_second=None,
    scores=None,
    trust_scores=None,
    rng=None,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
) -> TrustJudgeAudit:
    """Discrete verdicts against TrustJudge on the pairs a judge judged in both orders.

    Parameters
    ----------
    group, i, j : array_like, shape (n,)
        Prompt and the pair's answers (A = ``i``).
    first, second : array_like of int, shape (n,)
        The verdicts (answer terms) with A shown first and with B shown first.
    p_first, p_second : array_like, shape (n, 3)
        Their ``[P(A), P(B), P(tie)]`` (answer terms), NaN where a reply had none.
    ppl_first, ppl_second : array_like, shape (n,), optional
        The replies' perplexities (NaN where unknown): the fallback.
    scores, trust_scores : tuple of two arrays, optional
        ``(score of i, score of j)`` as rated and distribution-sensitive.
    """
    discrete = both_orders_relation(first, second)
    likely = likelihood_relation(p_first, p_second)
    n = discrete.size
    nan = np.full(n, np.nan)
    ppl = perplexity_relation(
        first,
        second,
        nan if ppl_first is None else ppl_first,
        nan if ppl_second is None else ppl_second,
    )
    use_likely = likely != MISSING
    use_ppl = ~use_likely & (ppl != MISSING)
    trust = np.where(use_likely, likely, np.where(use_ppl, ppl, discrete))
    trust = np.where(discrete == MISSING, MISSING, trust)
    out = {}
    for name, pair, relation in (
        ("score_discrete", scores, discrete),
        ("score_trust", trust_scores, trust),
    ):
        s_i, s_j = (nan, nan) if pair is None else pair
        has = np.isfinite(np.asarray(s_i, np.float64)) & np.isfinite(np.asarray(s_j, np.float64))
        out[name] = (
            score_pairwise_inconsistency(s_i, s_j, relation, level=level).conflict
            if has.any()
            else None
        )
    return TrustJudgeAudit(
        **out,
        transitivity_discrete=transitivity_inconsistency(group, i, j, discrete, rng, n_boot, level),
        transitivity_trust=transitivity_inconsistency(group, i, j, trust, rng, n_boot, level),
        n_pairs=int(np.sum(discrete != MISSING)),
        n_likelihood=int(np.sum(use_likely & (discrete != MISSING))),
        n_perplexity=int(np.sum(use_ppl & (discrete != MISSING))),
    )
