"""Judge prompt templates as data, and ``render`` to turn a match into chat messages.

A template is plain text with named placeholders (``{question}``, ``{answer_a}``,
``{answer_b}``, ``{answers}``, ``{answer}``, ``{reference}``); only those names are
substituted, so an edited template may contain other braces (a JSON example) safely.

The answers are wrapped in fixed markers (``<|The Start of Assistant A's Answer|>`` ...)
so that both a reader and the fake judge server (``judges.clients.fake_server``) can find
them again. Sources:

- Arena-Hard-Auto (lmarena/arena-hard-auto, Apache-2.0), ``config/judge_config.yaml``:
  system prompt, ``<|User Prompt|>`` user template, labels ``[[A>>B]]`` .. ``[[B>>A]]``.
- MT-Bench (lm-sys/FastChat, Apache-2.0), ``fastchat/llm_judge/data/judge_prompts.jsonl``:
  ``pair-v2`` / ``pair-math-v1`` (``[[A]]``/``[[B]]``/``[[C]]``) and ``single-v1`` /
  ``single-math-v1`` (``Rating: [[5]]``).
- Listwise K-wise ranking: ours, in the Arena-Hard style, answering ``[[C>A=B]]``.
- Rubric-guided pairwise and pointwise (issue 15): ours, in the Arena-Hard style, after
  the rubric-as-criteria prompts of ArenaRL and the Open Rubric System: the rubric
  (:func:`rubric_block`) is shown between ``<|Rubric|>`` markers, the judge answers one
  line per criterion (``correctness: [[A>B]]``, or ``correctness: [[3]]`` pointwise) and
  gives no overall verdict: the total is the rubric's weighted total
  (:mod:`arena.rubrics`), computed, not asked.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PAIRWISE = "pairwise"
PAIRWISE_MTBENCH = "pairwise_mtbench"
LISTWISE = "listwise"
SINGLE = "single"
SINGLE_100 = "single_100"  # TrustJudge's fine-grained scale
RUBRIC = "rubric"  # pairwise, one verdict per criterion of the prompt's rubric
RUBRIC_SINGLE = "rubric_single"  # pointwise, one level per criterion of the rubric
MODES = (PAIRWISE, PAIRWISE_MTBENCH, LISTWISE, SINGLE, SINGLE_100, RUBRIC, RUBRIC_SINGLE)
SINGLE_MODES = (SINGLE, SINGLE_100)
RUBRIC_MODES = (RUBRIC, RUBRIC_SINGLE)
# Modes that grade one answer per call (the answer shown first): single-score runs
POINTWISE_MODES = (*SINGLE_MODES, RUBRIC_SINGLE)

ARENA_HARD_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
MTBENCH_LABELS = ("A", "B", "C")
SCORE_RANGE = (1, 10)
SCORE_RANGES = {SINGLE: SCORE_RANGE, SINGLE_100: (1, 100)}
MAX_LISTWISE = 26

PLACEHOLDERS = (
    "question",
    "answer_a",
    "answer_b",
    "answers",
    "answer",
    "reference",
    "k",
    "rubric",
)
_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


@dataclass(frozen=True)
class JudgeTemplate:
    """One judge prompt: system text, user text, and the variants used with a reference.

    Attributes
    ----------
    name : str
        Stable identifier, e.g. ``"arena-hard-v0.1"``.
    mode : str
        One of ``MODES``; decides which parser reads the reply.
    system : str
        System message (may be empty: then no system message is sent).
    user : str
        User message with placeholders.
    system_with_reference, user_with_reference : str or None
        Used instead of ``system`` / ``user`` when a reference answer is given. ``None``
        means the template cannot take a reference.
    labels : tuple of str
        Verdict labels the reply must contain, in ``[[...]]``.
    source : str
        Where the text comes from.
    """

    name: str
    mode: str
    system: str
    user: str
    system_with_reference: str | None = None
    user_with_reference: str | None = None
    labels: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(
                f"template {self.name!r}: mode must be one of {MODES}, got {self.mode!r}"
            )

    def text(self) -> str:
        """All of the template's text, for version hashes."""
        parts = (
            self.mode,
            self.system,
            self.user,
            self.system_with_reference,
            self.user_with_reference,
        )
        return "\x1e".join(p or "" for p in parts)


