"""Juries: one verdict per comparison from a panel of judges (pure numpy).

Verga et al. 2024 ("Replacing Judges with Juries", PoLL) pool the verdicts of a few
judges of different model families, by majority (max voting) or by averaging: the
judges' biases differ, so pooling dilutes each one, and the noise of independent calls
averages out. Here a *call* is one presentation of one comparison (a match shown in one
order, one repeat); each juror on it gives a verdict in slot terms. Three rules:

- ``majority``: every juror's decisive verdict is one vote for its slot (a tie or "both
  bad" votes for neither); more votes wins, equal votes are a tie.
- ``mean``: the mean of the jurors' probabilities that slot 0 wins (ties half): the
  reply's logprob distribution when the juror sent one, else its verdict (1, ½, 0);
  above ½ slot 0 wins, below slot 1, exactly ½ a tie.
- ``weighted``: the majority with each juror's vote weighted by its reliability
  (:func:`reliability_weights`: the log-odds of its accuracy, from the audit, shrunk
  toward the panel's): the weighting that maximises a majority's accuracy for
  independent voters of known accuracy (Nitzan & Paroush 1982).

Every function takes flat arrays, one row per juror verdict, and works by ``bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RULES = ("majority", "mean", "weighted")
# Winner codes in slot terms, as arena.vocabulary writes them (a = slot 0, b, tie).
SLOT0, SLOT1, TIE = 0, 1, 2
# The accuracy-equivalent votes every juror's accuracy is shrunk with (toward the panel's).
SHRINK_VOTES = 50.0


@dataclass(frozen=True)
class JuryVerdicts:
    """One verdict per call: ``winner`` (0 slot 0, 1 slot 1, 2 tie), ``score`` slot 0's
    points (1, ½, 0: what the jury says) and ``jurors`` the OK verdicts pooled. Calls
    with no OK verdict have ``jurors == 0`` and a tie (leave them out)."""

    winner: np.ndarray
    score: np.ndarray
    jurors: np.ndarray


def slot0_points(winner: np.ndarray) -> np.ndarray:
    """Slot 0's points of winner codes (0 a, 1 b, 2 tie, 3 both bad): 1, 0, ½, ½."""
    return np.array([1.0, 0.0, 0.5, 0.5])[np.asarray(winner, np.int64)]


def jury_verdicts(
    call,
    juror,
    winner,
    *,
    rule: str = "majority",
    weights=None,
    slot0_probability=None,
    n_calls: int | None = None,
) -> JuryVerdicts:
    """Pool jurors' verdicts into one per call.

    Parameters
    ----------
    call : int array
        The call (0..C-1) of each juror verdict.
    juror : int array
        The juror's index into ``weights``.
    winner : int array
        The juror's winner code in slot terms (0 a, 1 b, 2 tie, 3 both bad); pass only
        OK verdicts.
    rule : str
        One of :data:`RULES`.
    weights : float array, optional
        Per juror (``weighted``); default equal.
    slot0_probability : float array, optional
        ``mean``: P(slot 0 wins) + ½ P(tie) from the reply's logprobs, NaN where absent.
    n_calls : int, optional
        C (default ``call.max() + 1``).
    """
    if rule not in RULES:
        raise ValueError(f"unknown jury rule {rule!r}; expected one of {', '.join(RULES)}")
    call = np.asarray(call, np.int64)
    juror = np.asarray(juror, np.int64)
    winner = np.asarray(winner, np.int64)
    n = int(n_calls if n_calls is not None else (call.max() + 1 if call.size else 0))
    jurors = np.bincount(call, minlength=n)
    if rule == "mean":
        points = slot0_points(winner)
        if slot0_probability is not None:
            prob = np.asarray(slot0_probability, np.float64)
            points = np.where(np.isfinite(prob), prob, points)
        total = np.bincount(call, points, minlength=n)
        mean = np.divide(total, jurors, out=np.full(n, 0.5), where=jurors > 0)
        margin = mean - 0.5
        tol = 1e-9
    else:
        w = np.ones(juror.max() + 1 if juror.size else 0)
        if rule == "weighted":
            if weights is None:
                raise ValueError("the weighted rule needs the jurors' weights")
            w = np.asarray(weights, np.float64)
        vote = w[juror] if juror.size else np.zeros(0)
        margin = np.bincount(call, vote * (winner == SLOT0), minlength=n) - np.bincount(
            call, vote * (winner == SLOT1), minlength=n
        )
        tol = 1e-9 * max(1.0, float(np.abs(w).max(initial=0.0)))
    code = np.where(margin > tol, SLOT0, np.where(margin < -tol, SLOT1, TIE))
    code = np.where(jurors > 0, code, TIE)
    return JuryVerdicts(code, slot0_points(code), jurors)


