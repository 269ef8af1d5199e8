"""Writes the LMArena samples in this folder (run it again after editing a row).

The rows are hand-made, in the columns of each release's dataset card (README.md here
says which are confirmed), with texts written for these tests: no row is copied from a
release. Each release is written as JSONL and as Parquet (pyarrow), the Parquet in the
column types its card gives.

    .venv/bin/python tests/data/formats/lmarena/make_samples.py
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def msgs(*pairs):
    return [{"role": role, "content": text} for role, text in pairs]


# --- 55k (Kaggle "LMSYS - Chatbot Arena Human Preference Predictions" train set) -----------
# prompt / response_a / response_b are JSON-encoded lists of strings, one per turn.
R55 = [
    {
        "id": 30192,
        "model_a": "gpt-4-1106-preview",
        "model_b": "gpt-4-0613",
        "prompt": json.dumps(
            [
                "Is it morally right to try to have a certain percentage of females on managerial positions?",
                "What about quotas in general?",
            ]
        ),
        "response_a": json.dumps(
            [
                "It is a question of fairness and of results; views differ.",
                "Quotas trade one kind of fairness for another.",
            ]
        ),
        "response_b": json.dumps(
            ["Many argue it is, to correct past bias.", "Quotas are debated."]
        ),
        "winner_model_a": 1,
        "winner_model_b": 0,
        "winner_tie": 0,
    },
    {
        "id": 53567,
        "model_a": "koala-13b",
        "model_b": "gpt-4-0613",
        "prompt": json.dumps(
            ["What is the difference between marriage license and marriage certificate?"]
        ),
        "response_a": json.dumps(["A license lets you marry; a certificate proves you did."]),
        "response_b": json.dumps([None]),
        "winner_model_a": 1,
        "winner_model_b": 0,
        "winner_tie": 0,
    },
    {
        "id": 65089,
        "model_a": "gpt-3.5-turbo-0613",
        "model_b": "mistral-medium",
        "prompt": json.dumps(["explain function calling. how would you call a function?"]),
        "response_a": json.dumps(
            ["You write its name and its arguments in parentheses: `f(1, 2)`."]
        ),
        "response_b": json.dumps(["Function calling runs a named block of code: `print('hi')`."]),
        "winner_model_a": 0,
        "winner_model_b": 0,
        "winner_tie": 1,
    },
    {
        "id": 96401,
        "model_a": "mistral-medium",
        "model_b": "gpt-3.5-turbo-0613",
        "prompt": json.dumps(["explain function calling. how would you call a function?"]),
        "response_a": json.dumps(["Function calling runs a named block of code: `print('hi')`."]),
        "response_b": json.dumps(["Call it by name with arguments: `area(3, 4)`."]),
        "winner_model_a": 0,
        "winner_model_b": 1,
        "winner_tie": 0,
    },
]

# --- 100k (lmarena-ai/arena-human-preference-100k): FastChat's conv_release columns ----------
TAGS_HARD_CODE = {
    "criteria_v0.1": {
        "specificity": True,
        "domain_knowledge": True,
        "complexity": True,
        "problem_solving": True,
        "creativity": False,
        "technical_accuracy": True,
        "real_world": True,
    },
    "if_v0.1": {"if": False, "score": 1},
    "math_v0.1": {"math": False},
    "creative_writing_v0.1": {"creative_writing": False, "score": "no"},
}
TAGS_MATH = {
    "criteria_v0.1": {
        "specificity": True,
        "domain_knowledge": False,
        "complexity": False,
        "problem_solving": True,
        "creativity": False,
        "technical_accuracy": True,
        "real_world": False,
    },
    "if_v0.1": {"if": False, "score": 0},
    "math_v0.1": {"math": True},
    "creative_writing_v0.1": {"creative_writing": False, "score": "no"},
}
TAGS_NONE = {
    "criteria_v0.1": {
        "specificity": False,
        "domain_knowledge": False,
        "complexity": False,
        "problem_solving": False,
        "creativity": False,
        "technical_accuracy": False,
        "real_world": False,
    },
    "if_v0.1": {"if": False, "score": 0},
    "math_v0.1": {"math": False},
    "creative_writing_v0.1": {"creative_writing": False, "score": "no"},
}


def meta(tokens_a, tokens_b, bold_a=0, bold_b=0):
    return {
        "sum_assistant_a_tokens": tokens_a,
        "header_count_a": {"h1": 0, "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count_a": {"ordered": 0, "unordered": 0},
        "bold_count_a": {"**": bold_a, "__": 0},
        "context_a_tokens": 12,
        "sum_assistant_b_tokens": tokens_b,
        "header_count_b": {"h1": 0, "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count_b": {"ordered": 0, "unordered": 0},
        "bold_count_b": {"**": bold_b, "__": 0},
        "context_b_tokens": 12,
        "sum_user_tokens": 12,
        "turns": 1,
    }


R100 = [
    {
        "question_id": "58210e39b3fd4441a2bd4a518bb44c2d",
        "model_a": "chatglm-6b",
        "model_b": "koala-13b",
        "winner": "model_b",
        "conversation_a": msgs(
            ("user", "What is the difference between OpenCL and CUDA?"),
            ("assistant", "OpenCL is an open standard; CUDA is NVIDIA's."),
        ),
        "conversation_b": msgs(
            ("user", "What is the difference between OpenCL and CUDA?"),
            ("assistant", "CUDA runs on NVIDIA GPUs only; OpenCL on many devices."),
        ),
        "turn": 1,
        "anony": True,
        "language": "English",
        "tstamp": 1720000000.25,
        "conv_metadata": meta(11, 13),
        "is_code": True,
        "is_refusal": False,
        "dedup_tag": {"high_freq": False, "sampled": True},
        "category_tag": TAGS_HARD_CODE,
        "judge_hash": "6d1a0c5e",
    },
    {
        "question_id": "2564acd09e3942fd97657d05282d4389",
        "model_a": "gpt-4o-2024-05-13",
        "model_b": "claude-3-5-sonnet-20240620",
        "winner": "tie (bothbad)",
        "conversation_a": msgs(
            ("user", "What is 17 * 23?"),
            ("assistant", "**391**"),
            ("user", "And divided by 7?"),
            ("assistant", "About 55.86."),
        ),
        "conversation_b": msgs(
            ("user", "What is 17 * 23?"),
            ("assistant", "17 * 23 = 391."),
            ("user", "And divided by 7?"),
            ("assistant", "391 / 7 = 55.857..."),
        ),
        "turn": 2,
        "anony": True,
        "language": "English",
        "tstamp": 1720000100.5,
        "conv_metadata": meta(9, 14, bold_a=1),
        "is_code": False,
        "is_refusal": False,
        "dedup_tag": {"high_freq": False, "sampled": True},
        "category_tag": TAGS_MATH,
        "judge_hash": "a90b33f1",
    },
    {
        "question_id": "e0b4d2c8f0d54f0f9bb1ad3c64c2a5a3",
        "model_a": "koala-13b",
        "model_b": "chatglm-6b",
        "winner": "model_a",
        "conversation_a": msgs(
            ("user", "What is the difference between OpenCL and CUDA?"),
            ("assistant", "CUDA runs on NVIDIA GPUs only; OpenCL on many devices."),
        ),
        "conversation_b": msgs(
            ("user", "What is the difference between OpenCL and CUDA?"),
            ("assistant", "Both program GPUs."),
        ),
        "turn": 1,
        "anony": False,
        "language": "English",
        "tstamp": 1720000200.0,
        "conv_metadata": meta(13, 4),
        "is_code": True,
        "is_refusal": False,
        "dedup_tag": {"high_freq": True, "sampled": False},
        "category_tag": TAGS_HARD_CODE,
        "judge_hash": "6d1a0c5e",
    },
    {
        "question_id": "77f0a1b2c3d44e5f8a9b0c1d2e3f4a5b",
        "model_a": "gemma-2-9b-it",
        "model_b": "llama-3-70b-instruct",
        "winner": "tie",
        "conversation_a": msgs(
            ("user", "Wie spät ist es in Tokio, wenn es in Berlin 12 Uhr ist?"),
            ("assistant", "19 Uhr (im Sommer)."),
        ),
        "conversation_b": msgs(
            ("user", "Wie spät ist es in Tokio, wenn es in Berlin 12 Uhr ist?"),
            ("assistant", "Im Winter 20 Uhr, im Sommer 19 Uhr."),
        ),
        "turn": 1,
        "anony": True,
        "language": "German",
        "tstamp": 1720000300.75,
        "conv_metadata": meta(4, 8),
        "is_code": False,
        "is_refusal": False,
        "dedup_tag": {"high_freq": False, "sampled": True},
        "category_tag": TAGS_NONE,
        "judge_hash": "c3f0e9d2",
    },
]


# --- 140k (lmarena-ai/arena-human-preference-140k): content is a list of typed parts --------
def parts(*pairs):
    return [
        {"role": role, "content": [{"type": "text", "text": text, "image": None, "mimeType": None}]}
        for role, text in pairs
    ]


TAGS_CREATIVE = {
    "criteria_v0.1": {
        "specificity": False,
        "domain_knowledge": False,
        "complexity": False,
        "problem_solving": False,
        "creativity": True,
        "technical_accuracy": False,
        "real_world": False,
    },
    "if_v0.1": {"if": True, "score": 4},
    "math_v0.1": {"math": False},
    "creative_writing_v0.1": {"creative_writing": True, "score": "yes"},
}
TAGS_IF = {
    "criteria_v0.1": {
        "specificity": True,
        "domain_knowledge": False,
        "complexity": False,
        "problem_solving": False,
        "creativity": False,
        "technical_accuracy": False,
        "real_world": True,
    },
    "if_v0.1": {"if": True, "score": 4},
    "math_v0.1": {"math": False},
    "creative_writing_v0.1": {"creative_writing": False, "score": "no"},
}


def full(conv_a, conv_b):
    out = []
    for k in range(0, len(conv_a), 2):
        out.append(
            {"user": conv_a[k], "model_side_a": conv_a[k + 1], "model_side_b": conv_b[k + 1]}
        )
    return out


C1A = parts(
    ("user", "Write a haiku about the sea, in lowercase."),
    (
        "assistant",
        "grey waves fold and break\nsalt wind carries gull voices\nthe tide keeps its time",
    ),
)
C1B = parts(
    ("user", "Write a haiku about the sea, in lowercase."),
    (
        "assistant",
        "The Sea\nWaves crash on the shore\nEndless blue under the sky\nPeace in every swell",
    ),
)
C2A = parts(
    ("user", "List three primary colours, comma separated, nothing else."),
    ("assistant", "red, yellow, blue"),
)
C2B = parts(
    ("user", "List three primary colours, comma separated, nothing else."),
    ("assistant", "Sure! Red, yellow and blue."),
)
C3A = parts(
    ("user", "Write a haiku about the sea, in lowercase."),
    (
        "assistant",
        "grey waves fold and break\nsalt wind carries gull voices\nthe tide keeps its time",
    ),
)
C3B = parts(
    ("user", "Write a haiku about the sea, in lowercase."),
    ("assistant", "blue water breathing\nmoon pulls the long silver line\nsand forgets our steps"),
)
R140 = [
    {
        "id": "0199a3c1-4b5e-7f00-9a1b-2c3d4e5f6a01",
        "model_a": "gemini-2.5-pro",
        "model_b": "claude-opus-4-20250514",
        "winner": "model_a",
        "evaluation_session_id": "0199a3c1-0000-7000-8000-000000000001",
        "evaluation_order": 1,
        "conversation_a": C1A,
        "conversation_b": C1B,
        "full_conversation": full(C1A, C1B),
        "conv_metadata": meta(17, 19),
        "category_tag": TAGS_CREATIVE,
        "language": "en",
        "is_code": False,
        "timestamp": "2025-05-20T10:00:00",
    },
    {
        "id": "0199a3c1-4b5e-7f00-9a1b-2c3d4e5f6a02",
        "model_a": "o3-2025-04-16",
        "model_b": "gemini-2.5-pro",
        "winner": "both_bad",
        "evaluation_session_id": "0199a3c1-0000-7000-8000-000000000002",
        "evaluation_order": 1,
        "conversation_a": C2A,
        "conversation_b": C2B,
        "full_conversation": full(C2A, C2B),
        "conv_metadata": meta(5, 8),
        "category_tag": TAGS_IF,
        "language": "en",
        "is_code": False,
        "timestamp": "2025-05-20T10:05:00",
    },
    {
        "id": "0199a3c1-4b5e-7f00-9a1b-2c3d4e5f6a03",
        "model_a": "gemini-2.5-pro",
        "model_b": "o3-2025-04-16",
        "winner": "model_b",
        "evaluation_session_id": "0199a3c1-0000-7000-8000-000000000003",
        "evaluation_order": 1,
        "conversation_a": C3A,
        "conversation_b": C3B,
        "full_conversation": full(C3A, C3B),
        "conv_metadata": meta(17, 15),
        "category_tag": TAGS_CREATIVE,
        "language": "en",
        "is_code": False,
        "timestamp": "2025-05-21T08:30:00",
    },
]


def write_jsonl(name, rows):
    with open(HERE / name, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def encoded(rows, fields):
    """The rows with ``fields`` JSON-encoded, as the 100k card types them (string)."""
    return [
        {k: json.dumps(v, ensure_ascii=False) if k in fields else v for k, v in r.items()}
        for r in rows
    ]


def main():
    write_jsonl("arena_55k.jsonl", R55)
    pq.write_table(pa.Table.from_pylist(R55), HERE / "arena_55k.parquet")
    write_jsonl("arena_100k.jsonl", R100)
    stringly = ("conversation_a", "conversation_b", "conv_metadata", "dedup_tag", "category_tag")
    pq.write_table(pa.Table.from_pylist(encoded(R100, stringly)), HERE / "arena_100k.parquet")
    write_jsonl("arena_140k.jsonl", R140)
    pq.write_table(pa.Table.from_pylist(R140), HERE / "arena_140k.parquet")


if __name__ == "__main__":
    main()