# --- Arena-Hard-Auto (config/judge_config.yaml, arena-hard-v0.1) -----------------------

ARENA_HARD_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "two AI assistants to the user prompt displayed below. You will be given assistant A's "
    "answer and assistant B's answer. Your job is to evaluate which assistant's answer is "
    "better.\n\n"
    "Begin your evaluation by generating your own answer to the prompt. You must provide your "
    "answers before judging any answers.\n\n"
    "When evaluating the assistants' answers, compare both assistants' answers with your "
    "answer. You must identify and correct any mistakes or inaccurate information.\n\n"
    "Then consider if the assistant's answers are helpful, relevant, and concise. Helpful "
    "means the answer correctly responds to the prompt or follows the instructions. Note when "
    "user prompt has any ambiguity or more than one interpretation, it is more helpful and "
    "appropriate to ask for clarifications or more information from the user than providing "
    "an answer based on assumptions. Relevant means all parts of the response closely connect "
    "or are appropriate to what is being asked. Concise means the response is clear and not "
    "verbose or excessive.\n\n"
    "Then consider the creativity and novelty of the assistant's answers when needed. "
    "Finally, identify any missing important information in the assistants' answers that "
    "would be beneficial to include when responding to the user prompt.\n\n"
    "After providing your explanation, you must output only one of the following choices as "
    "your final verdict with a label:\n\n"
    "1. Assistant A is significantly better: [[A>>B]]\n"
    "2. Assistant A is slightly better: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better: [[B>A]]\n"
    "5. Assistant B is significantly better: [[B>>A]]\n\n"
    'Example output: "My final verdict is tie: [[A=B]]".'
)

ARENA_HARD_USER = (
    "<|User Prompt|>\n{question}\n\n"
    "<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>\n\n"
    "<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
)

# Arena-Hard-Auto's optional reference (``reference: True``) is given to the judge as an
# extra block before the answers.
ARENA_HARD_USER_REF = (
    "<|User Prompt|>\n{question}\n\n"
    "<|The Start of Reference Answer|>\n{reference}\n<|The End of Reference Answer|>\n\n"
    "<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>\n\n"
    "<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
)

ARENA_HARD = JudgeTemplate(
    name="arena-hard-v0.1",
    mode=PAIRWISE,
    system=ARENA_HARD_SYSTEM,
    user=ARENA_HARD_USER,
    system_with_reference=ARENA_HARD_SYSTEM,
    user_with_reference=ARENA_HARD_USER_REF,
    labels=ARENA_HARD_LABELS,
    source="lmarena/arena-hard-auto config/judge_config.yaml",
)

# --- MT-Bench (FastChat judge_prompts.jsonl) --------------------------------------------

_MT_PAIR_TAIL = (
    "Avoid any positional biases and ensure that the order in which the responses were "
    "presented does not influence your decision. Do not allow the length of the responses "
    "to influence your evaluation. Do not favor certain names of the assistants. Be as "
    "objective as possible. After providing your explanation, output your final verdict by "
    'strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant '
    'B is better, and "[[C]]" for a tie.'
)

MTBENCH_PAIR_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "two AI assistants to the user question displayed below. You should choose the assistant "
    "that follows the user's instructions and answers the user's question better. Your "
    "evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, "
    "creativity, and level of detail of their responses. Begin your evaluation by comparing "
    "the two responses and provide a short explanation. " + _MT_PAIR_TAIL
)

MTBENCH_PAIR_MATH_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "two AI assistants to the user question displayed below. Your evaluation should consider "
    "correctness and helpfulness. You will be given a reference answer, assistant A's answer, "
    "and assistant B's answer. Your job is to evaluate which assistant's answer is better. "
    "Begin your evaluation by comparing both assistants' answers with the reference answer. "
    "Identify and correct any mistakes. " + _MT_PAIR_TAIL
)

MTBENCH_PAIR_USER = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

