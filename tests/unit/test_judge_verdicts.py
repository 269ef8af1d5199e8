"""Parsing judge replies: tables of real-looking outputs, slots, both orders, logprobs."""

import math
from itertools import product

import numpy as np
import pytest

from judges.audit_metrics import verdicts as codes
from judges.verdicts import (
    ARENA_HARD_CHOICES,
    ARENA_HARD_LABELS,
    MT_BENCH_LABELS,
    ParseFailure,
    Ranking,
    Score,
    SlotRanking,
    SlotVerdict,
    Verdict,
    combine_both_orders,
    parse_mtbench,
    parse_pairwise,
    parse_ranking,
    parse_score,
    to_slots,
    verdict_probabilities,
)

ARENA_HARD_CASES = [
    ("Both are fine.\n\nMy final verdict is tie: [[A=B]]", ("tie", 0, "A=B")),
    ("Assistant A is significantly better: [[A>>B]]", ("A", 2, "A>>B")),
    ("My final verdict is: [[A>B]]", ("A", 1, "A>B")),
    ("My final verdict is: [[B>A]].", ("B", 1, "B>A")),
    ("Final verdict: [[B>>A]]\n\nHope this helps!", ("B", 2, "B>>A")),
    ("**My final verdict is: [[B>>A]]**", ("B", 2, "B>>A")),
    ("my final verdict is [[a>b]]", ("A", 1, "A>B")),  # Arena-Hard upper-cases
    ("My final verdict is: [[ B > A ]]", ("B", 1, "B>A")),
    ("Mirrored spelling: [[B<A]]", ("A", 1, "B<A")),
    ("Mirrored spelling: [[A<<B]]", ("B", 2, "A<<B")),
    (
        "One might say [[A>B]] at first glance.\nOn reflection B is correct.\n"
        "My final verdict is: [[B>>A]]",
        ("B", 2, "B>>A"),
    ),
    ("[[A>B]]\nA covers more.\nMy final verdict is: [[A>B]]", ("A", 1, "A>B")),
    ("Verdict [[A>>>B]] is a typo; my final verdict is [[A>>B]]", ("A", 2, "A>>B")),
]
ARENA_HARD_FAILURES = [
    ("", "empty"),
    ("   \n", "empty"),
    ("Both answers have their merits.", "no verdict"),
    ("My final verdict is: [[A>>>B]]", "no verdict"),
    ("Assistant A is more thorough, so my final verdict is: [[A", "no verdict"),
    ("My final verdict is [[A]]", "no verdict"),  # an MT-Bench label is not an Arena-Hard one
    ("My final verdict is [[A>B]] or [[B>A]], depending on taste.", "ambiguous"),
    (
        "1. Assistant A is significantly better: [[A>>B]]\n2. Assistant A is slightly better: "
        "[[A>B]]\n3. Tie, relatively the same: [[A=B]]\n4. Assistant B is slightly better: "
        "[[B>A]]\n5. Assistant B is significantly better: [[B>>A]]",
        "ambiguous",
    ),
    ("I'm sorry, but I can't help with evaluating these responses.", "no verdict"),
]


@pytest.mark.parametrize("text, expected", ARENA_HARD_CASES)
def test_arena_hard_verdicts(text, expected):
    verdict = parse_pairwise(text)
    assert isinstance(verdict, Verdict), verdict
    assert (verdict.winner, verdict.strength, verdict.label) == expected


@pytest.mark.parametrize("text, reason", ARENA_HARD_FAILURES)
def test_arena_hard_failures(text, reason):
    verdict = parse_pairwise(text)
    assert isinstance(verdict, ParseFailure) and not verdict
    assert reason in verdict.reason
    assert verdict.code == codes.INVALID


@pytest.mark.parametrize(
    "text, winner",
    [
        ("Assistant A is better.\n\n[[A]]", "A"),
        ("[[B]]", "B"),
        ("Both are equally good. [[C]]", "tie"),
        ("both equal [[c]]", "tie"),
        ("At first [[A]] seemed right, but on reflection:\n[[B]]", "B"),  # FastChat would say A
    ],
)
def test_mt_bench_verdicts(text, winner):
    verdict = parse_mtbench(text)
    assert isinstance(verdict, Verdict) and verdict.winner == winner


