"""The judge-calibration panel's metric: the judge's lean per model against human labels."""

import numpy as np
import pytest

from judges.audit_metrics.calibration import judge_calibration


def labelled(seed=0, n=3000, bias=1.0):
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 4, n)
    second = (first + rng.integers(1, 4, n)) % 4
    p = rng.beta(0.5, 0.5, n)
    human = (rng.random(n) < p).astype(float)
    shift = np.where(first == 2, bias, 0.0) - np.where(second == 2, bias, 0.0)
    judge = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    return first, second, judge, human


def test_the_judges_favourite_leans_up_and_the_others_do_not():
    first, second, judge, human = labelled()
    report = judge_calibration(
        ["a", "b", "c", "d"], first, second, judge, human, np.ones(first.size)
    )
    lean = {row["model"]: row for row in report["models"]}
    assert report["models"][0]["model"] == "c"  # largest lean first
    assert lean["c"]["lean"] > 0.1 and lean["c"]["z"] > 5
    assert all(abs(lean[m]["z"]) < 4 for m in "abd") or all(lean[m]["lean"] < 0 for m in "abd")
    gaps = [abs(row["gap"]) for row in report["pairs"]]
    assert gaps == sorted(gaps, reverse=True) and len(report["pairs"]) == 6
    assert all("c" in row["models"] for row in report["pairs"][:3])
    for row in report["disagreements"]:
        assert (row["judge"] - 0.5) * (row["human"] - 0.5) < 0
    assert report["overall"]["labelled"] == first.size
    assert 0 < report["overall"]["agreement"] < 1


def test_pairs_are_named_in_alphabetical_order_whatever_the_slots():
    first, second, judge, human = (
        np.array([1, 0]),
        np.array([0, 1]),
        np.array([1.0, 0.0]),
        np.array([1.0, 1.0]),
    )
    report = judge_calibration(["b", "a"], first, second, judge, human, np.ones(2))
    (pair,) = report["pairs"]
    assert pair["models"] == ["a", "b"]
    # whatever the slot order, "a" won both matches for the judge, one for the humans
    assert pair["judge"] == pytest.approx(1.0) and pair["human"] == pytest.approx(0.5)


def test_weights_count_a_label_as_often_as_its_selection_made_it_rare():
    first, second = np.array([0, 0]), np.array([1, 1])
    judge, human = np.array([1.0, 1.0]), np.array([1.0, 0.0])
    report = judge_calibration(["a", "b"], first, second, judge, human, np.array([1.0, 3.0]))
    assert report["models"][0]["lean"] == pytest.approx(0.75)  # (0 x 1 + 1 x 3) / 4 for "a"
