"""PandaLM test set: judges vs the human majority, and agreement among the annotators.

Data: arena/fixtures/datasets/pandalm (Apache-2.0, WeOpenML/PandaLM @ 3871806). 999 items,
three annotators each (0 = tie, 1 = response1 better, 2 = response2 better), plus the
verdicts of GPT-3.5 ("0"/"1"/"2", "Tie", or "garbage" when unparsable) and PandaLM-7B.

Human majority: the label at least 2 of the 3 annotators gave. An item where all three
differ would have no majority and drop out; this test set has none (checked below).
Independent computations: scikit-learn's cohen_kappa_score and statsmodels' fleiss_kappa.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from judges.audit_metrics import (
    INVALID,
    MISSING,
    TIE,
    A,
    B,
    accuracy,
    cohen_kappa,
    fleiss_kappa,
    human_majority,
    krippendorff_alpha,
    pairwise_kappas,
    raw_agreement,
)

PANDALM = Path(__file__).resolve().parents[2] / "arena" / "fixtures" / "datasets" / "pandalm"
CODE = {0: TIE, 1: A, 2: B}
GPT_CODE = {"0": TIE, "Tie": TIE, "1": A, "2": B, "garbage": INVALID}


def _read(name):
    path = PANDALM / name
    if not path.exists():
        pytest.fail(f"missing dataset {path}")
    return sorted(json.loads(path.read_text()), key=lambda row: row["idx"])


@pytest.fixture(scope="module")
def data():
    items = _read("testset-v1.json")
    gpt = _read("gpt-3.5-turbo-testset-v1.json")
    panda = _read("pandalm-7b-testset-v1.json")
    assert [r["idx"] for r in items] == [r["idx"] for r in gpt] == [r["idx"] for r in panda]
    raw = np.array([[r["annotator1"], r["annotator2"], r["annotator3"]] for r in items])
    humans = np.vectorize(CODE.get)(raw)
    return {
        "raw": raw,
        "humans": humans,
        "majority": human_majority(humans),
        "gpt": np.array([GPT_CODE[r["gpt_result"]] for r in gpt]),
        "pandalm": np.array([CODE[int(r["pandalm_result"])] for r in panda]),
    }


def test_it_finds_a_majority_for_every_item_and_the_published_label_counts(data):
    # PandaLM README: label counts 0/1/2 = 105/422/472.
    majority = data["majority"]
    assert np.all(majority != MISSING)
    assert [int(np.sum(majority == c)) for c in (TIE, A, B)] == [105, 422, 472]
    # Independent majority: the most common of three labels, where it occurs >= 2 times.
    raw = data["raw"]
    counts = np.stack([(raw == c).sum(axis=1) for c in (0, 1, 2)], axis=1)
    assert np.array_equal(np.vectorize(CODE.get)(counts.argmax(axis=1)), majority)


def test_inter_annotator_kappa_matches_published_and_sklearn(data):
    kappas = pairwise_kappas(data["humans"], n_boot=300, rng=1)
    published = {(0, 1): 0.85, (0, 2): 0.88, (1, 2): 0.86}
    raw = data["raw"]
    for (i, j), est in kappas.items():
        assert est.value == pytest.approx(cohen_kappa_score(raw[:, i], raw[:, j]), abs=1e-12)
        assert round(est.value, 2) == published[(i, j)]
        assert est.low < est.value < est.high
        assert est.high - est.low < 0.1


@pytest.mark.parametrize("judge", ["gpt", "pandalm"])
def test_judge_vs_human_majority_matches_sklearn(data, judge):
    verdicts, majority = data[judge], data["majority"]
    acc = accuracy(verdicts, majority)
    kappa = cohen_kappa(verdicts, majority, n_boot=300, rng=2)
    # "garbage" replies are kept as their own label: they count as wrong.
    assert acc.n == 999
    assert acc.value == pytest.approx(accuracy_score(majority, verdicts), abs=1e-12)
    assert kappa.value == pytest.approx(cohen_kappa_score(verdicts, majority), abs=1e-12)
    assert kappa.low < kappa.value < kappa.high
    expected = {"gpt": (0.6977, 0.4755), "pandalm": (0.6677, 0.4354)}[judge]
    assert (round(acc.value, 4), round(kappa.value, 4)) == expected


def test_gpt_on_parsed_replies_and_without_ties(data):
    gpt, majority = data["gpt"], data["majority"]
    parsed = gpt != INVALID
    assert int(parsed.sum()) == 974
    kappa = cohen_kappa(gpt[parsed], majority[parsed], n_boot=0)
    assert kappa.value == pytest.approx(cohen_kappa_score(gpt[parsed], majority[parsed]), abs=1e-12)
    no_ties = raw_agreement(gpt, majority, ties=False)
    keep = (gpt != TIE) & (majority != TIE)
    assert no_ties.n == int(keep.sum())
    assert no_ties.value == pytest.approx(np.mean(gpt[keep] == majority[keep]), abs=1e-12)


def test_fleiss_kappa_and_alpha_of_the_three_annotators(data):
    humans = data["humans"]
    est = fleiss_kappa(humans, n_boot=300, rng=3)
    table, _ = aggregate_raters(data["raw"])
    reference = sm_fleiss(table, method="fleiss")
    assert est.value == pytest.approx(reference, abs=1e-12)
    assert est.low < est.value < est.high
    # With complete data, 1 - alpha = (1 - kappa_Fleiss) (n - 1) / n, n = pairable values.
    alpha = krippendorff_alpha(humans, "nominal", n_boot=0, missing=MISSING)
    n = humans.size
    assert alpha.value == pytest.approx(1 - (1 - reference) * (n - 1) / n, abs=1e-12)
