"""Rating engine: Bradley-Terry, Elo and Plackett-Luce with fast bootstrap intervals.

Pure numpy/scipy, no Django. Votes come in aggregated (:class:`PairwiseCounts`, built
by :func:`counts_from_records` or :meth:`PairwiseCounts.from_cells`), and one call
gives a leaderboard::

    from arena.ratings import leaderboard
    board = leaderboard(counts, bootstrap=1000, seed=0, anchor=None)

Modules: ``counts`` (aggregation, bootstrap units), ``bt`` (Newton BT/Davidson,
position term, prior), ``bootstrap`` (exact multinomial replicas, batched solver),
``graph`` (connectivity, MLE existence), ``plackett_luce`` (K-wise, openskill live
ratings), ``elo`` (online Elo), ``style`` (style control), ``winrate`` (AlpacaEval win
rate, Arena-Hard score), ``scale`` (rating scale, anchors), ``leaderboard`` (facade).
CLI: ``python -m arena.ratings fit PATH... --format F --method M``.
"""

from .bootstrap import BootstrapResult, bootstrap_bt, rank_upper_bound
from .bt import BTFit, fit_bt
from .counts import (
    BOTH_BAD,
    FIRST,
    SECOND,
    TIE,
    PairwiseCounts,
    Units,
    counts_from_arrays,
    counts_from_records,
)
from .graph import GraphReport, check_graph
from .leaderboard import Leaderboard, LeaderboardRow, leaderboard
from .scale import ELO_SCALE, expected_win_rate, parse_anchor, to_rating

__all__ = [
    "BOTH_BAD",
    "ELO_SCALE",
    "FIRST",
    "SECOND",
    "TIE",
    "BTFit",
    "BootstrapResult",
    "GraphReport",
    "Leaderboard",
    "LeaderboardRow",
    "PairwiseCounts",
    "Units",
    "bootstrap_bt",
    "check_graph",
    "counts_from_arrays",
    "counts_from_records",
    "expected_win_rate",
    "fit_bt",
    "leaderboard",
    "parse_anchor",
    "rank_upper_bound",
    "to_rating",
]
