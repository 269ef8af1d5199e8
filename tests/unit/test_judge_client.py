"""The OpenAI-compatible client (:mod:`llm`) and one judgment end to end, against the fake
server over real HTTP."""

import asyncio
import logging
import math
import pickle
import random
import socket
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from judges import prompts, verdicts
from judges.audit_metrics.trustjudge import distribution_score
from judges.clients import scenarios
from judges.clients.config import JudgeConfig
from judges.clients.fake_server import FakeLLMServer
from judges.clients.judge import judge, judge_sync, reply_probabilities, request_key
from judges.clients.simulation import generate_answer, sigmoid
from llm import openai_compat as oc
from llm.config import ModelConfig
from llm.errors import LLMPermanentError, LLMRetriesExhausted, LLMTransientError
from llm.limits import LocalStore, use_store
from llm.retry import RetryPolicy

QUESTION = "Explain how photosynthesis works in plants."
SECRET = "sk-test-7f3a9c2e41b84d6fa0c5e9d2b7a1c3e8"


def run(make):
    """Run a coroutine on a fresh loop and close that loop's SDK clients afterwards."""

    async def main():
        try:
            return await make()
        finally:
            await oc.aclose_clients()

    return asyncio.run(main())


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer("test") as srv:
        yield srv


@pytest.fixture(autouse=True)
def fresh(server):
    server.reset_stats()
    use_store(None)
    yield


def config(server, model, **kw):
    kw.setdefault("max_tokens", 4000)
    kw.setdefault("requests_per_minute", None)
    kw.setdefault("tokens_per_minute", None)
    return JudgeConfig(base_url=server.base_url, model=model, **kw)


def answers(*models):
    scenario = scenarios.test()
    return [generate_answer(scenario.model(m), QUESTION, scenario.seed) for m in models]


class RecordedSleep:
    def __init__(self):
        self.delays = []

    async def __call__(self, seconds):
        self.delays.append(seconds)


# --- happy path ---------------------------------------------------------------------------
def test_it_returns_text_usage_and_cost(server):
    cfg = config(server, "alpha", price_per_1k_prompt=0.5, price_per_1k_completion=1.5)
    reply = run(lambda: oc.complete(cfg, [{"role": "user", "content": QUESTION}]))
    assert reply.text == answers("alpha")[0]
    assert reply.model == "alpha" and reply.finish_reason == "stop"
    stats = server.stats()["models"]["alpha"]
    assert (reply.prompt_tokens, reply.completion_tokens) == (
        stats["prompt_tokens"],
        stats["completion_tokens"],
    )
    assert reply.completion_tokens > 50
    expected = reply.prompt_tokens / 1000 * 0.5 + reply.completion_tokens / 1000 * 1.5
    assert reply.cost == pytest.approx(expected)
    assert reply.latency_ms > 0 and reply.attempts == 1


def test_a_plain_model_config_uses_the_same_client(server):
    cfg = ModelConfig(base_url=server.base_url, model="alpha", temperature=0.7, max_tokens=4000)
    messages = [{"role": "user", "content": QUESTION}]
    reply = run(lambda: oc.complete(cfg, messages))
    pieces = []
    streamed = run(lambda: oc.stream_complete(cfg, messages, pieces.append))
    assert reply.text and streamed.text == "".join(pieces) == reply.text
    assert reply.model == "alpha" and reply.logprobs is None


def test_it_truncates_at_max_tokens(server):
    cfg = config(server, "verbose", max_tokens=20)
    reply = run(lambda: oc.complete(cfg, [{"role": "user", "content": QUESTION}]))
    assert reply.finish_reason == "length" and reply.completion_tokens == 20


