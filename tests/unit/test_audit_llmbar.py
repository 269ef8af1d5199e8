"""LLMBar Natural, both orders: the published position consistency and accuracy figures.

Data: arena/fixtures/datasets/llmbar (MIT, princeton-nlp/LLMBar @ 900616b). Each item has
``results``: a list of rounds, the LAST of which holds the final verdicts for
"swap = False" (output_1 shown first) and "swap = True" (output_2 shown first). The
``winner`` is in the ORIGINAL numbering in both orders; ``label`` is the gold answer.
``statistics.json`` next to it has the published figures ("89 / 100 = 89.0%").
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from judges.audit_metrics import (
    FIRST,
    INVALID,
    SECOND,
    A,
    B,
    accuracy,
    cohen_kappa,
    combine_orders,
    first_slot_win_rate,
    position_consistency,
    position_preference,
    swap,
    to_slot_terms,
)

SWAP_DIR = (
    Path(__file__).resolve().parents[2]
    / "arena"
    / "fixtures"
    / "datasets"
    / "llmbar"
    / "Natural"
    / "evaluators"
)
JUDGES = ["GPT-4", "PaLM2", "ChatGPT", "LLaMA2", "Falcon"]
PUBLISHED_EQUAL = {"GPT-4": 97, "PaLM2": 92, "ChatGPT": 89, "LLaMA2": 69, "Falcon": 43}
ANSWER = {"1": A, "2": B, None: INVALID}  # PaLM2 has one item with no verdict in either order


def load(judge):
    path = SWAP_DIR / judge / "Swap"
    if not path.exists():
        pytest.fail(f"missing dataset {path}")
    items = json.loads((path / "result.json").read_text())
    published = json.loads((path / "statistics.json").read_text())
    final = [item["results"][-1] for item in items]
    answer1 = np.array([ANSWER[r["swap = False"]["winner"]] for r in final])
    answer2 = np.array([ANSWER[r["swap = True"]["winner"]] for r in final])
    gold = np.array([ANSWER[str(item["label"])] for item in items])
    return answer1, answer2, gold, published


def fraction(text):
    """'89 / 100 = 89.0%' -> (89, 100)."""
    k, n = re.match(r"\s*(\d+)\s*/\s*(\d+)", text).groups()
    return int(k), int(n)


@pytest.mark.parametrize("judge", JUDGES)
def test_it_reproduces_published_position_consistency(judge):
    answer1, answer2, _, published = load(judge)
    # Slot terms: in the swapped run output_2 sat in the first slot.
    order1 = answer1
    order2 = to_slot_terms(answer2, swapped=True)
    est = position_consistency(order1, order2)
    k, n = fraction(published["equal"])
    assert (round(est.value * est.n), est.n) == (k, n)
    assert est.value * 100 == pytest.approx(PUBLISHED_EQUAL[judge], abs=1e-12)
    assert est.low < est.value < est.high


@pytest.mark.parametrize("judge", JUDGES)
def test_it_reproduces_published_accuracy_per_order(judge):
    answer1, answer2, gold, published = load(judge)
    for answers, key in ((answer1, "correct_False"), (answer2, "correct_True")):
        est = accuracy(answers, gold)
        assert (round(est.value * est.n), est.n) == fraction(published[key])
    both = accuracy(np.where(answer1 == answer2, answer1, INVALID), gold)
    assert (round(both.value * both.n), both.n) == fraction(published["correct_both"])


@pytest.mark.parametrize("judge", ["GPT-4", "ChatGPT", "LLaMA2", "Falcon"])
def test_order_agreement_kappa_matches_published(judge):
    # kappa_agreement is Cohen's kappa between the two orders' answers. PaLM2 is left
    # out: its one unparsable item is handled differently by LLMBar's script.
    answer1, answer2, _, published = load(judge)
    est = cohen_kappa(answer1, answer2, n_boot=200, rng=0)
    assert est.value == pytest.approx(published["kappa_agreement"], abs=1e-12)
    assert est.value == pytest.approx(cohen_kappa_score(answer1, answer2), abs=1e-12)


def test_falcon_prefers_the_first_slot_and_llama2_the_second():
    # Counted straight from the JSON: both orders picked whichever output was shown first.
    for judge, primacy in (("Falcon", True), ("LLaMA2", False)):
        answer1, answer2, _, _ = load(judge)
        order2 = swap(answer2)
        pref = position_preference(answer1, order2)
        first_both = int(np.sum((answer1 == A) & (answer2 == B)))
        second_both = int(np.sum((answer1 == B) & (answer2 == A)))
        inconsistent = int(np.sum(answer1 != answer2))
        assert pref.n_inconsistent == inconsistent
        assert pref.primacy.value == pytest.approx(first_both / inconsistent)
        assert pref.recency.value == pytest.approx(second_both / inconsistent)
        assert pref.favoured_slot == ("first" if primacy else "second")
        # Pooling both orders is a randomised design: the slot bias is significant.
        slots = np.concatenate([answer1, order2])
        test = first_slot_win_rate(slots)
        assert test.flagged
        assert (test.win_rate.value > 0.5) == primacy


def test_gpt4_is_not_flagged_and_combined_verdict_keeps_agreement():
    answer1, answer2, gold, _ = load("GPT-4")
    order2 = swap(answer2)
    assert not first_slot_win_rate(np.concatenate([answer1, order2])).flagged
    combined = combine_orders(answer1, order2)
    assert set(np.unique(combined)) <= {A, B, 2}
    assert np.array_equal(combined == A, (answer1 == A) & (answer2 == A))
    assert FIRST == A and SECOND == B
