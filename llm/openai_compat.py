"""One adapter for every OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp).

Built on the official ``openai`` SDK with its own retries off (``max_retries=0``): retries
belong to :func:`complete_with_retry` (backoff with full jitter, Retry-After) or to the
Celery task, which must see every failure to record it.

Every request passes the limits of its endpoint (:attr:`ModelConfig.endpoint`):
requests in flight (``max_concurrency``), requests and tokens per minute, kept for every
process at once (:mod:`llm.limits`: in Redis when ``REDIS_URL`` is set). Per event loop
there is one SDK client per endpoint (an ``httpx`` pool is bound to its loop), so one loop
keeps hundreds of requests in flight without a thread each (:func:`complete_many`).

The API key is read from ``os.environ[config.api_key_env]`` at call time and only ever
handed to the SDK client; errors and log lines are redacted (:func:`errors.redact`).
:func:`complete_sync` and :func:`stream_complete_sync` run the coroutines on a background
event loop thread, so Celery tasks (plain threads or processes) share the limiters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import random
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from . import limits
from .config import ModelConfig, api_key
from .errors import LLMError, LLMPermanentError, LLMRetriesExhausted, LLMTransientError, redact
from .retry import RetryPolicy, call_with_retry

try:  # the SDK's transport; its timeouts can surface raw while a stream is read
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - older SDKs use httpx
    import httpx as _httpx

if TYPE_CHECKING:
    import openai

log = logging.getLogger("llm")


def _sdk():
    """The ``openai`` SDK, imported on first use: it takes most of a second to import, and
    every process that imports this module (each management command, through the admin)
    would pay it whether it calls a model or not."""
    import openai

    return openai


Messages = Sequence[dict]


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its logprob and the top alternatives ``(token, logprob)``."""

    token: str
    logprob: float
    top_logprobs: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ChatReply:
    """What one successful call returned.

    Attributes
    ----------
    text : str
        The assistant message.
    model : str
        The model the server says answered.
    finish_reason : str or None
        ``stop``, ``length`` (truncated: the verdict may be missing) ...
    prompt_tokens, completion_tokens : int
        From ``usage`` (0 when the server sends none).
    latency_ms : float
        Wall time of the HTTP call (rate-limit waits excluded).
    cost : float
        From the configured prices (:meth:`ModelConfig.cost`).
    logprobs : tuple of TokenLogprob or None
        Per-token logprobs when asked for and given.
    attempts : int
        Calls made, retries included.
    """

    text: str
    model: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cost: float
    logprobs: tuple[TokenLogprob, ...] | None = None
    attempts: int = 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class StreamDelta:
    """One piece of a streamed reply: new text, and on the last pieces the finish/usage."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str | None = None


# --- per-loop resources ------------------------------------------------------------------
_per_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_per_loop_lock = threading.Lock()


def _loop_state() -> dict:
    loop = asyncio.get_running_loop()
    with _per_loop_lock:
        state = _per_loop.get(loop)
        if state is None:
            state = _per_loop[loop] = {"clients": {}}
        return state


_ssl_context = None
# Keep every connection a loop has open for reuse: with hundreds of calls in flight, the
# SDK's default of 100 idle connections closes the rest as replies come in, and every new
# call then pays a new connection (and, on a threaded server, a new thread).
_CONNECTION_LIMITS = _httpx.Limits(max_connections=2000, max_keepalive_connections=2000)


def _shared_ssl_context():
    """One TLS context for every client: building one loads the CA bundle (~100 ms)."""
    global _ssl_context
    with _per_loop_lock:
        if _ssl_context is None:
            _ssl_context = _httpx.create_ssl_context()
        return _ssl_context


def _client(config: ModelConfig, key: str) -> openai.AsyncOpenAI:
    # The key's hash (never the key) tells clients apart when the variable changes.
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
    cache_key = (config.base_url.rstrip("/"), config.api_key_env, fingerprint)
    clients = _loop_state()["clients"]
    client = clients.get(cache_key)
    if client is None:
        client = clients[cache_key] = _sdk().AsyncOpenAI(
            base_url=config.base_url,
            api_key=key,
            max_retries=0,
            timeout=config.timeout_s,
            http_client=_sdk().DefaultAsyncHttpxClient(
                verify=_shared_ssl_context(), limits=_CONNECTION_LIMITS
            ),
        )
    return client


async def aclose_clients() -> None:
    """Close the SDK clients of the running loop (end of a test or of a worker)."""
    state = _loop_state()
    clients, state["clients"] = state["clients"], {}
    for client in clients.values():
        await client.close()


# --- errors ------------------------------------------------------------------------------
def parse_retry_after(headers) -> float | None:
    """Seconds from ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _status_kind(status: int) -> str:
    return {
        400: "bad_request",
        401: "auth",
        403: "auth",
        404: "not_found",
        408: "timeout",
        409: "conflict",
        422: "bad_request",
        429: "rate_limit",
    }.get(status, "server_error" if status >= 500 else "client_error")


