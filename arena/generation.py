"""Contestants answering prompts through their OpenAI-compatible endpoints.

One client for every model (:mod:`llm`, the transport the judges use too): the live
battle page streams answers with :func:`stream_answer` (one per slot,
:mod:`arena.live_answers` runs them); evaluation runs generate missing
outputs with the same configuration (:func:`contestant_config`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator

from llm.config import ModelConfig
from llm.errors import LLMError
from llm.openai_compat import astream

log = logging.getLogger(__name__)

GENERATION_DEFAULTS = {"temperature": 0.7, "max_tokens": 1024}


def contestant_config(contestant) -> ModelConfig:
    """The client configuration of a contestant's generation endpoint."""
    params = {**GENERATION_DEFAULTS, **(contestant.generation_params or {})}
    allowed = {
        "temperature",
        "max_tokens",
        "seed",
        "timeout_s",
        "max_retries",
        "requests_per_minute",
        "tokens_per_minute",
        "max_concurrency",
        "price_per_1k_prompt",
        "price_per_1k_completion",
    }
    return ModelConfig(
        base_url=contestant.base_url,
        model=contestant.api_model or contestant.name,
        api_key_env=contestant.api_key_env,
        **{k: v for k, v in params.items() if k in allowed},
    )


def generation_label(contestant) -> str:
    """Output.generation_config for answers generated live: a hash of the decoding settings."""
    params = {**GENERATION_DEFAULTS, **(contestant.generation_params or {})}
    return "gen-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def answer_messages(prompt_text: str) -> list[dict]:
    return [{"role": "user", "content": prompt_text}]


LIVE_ANSWER_FAILED = "this answer could not be generated; start a new battle"


async def stream_answer(config: ModelConfig, prompt_text: str) -> AsyncIterator[dict]:
    """Stream one contestant's answer to a typed prompt.

    Yields ``{"delta"}`` pieces, then ``{"done", "text", "prompt_tokens",
    "completion_tokens"}`` or ``{"error"}``. Errors carry no model name: the browser must
    not learn who answered before the vote.
    """
    parts: list[str] = []
    usage = (0, 0)
    try:
        async for piece in astream(config, answer_messages(prompt_text)):
            if piece.text:
                parts.append(piece.text)
                yield {"delta": piece.text}
            if piece.prompt_tokens is not None:
                usage = (piece.prompt_tokens, piece.completion_tokens or 0)
    except LLMError as exc:
        log.warning("live answer failed: %s", exc)
        yield {"error": LIVE_ANSWER_FAILED}
        return
    except Exception:  # reported to the reader like an endpoint's failure
        log.exception("live answer failed")
        yield {"error": LIVE_ANSWER_FAILED}
        return
    yield {
        "done": True,
        "text": "".join(parts),
        "prompt_tokens": usage[0],
        "completion_tokens": usage[1],
    }