MTBENCH_PAIR_MATH_USER = (
    "[User Question]\n{question}\n\n"
    "[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

MTBENCH_PAIR = JudgeTemplate(
    name="mt-bench-pair-v2",
    mode=PAIRWISE_MTBENCH,
    system=MTBENCH_PAIR_SYSTEM,
    user=MTBENCH_PAIR_USER,
    system_with_reference=MTBENCH_PAIR_MATH_SYSTEM,
    user_with_reference=MTBENCH_PAIR_MATH_USER,
    labels=MTBENCH_LABELS,
    source="lm-sys/FastChat fastchat/llm_judge/data/judge_prompts.jsonl pair-v2, pair-math-v1",
)

MTBENCH_SINGLE_USER = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response "
    "provided by an AI assistant to the user question displayed below. Your evaluation should "
    "consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and "
    "level of detail of the response. Begin your evaluation by providing a short explanation. "
    "Be as objective as possible. After providing your explanation, you must rate the response "
    'on a scale of 1 to 10 by strictly following this format: "[[rating]]", for example: '
    '"Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)

MTBENCH_SINGLE_MATH_USER = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response "
    "provided by an AI assistant to the user question displayed below. Your evaluation should "
    "consider correctness and helpfulness. You will be given a reference answer and the "
    "assistant's answer. Begin your evaluation by comparing the assistant's answer with the "
    "reference answer. Identify and correct any mistakes. Be as objective as possible. After "
    "providing your explanation, you must rate the response on a scale of 1 to 10 by strictly "
    'following this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
    "[Question]\n{question}\n\n"
    "[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)

MTBENCH_SINGLE = JudgeTemplate(
    name="mt-bench-single-v1",
    mode=SINGLE,
    system="You are a helpful assistant.",
    user=MTBENCH_SINGLE_USER,
    system_with_reference="You are a helpful assistant.",
    user_with_reference=MTBENCH_SINGLE_MATH_USER,
    labels=tuple(str(i) for i in range(SCORE_RANGE[0], SCORE_RANGE[1] + 1)),
    source="lm-sys/FastChat fastchat/llm_judge/data/judge_prompts.jsonl single-v1, single-math-v1",
)

# TrustJudge's fine-grained single-answer scale (arXiv:2509.21117): MT-Bench's single-v1
# wording on a 1-100 scale, so that the rating token's distribution keeps more information.
MTBENCH_SINGLE_100_USER = MTBENCH_SINGLE_USER.replace(
    "scale of 1 to 10", "scale of 1 to 100"
).replace("Rating: [[5]]", "Rating: [[50]]")
MTBENCH_SINGLE_100_MATH_USER = MTBENCH_SINGLE_MATH_USER.replace(
    "scale of 1 to 10", "scale of 1 to 100"
).replace("Rating: [[5]]", "Rating: [[50]]")

MTBENCH_SINGLE_100 = JudgeTemplate(
    name="single-100-v1",
    mode=SINGLE_100,
    system="You are a helpful assistant.",
    user=MTBENCH_SINGLE_100_USER,
    system_with_reference="You are a helpful assistant.",
    user_with_reference=MTBENCH_SINGLE_100_MATH_USER,
    labels=tuple(str(i) for i in range(1, 101)),
    source="MT-Bench single-v1 wording on TrustJudge's 1-100 scale (arXiv:2509.21117)",
)

# --- K-wise listwise ranking (ours, Arena-Hard wording) ---------------------------------

LISTWISE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "{k} AI assistants to the user prompt displayed below. Each answer is labelled with a "
    "letter. Your job is to rank the answers from best to worst.\n\n"
    "Begin your evaluation by generating your own answer to the prompt. Then compare every "
    "assistant's answer with yours: identify and correct any mistakes or inaccurate "
    "information, and consider whether each answer is helpful, relevant and concise. Avoid "
    "any position bias: the order in which the answers are presented must not influence your "
    "ranking. Do not let the length of the answers influence your evaluation.\n\n"
    "After providing your explanation, output your final ranking with every letter exactly "
    "once, best first, separated by '>' (better than) or '=' (tied), in double square "
    'brackets. For example, with three answers: "My final ranking is: [[C>A=B]]".'
)

LISTWISE_USER = "<|User Prompt|>\n{question}\n\n{answers}"
LISTWISE_USER_REF = (
    "<|User Prompt|>\n{question}\n\n"
    "<|The Start of Reference Answer|>\n{reference}\n<|The End of Reference Answer|>\n\n{answers}"
)

LISTWISE_RANKING = JudgeTemplate(
    name="listwise-v1",
    mode=LISTWISE,
    system=LISTWISE_SYSTEM,
    user=LISTWISE_USER,
    system_with_reference=LISTWISE_SYSTEM,
    user_with_reference=LISTWISE_USER_REF,
    labels=tuple(string.ascii_uppercase),
    source="Arena (this project), Arena-Hard wording",
)

