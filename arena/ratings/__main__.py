"""Command line: fit a leaderboard from files, no database needed.

    python -m arena.ratings fit PATH... --format {fastchat,counts,arena-hard,alpaca-eval,jsonl,lmarena}
        --method {bt,elo,pl,winrate,arena-hard,swiss} [--bootstrap N] [--seed S]
        [--anchor MODEL=RATING] [--baseline MODEL] [--annotator NAME] [--style-control]
        [--k K] [--tournaments T] [--rounds R] [--json] [--quiet]

Files are read by the importers' parsers through the battle reader
(``arena.importers.formats.reader``), so the CLI and the web app understand exactly the
same formats with the same errors. Bradley-Terry counts are aggregated as the lines are
read (no rows kept), and so are the Swiss standings' (``--method swiss``: the expected
score in ``--tournaments`` simulated Swiss tournaments, :mod:`arena.ratings.swiss`); the
online Elo (K-factor ``--k``) reads the votes in file order, style control the
records, both streamed. ``--json`` prints a list of rows ``{model, rating | win_rate |
score, ci_lower, ci_upper, rank_ub, votes, standard_error?, length_controlled_win_rate?,
lc_standard_error?}``; otherwise a table (``--method winrate``: AlpacaEval 2.0's
length-controlled win rate and its standard error beside the raw one, when the files
carry the outputs, as AlpacaEval annotations and results folders do). While
reading takes more than a couple of seconds, a progress bar shows on a terminal, or a
line goes to stderr every few seconds without one; ``--quiet`` turns both off.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence

from arena.importers.formats.progress import Progress
from arena.importers.formats.reader import file_bytes, iter_records, iter_votes, read_counts
from arena.ratings import elo, plackett_luce, style, swiss, winrate
from arena.ratings.counts import counts_from_records
from arena.ratings.leaderboard import leaderboard
from arena.ratings.scale import parse_anchor

FORMATS = ("fastchat", "counts", "arena-hard", "alpaca-eval", "jsonl", "lmarena")
METHODS = ("bt", "elo", "pl", "winrate", "arena-hard", "swiss")
DEFAULT_BOOTSTRAP = {
    "bt": 1000,
    "pl": 1000,
    "arena-hard": 1000,
    "elo": 0,
    "winrate": 0,
    "swiss": 0,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m arena.ratings", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a leaderboard from judgment files")
    fit.add_argument("paths", nargs="+", metavar="PATH")
    fit.add_argument("--format", required=True, choices=FORMATS)
    fit.add_argument("--method", default="bt", choices=METHODS)
    fit.add_argument(
        "--bootstrap",
        type=int,
        default=None,
        metavar="N",
        help="bootstrap replicas (default 1000; 0 for elo)",
    )
    fit.add_argument("--seed", type=int, default=0, metavar="S")
    fit.add_argument("--anchor", default=None, metavar="MODEL=RATING")
    fit.add_argument(
        "--baseline", default=None, metavar="MODEL", help="baseline for winrate / arena-hard"
    )
    fit.add_argument(
        "--annotator",
        default=None,
        metavar="NAME",
        help="alpaca-eval results folder: the annotator's folder to read",
    )
    fit.add_argument(
        "--style-control",
        action="store_true",
        help="control for answer length and markdown (bt only)",
    )
    fit.add_argument(
        "--k", type=float, default=elo.DEFAULT_K, metavar="K", help="online Elo's K-factor"
    )
    fit.add_argument(
        "--tournaments",
        type=int,
        default=swiss.DEFAULT_TOURNAMENTS,
        metavar="T",
        help="simulated tournaments (swiss)",
    )
    fit.add_argument(
        "--rounds", type=int, default=None, metavar="R", help="rounds (swiss; ceil(log2 n))"
    )
    fit.add_argument("--json", action="store_true", help="print JSON rows")
    fit.add_argument(
        "--quiet", action="store_true", help="no progress bar or progress lines on stderr"
    )
    return parser


def load_records(fmt: str, paths: Sequence[str], **options) -> list:
    """Judgment records from every file, through the importers' parsers (format options passed on)."""
    return [r for r in iter_records(fmt, paths, **options) if hasattr(r, "kind")]


