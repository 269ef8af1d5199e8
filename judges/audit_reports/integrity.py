"""Vote-integrity panel: per-voter statistics, the raw board beside the robust (public)
board without flagged voters, and each flagged address cluster's effect on the ratings."""

from __future__ import annotations

from collections import Counter

import numpy as np

from arena.boards import (
    BoardScope,
    cluster_rows,
    concat_rows,
    counts_from_rows,
    public_rows,
    scope_counts_and_ids,
)
from arena.models import Voter
from arena.ratings.counts import FIRST, SECOND, PairwiseCounts
from arena.ratings.leaderboard import leaderboard
from arena.ratings.scale import ELO_SCALE
from judges.audit_metrics import (
    MISSING,
    A,
    B,
    flagged_vote_impact,
    upset_scores,
    vote_timing,
    voter_concentration,
    wilson_interval,
)
from judges.audit_metrics.integrity import NO_WINNER, bt_strengths, rank_order
from judges.audit_reports import queries
from judges.audit_reports.common import (
    Chart,
    align,
    cached,
    drawable,
    n_boot,
    num,
    tie_merged,
)

MAX_VOTER_ROWS = 50  # voters listed on the page (the CSV has all of them)
MAX_CLUSTERS = 10  # flagged clusters whose effect is refitted (the ones with most votes)
TOP_K = 3  # the leaderboard ranks whose stability is reported


def integrity_report(prompt_set: str, category: str = "") -> dict:
    return cached("integrity", prompt_set, (category,), lambda: _integrity(prompt_set, category))


def _integrity(prompt_set: str, category: str) -> dict:
    h = queries.load_verdicts(prompt_set, category, who="humans")
    if not len(h):
        return {"empty": True, "charts": [], "voters": [], "board": None}
    w = h.weight
    voter = np.repeat(h.voter, w)
    verdict = np.repeat(h.verdict, w)
    ca, cb = np.repeat(h.contestant_a, w), np.repeat(h.contestant_b, w)
    decisive = (verdict == A) | (verdict == B)
    winner = np.where(decisive, np.where(verdict == A, ca, cb), NO_WINNER)
    loser = np.where(verdict == A, cb, ca)
    conc = voter_concentration(voter, winner, loser)

    board, rating_of = _boards(prompt_set, category)
    ra = queries.lookup(rating_of, ca, default=np.nan).astype(np.float64)
    rb = queries.lookup(rating_of, cb, default=np.nan).astype(np.float64)
    rated = decisive & np.isfinite(ra) & np.isfinite(rb)
    win_r = np.where(verdict == A, ra, rb)
    lose_r = np.where(verdict == A, rb, ra)
    upsets = upset_scores(voter[rated], win_r[rated], lose_r[rated], scale=ELO_SCALE)
    timing = vote_timing(voter, np.repeat(h.seconds, w))
    gold = _gold_by_voter(voter, verdict, np.repeat(h.gold, w), conc.voter)

    info = queries.voter_info(conc.voter)
    contestants = queries.contestant_info(conc.top_contestant[conc.top_contestant >= 0])
    voters = _voter_rows(conc, upsets, timing, gold, info, contestants)
    shown = sorted(voters, key=_suspicion, reverse=True)[:MAX_VOTER_ROWS]
    charts = _charts(voters, board)
    if board.get("clusters"):
        charts.append(
            Chart(
                "cluster_effects",
                "Effect of each flagged cluster on each model's rating",
                "table",
                [
                    {"cluster": c["cluster"], **effect}
                    for c in board["clusters"]
                    for effect in c["effects"]
                ],
            )
        )
    return {
        "empty": False,
        "voters": shown,
        "n_voters": len(voters),
        "n_votes": int(w.sum()),
        "n_flagged": sum(1 for v in voters if v["flagged"]),
        "board": board,
        "charts": [c.as_dict() for c in map(drawable, charts) if c.rows],
    }