def test_it_reads_verdict_probabilities_from_logprobs(server):
    cfg = config(server, "judge-fair", logprobs=True, top_logprobs=5)
    messages = prompts.render(cfg.judge_template, QUESTION, answers("alpha", "gamma"), (0, 1))
    reply = run(lambda: oc.complete(cfg, messages))
    assert reply.logprobs and "".join(t.token for t in reply.logprobs) == reply.text
    probs = verdicts.verdict_probabilities(
        reply.text, reply.logprobs, verdicts.ARENA_HARD_CHOICES, verdicts.ARENA_HARD_LABELS
    )
    # Independent computation: alpha 1.5 vs gamma -1.5, no noise, no ties, no bias.
    p = sigmoid(3.0)
    expected = {
        "A>>B": p * p**3,
        "A>B": p * (1 - p**3),
        "A=B": 0.0,
        "B>A": (1 - p) * (1 - (1 - p) ** 3),
        "B>>A": (1 - p) ** 4,
    }
    assert probs.coverage == pytest.approx(1.0)
    for label, value in expected.items():
        assert probs.by_label[label] == pytest.approx(value, abs=1e-9)
    assert probs.winner["A"] == pytest.approx(p)


def test_it_reads_rating_probabilities_with_two_digit_tokens(server):
    cfg = config(server, "judge-fair", mode="single", logprobs=True, top_logprobs=20)
    messages = prompts.render(cfg.judge_template, QUESTION, answers("alpha"))
    reply = run(lambda: oc.complete(cfg, messages))
    score = verdicts.parse_score(reply.text)
    assert isinstance(score, verdicts.Score)
    probs = verdicts.verdict_probabilities(
        reply.text, reply.logprobs, [str(s) for s in range(1, 11)]
    )
    mean = 5.5 + 1.5 * 1.5  # judge-fair on alpha (quality 1.5)
    weights = [math.exp(-0.5 * ((s - mean) / 0.8) ** 2) + 1e-12 for s in range(1, 11)]
    for s, w in zip(range(1, 11), weights, strict=True):
        assert probs.by_label[str(s)] == pytest.approx(w / sum(weights), abs=1e-9)


def test_it_reads_1_to_100_rating_probabilities_from_the_top_20(server):
    """TrustJudge's fine scale through the HTTP fake server: the rating token's top 20
    alternatives are the simulated distribution's 20 likeliest ratings, renormalised."""
    cfg = config(server, "judge-fair", mode="single_100", logprobs=True, top_logprobs=20)
    messages = prompts.render(cfg.judge_template, QUESTION, answers("alpha"))
    reply = run(lambda: oc.complete(cfg, messages))
    score = verdicts.parse_score(reply.text, 1, 100)
    assert isinstance(score, verdicts.Score)
    probs = reply_probabilities("single_100", reply)
    mean = 1 + 11 * (4.5 + 1.5 * 1.5)  # judge-fair on alpha (quality 1.5), stretched
    weights = {s: math.exp(-0.5 * ((s - mean) / 8.8) ** 2) + 1e-12 for s in range(1, 101)}
    top = sorted(weights, key=weights.get, reverse=True)[:20]
    for s in range(1, 101):
        want = weights[s] / sum(weights[t] for t in top) if s in top else 0.0
        assert probs.by_label[str(s)] == pytest.approx(want, abs=1e-9)
    assert distribution_score(probs.by_label, 1, 100) == pytest.approx(mean, abs=2.0)


def test_it_streams_the_same_text_with_usage(server):
    cfg = config(server, "alpha")
    messages = [{"role": "user", "content": QUESTION}]
    pieces = []
    streamed = run(lambda: oc.stream_complete(cfg, messages, pieces.append))
    plain = run(lambda: oc.complete(cfg, messages))
    assert len(pieces) == plain.completion_tokens > 1
    assert streamed.text == "".join(pieces) == plain.text
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (
        plain.prompt_tokens,
        plain.completion_tokens,
    )
    assert streamed.finish_reason == "stop"
    assert server.stats()["models"]["alpha"]["streamed"] == 1


def test_it_raises_transient_errors_in_a_stream(server):
    cfg = config(server, "fault-500")

    async def consume():
        async for _ in oc.astream(cfg, [{"role": "user", "content": QUESTION}]):
            pass

    with pytest.raises(LLMTransientError) as info:
        run(consume)
    assert info.value.status == 500


# --- faults -------------------------------------------------------------------------------
def test_it_maps_429_to_transient_with_retry_after(server):
    cfg = config(server, "fault-429")
    with pytest.raises(LLMTransientError) as info:
        run(lambda: oc.complete(cfg, [{"role": "user", "content": QUESTION}]))
    error = info.value
    assert (error.status, error.kind) == (429, "rate_limit")
    assert error.retry_after == pytest.approx(0.02)


