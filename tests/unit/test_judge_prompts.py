"""Judge templates: the published texts, rendering, presentation order, references."""

import json

import pytest

from judges import prompts, verdicts

# Verbatim from lmarena/arena-hard-auto config/judge_config.yaml (system_prompt and
# prompt_template; placeholders renamed {question_1} -> {question}, {answer_1} ->
# {answer_a}, {answer_2} -> {answer_b}).
ARENA_HARD_YAML_SYSTEM = json.loads(
    "\"Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your job is to evaluate which assistant's answer is better.\\n\\nBegin your evaluation by generating your own answer to the prompt. You must provide your answers before judging any answers.\\n\\nWhen evaluating the assistants' answers, compare both assistants' answers with your answer. You must identify and correct any mistakes or inaccurate information.\\n\\nThen consider if the assistant's answers are helpful, relevant, and concise. Helpful means the answer correctly responds to the prompt or follows the instructions. Note when user prompt has any ambiguity or more than one interpretation, it is more helpful and appropriate to ask for clarifications or more information from the user than providing an answer based on assumptions. Relevant means all parts of the response closely connect or are appropriate to what is being asked. Concise means the response is clear and not verbose or excessive.\\n\\nThen consider the creativity and novelty of the assistant's answers when needed. Finally, identify any missing important information in the assistants' answers that would be beneficial to include when responding to the user prompt.\\n\\nAfter providing your explanation, you must output only one of the following choices as your final verdict with a label:\\n\\n1. Assistant A is significantly better: [[A>>B]]\\n2. Assistant A is slightly better: [[A>B]]\\n3. Tie, relatively the same: [[A=B]]\\n4. Assistant B is slightly better: [[B>A]]\\n5. Assistant B is significantly better: [[B>>A]]\\n\\nExample output: \\\"My final verdict is tie: [[A=B]]\\\".\""
)
ARENA_HARD_YAML_TEMPLATE = (
    "<|User Prompt|>\n{question_1}\n\n<|The Start of Assistant A's Answer|>\n{answer_1}\n"
    "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_2}\n"
    "<|The End of Assistant B's Answer|>"
)
# Verbatim from lm-sys/FastChat fastchat/llm_judge/data/judge_prompts.jsonl ("pair-v2").
PAIR_V2 = json.loads(
    r"""{"name": "pair-v2", "type": "pairwise", "system_prompt": "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user question displayed below. You should choose the assistant that follows the user's instructions and answers the user's question better. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by comparing the two responses and provide a short explanation. Avoid any positional biases and ensure that the order in which the responses were presented does not influence your decision. Do not allow the length of the responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible. After providing your explanation, output your final verdict by strictly following this format: \"[[A]]\" if assistant A is better, \"[[B]]\" if assistant B is better, and \"[[C]]\" for a tie.", "prompt_template": "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"}"""
)
SINGLE_V1_TEMPLATE = json.loads(
    r'''"[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\n{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"'''
)


def test_arena_hard_is_the_published_prompt():
    tpl = prompts.get_template("arena-hard-v0.1")
    assert tpl.system == ARENA_HARD_YAML_SYSTEM
    published = (
        ARENA_HARD_YAML_TEMPLATE.replace("{question_1}", "{question}")
        .replace("{answer_1}", "{answer_a}")
        .replace("{answer_2}", "{answer_b}")
    )
    assert tpl.user == published
    for label in verdicts.ARENA_HARD_CHOICES:
        assert f"[[{label}]]" in tpl.system


def test_mt_bench_templates_are_the_published_prompts():
    pair = prompts.get_template("mt-bench-pair-v2")
    assert (pair.system, pair.user) == (PAIR_V2["system_prompt"], PAIR_V2["prompt_template"])
    single = prompts.get_template("mt-bench-single-v1")
    assert single.system == "You are a helpful assistant." and single.user == SINGLE_V1_TEMPLATE


def test_render_follows_the_presentation_order():
    tpl = prompts.get_template("arena-hard-v0.1")
    messages = prompts.render(tpl, "Q?", ["slot zero", "slot one"], order=(1, 0))
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert user.index("slot one") < user.index("slot zero")
    assert "<|The Start of Assistant A's Answer|>\nslot one\n" in user
    default = prompts.render(tpl, "Q?", ["slot zero", "slot one"])[1]["content"]
    assert default.index("slot zero") < default.index("slot one")


def test_render_keeps_braces_in_answers_and_prompts():
    messages = prompts.render("pairwise", "Format {x} as JSON", ['{"a": 1}', "{answer_b}"])
    user = messages[1]["content"]
    assert "Format {x} as JSON" in user and '{"a": 1}' in user
    assert user.count("{answer_b}") == 1  # an answer is never re-read as a template


def test_render_uses_the_reference_variant():
    with_ref = prompts.render("mt-bench-single-v1", "2+2?", ["4"], reference="Four.")
    user = with_ref[1]["content"]
    assert "[The Start of Reference Answer]\nFour.\n[The End of Reference Answer]" in user
    assert "correctness and helpfulness" in user  # single-math-v1
    pair = prompts.render("mt-bench-pair-v2", "2+2?", ["4", "5"], reference="Four.")
    assert "reference answer" in pair[0]["content"]  # pair-math-v1 system prompt


def test_listwise_renders_k_labelled_answers():
    messages = prompts.render("listwise-v1", "Q?", ["a0", "a1", "a2", "a3"], order=(3, 1, 0, 2))
    system, user = messages[0]["content"], messages[1]["content"]
    assert "4 AI assistants" in system
    for label, text in zip("ABCD", ["a3", "a1", "a0", "a2"], strict=True):
        assert f"<|The Start of Assistant {label}'s Answer|>\n{text}\n" in user


@pytest.mark.parametrize(
    "template, answers",
    [("arena-hard-v0.1", ["one"]), ("mt-bench-single-v1", ["a", "b"]), ("listwise-v1", ["a"])],
)
def test_render_rejects_the_wrong_number_of_answers(template, answers):
    with pytest.raises(ValueError):
        prompts.render(template, "Q?", answers)


def test_render_rejects_a_bad_order_and_unknown_templates():
    with pytest.raises(ValueError):
        prompts.render("pairwise", "Q?", ["a", "b"], order=(0, 0))
    with pytest.raises(KeyError):
        prompts.get_template("no-such-template")


def test_custom_templates_replace_parts_of_the_built_in():
    custom = prompts.custom_template("pairwise", system="Judge strictly.")
    assert custom.system == "Judge strictly."
    assert custom.user == prompts.get_template("pairwise").user
    assert prompts.custom_template("pairwise") is prompts.get_template("pairwise")
    messages = prompts.render(custom, "Q?", ["a", "b"])
    assert messages[0]["content"] == "Judge strictly."
