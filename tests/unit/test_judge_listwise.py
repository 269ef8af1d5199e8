"""FIRST (judges.listwise): a K-wise ranking from the first ranking token's logprobs."""

import math

import numpy as np
import pytest

from judges.clients.fake_server import _logprobs_content
from judges.clients.simulation import _ranking_reply
from judges.listwise import FirstToken, first_ranking, first_token_probabilities
from judges.verdicts import parse_ranking


def _tokens(parts, alternatives_at=None, alternatives=()):
    """Token dicts spelling ``"".join(parts)``; ``alternatives`` (token, p) at one index."""
    out = []
    for i, part in enumerate(parts):
        top = [{"token": part, "logprob": -0.01}]
        logprob = -0.01
        if i == alternatives_at:
            top = [{"token": t, "logprob": math.log(p)} for t, p in alternatives]
            logprob = next((lp["logprob"] for lp in top if lp["token"] == part), -5.0)
        out.append({"token": part, "logprob": logprob, "top_logprobs": top})
    return out


def test_it_ranks_by_the_first_tokens_probabilities_not_the_generated_order():
    parts = ["B is best.", " My final ranking is: ", "[[", "B", ">", "A", ">", "D", ">", "C", "]]"]
    text = "".join(parts)
    tokens = _tokens(parts, 3, [("B", 0.45), ("C", 0.30), ("A", 0.15), ("D", 0.05)])
    first = first_token_probabilities(text, tokens, 4)
    assert first.by_label == pytest.approx(
        {"A": 0.15 / 0.95, "B": 0.45 / 0.95, "C": 0.3 / 0.95, "D": 0.05 / 0.95}
    )
    assert first.coverage == pytest.approx(0.95)
    ranking = first_ranking(first, parse_ranking(text, 4), 4)
    assert ranking.label == "B>C>A>D"  # C second by probability, though generated last


def test_labels_missing_from_the_top_logprobs_follow_in_the_generated_order():
    parts = ["[[", "C", ">", "A", "=", "B", ">", "D", ">", "E", "]]"]
    text = "".join(parts)
    tokens = _tokens(parts, 1, [("C", 0.6), ("D", 0.3)])
    ranking = first_ranking(first_token_probabilities(text, tokens, 5), parse_ranking(text, 5), 5)
    assert ranking.groups == (("C",), ("D",), ("A", "B"), ("E",))


def test_a_lead_inside_the_token_and_spaces_are_handled():
    parts = ["Final: ", "[[ ", "A", " > B]]"]
    text = "".join(parts)
    tokens = _tokens(parts, 2, [("A", 0.2), ("B", 0.7), ("B >", 0.05), ("x", 0.05)])
    first = first_token_probabilities(text, tokens, 2)
    assert first.by_label == pytest.approx({"A": 0.2 / 0.95, "B": 0.75 / 0.95})


def test_no_logprobs_falls_back_to_the_generated_ranking():
    text = "My final ranking is: [[C>A>B]]"
    generated = parse_ranking(text, 3)
    assert first_token_probabilities(text, None, 3) is None
    assert first_ranking(None, generated, 3) == generated
    # tokens that do not spell the text are not trusted
    assert first_token_probabilities(text, _tokens(["[[C>A>B]]"]), 3) is None


def test_an_unparsed_reply_ranks_only_when_the_first_token_names_every_label():
    full = FirstToken({"A": 0.5, "B": 0.3, "C": 0.2}, 1.0)
    assert first_ranking(full, None, 3).label == "A>B>C"
    assert first_ranking(FirstToken({"A": 0.6, "B": 0.4}, 1.0), None, 3) is None
    assert first_ranking(None, None, 3) is None


def test_equal_probabilities_tie():
    tie = FirstToken({"A": 0.4, "B": 0.4, "C": 0.2}, 1.0)
    assert first_ranking(tie, None, 3).groups == (("A", "B"), ("C",))


def test_the_fake_servers_listwise_judge_gives_first_token_logprobs_over_the_labels():
    """The simulator's ranking reply carries the Plackett-Luce first-choice probabilities
    softmax(u) on its first ranking token; FIRST reads them back and ranks by them."""
    u = np.array([0.2, 1.5, -0.4, 0.9])
    first = np.exp(u - u.max())
    first /= first.sum()
    dist = {"ABCD"[i]: float(q) for i, q in enumerate(first)}
    reply = _ranking_reply(["D", "B", "A", "C"], dist, np.random.default_rng(0))
    tokens = _logprobs_content(reply, 5)
    found = first_token_probabilities(reply.text, tokens, 4)
    assert found.by_label == pytest.approx(dist)
    ranking = first_ranking(found, parse_ranking(reply.text, 4), 4)
    assert ranking.label == "B>D>A>C"  # by utility, whatever order the sample drew
