"""The leaderboard: one call from aggregated counts to ranked rows with intervals.

This is the facade the Django layer and the CLI use::

    board = leaderboard(counts, bootstrap=1000, seed=0,
                        anchor=("mixtral-8x7b-instruct-v0.1", 1114))
    for row in board.rows:
        print(row.model, row.rating, row.ci_lower, row.ci_upper, row.rank_ub)

Steps: check the comparison graph (:mod:`arena.ratings.graph`); fit Bradley-Terry by
Newton (:mod:`arena.ratings.bt`), adding a small prior when the MLE does not exist;
bootstrap whole units for percentile intervals and Rank(UB)
(:mod:`arena.ratings.bootstrap`); sort.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bootstrap import FALLBACK_PRIOR, BootstrapResult, bootstrap_bt, rank_upper_bound
from .bt import fit_bt
from .counts import FIRST, SECOND, PairwiseCounts
from .graph import GraphReport, check_graph
from .scale import ELO_SCALE, Anchor, to_rating


@dataclass(frozen=True)
class LeaderboardRow:
    """One model's line.

    ``rating`` is on the rating scale (or a win rate / score in percent for those
    methods, see :attr:`Leaderboard.value_name`); ``ci_lower``/``ci_upper`` are None
    without a bootstrap; ``win_rate`` is the observed share of points (ties half).
    """

    model: str
    rating: float
    ci_lower: float | None
    ci_upper: float | None
    rank_ub: int
    votes: float
    win_rate: float | None = None
    standard_error: float | None = None
    component: int = 0
    length_controlled: float | None = None  # AlpacaEval 2.0's LC win rate (%)
    lc_standard_error: float | None = None


@dataclass(frozen=True)
class Leaderboard:
    """Ranked rows plus everything needed to explain them.

    Attributes
    ----------
    method : str
    rows : tuple of LeaderboardRow
        Best first.
    value_name : str
        What ``rating`` holds: ``"rating"``, ``"win_rate"`` or ``"score"``.
    graph : GraphReport or None
    n_votes : float
    n_replicas : int
    seed : int or None
    prior : float
        Prior precision actually used (0 = plain MLE).
    position : float or None
        First-shown advantage in rating points, when fitted.
    coefficients : dict
        Extra fitted quantities (style coefficients, Davidson ``log_nu`` ...).
    coefficient_ci : dict
        Their bootstrap intervals.
    notes : tuple of str
        Warnings and remarks for the reader.
    """

    method: str
    rows: tuple[LeaderboardRow, ...]
    value_name: str = "rating"
    graph: GraphReport | None = None
    n_votes: float = 0.0
    n_replicas: int = 0
    seed: int | None = None
    anchor: Anchor | None = None
    prior: float = 0.0
    position: float | None = None
    coefficients: dict = field(default_factory=dict)
    coefficient_ci: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def row(self, model: str) -> LeaderboardRow:
        for r in self.rows:
            if r.model == model:
                return r
        raise KeyError(model)

    def to_rows(self) -> list[dict]:
        """JSON-ready rows: model, <value_name>, ci_lower, ci_upper, rank_ub, votes, ..."""
        out = []
        for r in self.rows:
            d = {
                "model": r.model,
                self.value_name: _num(r.rating),
                "ci_lower": _num(r.ci_lower),
                "ci_upper": _num(r.ci_upper),
                "rank_ub": int(r.rank_ub),
                "votes": _num(r.votes),
            }
            if r.standard_error is not None:
                d["standard_error"] = _num(r.standard_error)
            if r.length_controlled is not None:
                d["length_controlled_win_rate"] = _num(r.length_controlled)
                d["lc_standard_error"] = _num(r.lc_standard_error)
            if r.win_rate is not None and self.value_name == "rating":
                d["win_rate"] = _num(r.win_rate)
            if self.graph is not None and not self.graph.connected:
                d["component"] = int(r.component)
            out.append(d)
        return out

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "value": self.value_name,
            "rows": self.to_rows(),
            "graph": None if self.graph is None else self.graph.as_dict(),
            "n_votes": _num(self.n_votes),
            "bootstrap": self.n_replicas,
            "seed": self.seed,
            "anchor": list(self.anchor) if self.anchor else None,
            "prior": self.prior,
            "position": _num(self.position),
            "coefficients": {k: _num(v) for k, v in self.coefficients.items()},
            "coefficient_ci": {k: [_num(a), _num(b)] for k, (a, b) in self.coefficient_ci.items()},
            "notes": list(self.notes),
        }


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


def leaderboard(
    counts: PairwiseCounts,
    method: str = "bt",
    bootstrap: int = 1000,
    seed: int | None = 0,
    anchor: Anchor | None = None,
    *,
    ties: str = "half",
    bothbad: str = "tie",
    position: bool = False,
    prior: float = 0.0,
    ci: float = 0.95,
) -> Leaderboard:
    """Fit a Bradley-Terry leaderboard on aggregated counts.

    Parameters
    ----------
    counts : PairwiseCounts
    method : {"bt"}
        Only Bradley-Terry works on counts (``ties="davidson"`` selects Davidson's tie
        model); Elo needs votes in order (:mod:`arena.ratings.elo`), Plackett-Luce
        rankings (:mod:`arena.ratings.plackett_luce`).
    bootstrap : int
        Replicas for the intervals (0 = point estimates only).
    seed : int or None
    anchor : (model, rating), optional
        Shift so that ``model`` gets ``rating`` (default: mean rating 1000).
    ties, bothbad, position, prior
        See :func:`arena.ratings.bt.fit_bt`.
    ci : float
        Interval coverage.

    Returns
    -------
    Leaderboard
    """
    if method != "bt":
        raise ValueError(f"method: leaderboard() on counts fits 'bt', not {method!r}")
    if counts.n_models == 0:
        return Leaderboard(method="bt", rows=(), notes=("no votes yet",))
    graph = check_graph(counts, bothbad=bothbad)
    notes = graph.messages()
    if not graph.mle_exists and prior == 0.0 and counts.n_models > 1:
        prior = FALLBACK_PRIOR
        notes.append(
            f"no maximum-likelihood fit exists, so ratings use a N(0, {1 / prior:g}) prior "
            "on strengths (shrunk toward the mean, finite)"
        )
    fit = fit_bt(counts, ties=ties, bothbad=bothbad, position=position, prior=prior)
    if not fit.converged:
        notes.append("the fit did not converge; ratings are approximate")
    boot = None
    if bootstrap and counts.n_models > 1:
        boot = bootstrap_bt(counts, bootstrap, seed, anchor=anchor, ci=ci, fit=fit)
        if boot.n_regularised:
            notes.append(
                f"{boot.n_regularised} of {bootstrap} bootstrap replicas had no maximum-"
                f"likelihood fit and were fitted with a N(0, {1 / FALLBACK_PRIOR:g}) prior"
            )
    ratings = to_rating(fit.scores, counts.models, anchor)
    coefficients = {}
    if fit.tie_log_nu is not None:
        coefficients["log_nu"] = fit.tie_log_nu
    return Leaderboard(
        method="bt" if ties == "half" else "bt-davidson",
        rows=_rows(counts, ratings, boot, graph),
        graph=graph,
        n_votes=counts.total_votes,
        n_replicas=bootstrap if boot is not None else 0,
        seed=seed if boot is not None else None,
        anchor=anchor,
        prior=prior,
        position=None if fit.position is None else ELO_SCALE * fit.position,
        coefficients=coefficients,
        notes=tuple(notes),
    )


def ranked_rows(
    models,
    values,
    votes,
    *,
    lower=None,
    upper=None,
    win_rate=None,
    standard_error=None,
    component=None,
    length_controlled=None,
    lc_standard_error=None,
) -> tuple[LeaderboardRow, ...]:
    """The rows of a leaderboard, best first: the one row builder of every method.

    ``values`` are the ratings (or win rates, scores) per model; ``lower``/``upper`` their
    interval, or None without one. Rank(UB) = 1 + the number of models whose lower bound
    is above my upper bound (a NaN bound is open); without intervals, 1 + the number of
    models with a higher value. Non-finite win rates read None.
    """
    values = np.asarray(values, np.float64)
    if lower is None:
        rank_ub = 1 + (values[None, :] > values[:, None]).sum(axis=1)
    else:
        lower, upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        rank_ub = rank_upper_bound(
            np.nan_to_num(lower, nan=-np.inf), np.nan_to_num(upper, nan=np.inf)
        )

    def at(array, i):
        if array is None or not np.isfinite(array[i]):
            return None
        return float(array[i])

    rows = [
        LeaderboardRow(
            model=m,
            rating=float(values[i]),
            ci_lower=None if lower is None else float(lower[i]),
            ci_upper=None if upper is None else float(upper[i]),
            rank_ub=int(rank_ub[i]),
            votes=float(votes[i]),
            win_rate=at(win_rate, i),
            standard_error=at(standard_error, i),
            component=0 if component is None else int(component[i]),
            length_controlled=at(length_controlled, i),
            lc_standard_error=at(lc_standard_error, i),
        )
        for i, m in enumerate(models)
    ]
    rows.sort(key=lambda r: -r.rating)
    return tuple(rows)


def _rows(counts, ratings, boot: BootstrapResult | None, graph: GraphReport):
    """Bradley-Terry rows: votes and observed win share from the counts."""
    votes = counts.votes_per_model()
    points = observed_points(counts)
    share = np.divide(points, votes, out=np.full(votes.shape, np.nan), where=votes > 0)
    return ranked_rows(
        counts.models,
        ratings,
        votes,
        lower=None if boot is None else boot.lower,
        upper=None if boot is None else boot.upper,
        win_rate=share,
        component=graph.component,
    )


def observed_points(counts: PairwiseCounts) -> np.ndarray:
    """Points each model scored: a win is 1, a tie or both-bad vote 1/2 (shape (n,))."""
    n = counts.n_models
    first_share = np.where(
        counts.outcome == FIRST, 1.0, np.where(counts.outcome == SECOND, 0.0, 0.5)
    )
    return np.bincount(counts.first, counts.votes * first_share, n) + np.bincount(
        counts.second, counts.votes * (1.0 - first_share), n
    )
