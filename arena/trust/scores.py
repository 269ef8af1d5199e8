"""Anomaly scores of voters and address clusters, and voter trust (pure numpy).

Every signal is computed per *group* (a voter, or a cluster of voters: one address) from
one row per decisive vote, with ``np.bincount``: no loop over votes or voters.

Signals (thresholds are settings, see README "Vote integrity"):

- **burst**: session voters minted by one address in the last hour. Cookie rotation makes
  many young voters with a vote or two each; ``burst / (max_sessions + 1)`` reaches 1
  when the address minted more than ``max_sessions``.
- **unlikely votes** (:func:`surprise`): the log-likelihood of the group's decisive votes
  under the Bradley-Terry board, as a z-score against its expectation. A vote between
  models of strengths x (chosen) and y has probability p = sigma(x - y); under the board
  E[log p] = q log q + (1 - q) log(1 - q) and Var[log p] = q (1 - q) (x - y)^2 with
  q = sigma(x - y) of the first model. Strongly negative z: votes the board finds unlikely.
- **one-sidedness** (:func:`one_sided`): per group and contestant, the decisive votes
  won by the contestant when it appeared, against the wins the board expects (sum of its
  win probabilities), as a binomial z. A group that picks one model whenever it appears
  (or never does) has a large |z| for that model.
- **gold** (:func:`gold`): votes on gold battles (the answer pair has a known right
  answer, ``Match.gold_winner``) against a coin: ``z = (right - n/2) / sqrt(n/4)``, a tie
  vote earning half. Strongly negative z: the group is wrong on known answers more often
  than chance, so it is not voting on the answers; positive z is a track record.

:func:`anomaly` combines them: ``max(burst / (max_sessions + 1), -z_surprise / z,
|z_one_sided| / z, -z_gold / z)``, the vote-based terms only for groups with at least
``min_votes`` decisive (for gold: gold) votes. A score >= 1 flags. :func:`trust` turns a
voter's record (login, age, agreement with the board, gold) into a weight in 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

# Flag reasons start with one of these. Burst flags are never lifted automatically (the
# burst is over an hour later, the votes it made are not better for that); vote-based
# flags are lifted when the scores fall below half their threshold.
AUTO = "auto:"
BURST_REASON = "auto:burst: "
VOTES_REASON = "auto:votes: "


@dataclass(frozen=True)
class Surprise:
    """Per group: decisive votes, their log-likelihood under the board, its z-score."""

    n: np.ndarray  # (G,) int
    log_likelihood: np.ndarray  # (G,)
    z: np.ndarray  # (G,) 0 where the board gives no information (all strengths equal)


def surprise(group: np.ndarray, chosen: np.ndarray, other: np.ndarray, n_groups: int) -> Surprise:
    """How unlikely each group's decisive votes are under the board.

    Parameters
    ----------
    group : (N,) int
        Group index of each decisive vote.
    chosen, other : (N,) float
        BT strengths (natural-log units) of the model voted for and of the other one.
    """
    d = np.asarray(chosen, np.float64) - np.asarray(other, np.float64)
    log_p = log_expit(d)
    q = expit(d)
    expected = q * log_expit(d) + (1 - q) * log_expit(-d)
    variance = q * (1 - q) * d**2
    n = np.bincount(group, minlength=n_groups)
    ll = np.bincount(group, weights=log_p, minlength=n_groups)
    mean = np.bincount(group, weights=expected, minlength=n_groups)
    var = np.bincount(group, weights=variance, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(var > 1e-12, (ll - mean) / np.sqrt(var), 0.0)
    return Surprise(n=n, log_likelihood=ll, z=z)


@dataclass(frozen=True)
class OneSided:
    """Per group: the contestant whose wins stray furthest from the board's expectation."""

    contestant: np.ndarray  # (G,) int, -1 for a group without decisive votes
    appearances: np.ndarray  # (G,) decisive votes in which that contestant appeared
    wins: np.ndarray  # (G,) of which it won
    expected: np.ndarray  # (G,) wins the board expects
    z: np.ndarray  # (G,) signed binomial z (positive: voted for it more than expected)