# --- rubric-guided pairwise and pointwise (ours, issue 15) -------------------------------

RUBRIC_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by "
    "two AI assistants to the user prompt displayed below, criterion by criterion, with the "
    "rubric given after the prompt. Each criterion says what it asks and describes its "
    "levels from lowest to highest.\n\n"
    "Begin your evaluation by generating your own answer to the prompt. Then, for each "
    "criterion in turn, judge both answers on that criterion alone: place each answer on the "
    "criterion's levels and compare them. Do not let one criterion colour another, the order "
    "in which the answers are presented, or their length influence your evaluation.\n\n"
    "After providing your explanation, output one line per criterion, in the rubric's order: "
    "the criterion's name, a colon and one of these labels:\n\n"
    "1. Assistant A is significantly better on it: [[A>>B]]\n"
    "2. Assistant A is slightly better on it: [[A>B]]\n"
    "3. Tie, relatively the same: [[A=B]]\n"
    "4. Assistant B is slightly better on it: [[B>A]]\n"
    "5. Assistant B is significantly better on it: [[B>>A]]\n\n"
    'Example output: "correctness: [[A>B]]". Give no overall verdict: it is the weighted '
    "total of the criteria."
)

RUBRIC_USER = (
    "<|User Prompt|>\n{question}\n\n{rubric}\n\n"
    "<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>\n\n"
    "<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
)

RUBRIC_USER_REF = (
    "<|User Prompt|>\n{question}\n\n{rubric}\n\n"
    "<|The Start of Reference Answer|>\n{reference}\n<|The End of Reference Answer|>\n\n"
    "<|The Start of Assistant A's Answer|>\n{answer_a}\n<|The End of Assistant A's Answer|>\n\n"
    "<|The Start of Assistant B's Answer|>\n{answer_b}\n<|The End of Assistant B's Answer|>"
)

RUBRIC_PAIRWISE = JudgeTemplate(
    name="rubric-pairwise-v1",
    mode=RUBRIC,
    system=RUBRIC_SYSTEM,
    user=RUBRIC_USER,
    system_with_reference=RUBRIC_SYSTEM,
    user_with_reference=RUBRIC_USER_REF,
    labels=ARENA_HARD_LABELS,
    source="Arena (this project), Arena-Hard wording; rubric criteria as in ArenaRL / OpenRS",
)

RUBRIC_SINGLE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the response provided by "
    "an AI assistant to the user prompt displayed below, criterion by criterion, with the "
    "rubric given after the prompt. Each criterion says what it asks and describes its "
    "levels from lowest (level 1) to highest.\n\n"
    "For each criterion in turn, judge the answer on that criterion alone and choose the "
    "level whose description fits it best. Do not let one criterion colour another, or the "
    "answer's length influence your evaluation.\n\n"
    "After providing your explanation, output one line per criterion, in the rubric's order: "
    "the criterion's name, a colon and the level's number in double square brackets, for "
    'example: "correctness: [[3]]". Give no overall score: it is the weighted total of the '
    "criteria."
)