def test_it_maps_500_to_transient(server):
    with pytest.raises(LLMTransientError) as info:
        run(lambda: oc.complete(config(server, "fault-500"), [{"role": "user", "content": "hi"}]))
    assert (info.value.status, info.value.kind) == (500, "server_error")


def test_it_maps_a_timeout_to_transient(server):
    cfg = config(server, "fault-timeout", timeout_s=0.2)
    with pytest.raises(LLMTransientError) as info:
        run(lambda: oc.complete(cfg, [{"role": "user", "content": "hi"}]))
    assert info.value.kind == "timeout" and "0.2s" in str(info.value)


def test_it_maps_a_refused_connection_to_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens
    cfg = JudgeConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=2)
    with pytest.raises(LLMTransientError) as info:
        run(lambda: oc.complete(cfg, [{"role": "user", "content": "hi"}]))
    assert info.value.kind == "connection"


def test_it_maps_unknown_model_and_bad_request_to_permanent(server):
    with pytest.raises(LLMPermanentError) as info:
        run(
            lambda: oc.complete(
                config(server, "no-such-model"), [{"role": "user", "content": "hi"}]
            )
        )
    assert (info.value.status, info.value.kind) == (404, "not_found")
    with pytest.raises(LLMPermanentError) as info:
        run(lambda: oc.complete(config(server, "alpha"), []))
    assert (info.value.status, info.value.kind) == (400, "bad_request")


def test_it_fails_permanently_when_the_key_variable_is_unset(server, monkeypatch):
    monkeypatch.delenv("ARENA_TEST_UNSET_KEY", raising=False)
    cfg = config(server, "alpha", api_key_env="ARENA_TEST_UNSET_KEY")
    with pytest.raises(LLMPermanentError, match="ARENA_TEST_UNSET_KEY") as info:
        run(lambda: oc.complete(cfg, [{"role": "user", "content": "hi"}]))
    assert info.value.kind == "config"


def test_garbage_verdicts_come_back_as_replies_that_do_not_parse(server):
    cfg = config(server, "fault-garbage")
    messages = prompts.render(cfg.judge_template, QUESTION, answers("alpha", "beta"))

    async def calls():
        return [await oc.complete(cfg, messages) for _ in range(12)]

    replies = run(calls)
    results = [verdicts.parse_pairwise(r.text) for r in replies]
    assert all(isinstance(r, verdicts.ParseFailure) for r in results)
    assert len({r.text for r in replies}) >= 3  # several kinds of garbage
    assert server.stats()["models"]["fault-garbage"]["garbage"] == 12


# --- retries ------------------------------------------------------------------------------
def test_it_retries_scripted_failures_then_succeeds(server):
    cfg = config(server, "flaky", timeout_s=0.3, max_retries=5)
    sleep, seen = RecordedSleep(), []
    policy = RetryPolicy(max_retries=5, base_delay=0.001, max_delay=0.01)
    reply = run(
        lambda: oc.complete_with_retry(
            cfg,
            [{"role": "user", "content": QUESTION}],
            policy=policy,
            rng=random.Random(0),
            sleep=sleep,
            on_retry=lambda n, err, delay: seen.append(err.kind),
        )
    )
    assert reply.attempts == 4 and reply.text
    assert seen == ["rate_limit", "server_error", "timeout"]
    assert sleep.delays[0] >= 0.01  # Retry-After honoured over a smaller jitter
    assert all(d <= 0.01 for d in sleep.delays[1:])
    assert server.calls("flaky") == 4


def test_it_gives_up_after_max_retries_with_the_reason(server):
    cfg = config(server, "fault-500")
    sleep = RecordedSleep()
    with pytest.raises(LLMRetriesExhausted) as info:
        run(
            lambda: oc.complete_with_retry(
                cfg,
                [{"role": "user", "content": "hi"}],
                policy=RetryPolicy(max_retries=2, base_delay=0.001),
                sleep=sleep,
            )
        )
    assert info.value.attempts == 3 and len(sleep.delays) == 2
    assert "HTTP 500" in info.value.reason and "gave up after 3 attempts" in str(info.value)
    assert server.calls("fault-500") == 3