def classify(error: BaseException, config: ModelConfig, key: str | None):
    """The :class:`LLMTransientError` / :class:`LLMPermanentError` for an SDK error."""
    where = f"{config.model} at {config.base_url}"
    openai = _sdk()
    if isinstance(error, openai.APITimeoutError | _httpx.TimeoutException):
        return LLMTransientError(
            f"timeout after {config.timeout_s:g}s calling {where}", kind="timeout"
        )
    if isinstance(error, openai.APIConnectionError | _httpx.TransportError):
        detail = redact(str(error), key)
        return LLMTransientError(f"connection error calling {where}: {detail}", kind="connection")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        kind = _status_kind(status)
        detail = redact(error.message, key)
        message = f"HTTP {status} ({kind}) from {where}: {detail}"
        if status in (408, 409, 429) or status >= 500:
            retry_after = parse_retry_after(error.response.headers)
            return LLMTransientError(message, status=status, kind=kind, retry_after=retry_after)
        return LLMPermanentError(message, status=status, kind=kind)
    detail = redact(str(error), key)
    return LLMPermanentError(
        f"{type(error).__name__} calling {where}: {detail}", kind="bad_response"
    )


# --- calls -------------------------------------------------------------------------------
def estimate_tokens(messages: Messages, max_tokens: int) -> int:
    """Upper-bound token estimate for the rate limiter: chars/4 + 4 per message + max_tokens."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return chars // 4 + 4 * len(messages) + int(max_tokens)


def _request_args(config: ModelConfig, messages: Messages) -> dict:
    args = {
        "model": config.model,
        "messages": list(messages),
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
        "timeout": config.timeout_s,
    }
    if config.seed is not None:
        args["seed"] = config.seed
    top = config.effective_top_logprobs()
    if top is not None:
        args["logprobs"] = True
        args["top_logprobs"] = top
    return args


def _read_logprobs(choice) -> tuple[TokenLogprob, ...] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    return tuple(
        TokenLogprob(
            token=item.token,
            logprob=float(item.logprob),
            top_logprobs=tuple((alt.token, float(alt.logprob)) for alt in item.top_logprobs or ()),
        )
        for item in content
    )


def _api_key(config: ModelConfig) -> str:
    try:
        return api_key(config)
    except ValueError as error:
        raise LLMPermanentError(str(error), kind="config") from None


LEASE_MARGIN_SECONDS = 15.0  # a lease outlives its request's timeout by this much
# A call waits this long for an unreachable limits store (Redis restarting) before it fails
# as transient: the outage is not the endpoint's, so it spends none of the call's retries.
LIMITS_STORE_WAIT_SECONDS = 60.0


class _Slot:
    """``async with _Slot(config, messages) as lease``: the endpoint's limits around one
    request; set ``lease.used`` to the tokens the reply used (the rest is given back).

    While the limits' store is unreachable the request waits for it (it is never sent
    without its limits), polling every 0.1 s to 2 s, for up to
    :data:`LIMITS_STORE_WAIT_SECONDS`; then it fails with a transient error."""

    def __init__(self, config: ModelConfig, messages: Messages):
        self.config = config
        self.tokens = estimate_tokens(messages, config.max_tokens)

    async def __aenter__(self) -> limits.Lease:
        endpoint = self.config.endpoint
        deadline, pause = time.monotonic() + LIMITS_STORE_WAIT_SECONDS, 0.1
        while True:
            self.gate = limits.gate(endpoint.key)
            try:
                self.lease = await self.gate.acquire(
                    limits.Limits.of(endpoint),
                    self.tokens,
                    ttl=self.config.timeout_s + LEASE_MARGIN_SECONDS,
                )
                return self.lease
            except Exception as error:
                if not _store_down(error):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _limits_down(error) from None
            await asyncio.sleep(min(left, pause * (0.5 + random.random() / 2)))
            pause = min(2.0, 2 * pause)

    async def __aexit__(self, *exc) -> None:
        try:
            await self.gate.release(self.lease)
        except Exception as error:  # the lease expires by itself (its ttl)
            log.warning("limits of %s: lease not given back: %s", self.config.model, error)


def _store_down(error: BaseException) -> bool:
    """Whether ``error`` says the limits' store (Redis) cannot be reached."""
    return isinstance(error, OSError | ConnectionError) or type(error).__module__.startswith(
        "redis"
    )