RUBRIC_SINGLE_USER = (
    "<|User Prompt|>\n{question}\n\n{rubric}\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)

RUBRIC_SINGLE_USER_REF = (
    "<|User Prompt|>\n{question}\n\n{rubric}\n\n"
    "<|The Start of Reference Answer|>\n{reference}\n<|The End of Reference Answer|>\n\n"
    "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
)

RUBRIC_POINTWISE = JudgeTemplate(
    name="rubric-pointwise-v1",
    mode=RUBRIC_SINGLE,
    system=RUBRIC_SINGLE_SYSTEM,
    user=RUBRIC_SINGLE_USER,
    system_with_reference=RUBRIC_SINGLE_SYSTEM,
    user_with_reference=RUBRIC_SINGLE_USER_REF,
    source="Arena (this project); rubric levels as in ArenaRL / OpenRS",
)

RUBRIC_START, RUBRIC_END = "<|Rubric|>", "<|End of Rubric|>"


def rubric_block(criteria) -> str:
    """A rubric as the judge reads it (``arena.rubrics.Criterion`` objects, in order)::

    <|Rubric|>
    1. correctness (weight 2): Is it right?
       Levels, lowest first: 1 = wrong; 2 = partly right; 3 = right
    <|End of Rubric|>
    """
    lines = [RUBRIC_START]
    for i, criterion in enumerate(criteria, start=1):
        lines.append(
            f"{i}. {criterion.name} (weight {criterion.weight:g}): {criterion.description}"
        )
        levels = "; ".join(f"{n} = {text}" for n, text in enumerate(criterion.levels, start=1))
        lines.append(f"   Levels, lowest first: {levels}")
    lines.append(RUBRIC_END)
    return "\n".join(lines)


# The request that asks a model to draft a prompt's rubric (judges.rubric_drafts); the
# fake server (judges.clients.simulation) answers it by this marker.
RUBRIC_DRAFT_MARKER = "<|Rubric Draft Request|>"

RUBRIC_DRAFT_SYSTEM = (
    "You write grading rubrics for judging answers to a user prompt. Read the prompt and "
    "decide what a good answer to it must get right. Write 3 to 6 criteria, most important "
    "first. Each criterion has a short lower-case name (letters, digits, '-' or '_'), a "
    "weight (a number from 1 to 5: how much it counts), a one-sentence description of what "
    "it asks, and 2 to 5 levels describing answers from worst to best.\n\n"
    "Reply with the rubric as one JSON object and nothing after it, e.g.:\n"
    '{"criteria": [{"name": "correctness", "weight": 3, "description": "Is every step '
    'right?", "levels": ["wrong", "partly right", "fully right"]}]}'
)

RUBRIC_DRAFT_USER = RUBRIC_DRAFT_MARKER + "\n<|User Prompt|>\n{question}\n\n<|End of User Prompt|>"


def rubric_draft_messages(prompt: str) -> list[dict[str, str]]:
    """Chat messages asking a model to draft the rubric of one prompt."""
    return [
        {"role": "system", "content": RUBRIC_DRAFT_SYSTEM},
        {"role": "user", "content": fill(RUBRIC_DRAFT_USER, {"question": prompt})},
    ]


TEMPLATES: dict[str, JudgeTemplate] = {
    t.name: t
    for t in (
        ARENA_HARD,
        MTBENCH_PAIR,
        MTBENCH_SINGLE,
        MTBENCH_SINGLE_100,
        LISTWISE_RANKING,
        RUBRIC_PAIRWISE,
        RUBRIC_POINTWISE,
    )
}
DEFAULT_FOR_MODE: dict[str, JudgeTemplate] = {
    PAIRWISE: ARENA_HARD,
    PAIRWISE_MTBENCH: MTBENCH_PAIR,
    LISTWISE: LISTWISE_RANKING,
    SINGLE: MTBENCH_SINGLE,
    SINGLE_100: MTBENCH_SINGLE_100,
    RUBRIC: RUBRIC_PAIRWISE,
    RUBRIC_SINGLE: RUBRIC_POINTWISE,
}


def score_scale(mode: str) -> tuple[int, int]:
    """The (lowest, highest) rating of a single-answer mode."""
    return SCORE_RANGES[mode]


def answer_label(position: int) -> str:
    """Letter shown for presentation position ``position`` (0 -> "A")."""
    if not 0 <= position < MAX_LISTWISE:
        raise ValueError(f"position must be in [0, {MAX_LISTWISE}), got {position}")
    return string.ascii_uppercase[position]


def answer_block(label: str, text: str) -> str:
    """One answer between the Arena-Hard markers (used by the listwise template)."""
    return (
        f"<|The Start of Assistant {label}'s Answer|>\n{text}\n"
        f"<|The End of Assistant {label}'s Answer|>"
    )


def fill(template_text: str, values: Mapping[str, str]) -> str:
    """Substitute ``{name}`` for the known placeholder names only.

    Unlike ``str.format`` this leaves every other brace alone and never re-reads a
    substituted value, so answers and edited templates may contain ``{`` and ``}``.
    """

    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"template placeholder {{{name}}} has no value")
        return values[name]

    return _PLACEHOLDER_RE.sub(sub, template_text)