def test_it_does_not_retry_permanent_errors(server):
    sleep = RecordedSleep()
    with pytest.raises(LLMPermanentError):
        run(
            lambda: oc.complete_with_retry(
                config(server, "no-such-model"), [{"role": "user", "content": "hi"}], sleep=sleep
            )
        )
    assert sleep.delays == []


# --- concurrency and the sync wrapper -----------------------------------------------------
def test_it_limits_requests_in_flight_per_endpoint(server):
    cfg = config(server, "slow", max_concurrency=2)

    async def burst():
        return await asyncio.gather(
            *(oc.complete(cfg, [{"role": "user", "content": f"q{i}"}]) for i in range(6))
        )

    assert len(run(burst)) == 6
    assert server.stats()["models"]["slow"]["max_in_flight"] == 2


def test_the_server_handles_concurrent_requests(server):
    cfg = config(server, "slow", max_concurrency=8)

    async def burst():
        return await asyncio.gather(
            *(oc.complete(cfg, [{"role": "user", "content": f"q{i}"}]) for i in range(8))
        )

    run(burst)
    assert server.stats()["models"]["slow"]["max_in_flight"] >= 4


def test_the_sync_wrapper_serves_threads(server):
    cfg = config(server, "beta")

    def call(i):
        return oc.complete_sync(cfg, [{"role": "user", "content": f"question {i}"}]).text

    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(call, range(12)))
    assert len(set(texts)) == 12
    assert server.calls("beta") == 12


def test_the_sync_wrapper_refuses_a_running_loop(server):
    async def inside():
        oc.complete_sync(config(server, "beta"), [{"role": "user", "content": "hi"}])

    with pytest.raises(RuntimeError, match="running event loop"):
        asyncio.run(inside())


class DownStore(LocalStore):
    """The process's limits, unreachable for the first ``down`` asks (Redis restarting)."""

    def __init__(self, down: float):
        super().__init__()
        self.down, self.asks = down, 0

    async def try_acquire_many(self, endpoint, requests, limits, ttl):
        self.asks += 1
        if self.asks <= self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await super().try_acquire_many(endpoint, requests, limits, ttl)


def test_a_call_waits_for_the_limits_store_and_spends_no_retry_on_its_outage(server):
    store = DownStore(down=3)
    use_store(store)
    cfg = config(server, "beta", max_retries=0)
    reply = run(lambda: oc.complete_with_retry(cfg, [{"role": "user", "content": "hi"}]))
    assert reply.text and reply.attempts == 1
    assert store.asks == 4 and server.calls("beta") == 1


def test_a_call_fails_as_transient_when_the_limits_store_stays_down(server, monkeypatch):
    monkeypatch.setattr(oc, "LIMITS_STORE_WAIT_SECONDS", 0.5)
    use_store(DownStore(down=math.inf))
    cfg = config(server, "beta")
    with pytest.raises(LLMTransientError, match="limits' store is unreachable") as caught:
        run(lambda: oc.complete(cfg, [{"role": "user", "content": "hi"}]))
    assert caught.value.kind == "limits"
    assert server.calls("beta") == 0  # never sent without its limits


# --- the API key never leaks --------------------------------------------------------------
@pytest.fixture(scope="module")
def keyed_server():
    scenario = scenarios.test()

    with FakeLLMServer(replace(scenario, api_key=SECRET)) as srv:
        yield srv


def test_it_sends_the_key_from_the_environment(keyed_server, monkeypatch):
    monkeypatch.setenv("ARENA_TEST_JUDGE_KEY", SECRET)
    cfg = config(keyed_server, "alpha", api_key_env="ARENA_TEST_JUDGE_KEY")
    reply = run(lambda: oc.complete(cfg, [{"role": "user", "content": "hi"}]))
    assert reply.text
    for text in (repr(cfg), str(cfg.as_dict()), repr(reply), cfg.version_hash()):
        assert SECRET not in text