LIMITS_DOWN = "limits"  # the kind of a call's error when the limits' store stayed unreachable


def _limits_down(error: BaseException) -> LLMTransientError:
    return LLMTransientError(
        f"the endpoint limits' store is unreachable: {type(error).__name__}: {error}",
        kind=LIMITS_DOWN,
    )


async def complete(config: ModelConfig, messages: Messages) -> ChatReply:
    """One chat completion (no retry).

    Parameters
    ----------
    config : ModelConfig
    messages : sequence of dict
        Chat messages.

    Returns
    -------
    ChatReply

    Raises
    ------
    LLMTransientError
        429 (with ``retry_after``), 408/409/5xx, timeouts, connection errors.
    LLMPermanentError
        Other 4xx, an unset API-key variable, a response without choices.
    """
    key = _api_key(config)
    async with _Slot(config, messages) as lease:
        started = time.perf_counter()
        try:
            response = await _client(config, key).chat.completions.create(
                **_request_args(config, messages)
            )
        except (_sdk().OpenAIError, _httpx.HTTPError) as error:
            failure = classify(error, config, key)
            log.warning("model call failed: %s", failure.message)
            raise failure from None
        latency_ms = (time.perf_counter() - started) * 1000.0
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        if usage is not None:
            lease.used = prompt_tokens + completion_tokens
    if not getattr(response, "choices", None):
        raise LLMPermanentError(
            f"{config.model} at {config.base_url} returned no choices", kind="bad_response"
        )
    choice = response.choices[0]
    reply = ChatReply(
        text=choice.message.content or "",
        model=getattr(response, "model", None) or config.model,
        finish_reason=choice.finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
        cost=config.cost(prompt_tokens, completion_tokens),
        logprobs=_read_logprobs(choice),
    )
    log.debug(
        "model call %s at %s: %.0f ms, %d+%d tokens, finish=%s",
        config.model,
        config.base_url,
        latency_ms,
        prompt_tokens,
        completion_tokens,
        reply.finish_reason,
    )
    return reply


def retry_policy(config: ModelConfig, **overrides) -> RetryPolicy:
    """The retry policy of a model config (``max_retries`` from the config)."""
    return RetryPolicy(**{"max_retries": config.max_retries, **overrides})


