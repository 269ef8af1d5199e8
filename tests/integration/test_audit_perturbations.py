"""Perturbation runs (evaluation runs with a tag) against the untagged baseline.

A comparison is the same when judge name, prompt and the unordered pair of contestants
agree; its verdict is unanimous A or B over its judgments, else a tie. Expected flip
rates are the pure ``flip_rate`` on the drawn arrays.
"""

import numpy as np
import pytest

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, PromptRecord
from arena.models import EvaluationRun, Judge, Match, PromptSet
from judges.audit_metrics import TIE, A, B, flip_rate

pytestmark = pytest.mark.django_db
N = 120
CODE = {"a": A, "b": B, "tie": TIE}


def _run(tag: str, prefix: str) -> EvaluationRun:
    run = EvaluationRun.objects.create(
        name=f"run {tag or 'baseline'}",
        prompt_set=PromptSet.objects.get(slug="pert"),
        judge=Judge.objects.get(name="j"),
        tag=tag,
    )
    Match.objects.filter(prompt_set__slug="pert", external_id__startswith=prefix).update(run=run)
    return run


@pytest.fixture
def runs():
    """Baseline: x vs y in slot order. "swap": the same pairs with the slots exchanged and
    20% of verdicts changed. "padding": 35% changed, some to ties."""
    rng = np.random.default_rng(11)
    base = np.where(rng.random(N) < 0.6, A, B)
    swap_after = np.where(rng.random(N) < 0.2, 1 - base, base)
    pad_after = np.where(rng.random(N) < 0.35, np.where(rng.random(N) < 0.5, TIE, 1 - base), base)
    records = [PromptRecord(external_id=f"p{k}", text=f"prompt {k}") for k in range(N)]
    letter = {A: "a", B: "b", TIE: "tie"}
    for k in range(N):
        records.append(
            JudgmentRecord(
                match_id=f"base{k}",
                contestants=("x", "y"),
                winner=letter[base[k]],
                judge="j",
                prompt_id=f"p{k}",
            )
        )
        # Slots exchanged: answer "a" is now y, so x winning is "b".
        swapped = {A: "b", B: "a", TIE: "tie"}[swap_after[k]]
        records.append(
            JudgmentRecord(
                match_id=f"swap{k}",
                contestants=("y", "x"),
                winner=swapped,
                judge="j",
                prompt_id=f"p{k}",
                presentation=(0, 1),
            )
        )
        records.append(
            JudgmentRecord(
                match_id=f"pad{k}",
                contestants=("x", "y"),
                winner=letter[pad_after[k]],
                judge="j",
                prompt_id=f"p{k}",
            )
        )
    assert import_records(records, prompt_set="pert", source="t").ok
    _run("", "base")
    _run("swap", "swap")
    _run("padding", "pad")
    return {"base": base, "swap": swap_after, "padding": pad_after}


def test_it_shows_flip_rates_per_tag_against_the_baseline(staff, runs):
    response = staff.get("/audit/perturbations/", {"set": "pert"})
    assert response.status_code == 200
    report = response.context["report"]
    assert report["tags"] == ["padding", "swap"]
    table = {row["tag"]: row for row in report["table"]}
    for tag in ("swap", "padding"):
        anyflip = flip_rate(runs["base"], runs[tag])
        reversal = flip_rate(runs["base"], runs[tag], ties_flip=False)
        assert table[tag]["pairs"] == N
        for cell, est in ((table[tag]["flip"], anyflip), (table[tag]["reversal"], reversal)):
            assert cell["n"] == est.n
            assert cell["value"] == pytest.approx(est.value, abs=1e-12)
            assert cell["low"] == pytest.approx(est.low, abs=1e-12)
            assert cell["high"] == pytest.approx(est.high, abs=1e-12)
    (chart,) = response.context["charts"]
    assert {(r["label"], r["series"]) for r in chart["rows"]} == {
        (tag, s) for tag in ("swap", "padding") for s in ("any change", "A ↔ B reversal")
    }
    assert staff.get(chart["csv"]).status_code == 200


def test_perturbed_verdicts_stay_out_of_the_judge_metrics(staff, runs):
    report = staff.get("/audit/", {"set": "pert"}).context["report"]
    (row,) = report["judges"]
    assert row["n_judgments"] == N  # the baseline only


def test_a_run_without_a_baseline_pairs_nothing(staff, runs):
    Match.objects.filter(external_id__startswith="base").delete()
    report = staff.get("/audit/perturbations/", {"set": "pert"}).context["report"]
    assert all(row["pairs"] == 0 for row in report["table"])