def _charts(voters: list[dict], board: dict) -> list[Chart]:
    """The panel's charts: each is also the CSV of its rows."""
    charts = [
        Chart("voters", "Voters", "table", voters),
        _voter_scatter(
            "concentration",
            "Volume and concentration on one contestant",
            voters,
            ("n_votes", "top_share", "top_contestant"),
            x="n_votes",
            y="top_share",
            xlog=True,
            xtitle="votes",
            ytitle="share of decisive votes for the top contestant",
        ),
        _voter_scatter(
            "upsets",
            "Upset rate outlier score (votes against the Bradley-Terry favourite)",
            voters,
            ("upset_n", "upset_rate", "upset_z_peers", "upset_z_model"),
            x="upset_n",
            y="upset_z_peers",
            xlog=True,
            xtitle="decisive votes between rated models",
            ytitle="z vs other voters",
            reference=0,
        ),
        _voter_scatter(
            "timing",
            "Time to vote",
            voters,
            ("n_votes", "median_seconds", "fast_share"),
            x="n_votes",
            y="median_seconds",
            xlog=True,
            ylog=True,
            xtitle="votes",
            ytitle="median seconds to vote",
        ),
        _gold_chart(voters),
    ]
    if board["rows"]:
        charts.append(
            Chart(
                "board",
                "Leaderboard with and without flagged voters (95% CI)",
                "estimates",
                board["rows"],
                {"limit_labels": 30},
                note="The 30 best-rated models are drawn; the CSV has every model.",
            )
        )
        charts.append(
            Chart("flip", "Votes needed to swap adjacent top ranks", "table", board["margins"])
        )
    return charts


def _voter_scatter(key: str, title: str, voters: list[dict], fields: tuple, **options) -> Chart:
    """One point per voter that has a value of ``options["y"]``, coloured by its flag; the
    rows (and CSV) hold the voter, ``fields`` and the flag."""
    columns = ("voter", *fields, "flagged")
    rows = [{k: v[k] for k in columns} for v in voters if v[options["y"]] is not None]
    return Chart(key, title, "scatter", rows, {"text": "voter", "color": "flagged", **options})


def _gold_chart(voters: list[dict]) -> Chart:
    """Gold accuracy of the 30 voters with the most gold battles."""
    rows = [
        {
            "label": v["voter"],
            "series": "",
            "value": v["gold_accuracy"],
            "low": v["gold_low"],
            "high": v["gold_high"],
            "n": v["gold_n"],
            "flagged": v["flagged"],
        }
        for v in sorted(voters, key=lambda v: -v["gold_n"])[:30]
        if v["gold_n"]
    ]
    return Chart(
        "gold", "Accuracy on gold / honeypot battles", "estimates", rows, {"range": [0, 1]}
    )


def _suspicion(v: dict) -> float:
    z = v["upset_z_peers"]
    return (1e9 if v["flagged"] else 0) + (z if z is not None else -1e9)


def _gold_by_voter(voter, verdict, gold, voters) -> dict[str, np.ndarray]:
    """Per voter: gold battles voted on, correct ones, Wilson interval."""
    on_gold = gold != MISSING
    idx = align(voter[on_gold], voters)
    right = tie_merged(verdict[on_gold]) == gold[on_gold]
    n = np.bincount(idx, minlength=len(voters)).astype(np.int64)
    k = np.bincount(idx, weights=right.astype(np.float64), minlength=len(voters))
    low, high = wilson_interval(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n > 0, k / n, np.nan)
    return {"n": n, "accuracy": acc, "low": low, "high": high}


