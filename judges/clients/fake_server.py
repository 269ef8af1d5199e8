"""A fake OpenAI-compatible server on 127.0.0.1 for tests, benches and the demo.

Endpoints:

- ``POST /v1/chat/completions``: JSON, or SSE chunks with ``"stream": true`` (ending in
  ``data: [DONE]``; a usage chunk first when ``stream_options.include_usage``), with
  ``usage`` and, when asked, ``logprobs.content[*].top_logprobs`` (the verdict token's
  alternatives are the simulated judge's verdict distribution).
- ``GET /v1/models``: the scenario's models.
- ``GET /_stats`` (or ``/stats``): requests per model and outcome (tests assert "calls <=
  planned"), and the peaks per model: requests in flight at once (``max_in_flight``) and
  in any 60-second window (``max_per_minute``);
  ``POST /_reset`` clears them and the fault scripts.

The models and their behaviour come from a :class:`~judges.clients.simulation.Scenario`
(see :mod:`judges.clients.simulation` and :mod:`judges.clients.scenarios`). Faults:
``429`` (with ``Retry-After`` and ``retry-after-ms``), ``500``, ``timeout`` (the handler
sleeps ``Faults.timeout_s`` before answering 504), ``garbage`` (an unparseable verdict),
added latency.

Usage::

    with FakeLLMServer("test") as server:      # port 0: a free port
        config = JudgeConfig(base_url=server.base_url, model="judge-fair")

    python -m judges.clients.fake_server --port 8001 --scenario demo
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .scenarios import load_scenario
from .simulation import Reply, Scenario, Simulator, count_prompt_tokens

STAT_FIELDS = (
    "requests",
    "ok",
    "rate_limited",
    "server_errors",
    "timeouts",
    "garbage",
    "streamed",
    "judge_calls",
    "generations",
    "prompt_tokens",
    "completion_tokens",
    "max_in_flight",
    "max_per_minute",
)
PEAK_WINDOW_SECONDS = 60.0  # max_per_minute: the most requests in any 60 s window


class Stats:
    """Thread-safe request counters per model, with two peaks: ``max_in_flight`` (requests
    being answered at once) and ``max_per_minute`` (requests received in any sliding
    60-second window), so a test or bench can check the limits a client claims to keep."""

    def __init__(self, clock=time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._models: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAT_FIELDS, 0))
        self._in_flight: dict[str, int] = defaultdict(int)
        self._recent: dict[str, deque] = defaultdict(deque)

    def add(self, model: str, **counts: int) -> None:
        with self._lock:
            row = self._models[model]
            for key, value in counts.items():
                row[key] += value

    def enter(self, model: str) -> None:
        """A request starts being processed (tracks the peak concurrency per model)."""
        now = self._clock()
        with self._lock:
            self._in_flight[model] += 1
            row = self._models[model]
            row["max_in_flight"] = max(row["max_in_flight"], self._in_flight[model])
            row.setdefault("first_at", now)  # when requests began and last came (monotonic s)
            row["last_at"] = now
            recent = self._recent[model]
            recent.append(now)
            while recent[0] <= now - PEAK_WINDOW_SECONDS:
                recent.popleft()
            row["max_per_minute"] = max(row["max_per_minute"], len(recent))

    def leave(self, model: str) -> None:
        with self._lock:
            self._in_flight[model] -= 1

    def snapshot(self) -> dict:
        with self._lock:
            models = {
                name: {**row, "in_flight": self._in_flight.get(name, 0)}
                for name, row in self._models.items()
            }
        total = {
            key: sum(row[key] for row in models.values()) for key in (*STAT_FIELDS, "in_flight")
        }
        for peak in ("max_in_flight", "max_per_minute"):  # of one model (limits are per model)
            total[peak] = max((row[peak] for row in models.values()), default=0)
        return {"models": models, "total": total}

    def reset(self) -> None:
        with self._lock:
            self._models.clear()
            self._recent.clear()


def _error(status: int, message: str, kind: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _logprobs_content(reply: Reply, top_n: int) -> list[dict]:
    """OpenAI ``logprobs.content``: every token, the verdict token with its alternatives."""
    content = []
    for i, token in enumerate(reply.tokens):
        if i == reply.verdict_index and reply.verdict_distribution:
            dist = reply.verdict_distribution
            logprob = math.log(max(dist.get(token, 0.0), 1e-300))
            ranked = sorted(((t, p) for t, p in dist.items() if p > 0), key=lambda kv: -kv[1])[
                :top_n
            ]
            top = [
                {"token": t, "logprob": math.log(max(p, 1e-300)), "bytes": list(t.encode())}
                for t, p in ranked
            ]
        else:
            logprob = -0.01
            top = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}][:top_n]
        content.append(
            {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top}
        )
    return content


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server_version = "ArenaFakeLLM/1.0"
    server: _Server

    def log_message(self, format, *args):  # quiet; the stats endpoint is the record
        pass

    # plumbing -----------------------------------------------------------------------------
    def _send_json(self, status: int, payload, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.server.stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError:
            return None

    def _quietly(self, action) -> None:
        try:
            action()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (e.g. its timeout)

    # routes -------------------------------------------------------------------------------
    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            data = [
                {
                    "id": m.name,
                    "object": "model",
                    "created": 0,
                    "owned_by": m.family or "arena-fake",
                }
                for m in self.server.simulator.scenario.models
            ]
            return self._quietly(lambda: self._send_json(200, {"object": "list", "data": data}))
        if path in ("/_stats", "/stats"):
            return self._quietly(lambda: self._send_json(200, self.server.stats.snapshot()))
        if path in ("", "/health", "/v1"):
            return self._quietly(lambda: self._send_json(200, {"status": "ok"}))
        self._quietly(
            lambda: self._send_json(404, _error(404, f"no route {path}", "invalid_request_error"))
        )

    def do_POST(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/_reset":
            self.server.reset()
            return self._quietly(lambda: self._send_json(200, {"status": "reset"}))
        if path not in ("/v1/chat/completions", "/chat/completions"):
            body = _error(404, f"no route {path}", "invalid_request_error")
            return self._quietly(lambda: self._send_json(404, body))
        self._quietly(self._chat)

    def _chat(self):
        body = self._read_json()
        scenario = self.server.simulator.scenario
        if scenario.api_key is not None:
            sent = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
            if sent != scenario.api_key:
                # Like OpenAI, echo the key we got: the client must redact it.
                message = f"Incorrect API key provided: {sent}. You can find your API key in your account."
                return self._send_json(
                    401, _error(401, message, "invalid_request_error", "invalid_api_key")
                )
        problem = _validate(body)
        if problem:
            return self._send_json(400, _error(400, problem, "invalid_request_error"))
        name = body["model"]
        if scenario.model(name) is None:
            message = f"The model `{name}` does not exist or you do not have access to it."
            return self._send_json(
                404, _error(404, message, "invalid_request_error", "model_not_found")
            )
        self.server.stats.enter(name)
        try:
            self._simulate(body, name)
        finally:
            self.server.stats.leave(name)

    def _simulate(self, body: dict, name: str):
        simulator, stats = self.server.simulator, self.server.stats
        faults = simulator.scenario.faults_for(name)
        call = simulator.next_call(name)
        outcome = simulator.fault_for(name, call)
        stats.add(name, requests=1)
        if faults.latency_ms > 0:
            self.server.stopping.wait(faults.latency_ms / 1000.0)
        if outcome == "429":
            stats.add(name, rate_limited=1)
            retry = faults.retry_after_s
            headers = {"Retry-After": f"{retry:g}", "retry-after-ms": str(int(retry * 1000))}
            message = f"Rate limit reached for {name}. Please try again in {retry:g}s."
            return self._send_json(
                429, _error(429, message, "requests", "rate_limit_exceeded"), headers
            )
        if outcome == "500":
            stats.add(name, server_errors=1)
            message = "The server had an error while processing your request. Sorry about that!"
            return self._send_json(500, _error(500, message, "server_error"))
        if outcome == "timeout":
            stats.add(name, timeouts=1)
            self.server.stopping.wait(faults.timeout_s)
            return self._send_json(504, _error(504, "Gateway timeout", "server_error"))
        if outcome == "garbage":
            reply = simulator.garbage(body, call)
            stats.add(name, garbage=1)
        else:
            reply = simulator.chat(body, call)
        prompt_tokens = count_prompt_tokens(body["messages"])
        stats.add(
            name,
            ok=1,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(reply.tokens),
            judge_calls=int(reply.kind == "judge"),
            generations=int(reply.kind == "generate"),
            streamed=int(bool(body.get("stream"))),
        )
        if body.get("stream"):
            self._stream(body, name, reply, prompt_tokens)
        else:
            self._send_json(200, _completion(body, name, reply, prompt_tokens))

    def _stream(self, body: dict, name: str, reply: Reply, prompt_tokens: int):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        top_n = _top_n(body)
        logprobs = _logprobs_content(reply, top_n) if top_n is not None else None

        def event(choices, usage=None):
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "system_fingerprint": "fp_arena_fake",
                "choices": choices,
            }
            if usage is not None:
                chunk["usage"] = usage
            data = f"data: {json.dumps(chunk)}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        event(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ]
        )
        for i, token in enumerate(reply.tokens):
            lp = {"content": [logprobs[i]]} if logprobs is not None else None
            event(
                [{"index": 0, "delta": {"content": token}, "logprobs": lp, "finish_reason": None}]
            )
            self.wfile.flush()
        event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reply.finish_reason}])
        if (body.get("stream_options") or {}).get("include_usage"):
            event([], usage=_usage(prompt_tokens, len(reply.tokens)))
        done = b"data: [DONE]\n\n"
        self.wfile.write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
        self.wfile.flush()


def _validate(body) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in (
            "system",
            "user",
            "assistant",
            "developer",
            "tool",
        ):
            return f"messages[{i}]: invalid message"
        if not isinstance(m.get("content"), str | None):
            return f"messages[{i}].content: only text content is supported by the fake server"
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
        return "top_logprobs must be an integer between 0 and 20"
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "max_tokens must be a positive integer"
    return None


def _top_n(body: dict) -> int | None:
    if not body.get("logprobs"):
        return None
    return int(body.get("top_logprobs") or 0)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _completion(body: dict, name: str, reply: Reply, prompt_tokens: int) -> dict:
    top_n = _top_n(body)
    logprobs = (
        {"content": _logprobs_content(reply, top_n), "refusal": None} if top_n is not None else None
    )
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "system_fingerprint": "fp_arena_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": logprobs,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _usage(prompt_tokens, len(reply.tokens)),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # hundreds of clients connect at once at a run's start

    def __init__(self, address, simulator: Simulator):
        self.simulator = simulator
        self.stats = Stats()
        self.stopping = threading.Event()
        super().__init__(address, _Handler)

    def reset(self) -> None:
        self.stats.reset()
        self.simulator.reset()


class FakeLLMServer:
    """The fake server in a background thread; a context manager.

    Parameters
    ----------
    scenario : Scenario or str
        A scenario, a built-in name (``"demo"``, ``"test"``) or a JSON file path.
    host : str
        ``127.0.0.1`` by default (never exposed beyond the machine unless asked).
    port : int
        0 picks a free port.

    Attributes
    ----------
    base_url : str
        ``http://127.0.0.1:<port>/v1``, for :class:`~judges.clients.config.JudgeConfig`.
    simulator : Simulator
        The simulation behind the HTTP layer (read answer qualities in tests).
    """

    def __init__(self, scenario: Scenario | str = "test", host: str = "127.0.0.1", port: int = 0):
        self.simulator = Simulator(load_scenario(scenario))
        self._server = _Server((host, port), self.simulator)
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def scenario(self) -> Scenario:
        return self.simulator.scenario

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> FakeLLMServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        self._server.stopping.set()  # wakes sleeping "timeout" and latency handlers
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def stats(self) -> dict:
        """``{"models": {name: counts}, "total": counts}`` (see :data:`STAT_FIELDS`)."""
        return self._server.stats.snapshot()

    def calls(self, model: str) -> int:
        """Requests received for ``model`` (every outcome)."""
        return self.stats()["models"].get(model, {}).get("requests", 0)

    def reset_stats(self) -> None:
        self._server.reset()

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


FAULT_OPTIONS = ("rate_429", "rate_500", "rate_timeout", "rate_garbage", "latency_ms", "timeout_s")


def add_arguments(parser) -> None:
    """The command-line options (shared with ``manage.py fake_llm_server``)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--scenario", default="demo", help="demo, test, or a scenario .json file")
    for name in FAULT_OPTIONS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=float,
            default=None,
            help=f"override Faults.{name} for every model without its own faults",
        )
    parser.add_argument(
        "--dump-scenario", action="store_true", help="print the scenario JSON and exit"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m judges.clients.fake_server",
        description="A fake OpenAI-compatible server with simulated candidates and judges.",
    )
    add_arguments(parser)
    return parser


def scenario_from_options(options) -> Scenario:
    """The named scenario with the global fault overrides of the command line applied."""
    scenario = load_scenario(options.scenario)
    overrides = {
        name: getattr(options, name)
        for name in FAULT_OPTIONS
        if getattr(options, name, None) is not None
    }
    if overrides:
        scenario = replace(scenario, faults=replace(scenario.faults, **overrides))
    return scenario


def run(options, out=sys.stdout) -> int:
    """Serve (or dump) the scenario described by parsed ``options`` until interrupted."""
    scenario = scenario_from_options(options)
    if options.dump_scenario:
        print(scenario.to_json(), file=out)
        return 0
    server = FakeLLMServer(scenario, host=options.host, port=options.port)
    names = ", ".join(m.name for m in scenario.models)
    print(
        f"fake LLM server ({scenario.name}) on {server.base_url}\nmodels: {names}",
        file=out,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None, out=sys.stdout) -> int:
    """Command-line entry point: ``python -m judges.clients.fake_server --help``."""
    return run(build_parser().parse_args(argv), out)


if __name__ == "__main__":
    sys.exit(main())