async def complete_with_retry(
    config: ModelConfig,
    messages: Messages,
    *,
    policy: RetryPolicy | None = None,
    rng: random.Random | None = None,
    sleep: Callable = asyncio.sleep,
    on_retry: Callable | None = None,
) -> ChatReply:
    """:func:`complete` with retries of transient errors (see :mod:`llm.retry`).

    Raises
    ------
    LLMPermanentError
        At once, without retrying.
    LLMRetriesExhausted
        After ``policy.max_retries`` retries (default: ``config.max_retries``), or at once
        when the endpoint limits' store stayed unreachable for
        :data:`LIMITS_STORE_WAIT_SECONDS` (kind :data:`LIMITS_DOWN`): the call was never
        sent, and a retry would only wait as long again.
    """
    policy = policy or retry_policy(config)
    attempts = 0

    async def attempt() -> ChatReply:
        nonlocal attempts
        attempts += 1
        try:
            return await complete(config, messages)
        except LLMTransientError as error:
            if error.kind == LIMITS_DOWN:  # waited out once already: the caller decides
                raise LLMRetriesExhausted(attempts, error) from None
            raise

    reply = await call_with_retry(attempt, policy, rng=rng, sleep=sleep, on_retry=on_retry)
    return dataclasses.replace(reply, attempts=attempts)


async def astream(config: ModelConfig, messages: Messages) -> AsyncIterator[StreamDelta]:
    """Stream a chat completion as :class:`StreamDelta` pieces (no retry).

    Asks for ``stream_options={"include_usage": True}`` so the last piece carries the
    token counts. Errors are mapped as in :func:`complete`, also mid-stream.
    """
    key = _api_key(config)
    async with _Slot(config, messages) as lease:
        try:
            stream = await _client(config, key).chat.completions.create(
                **_request_args(config, messages),
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                usage = getattr(chunk, "usage", None)
                choice = chunk.choices[0] if chunk.choices else None
                delta = StreamDelta(
                    text=(choice.delta.content or "") if choice and choice.delta else "",
                    finish_reason=choice.finish_reason if choice else None,
                    prompt_tokens=getattr(usage, "prompt_tokens", None),
                    completion_tokens=getattr(usage, "completion_tokens", None),
                    model=getattr(chunk, "model", None),
                )
                if usage is not None:
                    lease.used = (delta.prompt_tokens or 0) + (delta.completion_tokens or 0)
                yield delta
        except (_sdk().OpenAIError, _httpx.HTTPError) as error:
            failure = classify(error, config, key)
            log.warning("streamed call failed: %s", failure.message)
            raise failure from None


async def stream_complete(
    config: ModelConfig,
    messages: Messages,
    on_delta: Callable[[str], object] | None = None,
) -> ChatReply:
    """Stream a completion, calling ``on_delta(text)`` per piece; return the whole reply."""
    started = time.perf_counter()
    parts, finish, model = [], None, config.model
    prompt_tokens = completion_tokens = 0
    async for delta in astream(config, messages):
        if delta.text:
            parts.append(delta.text)
            if on_delta is not None:
                on_delta(delta.text)
        finish = delta.finish_reason or finish
        model = delta.model or model
        if delta.prompt_tokens is not None:
            prompt_tokens = delta.prompt_tokens
            completion_tokens = delta.completion_tokens or 0
    return ChatReply(
        text="".join(parts),
        model=model,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        cost=config.cost(prompt_tokens, completion_tokens),
    )


# --- sync wrapper (Celery) ---------------------------------------------------------------
SWITCH_INTERVAL_SECONDS = 0.0005


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self):
        self.pid = os.getpid()
        # This thread serves every call of the process (hundreds in flight) while worker
        # threads run ORM code: with the default 5 ms GIL switch interval each of its
        # wakeups can wait that long, holding leases of requests not yet sent or already
        # answered. A shorter interval lets it in sooner.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="llm-client-loop", daemon=True)
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()


