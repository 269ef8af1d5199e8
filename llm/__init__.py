"""Calling OpenAI-compatible chat models (pure Python, no Django).

The one transport for every model the project calls: contestants answering prompts
(:mod:`arena.generation`) and LLM judges (:mod:`judges.clients`, which adds modes,
templates and verdict parsing on top).

- :mod:`llm.config`: :class:`~llm.config.ModelConfig` (endpoint, decoding, limits,
  prices; never a secret) and :func:`~llm.config.api_key`.
- :mod:`llm.openai_compat`: ``complete``, ``complete_each`` (many at once), ``astream``, ``stream_complete``, their retrying
  and blocking variants.
- :mod:`llm.retry`: backoff with full jitter, honouring Retry-After.
- :mod:`llm.limits`: per-endpoint limits (in flight, per minute) shared by every process.
- :mod:`llm.claims`: claims on paid requests, so that two processes never send one at once.
- :mod:`llm.errors`: transient / permanent / retries-exhausted, and secret redaction.
"""