def reliability_weights(agreed, judged, shrink: float = SHRINK_VOTES) -> np.ndarray:
    """Per-juror vote weights from its track record, shrunk toward equal.

    ``agreed[j]`` of ``judged[j]`` decisive verdicts matched the reference (human votes
    on the same comparisons, or gold answers). Each accuracy is shrunk toward the pooled
    accuracy of the panel with ``shrink`` pseudo-verdicts, ``(agreed + shrink · pooled) /
    (judged + shrink)``, and the weight is its log-odds (0 for a juror no better than a
    coin), scaled to mean 1. A panel without any record (or none better than a coin)
    gets equal weights.
    """
    agreed = np.asarray(agreed, np.float64)
    judged = np.asarray(judged, np.float64)
    if agreed.shape != judged.shape or np.any(agreed < 0) or np.any(agreed > judged):
        raise ValueError("agreed must be between 0 and judged, per juror")
    if judged.sum() == 0:
        return np.ones(len(judged))
    pooled = agreed.sum() / judged.sum()
    accuracy = (agreed + shrink * pooled) / (judged + shrink)
    accuracy = np.clip(accuracy, 0.5, 1.0 - 1e-6)
    w = np.log(accuracy / (1.0 - accuracy))
    if w.sum() <= 0:
        return np.ones(len(judged))
    return w * (len(w) / w.sum())


def panel_agreement(call, juror, winner, n_jurors: int) -> tuple[np.ndarray, np.ndarray]:
    """How often each juror agrees with the rest of its panel (leave-one-out majority).

    Over the calls where the juror was decisive and the other jurors' majority was too:
    ``(agreed, compared)`` per juror. A juror is not counted in its own reference, so a
    panel of two is each juror against the other.
    """
    call = np.asarray(call, np.int64)
    juror = np.asarray(juror, np.int64)
    winner = np.asarray(winner, np.int64)
    n = int(call.max() + 1) if call.size else 0
    for_a = np.bincount(call, winner == SLOT0, minlength=n)
    for_b = np.bincount(call, winner == SLOT1, minlength=n)
    rest = (for_a[call] - (winner == SLOT0)) - (for_b[call] - (winner == SLOT1))
    decisive = (winner <= SLOT1) & (rest != 0)
    agree = decisive & (np.where(rest > 0, SLOT0, SLOT1) == winner)
    return (
        np.bincount(juror, agree, minlength=n_jurors).astype(np.int64),
        np.bincount(juror, decisive, minlength=n_jurors).astype(np.int64),
    )


def panel_for(seed: int, key, n_jurors: int, size: int | None) -> np.ndarray:
    """The jurors (sorted indices) that judge one comparison: all of them, or a subset of
    ``size`` drawn without replacement from a generator seeded by ``(seed, *key)``, so a
    replay draws the same panel."""
    if size is None or size >= n_jurors:
        return np.arange(n_jurors)
    if size < 1:
        raise ValueError("a panel needs at least one juror")
    rng = np.random.default_rng([int(seed), *(int(k) for k in key)])
    return np.sort(rng.choice(n_jurors, size, replace=False))