@pytest.mark.parametrize("text", ["[[D]]", "[[A]] or [[B]]", "no verdict", "[[A>B]]"])
def test_mt_bench_failures(text):
    assert isinstance(parse_mtbench(text), ParseFailure)


@pytest.mark.parametrize(
    "text, k, groups",
    [
        ("My final ranking is: [[C>A>B]]", 3, (("C",), ("A",), ("B",))),
        ("My final ranking is: [[C>A=B]]", 3, (("C",), ("A", "B"))),
        ("ranking: [[ b > a ]]", 2, (("B",), ("A",))),
        ("first [[A>B>C>D]] then, better: [[D>C>B>A]]", 4, (("D",), ("C",), ("B",), ("A",))),
    ],
)
def test_rankings(text, k, groups):
    ranking = parse_ranking(text, k)
    assert isinstance(ranking, Ranking) and ranking.groups == groups


@pytest.mark.parametrize(
    "text, k", [("[[C>A]]", 3), ("[[A>A>B]]", 3), ("[[A>B>D]]", 3), ("no ranking", 3), ("", 2)]
)
def test_ranking_failures(text, k):
    assert isinstance(parse_ranking(text, k), ParseFailure)


@pytest.mark.parametrize(
    "text, value",
    [
        ("The answer is solid.\n\nRating: [[7]]", 7),
        ("Rating: [[7.5]]", 7.5),
        ("Rating: [[10]]", 10),
        ("Rating: [8]", 8),  # FastChat's backup pattern
        ("Early guess [[3]]; after checking the math, Rating: [[9]]", 9),
    ],
)
def test_scores(text, value):
    score = parse_score(text)
    assert isinstance(score, Score) and score.value == value


@pytest.mark.parametrize("text", ["Rating: [[11]]", "Rating: [[0]]", "Rating: high", ""])
def test_score_failures(text):
    assert isinstance(parse_score(text), ParseFailure)


# --- slots and both orders ----------------------------------------------------------------
def test_to_slots_maps_presentation_back_to_match_slots():
    a_wins = Verdict("A", 2, "A>>B")
    assert to_slots(a_wins, (0, 1)) == SlotVerdict(0, 2, "A>>B")
    assert to_slots(a_wins, (1, 0)) == SlotVerdict(1, 2, "A>>B")
    assert to_slots(Verdict("tie", 0, "A=B"), (1, 0)).winner is None
    ranking = parse_ranking("[[C>A=B]]", 3)
    slots = to_slots(ranking, (2, 0, 1))  # C shows slot 1, A slot 2, B slot 0
    assert slots == SlotRanking(((1,), (0, 2)), "C>A=B")
    assert slots.ranks() == (1, 0, 1)
    failure = ParseFailure("x")
    assert to_slots(failure, (0, 1)) is failure
    with pytest.raises(ValueError):
        to_slots(a_wins, (0, 0))


def test_both_orders_agree_or_make_a_tie():
    a = SlotVerdict(0, 2, "A>>B")
    a_weak = SlotVerdict(0, 1, "B>A")
    b = SlotVerdict(1, 1, "B>A")
    tie = SlotVerdict(None, 0, "A=B")
    assert combine_both_orders(a, a_weak) == SlotVerdict(0, 1, "A>>B|B>A")
    assert combine_both_orders(a, b).winner is None
    assert combine_both_orders(a, tie).winner is None
    assert combine_both_orders(tie, tie).winner is None
    assert isinstance(combine_both_orders(a, ParseFailure("garbage")), ParseFailure)


def test_codes_are_the_audit_modules():
    from judges import verdicts

    assert (verdicts.FIRST, verdicts.SECOND, verdicts.TIE, verdicts.INVALID) == (
        codes.FIRST,
        codes.SECOND,
        codes.TIE,
        codes.INVALID,
    )


