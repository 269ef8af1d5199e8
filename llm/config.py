"""Model endpoint configuration: frozen, hashable, free of secrets.

A :class:`ModelConfig` names the environment variable that holds the API key
(``api_key_env``), never the key; :func:`api_key` reads it at call time. The
:meth:`ModelConfig.version_hash` covers everything that changes replies (endpoint, model,
decoding parameters, logprobs) and nothing that does not (secrets, timeouts, retries,
rate limits, concurrency, prices). Judges extend it with their mode and template
(:class:`judges.clients.config.JudgeConfig`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields

LOCAL_API_KEY = "not-needed"  # sent when api_key_env is empty (local servers)


@dataclass(frozen=True)
class Endpoint:
    """Where and how fast to call: one rate limiter and one concurrency limit per key.

    Attributes
    ----------
    base_url : str
        OpenAI-compatible base URL, e.g. ``http://127.0.0.1:8001/v1``.
    api_key_env : str
        Name of the environment variable holding the key; empty for keyless local servers.
    model : str
        Provider rate limits are per model, so the model is part of the endpoint key.
    requests_per_minute, tokens_per_minute : int or None
        Token-bucket limits; None or 0 means unlimited.
    max_concurrency : int
        Requests in flight at once per endpoint (per event loop).
    """

    base_url: str
    api_key_env: str = ""
    model: str = ""
    requests_per_minute: int | None = 600
    tokens_per_minute: int | None = 1_000_000
    max_concurrency: int = 8

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.base_url.rstrip("/"), self.api_key_env, self.model)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to call one OpenAI-compatible model and price the call.

    Attributes
    ----------
    base_url, model, api_key_env : str
        Endpoint, model name, the *name* of the API-key environment variable.
    temperature, max_tokens, seed
        Decoding parameters sent with every request.
    timeout_s : float
        Per-request timeout; a timeout is a transient error.
    max_retries : int
        Retries after the first attempt for transient errors.
    requests_per_minute, tokens_per_minute : int or None
        Per-endpoint limits (None or 0: unlimited).
    max_concurrency : int
        Requests in flight per endpoint.
    price_per_1k_prompt, price_per_1k_completion : float
        Prices in the operator's currency per 1000 tokens.
    logprobs : bool
        Ask for logprobs (verdict probabilities) ...
    top_logprobs : int or None
        ... with this many alternatives per token (0-20; default 5 when logprobs is on).
    """

    base_url: str
    model: str
    api_key_env: str = ""
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    requests_per_minute: int | None = 600
    tokens_per_minute: int | None = 1_000_000
    max_concurrency: int = 8
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    logprobs: bool = False
    top_logprobs: int | None = None

    def __post_init__(self):
        if not self.base_url:
            raise ValueError("base_url: an OpenAI-compatible endpoint URL is required")
        if not self.model:
            raise ValueError("model: a model name is required")
        if self.top_logprobs is not None and not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"top_logprobs: must be between 0 and 20, got {self.top_logprobs}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens: must be positive, got {self.max_tokens}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s: must be positive, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries: must be >= 0, got {self.max_retries}")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency: must be >= 1, got {self.max_concurrency}")
        if self.api_key_env and not self.api_key_env.replace("_", "").isalnum():
            raise ValueError(
                "api_key_env: give the NAME of an environment variable (letters, digits, _), "
                "not the key itself"
            )

    @classmethod
    def from_object(cls, obj, **overrides):
        """Build from any object with same-named attributes (e.g. a ``judges.Judge`` row).

        Missing attributes keep their defaults; Decimal prices become floats.
        """
        values = {}
        for f in fields(cls):
            if hasattr(obj, f.name):
                value = getattr(obj, f.name)
                if f.name.startswith("price_"):
                    value = float(value)
                values[f.name] = value
        values.update(overrides)
        return cls(**values)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(
            base_url=self.base_url,
            api_key_env=self.api_key_env,
            model=self.model,
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            max_concurrency=self.max_concurrency,
        )

    def effective_top_logprobs(self) -> int | None:
        if not self.logprobs:
            return None
        return 5 if self.top_logprobs is None else self.top_logprobs

    def versioned(self) -> dict:
        """The fields that change replies, as canonical JSON-ready data."""
        return {
            "base_url": self.base_url.rstrip("/"),
            "model": self.model,
            "temperature": float(self.temperature),
            "max_tokens": int(self.max_tokens),
            "seed": self.seed,
            "logprobs": bool(self.logprobs),
            "top_logprobs": self.effective_top_logprobs(),
        }

    def version_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`versioned`.

        Stable across processes and Python versions: sorted keys, no whitespace, floats
        as JSON numbers. Secrets, timeouts, retries, limits and prices are excluded.
        """
        # Not memoised on the config: a subclass's versioned() may read what the config
        # does not hold (a judge's prompt template), which can change under it.
        blob = json.dumps(self.versioned(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """``prompt_tokens/1000 * price_per_1k_prompt + completion_tokens/1000 * price_per_1k_completion``."""
        return (
            prompt_tokens * self.price_per_1k_prompt
            + completion_tokens * self.price_per_1k_completion
        ) / 1000.0

    def as_dict(self) -> dict:
        """All fields (no secret is ever among them)."""
        return asdict(self)


def api_key(config: ModelConfig | Endpoint) -> str:
    """The API key from ``os.environ[config.api_key_env]``; a placeholder if the name is empty.

    Raises
    ------
    ValueError
        If the variable is named but unset (the message names the variable, not a key).
    """
    if not config.api_key_env:
        return LOCAL_API_KEY
    try:
        return os.environ[config.api_key_env]
    except KeyError:
        raise ValueError(
            f"api_key_env: environment variable {config.api_key_env!r} is not set"
        ) from None
