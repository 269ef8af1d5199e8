"""Jury runs (issue 15): a panel of judges instead of one.

A jury run is an ordinary run whose ``jury`` holds its design: ``jurors`` (judge ids,
sorted: a juror's index is its place there), ``size`` (jurors per comparison, None for
all), ``rule`` (:data:`arena.ratings.jury.RULES`) and, for the weighted rule, the
``weights`` frozen when the run starts (from the audit: each juror's agreement with the
human majority, or its accuracy on gold answers, shrunk toward equal). The run's
``judge`` is one of the jurors (it sets the presentation orders: ``both_orders``).

Every juror's call on a comparison is an ordinary judge call of that judge
(:func:`judges.judging.judge_batch`, items ``(match, presentation, repeat, judge id)``):
idempotent, never paid twice, costed per judgment. The panel of a comparison is drawn
from ``(run seed, round, prompt, pair)`` (:func:`arena.ratings.jury.panel_for`), so a
replay draws it again. The design observes the mean of the panel's scores; the run's
board pools the verdicts with the jury's rule (:func:`arena.boards.scope_counts`).
"""

from __future__ import annotations

import numpy as np

from arena.errors import Refusal
from arena.models import EvaluationRun, Judge
from arena.ratings.jury import RULES, panel_for, reliability_weights
from judges.prompts import POINTWISE_MODES

# the audit records a weighted jury reads: agreement with the crowd's majority, with the
# annotators' (campaign labels), or gold accuracy (judges.audit_reports.jury.juror_records)
WEIGHT_SOURCES = ("humans", "annotators", "gold")
MAX_JURORS = 12


def juror_ids(run: EvaluationRun) -> list[int]:
    """The judges whose verdicts are the run's: its jurors, else its judge."""
    return list(run.jury.get("jurors") or []) if run.jury else [run.judge_id]


def panel_size(run: EvaluationRun) -> int:
    """Jurors per comparison (1 for a single-judge run)."""
    ids = juror_ids(run)
    size = run.jury.get("size") if run.jury else None
    return len(ids) if size is None else min(int(size), len(ids))


def panel(run: EvaluationRun, round_index: int, prompt: int, low: int, high: int) -> list[int]:
    """The judge ids on one comparison (design indices of its prompt and pair)."""
    ids = juror_ids(run)
    if not run.jury:
        return ids
    chosen = panel_for(run.seed, (round_index, prompt, low, high), len(ids), run.jury.get("size"))
    return [ids[i] for i in chosen.tolist()]


def jury_design(jurors, judge: Judge, size=None, rule="majority", weights_from="humans") -> dict:
    """Check a jury's fields (every refusal names its field) and return its ``jury``."""
    if not isinstance(jurors, list | tuple) or len(jurors) < 2:
        raise Refusal("a jury needs at least 2 judges", field="jurors")
    if len(jurors) > MAX_JURORS:
        raise Refusal(f"at most {MAX_JURORS} jurors", field="jurors")
    ids = sorted({j.pk for j in jurors})
    if len(ids) != len(jurors):
        raise Refusal("a judge is named twice", field="jurors")
    if judge.pk not in ids:
        raise Refusal("the run's judge must be one of the jurors", field="judge")
    for juror in jurors:
        check_juror(juror)
    if size is not None and not (
        isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= len(ids)
    ):
        raise Refusal(
            f"expected 1..{len(ids)} jurors per comparison, or null for all", field="jury"
        )
    if rule not in RULES:
        raise Refusal(f"expected one of {', '.join(RULES)}; got {rule!r}", field="jury")
    if weights_from not in WEIGHT_SOURCES:
        raise Refusal(
            f"weights from {' or '.join(WEIGHT_SOURCES)}; got {weights_from!r}", field="jury"
        )
    return {"jurors": ids, "size": size, "rule": rule, "weights_from": weights_from}


def check_juror(juror: Judge) -> None:
    """A jury pools pairwise verdicts: a single-score judge (each call grades one answer,
    :mod:`judges.judging`) sits on none."""
    if juror.mode in POINTWISE_MODES:
        raise Refusal(
            f"judge {juror.name!r} is a {juror.mode} judge; a jury pools pairwise verdicts",
            field="jurors",
        )


def frozen_weights(run: EvaluationRun) -> dict:
    """The jury with its juror weights, read from the audit of the run's prompt set now
    (only for the weighted rule; a replay uses the frozen ones)."""
    jury = dict(run.jury)
    if jury.get("rule") != "weighted" or "weights" in jury:
        return jury
    # Function-local: the audit reports read the whole data model; only a weighted jury
    # pays for them, once, when the run starts.
    from judges.audit_reports.jury import juror_records

    agreed, judged = juror_records(run.prompt_set.slug, jury["jurors"], jury["weights_from"])
    weights = reliability_weights(agreed, judged)
    jury["weights"] = {
        str(j): round(float(w), 6) for j, w in zip(jury["jurors"], weights, strict=True)
    }
    jury["records"] = {
        str(j): [int(a), int(n)] for j, a, n in zip(jury["jurors"], agreed, judged, strict=True)
    }
    return jury


def weights_of(jury: dict) -> np.ndarray | None:
    """The frozen weights in juror order (None when the rule has none)."""
    if not jury or jury.get("rule") != "weighted":
        return None
    stored = jury.get("weights") or {}
    return np.array([float(stored.get(str(j), 1.0)) for j in jury["jurors"]])