def _voter_rows(conc, upsets, timing, gold, info, contestants) -> list[dict]:
    up = align(conc.voter, upsets.voter)
    tm = align(conc.voter, timing.voter)

    def pick(arr, at, i):
        return num(arr[at[i]]) if at[i] >= 0 else None

    rows = []
    for i, vid in enumerate(conc.voter.tolist()):
        label, is_flagged = info.get(vid, (str(vid), False))
        top = int(conc.top_contestant[i])
        rows.append(
            {
                "voter_id": vid,
                "voter": label,
                "flagged": bool(is_flagged),
                "n_votes": int(conc.n_votes[i]),
                "n_decisive": int(conc.n_decisive[i]),
                "top_contestant": contestants.get(top, ("", ""))[0] if top >= 0 else "",
                "top_share": num(conc.top_share[i]),
                "hhi": num(conc.hhi[i]),
                "top_win_rate": num(conc.top_win_rate[i]),
                "upset_n": int(upsets.n[up[i]]) if up[i] >= 0 else 0,
                "upset_rate": pick(upsets.upset_rate, up, i),
                "upset_z_model": pick(upsets.z_model, up, i),
                "upset_z_peers": pick(upsets.z_peers, up, i),
                "median_seconds": pick(timing.median, tm, i),
                "min_seconds": pick(timing.minimum, tm, i),
                "fast_share": pick(timing.fast_share, tm, i),
                "gold_n": int(gold["n"][i]),
                "gold_accuracy": num(gold["accuracy"][i]),
                "gold_low": num(gold["low"][i]),
                "gold_high": num(gold["high"][i]),
            }
        )
    return rows


def _boards(prompt_set: str, category: str) -> tuple[dict, dict[int, float]]:
    """Human leaderboards with all votes and without flagged voters, top-k margins, and
    the flagged clusters' effects.

    The all-votes board is the raw human board of the scope (the same aggregation, K-wise
    rankings included, flagged votes too); the clean one leaves out every vote of a
    flagged voter: it is the robust public board (the same once the trust pass has moved
    the counts, within ``ARENA_TRUST_INTERVAL_SECONDS``).

    Returns the page data and each contestant's rating on the all-votes board (what
    upsets are measured against).
    """
    scope = BoardScope(prompt_set, "humans", category)
    counts_all, models = scope_counts_and_ids(scope, raw=True)
    if counts_all.n_models < 2:
        return {"rows": [], "margins": [], "impact": None, "clusters": []}, {}
    counts_clean, _ = scope_counts_and_ids(scope, exclude_flagged=True, model_ids=models)
    boot = n_boot()
    all_board = leaderboard(counts_all, bootstrap=boot)
    if counts_clean.total_votes == counts_all.total_votes:
        clean_board = all_board  # nobody flagged: the same fit
    else:
        clean_board = leaderboard(counts_clean, bootstrap=boot) if counts_clean.n_cells else None
    rows = [
        {
            "label": r.model,
            "series": series,
            "value": num(r.rating),
            "low": num(r.ci_lower),
            "high": num(r.ci_upper),
            "n": num(r.votes),
            "rank_ub": r.rank_ub,
        }
        for series, board in (("all votes", all_board), ("without flagged voters", clean_board))
        if board is not None
        for r in board.rows
    ]
    margins, impact = _margins(counts_all, counts_clean)
    rating = {r.model: r.rating for r in all_board.rows}
    ratings = {
        cid: rating.get(name, np.nan) for cid, name in zip(models, counts_all.models, strict=True)
    }
    clusters = _cluster_effects(scope, models, list(counts_all.models))
    return {"rows": rows, "margins": margins, "impact": impact, "clusters": clusters}, ratings


def _cluster_effects(scope: BoardScope, models: list[int], names: list[str]) -> list[dict]:
    """Per flagged address cluster (the :data:`MAX_CLUSTERS` with most votes): its voters,
    votes, why it was flagged, and each model's rating with its votes added to the board
    without flagged voters minus the rating without them (point estimates, pairwise votes)."""
    flagged = Voter.objects.filter(flagged=True).values_list("pk", flat=True)
    per_cluster = cluster_rows(scope, flagged)
    if not per_cluster:
        return []
    votes = {key: int(rows[5].sum()) for key, rows in per_cluster.items()}
    shown = sorted(votes, key=lambda key: -votes[key])[:MAX_CLUSTERS]
    base = public_rows(scope, exclude_flagged=True)
    without = _ratings(counts_from_rows(base, models)[0])
    info = _cluster_info(shown)
    out = []
    for key in shown:
        with_cluster = _ratings(counts_from_rows(concat_rows(base, per_cluster[key]), models)[0])
        delta = with_cluster - without
        effects = [
            {
                "model": name,
                "rating_without": num(without[i]),
                "rating_with": num(with_cluster[i]),
                "delta": num(delta[i]),
            }
            for i, name in enumerate(names)
        ]
        top = int(np.nanargmax(np.abs(delta))) if np.isfinite(delta).any() else 0
        out.append(
            {
                "cluster": info[key]["label"],
                "voters": info[key]["voters"],
                "flagged": info[key]["flagged"],
                "votes": votes[key],
                "reason": info[key]["reason"],
                "top_model": names[top] if names else "",
                "top_delta": num(delta[top]) if names else None,
                "effects": effects,
            }
        )
    return out


