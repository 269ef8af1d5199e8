"""PRP sorting (arena.matchmaking.prp): with a consistent judge each prompt's answers come
out sorted, within the planned calls; ties and disagreements keep the current order; a
pair is asked once per prompt, in both orders."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.matchmaking import DESIGNS, PRP, Verdict
from judges.runs.replay import soft_scores


def consistent(quality):
    """A judge that prefers the better answer in either order (ties never happen)."""

    def judge(batch):
        return [Verdict(p, a, b, float(quality[p, a] > quality[p, b])) for p, a, b in batch]

    return judge


def play(design, quality, judge, seed=0):
    """Run the plan to the end; returns it and every call issued, in order."""
    n_prompts, n_models = quality.shape
    plan = design.start(n_models, n_prompts, np.random.default_rng(seed))
    calls = []
    while not plan.done:
        batch = plan.next_batch()
        calls.extend(batch)
        plan.observe(judge(batch))
    return plan, np.asarray(calls, np.int64).reshape(-1, 3)


@settings(max_examples=120, deadline=None)
@given(
    n_models=st.integers(2, 12),
    n_prompts=st.integers(1, 4),
    variant=st.sampled_from(["allpair", "heapsort", "sliding"]),
    top=st.one_of(st.none(), st.integers(1, 13)),
    seed=st.integers(0, 2**16),
)
def test_a_consistent_judge_gets_each_prompt_sorted_within_the_plan(
    n_models, n_prompts, variant, top, seed
):
    rng = np.random.default_rng(seed)
    quality = rng.permuted(np.tile(np.arange(n_models, dtype=float), (n_prompts, 1)), axis=1)
    design = PRP(variant=variant, top=top)
    plan, calls = play(design, quality, consistent(quality), seed)
    k = design.ranked(n_models)
    truth = np.argsort(-quality, axis=1)
    assert plan.finished.all()
    assert np.array_equal(plan.rankings()[:, :k], truth[:, :k])
    assert np.array_equal(
        np.sort(plan.rankings(), axis=1), np.tile(np.arange(n_models), (n_prompts, 1))
    )
    # Every comparison is asked in both orders, and no pair twice on one prompt.
    pairs = {(p, min(a, b), max(a, b)) for p, a, b in calls.tolist()}
    assert len(calls) == 2 * len(pairs)
    assert {(p, a, b) for p, a, b in calls.tolist()} == {
        (p, x, y) for p, a, b in pairs for x, y in ((a, b), (b, a))
    }
    per_prompt = np.bincount(calls[:, 0], minlength=n_prompts)
    assert np.array_equal(per_prompt, plan.prompt_calls)
    assert per_prompt.max() <= 2 * design.comparisons(n_models)
    assert plan.calls_issued <= design.planned_calls(n_models, n_prompts)
    if variant == "allpair":
        assert plan.calls_issued == design.planned_calls(n_models, n_prompts)


def test_best_of_n_costs_under_two_n_log_n_calls_per_prompt():
    """The goal of bench/judging.py's PRP section, as a bound: top-1 and top-3 heapsort and
    sliding window never plan more than 2 N log2 N calls per prompt from N = 8."""
    for n in range(8, 65):
        for design in (
            PRP("heapsort", 1),
            PRP("heapsort", 3),
            PRP("sliding", 1),
            PRP("sliding", 3),
        ):
            assert design.planned_calls(n, 1) <= 2 * n * math.log2(n), (design, n)
    # A full heapsort does not keep to it (about 2 N log2 N comparisons, 4 N log2 N calls).
    assert PRP("heapsort", None).planned_calls(64, 1) > 2 * 64 * 6


def test_disagreement_is_a_tie_and_keeps_the_initial_order():
    """A judge that always picks the answer shown first disagrees with itself on every
    pair: nothing is a win, so nothing moves from the (seeded) initial order."""
    quality = np.random.default_rng(3).normal(size=(5, 7))

    def first_wins(batch):
        return [Verdict(p, a, b, 1.0) for p, a, b in batch]

    for variant in ("allpair", "sliding"):
        plan, _ = play(PRP(variant=variant, top=None), quality, first_wins, seed=11)
        assert np.array_equal(plan.rankings(), plan.initial), variant
        if variant == "allpair":  # half a point per rival: nobody won anything
            assert np.allclose(plan.points(), 3.0)
    # Heapsort: no sift ever swaps, so the extractions alone decide: the root, then the
    # last leaf moved up to the root, and so on.
    plan, _ = play(PRP(variant="heapsort", top=None), quality, first_wins, seed=11)
    for ranking, initial in zip(plan.rankings().tolist(), plan.initial.tolist(), strict=True):
        heap, expected = list(initial), []
        while heap:
            expected.append(heap[0])
            heap[0] = heap[-1]
            heap.pop()
        assert ranking == expected


def test_a_comparison_whose_calls_failed_is_a_tie_never_asked_again():
    quality = np.random.default_rng(4).normal(size=(3, 9))
    judge = consistent(quality)
    lost = []

    def flaky(batch):  # every third comparison's calls never come back
        out = []
        for call in batch:
            if call[1] < call[2] and (call[1] + call[2]) % 3 == 0:
                lost.append(call)
                continue
            if call[1] > call[2] and (call[1] + call[2]) % 3 == 0:
                continue
            out.extend(judge([call]))
        return out

    plan, calls = play(PRP("sliding", top=None), quality, flaky, seed=2)
    assert lost and plan.finished.all()
    pairs = [(p, min(a, b), max(a, b)) for p, a, b in calls.tolist()]
    assert len(pairs) == 2 * len(set(pairs))


def test_soft_scores_sort_by_the_probability_of_a_over_b():
    """With probabilities a comparison is a win when the mean probability over both
    orders is above ½, even when every discrete verdict would have said "A"."""
    quality = np.random.default_rng(5).normal(size=(4, 8))
    bias = 0.3  # the answer shown first gets +0.3: both orders' discrete verdicts disagree

    def soft(batch):
        return [
            Verdict(
                p,
                a,
                b,
                float(np.clip(0.5 + bias + 0.1 * np.tanh(quality[p, a] - quality[p, b]), 0, 1)),
            )
            for p, a, b in batch
        ]

    design = PRP("heapsort", top=None, scoring="probability")
    plan, _ = play(design, quality, soft)
    assert np.array_equal(plan.rankings(), np.argsort(-quality, axis=1))


def test_the_plan_replays_to_the_same_batches_from_its_seed_and_verdicts():
    quality = np.random.default_rng(6).normal(size=(6, 10))
    design = PRP("heapsort", top=3)
    first, calls = play(design, quality, consistent(quality), seed=9)
    again, calls_again = play(design, quality, consistent(quality), seed=9)
    assert np.array_equal(calls, calls_again)
    assert first.report() == again.report()
    report = first.report()
    assert report["prompts_done"] == 6 and len(report["prompts"]) == 6
    assert sum(row["prompts"] for row in report["best_counts"]) == 6
    assert [row["calls"] for row in report["prompts"]] == first.prompt_calls.tolist()


def test_bad_parameters_are_refused():
    assert DESIGNS["prp"] is PRP
    for bad in ({"variant": "quicksort"}, {"scoring": "vibes"}, {"top": 0}, {"top": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PRP(**bad)


def test_soft_scores_read_the_first_shown_answer_s_probability():
    probabilities = [
        {"winner": {"a": 0.7, "b": 0.2, "tie": 0.1}},  # slot 0 shown first
        {"winner": {"a": 0.7, "b": 0.2, "tie": 0.1}},  # slot 1 shown first
        None,
        {"labels": {}},
        {"winner": {"a": 0.0, "b": 0.0, "tie": 0.0}},
    ]
    got = soft_scores(probabilities, np.array([0, 1, 0, 0, 0]))
    assert got[:2] == pytest.approx([0.75, 0.25])
    assert np.isnan(got[2:]).all()