_background: _LoopThread | None = None
_background_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _background
    with _background_lock:
        # A forked child (Celery prefork) inherits a dead loop thread: start its own.
        if _background is None or _background.pid != os.getpid():
            _background = _LoopThread()
        return _background.loop


def run_sync(make_coroutine: Callable[[], object], timeout: float | None = None):
    """Run ``make_coroutine()`` on the background loop and wait for its result.

    Raises
    ------
    RuntimeError
        If called from a thread that is running an event loop (``await`` instead).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("called from a running event loop: await the async function instead")
    future = asyncio.run_coroutine_threadsafe(make_coroutine(), _background_loop())
    return future.result(timeout)


def complete_sync(
    config: ModelConfig, messages: Messages, *, retry: bool = True, **retry_options
) -> ChatReply:
    """Blocking :func:`complete_with_retry` (or :func:`complete` with ``retry=False``)."""
    if retry:
        return run_sync(lambda: complete_with_retry(config, messages, **retry_options))
    return run_sync(lambda: complete(config, messages))


def stream_complete_sync(
    config: ModelConfig, messages: Messages, on_delta: Callable[[str], object] | None = None
) -> ChatReply:
    """Blocking :func:`stream_complete`; ``on_delta`` runs on the background loop thread."""
    return run_sync(lambda: stream_complete(config, messages, on_delta))


# --- many calls at once --------------------------------------------------------------------------
Outcome = ChatReply | LLMError


async def complete_each(
    config: ModelConfig, requests: Sequence[Messages], **retry_options
) -> AsyncIterator[tuple[int, Outcome]]:
    """Send every request at once (each under the endpoint's limits, with retries) and yield
    ``(index, reply or LLMError)`` in the order they finish.

    One coroutine per request, no thread: how many are in flight is the endpoint's limits'
    business (:mod:`llm.limits`). Leaving the loop early cancels the calls still waiting.
    """
    finished: asyncio.Queue = asyncio.Queue()

    async def one(index: int, messages: Messages) -> None:
        try:
            outcome = await complete_with_retry(config, messages, **retry_options)
        except LLMError as error:
            outcome = error
        except Exception as error:  # noqa: BLE001 - a bug in one call must not hide the others
            outcome = LLMPermanentError(f"{type(error).__name__}: {error}", kind="internal")
        finished.put_nowait((index, outcome))

    tasks = [asyncio.ensure_future(one(i, m)) for i, m in enumerate(requests)]
    try:
        for _ in tasks:
            yield await finished.get()
    finally:
        for task in tasks:
            task.cancel()


def complete_each_sync(
    config: ModelConfig,
    requests: Sequence[Messages],
    *,
    linger: float = 0.1,
    most: int = 256,
    **retry_options,
):
    """Blocking :func:`complete_each` for a worker thread: yields lists of
    ``(index, reply or LLMError)``; a list is the first outcome to finish and those that
    finish within ``linger`` seconds after it (at most ``most``), or empty after a second
    without any, so that the caller can store what it holds. The calls run on the
    background loop meanwhile.
    """
    import queue  # only this blocking bridge needs it

    finished: queue.SimpleQueue = queue.SimpleQueue()
    done = object()

    async def pump() -> None:
        try:
            async for item in complete_each(config, requests, **retry_options):
                finished.put(item)
        finally:
            finished.put(done)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("called from a running event loop: use complete_each instead")
    future = asyncio.run_coroutine_threadsafe(pump(), _background_loop())
    try:
        over = False
        while not over:
            try:
                first = finished.get(timeout=1.0)
            except queue.Empty:  # nothing finished for a second: an empty list
                yield []
                continue
            if first is done:
                break
            chunk, deadline = [first], time.monotonic() + linger
            while len(chunk) < most:
                try:
                    item = finished.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is done:
                    over = True
                    break
                chunk.append(item)
            yield chunk
        future.result()
    finally:
        if not future.done():
            future.cancel()
