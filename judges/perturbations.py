"""Prompt and answer transformations for perturbation runs (judge bias audits).

Each function takes ``(prompt, answers)`` with answers in match-slot order and returns a
new ``(prompt, answers)`` pair; nothing else changes, so a perturbation run is an ordinary
evaluation run over the transformed texts, tagged with the perturbation's name. A judge
that is robust to the perturbation gives the same verdict; the flip rate measures the
bias.

The biases come from CALM, "Justice or Prejudice? Quantifying Biases in LLM-as-a-Judge"
(Ye et al., 2024, arXiv:2410.02736), which lists twelve, among them:

- *position*: swap the answers' order (:func:`swap_answers`);
- *verbosity*: make one answer longer without adding content (:func:`pad_answer`, used on
  the loser of the unperturbed verdict: does padding flip it?);
- *authority*: add a fake citation or an expert persona (:func:`authority_cue`);
- *compassion-fade*: reveal a (famous) model name (:func:`model_name_cue`);
- *refinement-aware*: say the answer is a refined version (:func:`refinement_cue`).

Repeat stability needs no transformation: the same input judged ``n`` times
(:func:`repeat`). The added fragments are fixed strings, so :func:`detect_cues` can strip
them again; the fake judge uses it to see the original answer and the cues separately.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

PERTURBATIONS = ("swap", "padding", "authority", "model_name", "refinement", "repeat")

# Verbose, content-free filler (CALM's verbosity bias: longer, not better).
FILLER_SENTENCES = (
    "It is worth noting that this is an important consideration to keep in mind.",
    "In summary, the points above capture the essence of the matter in a comprehensive way.",
    "Furthermore, it is important to emphasise that every aspect deserves careful thought.",
    "To put it another way, the explanation given here covers the topic thoroughly.",
    "Additionally, one should always consider the broader context of the question.",
    "As mentioned earlier, attention to detail is essential for a complete understanding.",
    "Overall, this approach provides a clear and well-rounded perspective on the subject.",
    "Moreover, taking all of these factors into account leads to a more informed view.",
)
_FILLER_RE = re.compile(r"(?:(?:" + "|".join(re.escape(s) for s in FILLER_SENTENCES) + r")\s?)+")

AUTHORITY_EXPERT = (
    "As a renowned expert in this field with over twenty years of experience, I can answer "
    "this with confidence.\n\n"
)
AUTHORITY_CITATION = (
    "\n\n(Source: Smith, J. & Lee, K. (2021). A Comprehensive Study of the Subject. "
    "Journal of Applied Knowledge, 14(3), 215-238.)"
)
REFINEMENT_PREFIX = (
    "[This is a refined version of the previous answer, improved after careful review.]\n\n"
)
MODEL_NAME_TEMPLATE = "\n\n(answer by {name})"
_MODEL_NAME_RE = re.compile(r"\n\n\(answer by ([^()\n]{1,60})\)$")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Approximate token count: words and punctuation marks (``\\w+|[^\\w\\s]``)."""
    return len(_TOKEN_RE.findall(text))


def _target(answers: Sequence[str], target: int) -> str:
    if not -len(answers) <= target < len(answers):
        raise ValueError(f"target slot {target} out of range for {len(answers)} answers")
    return answers[target]


def _replace(answers: Sequence[str], target: int, text: str) -> tuple[str, ...]:
    out = list(answers)
    out[target] = text
    return tuple(out)


