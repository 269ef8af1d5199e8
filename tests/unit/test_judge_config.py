"""Judge configuration: validation, the version hash (pinned: it keys cached judgments)."""

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from judges import prompts
from judges.clients.config import JudgeConfig
from llm.config import ModelConfig

ROOT = Path(__file__).resolve().parents[2]
BASE = JudgeConfig(base_url="http://127.0.0.1:8001/v1", model="judge-sharp")


def test_the_hash_is_sha256_of_canonical_json():
    expected = hashlib.sha256(
        json.dumps(BASE.versioned(), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert BASE.version_hash() == expected and len(expected) == 64


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({}, "1477507a6aa095fd376793ad6fab6e13fc7cd7fd35b6cbe92bd4b6f272aa959f"),
        (
            {
                "base_url": "http://127.0.0.1:8001/v1/",
                "model": "judge-first",
                "mode": "listwise",
                "temperature": 0.7,
                "max_tokens": 512,
                "seed": 3,
                "logprobs": True,
            },
            "b836916d6be4ca54a0c8cf226a585194c0267df924ddcf3d5d271898e0c7c542",
        ),
        (
            {
                "base_url": "http://x/v1",
                "model": "m",
                "mode": "single",
                "system_prompt": "Judge strictly.",
                "logprobs": True,
                "top_logprobs": 7,
            },
            "242d2a7812d8a6e8bf69606fb7af24d18cded75d90aa8ba128be1498b58b1005",
        ),
    ],
)
def test_the_hash_is_pinned(settings, expected):
    """Cached judgments are keyed by this hash: a refactoring must not change it."""
    assert replace(BASE, **settings).version_hash() == expected


def test_a_judge_config_is_a_model_config_plus_mode_and_template():
    assert isinstance(BASE, ModelConfig)
    model_only = ModelConfig(base_url=BASE.base_url, model=BASE.model)
    judge_only = set(BASE.versioned()) - set(model_only.versioned())
    assert judge_only == {"mode", "template"}
    assert BASE.version_hash() != model_only.version_hash()


def test_the_hash_is_stable_across_processes():
    code = (
        "from judges.clients.config import JudgeConfig;"
        "print(JudgeConfig(base_url='http://127.0.0.1:8001/v1', model='judge-sharp').version_hash())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == BASE.version_hash()


@pytest.mark.parametrize(
    "change",
    [
        {"model": "judge-first"},
        {"base_url": "http://127.0.0.1:8002/v1"},
        {"mode": "pairwise_mtbench"},
        {"system_prompt": "Judge strictly."},
        {"template": "{question}\n{answer_a}\n{answer_b}"},
        {"temperature": 0.7},
        {"max_tokens": 512},
        {"seed": 1},
        {"logprobs": True},
    ],
)
def test_what_changes_verdicts_changes_the_hash(change):
    assert replace(BASE, **change).version_hash() != BASE.version_hash()


@pytest.mark.parametrize(
    "change",
    [
        {"api_key_env": "OPENAI_API_KEY"},
        {"timeout_s": 5.0},
        {"max_retries": 0},
        {"requests_per_minute": 10},
        {"tokens_per_minute": 10},
        {"max_concurrency": 1},
        {"price_per_1k_prompt": 3.0},
        {"base_url": "http://127.0.0.1:8001/v1/"},  # trailing slash
    ],
)
def test_what_does_not_change_verdicts_keeps_the_hash(change):
    assert replace(BASE, **change).version_hash() == BASE.version_hash()


def test_editing_a_built_in_template_would_change_the_hash(monkeypatch):
    before = BASE.version_hash()
    edited = replace(prompts.TEMPLATES["arena-hard-v0.1"], system="Edited.")
    monkeypatch.setitem(prompts.TEMPLATES, "arena-hard-v0.1", edited)
    monkeypatch.setitem(prompts.DEFAULT_FOR_MODE, prompts.PAIRWISE, edited)
    assert BASE.version_hash() != before


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"base_url": ""}, "base_url"),
        ({"model": ""}, "model"),
        ({"mode": "elo"}, "mode"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"api_key_env": "sk-proj-abc123"}, "api_key_env"),
    ],
)
def test_bad_values_name_the_field(bad, field):
    values = {"base_url": "http://x/v1", "model": "m", **bad}
    with pytest.raises(ValueError, match=field):
        JudgeConfig(**values)


def test_it_builds_from_a_judge_like_object():
    row = SimpleNamespace(
        base_url="http://x/v1",
        model="m",
        api_key_env="JUDGE_KEY",
        mode="single",
        temperature=0.0,
        max_tokens=100,
        seed=None,
        price_per_1k_prompt=Decimal("0.0025"),
        price_per_1k_completion=Decimal("0.01"),
        name="ignored",
    )
    cfg = JudgeConfig.from_object(row, max_concurrency=2)
    assert cfg.mode == "single" and cfg.max_concurrency == 2
    assert cfg.price_per_1k_prompt == 0.0025
    assert cfg.cost(1000, 2000) == pytest.approx(0.0025 + 0.02)