def test_a_rejected_key_never_appears_in_errors_or_logs(keyed_server, monkeypatch, caplog):
    wrong = "sk-wrong-4c1d8e7f2a9b6c3d5e0f1a2b"
    monkeypatch.setenv("ARENA_TEST_JUDGE_KEY", wrong)
    cfg = config(keyed_server, "alpha", api_key_env="ARENA_TEST_JUDGE_KEY")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(LLMPermanentError) as info:
        run(lambda: oc.complete_with_retry(cfg, [{"role": "user", "content": "hi"}]))
    error = info.value
    assert (error.status, error.kind) == (401, "auth")
    assert "Incorrect API key provided: ***" in str(error)  # the server echoed it
    texts = [
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        repr(pickle.loads(pickle.dumps(error))),
        caplog.text,
    ]
    for text in texts:
        assert wrong not in text
        assert wrong[3:15] not in text  # nor a recognisable piece of it
    assert pickle.loads(pickle.dumps(error)).status == 401


def test_the_key_is_read_at_call_time(keyed_server, monkeypatch):
    cfg = config(keyed_server, "alpha", api_key_env="ARENA_TEST_JUDGE_KEY")
    monkeypatch.setenv("ARENA_TEST_JUDGE_KEY", "sk-old-key-000000000")
    with pytest.raises(LLMPermanentError):
        run(lambda: oc.complete(cfg, [{"role": "user", "content": "hi"}]))
    monkeypatch.setenv("ARENA_TEST_JUDGE_KEY", SECRET)  # rotated: the next call uses it
    assert run(lambda: oc.complete(cfg, [{"role": "user", "content": "hi"}])).text


def test_background_loop_survives_many_threads(server):
    cfg = config(server, "gamma")
    errors = []

    def worker():
        try:
            oc.complete_sync(cfg, [{"role": "user", "content": "hello"}], retry=False)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and server.calls("gamma") == 8


# --- one judgment end to end --------------------------------------------------------------
def test_judge_renders_calls_parses_and_maps_to_slots(server):
    cfg = config(server, "judge-fair", logprobs=True)
    alpha, gamma = answers("alpha", "gamma")
    shown_swapped = run(lambda: judge(cfg, QUESTION, [gamma, alpha], order=(1, 0)))
    assert shown_swapped.parsed and shown_swapped.order == (1, 0)
    assert shown_swapped.slots.winner == (1 if shown_swapped.verdict.winner == "A" else 0)
    assert shown_swapped.probabilities.winner["A"] == pytest.approx(sigmoid(3.0))
    garbage = judge_sync(config(server, "fault-garbage"), QUESTION, [alpha, gamma])
    assert not garbage.parsed and garbage.reply.text  # stored as a failure with its text
    ranked = judge_sync(
        config(server, "judge-fair", mode="listwise"), QUESTION, answers("beta", "alpha", "gamma")
    )
    assert isinstance(ranked.slots, verdicts.SlotRanking)
    rated = judge_sync(
        config(server, "judge-fair", mode="single", logprobs=True), QUESTION, [alpha]
    )
    assert isinstance(rated.verdict, verdicts.Score) and rated.probabilities.coverage > 0.99
    key = request_key(cfg, shown_swapped.messages)
    assert (
        key
        == request_key(cfg, shown_swapped.messages)
        != request_key(cfg, shown_swapped.messages, repeat=1)
    )
    assert key != request_key(replace(cfg, temperature=0.5), shown_swapped.messages)


# --- many calls at once ----------------------------------------------------------------------------
def test_many_calls_at_once_keep_the_endpoint_limit_and_report_each_outcome(server):
    cfg = config(server, "slow", max_concurrency=5, max_retries=0)
    requests = [[{"role": "user", "content": f"question {i}"}] for i in range(20)]
    chunks = list(oc.complete_each_sync(cfg, requests))
    outcomes = dict(item for chunk in chunks for item in chunk)
    assert sorted(outcomes) == list(range(20))
    assert all(isinstance(o, oc.ChatReply) and o.text for o in outcomes.values())
    assert server.stats()["models"]["slow"]["max_in_flight"] == 5

    wrong = config(server, "no-such-model", max_retries=0)
    failed = [item for chunk in oc.complete_each_sync(wrong, requests[:3]) for item in chunk]
    assert sorted(i for i, _ in failed) == [0, 1, 2]
    assert all(isinstance(o, LLMPermanentError) and "404" in o.message for _, o in failed)
