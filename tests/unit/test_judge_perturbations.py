"""Perturbations for bias audits: what they change, and that the cues can be stripped."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judges import perturbations as P

PROMPT = "How do I make bread?"
ANSWERS = ("Mix flour, water, salt and yeast.\n\nBake at 230 C.", "Buy it.")


def test_swap_reverses_the_answers_only():
    assert P.swap_answers(PROMPT, ANSWERS) == (PROMPT, ANSWERS[::-1])
    assert P.apply("swap", PROMPT, ANSWERS) == (PROMPT, ANSWERS[::-1])


def test_padding_adds_about_n_tokens_of_filler_to_the_target_only():
    prompt, padded = P.pad_answer(PROMPT, ANSWERS, target=1, n_tokens=150, seed=3)
    assert prompt == PROMPT and padded[0] == ANSWERS[0]
    added = P.count_tokens(padded[1]) - P.count_tokens(ANSWERS[1])
    longest = max(P.count_tokens(s) for s in P.FILLER_SENTENCES)
    assert 150 <= added < 150 + longest
    assert padded[1].startswith(ANSWERS[1])
    assert P.pad_answer(PROMPT, ANSWERS, 1, 150, seed=3) == (prompt, padded)  # seeded


@pytest.mark.parametrize(
    "kind, params, marker",
    [
        ("authority", {"style": "citation"}, "(Source: Smith, J."),
        ("authority", {"style": "expert"}, "As a renowned expert"),
        ("model_name", {"name": "GPT-4"}, "(answer by GPT-4)"),
        ("refinement", {}, "refined version"),
    ],
)
def test_cues_mark_only_the_target(kind, params, marker):
    prompt, out = P.apply(kind, PROMPT, ANSWERS, 0, **params)
    assert prompt == PROMPT and out[1] == ANSWERS[1]
    assert marker in out[0] and marker not in ANSWERS[0]
    assert P.detect_cues(out[0]) == (ANSWERS[0], frozenset({kind}))


def test_repeat_is_the_identity_and_unknown_kinds_fail():
    assert P.apply("repeat", PROMPT, ANSWERS) == (PROMPT, ANSWERS)
    with pytest.raises(ValueError):
        P.apply("bandwagon", PROMPT, ANSWERS)
    with pytest.raises(ValueError):
        P.authority_cue(PROMPT, ANSWERS, 0, style="rumour")
    with pytest.raises(ValueError):
        P.model_name_cue(PROMPT, ANSWERS, 5)


def test_plain_answers_have_no_cues():
    for text in ANSWERS + ("It is worth noting that this is fine.", "(answer by me) first"):
        assert P.detect_cues(text) == (text, frozenset())


@settings(max_examples=40, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200).map(
        lambda s: s.strip() or "x"
    ),
    kinds=st.lists(
        st.sampled_from(["padding", "authority", "model_name", "refinement"]), unique=True
    ),
    n=st.integers(1, 80),
)
def test_stacked_cues_strip_back_to_the_original(text, kinds, n):
    answers = (text,)
    params = {"padding": {"n_tokens": n}, "model_name": {"name": "Claude 3"}}
    for kind in kinds:
        answers = P.apply(kind, PROMPT, answers, 0, **params.get(kind, {}))[1]
    clean, cues = P.detect_cues(answers[0])
    assert cues == frozenset(kinds)
    assert clean == text.rstrip() if kinds else clean == text