def fit_board(records: Iterable, args):
    """The leaderboard of ``args.method`` from judgment records (a list, or a stream for
    bt, elo and style control, which read them once)."""
    anchor, n_boot = _fit_options(args)
    if args.method == "bt":
        if args.style_control:
            votes = style.style_votes_from_records(records)
            return style.style_leaderboard(votes, n_boot, args.seed, anchor)
        counts = counts_from_records(records, group_by_match=args.format != "counts")
        return leaderboard(counts, "bt", n_boot, args.seed, anchor)
    if args.method == "elo":
        return elo.elo_leaderboard(records, k=args.k, bootstrap=n_boot, seed=args.seed)
    if args.method == "swiss":
        counts = counts_from_records(records, group_by_match=args.format != "counts")
        return _swiss(counts, args)
    records = list(records)  # the methods below read them more than once
    if args.method == "pl":
        rankings = plackett_luce.rankings_from_records(records)
        return plackett_luce.pl_leaderboard(rankings, n_boot, args.seed, anchor)
    if args.method == "winrate":
        counts = counts_from_records(records)
        baseline = args.baseline or winrate.infer_baseline(counts)
        return winrate.winrate_leaderboard(records, baseline)
    return winrate.arena_hard_from_records(records, args.baseline, n_boot, args.seed)


def _swiss(counts, args):
    return swiss.swiss_leaderboard(
        counts, rounds=args.rounds, tournaments=args.tournaments, seed=args.seed
    )


def _fit_options(args):
    anchor = parse_anchor(args.anchor) if args.anchor else None
    n_boot = DEFAULT_BOOTSTRAP[args.method] if args.bootstrap is None else args.bootstrap
    if args.style_control and args.method != "bt":
        raise ValueError("--style-control: only with --method bt")
    return anchor, n_boot


def fit_files(args, progress=None):
    """The leaderboard of the files in ``args.paths``, read by the battle reader.

    Bradley-Terry without style control aggregates counts as it reads
    (:func:`arena.importers.formats.reader.read_counts`), the online Elo gets the votes in
    file order (``iter_votes``), the other methods the judgment records, streamed.
    """
    anchor, n_boot = _fit_options(args)  # refuse bad options before reading anything
    options = {"baseline": args.baseline} if args.format == "arena-hard" and args.baseline else {}
    if getattr(args, "annotator", None):
        options["annotator"] = args.annotator
    if progress is not None:
        options["progress"] = progress
    if args.method == "bt" and not args.style_control:
        counts = read_counts(
            args.format, args.paths, group_by_match=args.format != "counts", **options
        )
        return leaderboard(counts, "bt", n_boot, args.seed, anchor)
    if args.method == "swiss":
        counts = read_counts(
            args.format, args.paths, group_by_match=args.format != "counts", **options
        )
        return _swiss(counts, args)
    if args.method == "elo":
        records = iter_votes(args.format, args.paths, **options)
    else:
        records = iter_records(args.format, args.paths, **options)
    return fit_board((r for r in records if hasattr(r, "kind")), args)


def render_table(board) -> str:
    value = board.value_name
    lines = [f"method={board.method} votes={board.n_votes:g} bootstrap={board.n_replicas}"]
    has_se = any(r.standard_error is not None for r in board.rows)
    has_lc = any(r.length_controlled is not None for r in board.rows)
    width = max([len(r.model) for r in board.rows] + [5])
    head = f"{'rank':>4}  {'model':<{width}}  {value:>9}  {'-ci':>7}  {'+ci':>7}  {'votes':>9}"
    head += "  {:>7}".format("se") if has_se else ""
    lines.append(head + ("  {:>9}  {:>7}".format("lc_win", "lc_se") if has_lc else ""))
    for r in board.rows:
        lo = "" if r.ci_lower is None else f"{r.rating - r.ci_lower:7.2f}"
        hi = "" if r.ci_upper is None else f"{r.ci_upper - r.rating:7.2f}"
        line = (
            f"{r.rank_ub:>4}  {r.model:<{width}}  {r.rating:9.2f}  {lo:>7}  {hi:>7}  {r.votes:>9g}"
        )
        if has_se:
            line += f"  {r.standard_error:7.2f}" if r.standard_error is not None else " " * 9
        if has_lc and r.length_controlled is not None:
            lc_se = "" if r.lc_standard_error is None else f"{r.lc_standard_error:7.2f}"
            line += f"  {r.length_controlled:9.2f}  {lc_se:>7}"
        lines.append(line)
    for name, val in board.coefficients.items():
        ci = board.coefficient_ci.get(name)
        extra = f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
        lines.append(f"coefficient {name} = {val:.4f}{extra}")
    lines.extend(f"note: {n}" for n in board.notes)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = None
    if not args.quiet:
        total = file_bytes(args.paths)
        progress = Progress(total)
    try:
        board = fit_files(args, progress)
    except (ValueError, OSError) as exc:  # ImportRowError is a ValueError naming file:line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(board.to_rows(), indent=1))
    else:
        print(render_table(board))
    return 0


if __name__ == "__main__":
    sys.exit(main())