def get_template(name_or_mode: str) -> JudgeTemplate:
    """A built-in template by name (``"arena-hard-v0.1"``) or by mode (``"pairwise"``)."""
    if name_or_mode in TEMPLATES:
        return TEMPLATES[name_or_mode]
    if name_or_mode in DEFAULT_FOR_MODE:
        return DEFAULT_FOR_MODE[name_or_mode]
    raise KeyError(f"unknown judge template {name_or_mode!r}; known: {sorted(TEMPLATES)}")


def custom_template(
    mode: str, system: str = "", user: str = "", name: str = "custom"
) -> JudgeTemplate:
    """A template edited by a user (the Judge's ``system_prompt`` / ``template`` fields).

    Empty parts fall back to the built-in template for ``mode``; a custom user template
    is used with and without a reference (it decides itself whether it shows
    ``{reference}``).
    """
    base = get_template(mode)
    if not system and not user:
        return base
    return JudgeTemplate(
        name=name,
        mode=base.mode,
        system=system or base.system,
        user=user or base.user,
        system_with_reference=system or base.system_with_reference,
        user_with_reference=user or base.user_with_reference,
        labels=base.labels,
        source="custom",
    )


def presented(answers: Sequence[str], order: Sequence[int]) -> list[str]:
    """Answers in presentation order: position ``i`` shows slot ``order[i]``."""
    if sorted(order) != list(range(len(answers))):
        raise ValueError(f"order {list(order)} is not a permutation of {len(answers)} slots")
    return [answers[slot] for slot in order]


def render(
    template: JudgeTemplate | str,
    prompt: str,
    answers: Sequence[str],
    order: Sequence[int] | None = None,
    reference: str | None = None,
    rubric: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking a judge about one match.

    Parameters
    ----------
    template : JudgeTemplate or str
        A template, or the name / mode of a built-in one.
    prompt : str
        The user question the answers respond to.
    answers : sequence of str
        The match's answers by slot (slot 0 first). One answer for ``single`` mode, two
        for the pairwise modes, 2..26 for ``listwise``.
    order : sequence of int, optional
        Presentation order: position ``i`` (label ``"A"`` for ``i = 0``) shows slot
        ``order[i]``. Default: slot order. Verdicts are in presentation terms; map them
        back with ``judges.verdicts.to_slots(verdict, order)``.
    reference : str, optional
        Reference answer; switches to the template's reference variant.
    rubric : str, optional
        The prompt's rubric (:func:`rubric_block`): required by the rubric modes.

    Returns
    -------
    list of dict
        ``[{"role": "system", ...}, {"role": "user", ...}]`` (no system message when the
        template's system text is empty).
    """
    tpl = get_template(template) if isinstance(template, str) else template
    order = list(range(len(answers))) if order is None else list(order)
    shown = presented(answers, order)
    _check_count(tpl, len(shown))
    system, user = tpl.system, tpl.user
    if reference is not None:
        if tpl.user_with_reference is None:
            raise ValueError(f"template {tpl.name!r} has no variant with a reference answer")
        system, user = tpl.system_with_reference or "", tpl.user_with_reference
    if tpl.mode in RUBRIC_MODES and not rubric:
        raise ValueError(f"template {tpl.name!r} ({tpl.mode}) needs the prompt's rubric")
    values = {"question": prompt, "k": str(len(shown)), "reference": reference or ""}
    values["rubric"] = rubric or ""
    if tpl.mode in POINTWISE_MODES:
        values["answer"] = shown[0]
    elif tpl.mode == LISTWISE:
        values["answers"] = "\n\n".join(
            answer_block(answer_label(i), text) for i, text in enumerate(shown)
        )
    else:
        values["answer_a"], values["answer_b"] = shown
    messages = []
    if system:
        messages.append({"role": "system", "content": fill(system, values)})
    messages.append({"role": "user", "content": fill(user, values)})
    return messages


def _check_count(tpl: JudgeTemplate, n: int) -> None:
    expected = {
        SINGLE: (1, 1),
        SINGLE_100: (1, 1),
        RUBRIC_SINGLE: (1, 1),
        PAIRWISE: (2, 2),
        PAIRWISE_MTBENCH: (2, 2),
        RUBRIC: (2, 2),
    }
    lo, hi = expected.get(tpl.mode, (2, MAX_LISTWISE))
    if not lo <= n <= hi:
        raise ValueError(f"template {tpl.name!r} ({tpl.mode}) takes {lo}..{hi} answers, got {n}")
