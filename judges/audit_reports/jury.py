"""A jury run's audit: each juror beside its panel, and the records its weights come from.

:func:`jury_report` puts side by side, per juror of one jury run: its calls and cost, how
often it agrees with the rest of its panel (:func:`arena.ratings.jury.panel_agreement`),
and its bias figures on the run's comparisons: the first-slot win rate (how often the
answer shown first wins a decisive verdict), the tie rate, how often the longer answer
wins, and its first-slot share and tie rate between equal answers from the run's
judge-effects fit (:mod:`arena.ratings.judge_effects`); the jury's own verdicts get the
same figures in the last row. :func:`juror_records` gives each juror's track record in
the prompt set's audit (agreement with the human majority, or accuracy on gold
answers): the weighted rule's weights (:mod:`judges.runs.jury`).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from django.db.models import Count, Q, Sum

from arena.boards import BoardScope, juror_verdicts, pool_jury, scope_judge_verdicts
from arena.models import EvaluationRun, Judge, Judgment
from arena.ratings.judge_effects import fit_judge_effects
from arena.ratings.jury import panel_agreement
from judges.audit_metrics import first_slot_win_rate
from judges.audit_metrics.estimate import proportion
from judges.audit_metrics.length import longer_won
from judges.audit_reports.common import estimate_dict, load_audit_data
from judges.audit_reports.judge import _metrics_of

# Slot-terms winner code -> outcome in shown order (first, second, tie, both bad).
_SHOWN_WHEN_A_FIRST = np.array([0, 1, 2, 3])
_SHOWN_WHEN_B_FIRST = np.array([1, 0, 2, 3])


def juror_records(prompt_set: str, judge_ids, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(agreed, judged) per juror in the set's audit: decisive verdicts that matched the
    crowd's majority (``humans``), the annotators' majority (``annotators``: their labels,
    :mod:`judges.campaigns`) or the gold answer (``gold``); 0 of 0 without a record."""
    d = load_audit_data(prompt_set)
    agreed, judged = np.zeros(len(judge_ids), np.int64), np.zeros(len(judge_ids), np.int64)
    for i, judge_id in enumerate(judge_ids):
        if judge_id not in d.judges:
            continue
        m = _metrics_of(d, judge_id, detail=False)
        est = {
            "humans": m.agreement_no_ties,
            "annotators": m.annotator_agreement_no_ties,
            "gold": m.gold,
        }[source]
        if est.n and np.isfinite(est.value):
            judged[i] = est.n
            agreed[i] = round(est.value * est.n)
    return agreed, judged


def juror_costs(run: EvaluationRun) -> list[dict]:
    """Calls, failures and cost per juror of a run (one GROUP BY), in juror order."""
    ids = list(run.jury.get("jurors") or [run.judge_id]) if run.jury else [run.judge_id]
    names = dict(Judge.objects.filter(pk__in=ids).values_list("pk", "name"))
    rows = {
        row["judge_id"]: row
        for row in Judgment.objects.filter(match__run=run, judge_id__in=ids)
        .values("judge_id")
        .annotate(
            calls=Count("id"),
            failed=Count("id", filter=~Q(status=Judgment.Status.OK)),
            cost=Sum("cost"),
        )
        .order_by()
    }
    return [
        {
            "judge_id": j,
            "name": names.get(j, str(j)),
            "calls": rows.get(j, {}).get("calls", 0),
            "failed": rows.get(j, {}).get("failed", 0),
            "cost": float(rows.get(j, {}).get("cost") or Decimal(0)),
            "weight": (run.jury.get("weights") or {}).get(str(j)) if run.jury else None,
        }
        for j in ids
    ]


def _bias(winner: np.ndarray, a_first: np.ndarray, len_a, len_b) -> dict:
    shown = np.where(a_first, _SHOWN_WHEN_A_FIRST[winner], _SHOWN_WHEN_B_FIRST[winner])
    won, eligible = longer_won(winner, len_a, len_b)
    return {
        "first_slot": estimate_dict(first_slot_win_rate(shown).win_rate),
        "tie_rate": estimate_dict(proportion(int(np.sum(winner >= 2)), len(winner))),
        "longer_wins": estimate_dict(proportion(int(won.sum()), int(eligible.sum()))),
    }


def jury_report(run_id: int) -> dict | None:
    """Each juror of a jury run beside its panel (see the module docstring); None for a
    run that is not a jury run."""
    run = EvaluationRun.objects.select_related("prompt_set").filter(pk=run_id).first()
    if run is None or not run.jury:
        return None
    jury = run.jury
    scope = BoardScope(run.prompt_set.slug, f"run:{run.id}")
    v = juror_verdicts(scope, jury)
    n = len(jury["jurors"])
    agreed, compared = panel_agreement(v.call, v.juror, v.winner, n)
    effects = _judge_effects(scope)
    rows = []
    for i, cost in enumerate(juror_costs(run)):
        mine = v.juror == i
        rows.append(
            {
                **cost,
                "panel_agreement": estimate_dict(proportion(agreed[i], compared[i])),
                **_bias(v.winner[mine], v.a_first[mine], v.len_a[mine], v.len_b[mine]),
                **effects.get(cost["judge_id"], {}),
            }
        )
    pooled, first = pool_jury(v, jury)
    keep = pooled.jurors > 0
    jury_row = {
        "name": f"the jury ({jury.get('rule', 'majority')})",
        "calls": int(keep.sum()),
        "cost": sum(r["cost"] for r in rows),
        **_bias(
            pooled.winner[keep], v.a_first[first][keep], v.len_a[first][keep], v.len_b[first][keep]
        ),
    }
    return {
        "run": {"id": run.id, "name": run.name, "prompt_set": run.prompt_set.slug},
        "jury": {
            "size": jury.get("size") or n,
            "jurors": n,
            "rule": jury.get("rule", "majority"),
            "weights_from": jury.get("weights_from"),
        },
        "jurors": rows,
        "panel": jury_row,
    }


def _judge_effects(scope: BoardScope) -> dict[int, dict]:
    """Per judge id: its first-slot share and tie rate between equals in the run's fit."""
    v = scope_judge_verdicts(scope)
    if v is None:
        return {}
    fit = fit_judge_effects(len(v.models), len(v.judge_ids), v.judge, v.first, v.second, v.outcome)
    return {
        j: {"effect_first": float(share), "effect_tie": float(tie)}
        for j, share, tie in zip(v.judge_ids, fit.first_share(), fit.tie_rate(), strict=True)
    }