def test_both_orders_match_the_audit_module():
    """Independent implementation: judges.audit_metrics.verdicts.combine_orders on code arrays."""
    verdict = {
        "A": Verdict("A", 1, "A>B"),
        "B": Verdict("B", 1, "B>A"),
        "tie": Verdict("tie", 0, "A=B"),
    }
    first, second, expected = [], [], []
    for w1, w2 in product(verdict, verdict):
        v1, v2 = verdict[w1], verdict[w2]
        combined = combine_both_orders(to_slots(v1, (0, 1)), to_slots(v2, (1, 0)))
        first.append(v1.code)
        second.append(v2.code)
        expected.append(combined.code)
    assert np.array_equal(codes.combine_orders(first, second), expected)


# --- probabilities from logprobs ----------------------------------------------------------
def tok(token, logprob, top=()):
    return {"token": token, "logprob": logprob, "top_logprobs": list(top)}


def test_probabilities_from_a_single_verdict_token():
    text = "Better.\n\nMy final verdict is: [[A>B]]"
    head = text[: text.index("[[")]
    tokens = [
        tok(head, -0.01),
        tok("[[", -0.01),
        tok(
            "A>B",
            math.log(0.5),
            [("A>B", math.log(0.5)), ("A>>B", math.log(0.3)), ("B>A", math.log(0.1))],
        ),
        tok("]]", -0.01),
    ]
    probs = verdict_probabilities(text, tokens, ARENA_HARD_CHOICES, ARENA_HARD_LABELS)
    assert probs.coverage == pytest.approx(0.9)
    assert probs.by_label["A>B"] == pytest.approx(0.5 / 0.9)
    assert probs.winner == pytest.approx({"A": 0.8 / 0.9, "tie": 0.0, "B": 0.1 / 0.9})


def test_probabilities_through_the_chain_rule_and_same_winner_shortcut():
    # Tokenised as "[[", "A", ">", "B", "]]": "A" alone could be A>>B, A>B or A=B.
    text = "Verdict: [[A>B]]"
    tokens = [
        tok("Verdict: ", -0.01),
        tok("[[", -0.01),
        tok("A", math.log(0.6), [("A", math.log(0.6)), ("B", math.log(0.4))]),
        tok(">", math.log(0.75), [(">", math.log(0.75)), ("=", math.log(0.25))]),
        tok("B", -0.01),
        tok("]]", -0.01),
    ]
    probs = verdict_probabilities(text, tokens, ARENA_HARD_CHOICES, ARENA_HARD_LABELS)
    # The emitted "A" is split by the next token: ">" then "B" spells A>B, "=" is A=B.
    # The alternative "B" (B>A or B>>A) is resolved to its winner only.
    assert probs.coverage == pytest.approx(1.0)
    assert probs.by_label["A>B"] == pytest.approx(0.75)
    assert probs.by_label["A=B"] == pytest.approx(0.25)
    assert probs.winner == pytest.approx({"A": 0.6 * 0.75, "tie": 0.6 * 0.25, "B": 0.4})


def test_probabilities_for_two_digit_ratings():
    text = "Rating: [[10]]"
    tokens = [
        tok("Rating: ", -0.01),
        tok("[[", -0.01),
        tok("1", math.log(0.7), [("1", math.log(0.7)), ("9", math.log(0.3))]),
        tok("0", math.log(0.8), [("0", math.log(0.8)), ("]]", math.log(0.2))]),
        tok("]]", -0.01),
    ]
    probs = verdict_probabilities(text, tokens, [str(s) for s in range(1, 11)])
    assert probs.by_label["10"] == pytest.approx(0.7 * 0.8)
    assert probs.by_label["1"] == pytest.approx(0.7 * 0.2)
    assert probs.by_label["9"] == pytest.approx(0.3)


def test_probabilities_for_mt_bench_and_missing_information():
    text = "So: [[B]]"
    tokens = [
        tok("So: ", -0.1),
        tok("[[", -0.1),
        tok("B", math.log(0.7), [("B", math.log(0.7)), ("C", math.log(0.2))]),
        tok("]]", -0.1),
    ]
    probs = verdict_probabilities(text, tokens, "ABC", MT_BENCH_LABELS)
    assert probs.winner == pytest.approx({"B": 0.7 / 0.9, "tie": 0.2 / 0.9, "A": 0.0})
    assert verdict_probabilities(text, None, "ABC") is None
    assert verdict_probabilities("no label", [tok("no label", -1)], "ABC") is None
    assert verdict_probabilities(text, [tok("other text", -1)], "ABC") is None