def one_sided(
    group: np.ndarray,
    winner: np.ndarray,
    loser: np.ndarray,
    p_winner: np.ndarray,
    n_groups: int,
    n_contestants: int,
    min_votes: int = 1,
) -> OneSided:
    """Per group, the contestant with the largest |z| of wins vs expected wins.

    Parameters
    ----------
    group : (N,) int
        Group index of each decisive vote.
    winner, loser : (N,) int
        Contestant index (0..n_contestants-1) voted for and against.
    p_winner : (N,) float
        The board's probability that ``winner`` beats ``loser``.
    min_votes : int
        Contestants that appeared in fewer of the group's votes are not considered.
    """
    g = np.asarray(group, np.int64)
    m = n_contestants
    cell_w = g * m + np.asarray(winner, np.int64)
    cell_l = g * m + np.asarray(loser, np.int64)
    size = n_groups * m
    p = np.asarray(p_winner, np.float64)
    appear = np.bincount(cell_w, minlength=size) + np.bincount(cell_l, minlength=size)
    wins = np.bincount(cell_w, minlength=size).astype(np.float64)
    # Expected wins of a contestant: p when it was the winner, 1 - p when the loser.
    expected = np.bincount(cell_w, weights=p, minlength=size) + np.bincount(
        cell_l, weights=1 - p, minlength=size
    )
    var = np.bincount(cell_w, weights=p * (1 - p), minlength=size) + np.bincount(
        cell_l, weights=p * (1 - p), minlength=size
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(var > 1e-12, (wins - expected) / np.sqrt(np.maximum(var, 1e-12)), 0.0)
    z = np.where(appear >= max(min_votes, 1), z, 0.0).reshape(n_groups, m)
    top = np.argmax(np.abs(z), axis=1) if m else np.zeros(n_groups, np.int64)
    rows = np.arange(n_groups)
    pick = rows * m + top
    has = appear.reshape(n_groups, m).sum(axis=1) > 0 if m else np.zeros(n_groups, bool)
    return OneSided(
        contestant=np.where(has, top, -1),
        appearances=appear[pick] if m else np.zeros(n_groups, np.int64),
        wins=wins[pick] if m else np.zeros(n_groups),
        expected=expected[pick] if m else np.zeros(n_groups),
        z=z[rows, top] if m else np.zeros(n_groups),
    )


@dataclass(frozen=True)
class Gold:
    """Per group: votes on gold battles, the credit they earned, its z against a coin."""

    n: np.ndarray  # (G,) int
    right: np.ndarray  # (G,) 1 per right vote, 0.5 per tie vote
    z: np.ndarray  # (G,) 0 without gold votes


def gold(group: np.ndarray, credit: np.ndarray, n_groups: int) -> Gold:
    """How each group did on known answers, against voting at random.

    Parameters
    ----------
    group : (N,) int
        Group index of each vote on a gold battle.
    credit : (N,) float
        1 when the vote names the gold winner, 0.5 for a tie (or both bad), 0 for the
        other answer.
    """
    n = np.bincount(group, minlength=n_groups)
    right = np.bincount(group, weights=np.asarray(credit, np.float64), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(n > 0, (right - n / 2) / np.sqrt(np.maximum(n, 1) / 4), 0.0)
    return Gold(n=n, right=right, z=z)


@dataclass(frozen=True)
class Anomaly:
    """Per group: the combined score (>= 1 flags) and each signal's share of it."""

    score: np.ndarray  # (G,)
    burst: np.ndarray  # (G,) burst / (max_sessions + 1)
    unlikely: np.ndarray  # (G,) -z_surprise / z_threshold (0 below min_votes)
    one_sided: np.ndarray  # (G,) |z_one_sided| / z_threshold (0 below min_votes)
    wrong_gold: np.ndarray  # (G,) -z_gold / z_threshold (0 below min_votes gold votes)

    @property
    def flagged(self) -> np.ndarray:
        return self.score >= 1.0


def anomaly(
    burst: np.ndarray,
    surprise_z: np.ndarray,
    one_sided_z: np.ndarray,
    n_decisive: np.ndarray,
    gold_z: np.ndarray | None = None,
    n_gold: np.ndarray | None = None,
    *,
    max_sessions: int,
    z_threshold: float,
    min_votes: int,
) -> Anomaly:
    """Combine the signals of each group into one score; >= 1 flags (see the module)."""
    enough = np.asarray(n_decisive) >= min_votes
    b = np.asarray(burst, np.float64) / (max_sessions + 1)
    u = np.where(enough, np.maximum(-np.asarray(surprise_z, np.float64), 0) / z_threshold, 0.0)
    o = np.where(enough, np.abs(np.asarray(one_sided_z, np.float64)) / z_threshold, 0.0)
    g = np.zeros_like(b)
    if gold_z is not None:
        g = np.where(
            np.asarray(n_gold) >= min_votes,
            np.maximum(-np.asarray(gold_z, np.float64), 0) / z_threshold,
            0.0,
        )
    score = np.maximum(np.maximum(b, u), np.maximum(o, g))
    return Anomaly(score=score, burst=b, unlikely=u, one_sided=o, wrong_gold=g)


def trust(
    logged_in: np.ndarray,
    age_days: np.ndarray,
    n_decisive: np.ndarray,
    surprise_z: np.ndarray,
    flagged: np.ndarray,
    gold_z: np.ndarray | None = None,
    z_threshold: float = 4.0,
) -> np.ndarray:
    """Trust in 0..1 per voter: what a track record has earned.

    0.5 for a login, up to 0.2 for age (linear over 30 days), up to 0.3 for agreement
    with the consensus (linear in decisive votes up to 50, given only while the votes are
    not unlikely under the board: surprise z > -2), and up to 0.3 for gold battles
    answered better than a coin (linear in the gold z up to ``z_threshold``: 16 right
    of 16, or 35 of 44). Capped at 1; a flagged voter has none.
    """
    agreement = np.clip(np.asarray(n_decisive, np.float64) / 50, 0, 1) * (
        np.asarray(surprise_z) > -2
    )
    known = 0.0
    if gold_z is not None:
        known = np.clip(np.asarray(gold_z, np.float64) / z_threshold, 0, 1)
    value = (
        0.5 * np.asarray(logged_in, bool)
        + 0.2 * np.clip(np.asarray(age_days, np.float64) / 30, 0, 1)
        + 0.3 * agreement
        + 0.3 * known
    )
    return np.where(np.asarray(flagged, bool), 0.0, np.clip(value, 0, 1))


def reasons(
    a: Anomaly,
    burst: np.ndarray,
    surprise_z: np.ndarray,
    n_decisive: np.ndarray,
    side: OneSided,
    names: list[str],
    known: Gold | None = None,
) -> list[str]:
    """Why each group is flagged ("" when it is not): its largest signal, with figures
    (a string is built for flagged groups only)."""
    out = [""] * len(a.score)
    for i in np.flatnonzero(a.score >= 1).tolist():
        if a.burst[i] >= max(a.unlikely[i], a.one_sided[i], a.wrong_gold[i]):
            out[i] = f"{BURST_REASON}{int(burst[i])} new sessions from one address in 1 h"
        elif known is not None and a.wrong_gold[i] >= max(a.unlikely[i], a.one_sided[i]):
            out[i] = (
                f"{VOTES_REASON}right on {known.right[i]:g} of {known.n[i]} gold battles, "
                f"a coin expects {known.n[i] / 2:g} (z={known.z[i]:.1f})"
            )
        elif a.one_sided[i] >= a.unlikely[i]:
            c = int(side.contestant[i])
            out[i] = (
                f"{VOTES_REASON}one-sided on {names[c] if c >= 0 else '?'}: won "
                f"{side.wins[i]:.0f} of {side.appearances[i]} votes, the board expects "
                f"{side.expected[i]:.1f} (z={side.z[i]:+.1f})"
            )
        else:
            out[i] = (
                f"{VOTES_REASON}{int(n_decisive[i])} decisive votes unlikely under the board "
                f"(z={surprise_z[i]:.1f})"
            )
    return out
