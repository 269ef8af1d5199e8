"""Model endpoint configuration (llm.config): validation, keys from the environment, purity."""

import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from llm.config import LOCAL_API_KEY, ModelConfig, api_key

ROOT = Path(__file__).resolve().parents[2]
BASE = ModelConfig(base_url="http://127.0.0.1:8001/v1", model="alpha")


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"base_url": ""}, "base_url"),
        ({"model": ""}, "model"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"api_key_env": "sk-proj-abc123"}, "api_key_env"),
    ],
)
def test_bad_values_name_the_field(bad, field):
    values = {"base_url": "http://x/v1", "model": "m", **bad}
    with pytest.raises(ValueError, match=field):
        ModelConfig(**values)


def test_a_model_config_has_no_judging_mode():
    with pytest.raises(TypeError):
        ModelConfig(base_url="http://x/v1", model="m", mode="pairwise")


@pytest.mark.parametrize(
    "change, changes_replies",
    [
        ({"model": "beta"}, True),
        ({"temperature": 0.7}, True),
        ({"seed": 1}, True),
        ({"logprobs": True}, True),
        ({"api_key_env": "OPENAI_API_KEY"}, False),
        ({"timeout_s": 5.0}, False),
        ({"price_per_1k_prompt": 3.0}, False),
        ({"base_url": "http://127.0.0.1:8001/v1/"}, False),
    ],
)
def test_the_hash_covers_what_changes_replies(change, changes_replies):
    assert (replace(BASE, **change).version_hash() != BASE.version_hash()) == changes_replies


def test_it_builds_from_a_row_like_object_and_prices_calls():
    row = SimpleNamespace(
        base_url="http://x/v1",
        model="m",
        temperature=0.7,
        price_per_1k_prompt=Decimal("0.0025"),
        price_per_1k_completion=Decimal("0.01"),
        name="ignored",
    )
    cfg = ModelConfig.from_object(row, max_concurrency=2)
    assert (cfg.temperature, cfg.max_concurrency) == (0.7, 2)
    assert cfg.cost(1000, 2000) == pytest.approx(0.0025 + 0.02)


def test_the_endpoint_key_ignores_a_trailing_slash():
    slashed = replace(BASE, base_url=BASE.base_url + "/")
    assert slashed.endpoint.key == BASE.endpoint.key


def test_keys_come_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("ARENA_TEST_CONFIG_KEY", "sk-config-secret-1234")
    cfg = replace(BASE, api_key_env="ARENA_TEST_CONFIG_KEY")
    assert api_key(cfg) == "sk-config-secret-1234"
    assert "sk-config-secret" not in repr(cfg)
    assert api_key(BASE) == LOCAL_API_KEY
    monkeypatch.delenv("ARENA_TEST_CONFIG_KEY")
    with pytest.raises(ValueError, match="ARENA_TEST_CONFIG_KEY"):
        api_key(cfg)


def test_the_llm_package_imports_neither_django_nor_the_apps():
    code = (
        "import sys, llm.config, llm.errors, llm.openai_compat, llm.limits, llm.retry;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'arena', 'judges'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
