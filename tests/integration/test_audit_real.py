"""The audit pages on the real datasets, imported through the importers.

PandaLM (999 items, 3 annotators, GPT-3.5 and PandaLM-7B): agreement with the human
majority and between annotators, checked against scikit-learn / statsmodels on the raw
JSON. LLMBar Natural (5 judges in both orders): position consistency reproduces the
published ``equal`` figures and accuracy per order ``correct_False`` / ``correct_True``.
"""

import json
import re

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from arena.importers.loader import import_file
from arena.models import Judge
from tests.conftest import dataset

pytestmark = pytest.mark.django_db
PUBLISHED_EQUAL = {"GPT-4": 97, "PaLM2": 92, "ChatGPT": 89, "LLaMA2": 69, "Falcon": 43}


def _row(report, name):
    (row,) = [r for r in report["judges"] if r["judge"].startswith(name + " [")]
    return row


def _fraction(text):
    k, n = re.match(r"\s*(\d+)\s*/\s*(\d+)", text).groups()
    return int(k), int(n)


def test_pandalm_agreement_on_the_pages_matches_sklearn_and_statsmodels(staff):
    assert import_file("pandalm", dataset("pandalm"), prompt_set="pandalm").ok
    items = sorted(
        json.loads(dataset("pandalm", "testset-v1.json").read_text()), key=lambda r: r["idx"]
    )
    raw = np.array([[r["annotator1"], r["annotator2"], r["annotator3"]] for r in items])
    counts = np.stack([(raw == c).sum(axis=1) for c in (0, 1, 2)], axis=1)
    majority = counts.argmax(axis=1)  # every item has a 2-of-3 majority (see the unit test)
    assert np.all(counts.max(axis=1) >= 2)

    report = staff.get("/audit/", {"set": "pandalm"}).context["report"]
    for name, file, key in (
        ("gpt-3.5-turbo", "gpt-3.5-turbo-testset-v1.json", "gpt_result"),
        ("pandalm-7b", "pandalm-7b-testset-v1.json", "pandalm_result"),
    ):
        rows = sorted(json.loads(dataset("pandalm", file).read_text()), key=lambda r: r["idx"])
        code = {"0": 0, "Tie": 0, "1": 1, "2": 2, "garbage": 9}
        verdicts = np.array([code[str(r[key])] for r in rows])
        cells = _row(report, name)["cells"]
        assert cells["agreement"]["n"] == 999
        assert cells["agreement"]["value"] == pytest.approx(
            accuracy_score(majority, verdicts), abs=1e-12
        )
        assert cells["kappa"]["value"] == pytest.approx(
            cohen_kappa_score(verdicts, majority), abs=1e-12
        )
        expected = {"gpt-3.5-turbo": (0.6977, 0.4755), "pandalm-7b": (0.6677, 0.4354)}[name]
        assert (
            round(cells["agreement"]["value"], 4),
            round(cells["kappa"]["value"], 4),
        ) == expected
        assert cells["kappa"]["low"] < cells["kappa"]["value"] < cells["kappa"]["high"]

    agreement = staff.get("/audit/agreement/", {"set": "pandalm"}).context["report"]
    charts = {c["key"]: c for c in agreement["charts"]}
    heat = {(r["row"], r["column"]): r for r in charts["kappa-humans"]["rows"]}
    published = {(0, 1): 0.85, (0, 2): 0.88, (1, 2): 0.86}
    for (i, j), value in published.items():
        cell = heat[(f"pandalm:annotator{i + 1}", f"pandalm:annotator{j + 1}")]
        assert cell["value"] == pytest.approx(cohen_kappa_score(raw[:, i], raw[:, j]), abs=1e-12)
        assert round(cell["value"], 2) == value
        assert cell["n"] == 999
    groups = {r["label"]: r for r in charts["groups"]["rows"]}
    reference = sm_fleiss(aggregate_raters(raw)[0], method="fleiss")
    assert groups["humans: Fleiss' κ"]["value"] == pytest.approx(reference, abs=1e-12)
    # Complete data: 1 - alpha = (1 - kappa_Fleiss)(n - 1)/n with n pairable values.
    n = raw.size
    alpha = groups["humans: Krippendorff's α"]["value"]
    assert alpha == pytest.approx(1 - (1 - reference) * (n - 1) / n, abs=1e-12)


def test_llmbar_position_consistency_and_accuracy_per_order_reproduce_the_paper(staff):
    assert import_file("llmbar", dataset("llmbar", "Natural"), prompt_set="llmbar").ok
    report = staff.get("/audit/", {"set": "llmbar"}).context["report"]
    for name, equal in PUBLISHED_EQUAL.items():
        stats = json.loads(
            dataset("llmbar", "Natural", "evaluators", name, "Swap", "statistics.json").read_text()
        )
        cell = _row(report, name)["cells"]["consistency"]
        assert (round(cell["value"] * cell["n"]), cell["n"]) == _fraction(stats["equal"])
        assert cell["value"] * 100 == pytest.approx(equal, abs=1e-12)
        judge = Judge.objects.get(name=name)
        page = staff.get(f"/audit/judge/{judge.id}/", {"set": "llmbar"})
        gold = {
            r["label"]: r for r in {c["key"]: c for c in page.context["charts"]}["gold"]["rows"]
        }
        for label, key in (
            ("answer A shown first", "correct_False"),
            ("answer B shown first", "correct_True"),
            ("both orders combined", "correct_both"),
        ):
            assert (round(gold[label]["value"] * gold[label]["n"]), gold[label]["n"]) == _fraction(
                stats[key]
            )
    flagged = {r["judge"].split(" [")[0] for r in report["judges"] if r["flagged"]}
    assert {"Falcon", "LLaMA2"} <= flagged and "GPT-4" not in flagged