def _ratings(counts: PairwiseCounts) -> np.ndarray:
    """Point BT ratings per model index (NaN for a model the votes do not rate)."""
    out = np.full(counts.n_models, np.nan)
    if counts.n_cells:
        rating = {r.model: r.rating for r in leaderboard(counts, bootstrap=0).rows}
        out = np.array([rating.get(m, np.nan) for m in counts.models], dtype=np.float64)
    return out


def _cluster_info(keys: list[str]) -> dict[str, dict]:
    """Label, size, flagged voters and the commonest flag reason of each cluster (one query)."""
    addresses = [k for k in keys if not k.startswith("voter:")]
    lone = [int(k.split(":", 1)[1]) for k in keys if k.startswith("voter:")]
    rows = Voter.objects.filter(ip_hash__in=addresses) | Voter.objects.filter(pk__in=lone)
    info = {
        k: {"label": _cluster_label(k), "voters": 0, "flagged": 0, "reasons": Counter()}
        for k in keys
    }
    for pk, address, is_flagged, reason in rows.values_list(
        "pk", "ip_hash", "flagged", "flag_reason"
    ):
        entry = info.get(address) or info.get(f"voter:{pk}")
        if entry is None:
            continue
        entry["voters"] += 1
        if is_flagged:
            entry["flagged"] += 1
            entry["reasons"][reason] += 1
    for entry in info.values():
        reasons = entry.pop("reasons")
        entry["reason"] = reasons.most_common(1)[0][0] if reasons else ""
    return info


def _cluster_label(key: str) -> str:
    return key.replace(":", " ") if key.startswith("voter:") else f"address {key[:8]}"


def _margins(counts_all, counts_clean) -> tuple[list[dict], dict]:
    """Votes that would swap each adjacent pair of the clean top ranks, vs the flagged votes."""
    k = min(TOP_K, counts_all.n_models - 1)
    wins_clean = _win_matrix(counts_clean)
    impact = flagged_vote_impact(_win_matrix(counts_all), wins_clean, k)
    names = list(counts_all.models)
    clean_order = rank_order(bt_strengths(wins_clean))
    margins = [
        {
            "boundary": f"{r + 1}|{r + 2}",
            "upper": names[clean_order[r]],
            "lower": names[clean_order[r + 1]],
            "votes_to_flip": num(impact.margins[r]),
            "flagged_votes": num(impact.n_flagged_votes),
            "could_flip": bool(impact.n_flagged_votes >= impact.margins[r]),
        }
        for r in range(k)
    ]
    return margins, {
        "k": k,
        "top_all": [names[i] for i in impact.change.top_before],
        "top_clean": [names[i] for i in impact.change.top_after],
        "set_changed": impact.change.set_changed,
        "order_changed": impact.change.order_changed,
        "n_flagged_votes": num(impact.n_flagged_votes),
        "could_flip": impact.could_flip,
        "min_margin": num(np.min(impact.margins)),
    }


def _win_matrix(counts: PairwiseCounts) -> np.ndarray:
    """``W[i, j]``: votes won by model i over model j, a tie or both-bad half a win each way."""
    n = counts.n_models
    share = np.select([counts.outcome == FIRST, counts.outcome == SECOND], [1.0, 0.0], 0.5)
    wins = np.zeros((n, n))
    np.add.at(wins, (counts.first, counts.second), counts.votes * share)
    np.add.at(wins, (counts.second, counts.first), counts.votes * (1 - share))
    return wins