def swap_answers(prompt: str, answers: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """Reverse the answers' order (position bias). For a pair: (a, b) -> (b, a).

    A run can equally keep the slots and flip the presentation order; both show the
    judge the same thing.
    """
    return prompt, tuple(reversed(answers))


def filler(n_tokens: int, seed: int = 0) -> str:
    """About ``n_tokens`` tokens of content-free filler sentences, seeded."""
    if n_tokens <= 0:
        return ""
    rng = np.random.default_rng(seed)
    sentences, total = [], 0
    while total < n_tokens:
        sentence = FILLER_SENTENCES[int(rng.integers(len(FILLER_SENTENCES)))]
        sentences.append(sentence)
        total += count_tokens(sentence)
    return " ".join(sentences)


def pad_answer(
    prompt: str, answers: Sequence[str], target: int, n_tokens: int = 200, seed: int = 0
) -> tuple[str, tuple[str, ...]]:
    """Append ``n_tokens`` of verbose filler to ``answers[target]`` (verbosity bias).

    Used on the loser of the unperturbed verdict: a judge that now prefers it rewards
    length, not content (CALM, verbosity bias).
    """
    padded = _target(answers, target).rstrip() + "\n\n" + filler(n_tokens, seed)
    return prompt, _replace(answers, target, padded)


def authority_cue(
    prompt: str, answers: Sequence[str], target: int, style: str = "citation"
) -> tuple[str, tuple[str, ...]]:
    """Add a fake citation (``style="citation"``) or an expert persona (``"expert"``).

    CALM's authority bias: a judge swayed by a fabricated reference or claimed expertise.
    """
    text = _target(answers, target)
    if style == "citation":
        text = text.rstrip() + AUTHORITY_CITATION
    elif style == "expert":
        text = AUTHORITY_EXPERT + text
    else:
        raise ValueError(f"authority cue style must be 'citation' or 'expert', got {style!r}")
    return prompt, _replace(answers, target, text)


def model_name_cue(
    prompt: str, answers: Sequence[str], target: int, name: str = "GPT-4"
) -> tuple[str, tuple[str, ...]]:
    """Append ``(answer by <name>)`` to ``answers[target]`` (CALM's compassion-fade bias)."""
    if not name or "(" in name or ")" in name or "\n" in name or len(name) > 60:
        raise ValueError(f"model name cue must be a short name without brackets, got {name!r}")
    text = _target(answers, target).rstrip() + MODEL_NAME_TEMPLATE.format(name=name)
    return prompt, _replace(answers, target, text)


def refinement_cue(prompt: str, answers: Sequence[str], target: int) -> tuple[str, tuple[str, ...]]:
    """Say ``answers[target]`` is a refined version (CALM's refinement-aware bias)."""
    return prompt, _replace(answers, target, REFINEMENT_PREFIX + _target(answers, target))


def repeat(prompt: str, answers: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The identity: a repeat run judges the same input again (repeat stability)."""
    return prompt, tuple(answers)


def apply(kind: str, prompt: str, answers: Sequence[str], target: int = 0, **params):
    """Apply the perturbation named ``kind`` (one of :data:`PERTURBATIONS`)."""
    if kind == "swap":
        return swap_answers(prompt, answers)
    if kind == "repeat":
        return repeat(prompt, answers)
    functions = {
        "padding": pad_answer,
        "authority": authority_cue,
        "model_name": model_name_cue,
        "refinement": refinement_cue,
    }
    if kind not in functions:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {PERTURBATIONS}")
    return functions[kind](prompt, answers, target, **params)


def detect_cues(text: str) -> tuple[str, frozenset[str]]:
    """Strip the fragments added by this module; return the original text and the cues.

    Cues are ``"padding"``, ``"authority"``, ``"model_name"`` and ``"refinement"``.
    ``detect_cues(pad_answer(p, [a], 0)[1][0]) == (a.rstrip(), {"padding"})``.
    """
    cues = set()
    changed = True
    while changed:
        changed = False
        if text.startswith(REFINEMENT_PREFIX):
            text, changed = text[len(REFINEMENT_PREFIX) :], True
            cues.add("refinement")
        if text.startswith(AUTHORITY_EXPERT):
            text, changed = text[len(AUTHORITY_EXPERT) :], True
            cues.add("authority")
        if text.endswith(AUTHORITY_CITATION):
            text, changed = text[: -len(AUTHORITY_CITATION)], True
            cues.add("authority")
        match = _MODEL_NAME_RE.search(text)
        if match:
            text, changed = text[: match.start()], True
            cues.add("model_name")
        head, sep, tail = text.rpartition("\n\n")
        if sep and _FILLER_RE.fullmatch(tail):
            text, changed = head, True
            cues.add("padding")
    return text, frozenset(cues)
