"""The fake OpenAI-compatible server: protocol, simulated judges' biases, scenarios, CLI."""

import asyncio
import http.client
import io
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from judges import perturbations, prompts, verdicts
from judges.clients import scenarios
from judges.clients.config import JudgeConfig
from judges.clients.fake_server import FakeLLMServer, main
from judges.clients.simulation import (
    JudgeBehaviour,
    Scenario,
    SimModel,
    Simulator,
    Style,
    generate_answer,
    read_judge_prompt,
    rng_for,
    sigmoid,
    tokenize,
)
from llm import openai_compat as oc
from llm.limits import use_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer("test") as srv:
        yield srv


@pytest.fixture(autouse=True)
def fresh(server):
    server.reset_stats()
    use_store(None)


def post(server, path, payload):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", path, json.dumps(payload), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response, response.read()


def get(server, path):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def questions(n):
    topics = ["gardening", "databases", "sailing", "baking", "astronomy", "chess", "taxes"]
    return [f"Question {i}: how should a beginner learn about {topics[i % 7]}?" for i in range(n)]


def judge_many(server, judge, pairs, mode="pairwise", **kw):
    """Judge (question, answers, order) triples over HTTP; returns parsed verdicts."""
    cfg = JudgeConfig(
        base_url=server.base_url,
        model=judge,
        mode=mode,
        max_concurrency=16,
        requests_per_minute=None,
        tokens_per_minute=None,
        **kw,
    )
    parse = {
        "pairwise": verdicts.parse_pairwise,
        "pairwise_mtbench": verdicts.parse_mtbench,
    }[mode]

    async def calls():
        try:
            replies = await asyncio.gather(
                *(
                    oc.complete(cfg, prompts.render(cfg.judge_template, q, a, order))
                    for q, a, order in pairs
                )
            )
        finally:
            await oc.aclose_clients()
        return [parse(r.text) for r in replies]

    return asyncio.run(calls())


# --- protocol -----------------------------------------------------------------------------
def test_it_lists_models(server):
    status, body = get(server, "/v1/models")
    assert status == 200 and body["object"] == "list"
    names = {m["id"] for m in body["data"]}
    assert {"alpha", "judge-first", "fault-429"} <= names


def test_it_answers_the_chat_completions_schema(server):
    response, raw = post(
        server,
        "/v1/chat/completions",
        {"model": "alpha", "messages": [{"role": "user", "content": "Hello there"}]},
    )
    body = json.loads(raw)
    assert response.status == 200 and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == len(tokenize(choice["message"]["content"]))


def test_it_streams_sse_chunks_like_openai(server):
    payload = {
        "model": "beta",
        "messages": [{"role": "user", "content": "Tell me about tides"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response, raw = post(server, "/v1/chat/completions", payload)
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    events = [line[6:] for line in raw.decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == "stop"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == len(tokenize(text))
    plain = json.loads(post(server, "/v1/chat/completions", {**payload, "stream": False})[1])
    assert plain["choices"][0]["message"]["content"] == text


def test_it_rejects_bad_requests_with_openai_errors(server):
    for payload, status in [
        ({"model": "alpha", "messages": []}, 400),
        ({"messages": [{"role": "user", "content": "x"}]}, 400),
        (
            {"model": "alpha", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 99},
            400,
        ),
        ({"model": "nope", "messages": [{"role": "user", "content": "x"}]}, 404),
    ]:
        response, raw = post(server, "/v1/chat/completions", payload)
        assert response.status == status
        assert "message" in json.loads(raw)["error"]


def test_429_carries_retry_after_headers(server):
    response, _ = post(
        server,
        "/v1/chat/completions",
        {"model": "fault-429", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status == 429
    assert response.getheader("Retry-After") == "0.02"
    assert response.getheader("retry-after-ms") == "20"


def test_stats_count_requests_per_model_and_reset(server):
    for model in ("alpha", "alpha", "fault-500"):
        post(
            server,
            "/v1/chat/completions",
            {"model": model, "messages": [{"role": "user", "content": "x"}]},
        )
    status, stats = get(server, "/_stats")
    assert stats["models"]["alpha"]["requests"] == 2 and stats["models"]["alpha"]["ok"] == 2
    assert stats["models"]["fault-500"]["server_errors"] == 1
    assert stats["total"]["requests"] == 3
    post(server, "/_reset", {})
    assert get(server, "/_stats")[1]["total"]["requests"] == 0


def test_fault_rates_are_seeded_and_close_to_their_rates():
    scenario = replace(
        scenarios.test(), faults=scenarios.test().faults.__class__(rate_429=0.1, rate_500=0.2)
    )
    sim = Simulator(scenario)
    outcomes = [sim.fault_for("beta", i) for i in range(3000)]
    again = [Simulator(scenario).fault_for("beta", i) for i in range(3000)]
    assert outcomes == again
    share = {k: outcomes.count(k) / 3000 for k in ("429", "500", "ok")}
    se = math.sqrt(0.25 / 3000)
    assert abs(share["429"] - 0.1) < 4 * se and abs(share["500"] - 0.2) < 4 * se


# --- candidates ---------------------------------------------------------------------------
def test_answers_are_deterministic_and_follow_the_style():
    terse = SimModel("terse", style=Style(mean_words=60, headers=0, lists=0, bold=0))
    rich = SimModel("rich", style=Style(mean_words=400, headers=1, lists=0.9, bold=0.9))
    qs = questions(40)
    terse_texts = [generate_answer(terse, q) for q in qs]
    rich_texts = [generate_answer(rich, q) for q in qs]
    assert terse_texts == [generate_answer(terse, q) for q in qs]
    assert np.mean([len(t.split()) for t in rich_texts]) > 4 * np.mean(
        [len(t.split()) for t in terse_texts]
    )
    assert all("#" not in t and "**" not in t and "\n- " not in t for t in terse_texts)
    assert np.mean(["## " in t for t in rich_texts]) == 1.0
    assert np.mean(["\n- " in t for t in rich_texts]) > 0.8
    assert np.mean(["**" in t for t in rich_texts]) > 0.8
    assert "gardening" in rich_texts[0].lower()  # on topic


def test_the_simulator_reads_back_quality_of_its_answers_and_of_others():
    scenario = scenarios.test()
    sim = Simulator(scenario)
    q = "How do volcanoes form?"
    alpha = generate_answer(scenario.model("alpha"), q, scenario.seed)
    info = sim.answer_info(alpha, q)  # never generated over HTTP: found by regeneration
    assert (info.model, info.family, info.quality) == ("alpha", "alpha", 1.5)
    padded = perturbations.pad_answer(q, [alpha], 0, 100)[1][0]
    info = sim.answer_info(padded, q)
    assert info.model == "alpha" and info.cues == {"padding"} and info.length == len(padded)
    foreign = sim.answer_info("A human-written answer about volcanoes.", q)
    assert foreign.model is None
    assert (
        foreign.quality
        == Simulator(scenario).answer_info("A human-written answer about volcanoes.", "?").quality
    )


def test_it_finds_answers_in_every_template():
    cases = [
        ("arena-hard-v0.1", 2, "pairwise"),
        ("mt-bench-pair-v2", 2, "pairwise_mtbench"),
        ("listwise-v1", 4, "listwise"),
        ("mt-bench-single-v1", 1, "single"),
    ]
    for name, k, kind in cases:
        answers = [f"answer number {i}\nwith two lines" for i in range(k)]
        for reference in (None, "the reference"):
            tpl = prompts.get_template(name)
            if reference and tpl.user_with_reference is None:
                continue
            task = read_judge_prompt(
                prompts.render(tpl, "What is up?", answers, reference=reference)
            )
            assert task.kind == kind and task.answers == tuple(answers)
            assert task.question == "What is up?" and task.reference == reference


# --- simulated judges ---------------------------------------------------------------------
def first_slot_win_rate(results, orders):
    """Share of decisive verdicts won by the answer shown first."""
    wins = [
        v.winner == "A" for v in results if isinstance(v, verdicts.Verdict) and v.winner != "tie"
    ]
    return np.mean(wins), len(wins)


def twin_pairs(n):
    scenario = scenarios.test()
    pairs = []
    for i, q in enumerate(questions(n)):
        a = generate_answer(scenario.model("twin-a"), q, scenario.seed)
        b = generate_answer(scenario.model("twin-b"), q, scenario.seed)
        pairs.append((q, [a, b], (0, 1) if i % 2 == 0 else (1, 0)))
    return pairs


def judge_direct(judge, pairs, mode="pairwise", temperature=0.0):
    """Like judge_many, through the simulator the server runs, without HTTP (faster)."""
    sim = Simulator(scenarios.test())
    template = prompts.get_template(mode)
    parse = {"pairwise": verdicts.parse_pairwise, "pairwise_mtbench": verdicts.parse_mtbench}[mode]
    out = []
    for i, (q, answers, order) in enumerate(pairs):
        body = {
            "model": judge,
            "messages": prompts.render(template, q, answers, order),
            "temperature": temperature,
        }
        out.append(parse(sim.chat(body, i).text))
    return out


def test_a_position_biased_judge_prefers_the_first_slot_about_70_percent(server):
    pairs = twin_pairs(240)  # equal quality, both orders, over HTTP end to end
    rate, n = first_slot_win_rate(judge_many(server, "judge-first", pairs), None)
    assert n == 240 and abs(rate - 0.7) < 3.5 * math.sqrt(0.7 * 0.3 / n)
    assert server.stats()["models"]["judge-first"]["judge_calls"] == 240


def test_an_unbiased_judge_prefers_neither_slot():
    rate, n = first_slot_win_rate(judge_direct("judge-fair", twin_pairs(400)), None)
    assert n == 400 and abs(rate - 0.5) < 3.5 * math.sqrt(0.25 / n)
    rate, n = first_slot_win_rate(judge_direct("judge-first", twin_pairs(400)), None)
    assert abs(rate - 0.7) < 3.5 * math.sqrt(0.21 / n)


def test_judges_follow_quality_length_self_preference_and_cues():
    scenario = scenarios.test()
    sim = Simulator(scenario)
    q = "How do tides work?"
    text = {
        m: generate_answer(scenario.model(m), q, scenario.seed)
        for m in ("alpha", "beta", "verbose", "twin-a")
    }
    info = {m: sim.answer_info(t, q) for m, t in text.items()}
    rng = np.random.default_rng(0)

    def p_first(judge, a, b):
        p_a, p_b, _ = sim.pairwise_probabilities(scenario.model(judge), [a, b], rng)
        return p_a / (p_a + p_b)

    assert p_first("judge-fair", info["alpha"], info["beta"]) == pytest.approx(sigmoid(1.5))
    assert p_first("judge-self", info["alpha"], info["beta"]) == pytest.approx(sigmoid(1.5 + 2.0))
    dl = (info["verbose"].length - info["twin-a"].length) / 1000.0
    assert dl > 0.5
    assert p_first("judge-long", info["verbose"], info["twin-a"]) == pytest.approx(
        sigmoid(2.0 * dl)
    )
    cued = perturbations.authority_cue(q, [text["twin-a"]], 0)[1][0]
    cue_info = sim.answer_info(cued, q)
    assert cue_info.cues == {"authority"} and cue_info.model == "twin-a"
    expected = sigmoid(2.0 + 0.0 * (cue_info.length - info["beta"].length))
    assert p_first("judge-cues", cue_info, info["beta"]) == pytest.approx(expected)


def test_ties_follow_the_tie_propensity():
    results = judge_direct("judge-ties", twin_pairs(300), mode="pairwise_mtbench")
    ties = np.mean([v.winner == "tie" for v in results])
    assert abs(ties - 0.6) < 3.5 * math.sqrt(0.24 / 300)  # P(tie) = 0.6 * 4 p (1 - p), p = 1/2


def test_repeats_agree_at_temperature_zero_and_vary_above(server):
    q, answers, order = twin_pairs(1)[0]
    same = judge_many(server, "judge-noisy", [(q, answers, order)] * 10, temperature=0.0)
    assert len({v.label for v in same}) == 1
    varied = judge_many(server, "judge-noisy", [(q, answers, order)] * 20, temperature=1.0)
    assert len({v.label for v in varied}) > 1


def test_a_listwise_judge_ranks_by_quality():
    scenario = scenarios.test()
    sim = Simulator(scenario)
    judge = scenario.model("judge-fair")
    tops = []
    for q in questions(200):
        shown = [
            generate_answer(scenario.model(m), q, scenario.seed) for m in ("gamma", "beta", "alpha")
        ]
        task = read_judge_prompt(prompts.render(prompts.get_template("listwise-v1"), q, shown))
        reply = sim.judge(judge, task, rng_for("listwise", q))
        ranking = verdicts.parse_ranking(reply.text, 3)
        assert isinstance(ranking, verdicts.Ranking)
        tops.append(ranking.groups[0][0])
    # Plackett-Luce: P(alpha first) = e^1.5 / (e^1.5 + e^0 + e^-1.5)
    p = math.exp(1.5) / (math.exp(1.5) + 1 + math.exp(-1.5))
    assert abs(np.mean([t == "C" for t in tops]) - p) < 3.5 * math.sqrt(p * (1 - p) / 200)


def test_self_preference_uses_the_answer_authors_family():
    alpha = SimModel("alpha", quality=0.0, family="fam", style=Style(mean_words=40))
    other = SimModel("other", quality=0.0, family="else", style=Style(mean_words=40))
    judge = SimModel("j", family="fam", judge=JudgeBehaviour(self_preference=1.0))
    sim = Simulator(Scenario("s", (alpha, other, judge), answer_noise=0.0))
    a, b = (sim.answer_info(generate_answer(m, "q?"), "q?") for m in (alpha, other))
    p_a, p_b, _ = sim.pairwise_probabilities(judge, [a, b], np.random.default_rng(0))
    assert p_a / (p_a + p_b) == pytest.approx(sigmoid(1.0))


# --- scenarios and the command line -------------------------------------------------------
def test_scenarios_round_trip_through_json():
    for make in (scenarios.demo, scenarios.test):
        scenario = make()
        assert Scenario.from_json(scenario.to_json()) == scenario


def test_scenarios_load_by_name_from_json_or_as_given(tmp_path):
    assert scenarios.load_scenario("test") == scenarios.test()
    demo = scenarios.demo()
    assert scenarios.load_scenario(demo) is demo
    path = tmp_path / "custom.json"
    path.write_text(replace(demo, name="custom").to_json())
    assert scenarios.load_scenario(str(path)).name == "custom"
    with pytest.raises(ValueError, match="unknown scenario"):
        scenarios.load_scenario("nope")


def test_the_demo_scenario_has_a_spread_of_candidates_and_three_judges():
    demo = scenarios.demo()
    judges = [m for m in demo.models if m.name.startswith("judge-")]
    candidates = [m for m in demo.models if not m.name.startswith("judge-")]
    assert len(candidates) == 12 and len(judges) == 3
    qualities = sorted(m.quality for m in candidates)
    assert qualities[-1] - qualities[0] >= 3 and len(set(qualities)) == 12
    assert {m.judge.position_first for m in judges} == {0.5, 0.7}
    assert any(m.judge.length_bias > 0 for m in judges)


def test_main_dumps_a_scenario():
    out = io.StringIO()
    assert main(["--scenario", "test", "--dump-scenario"], out=out) == 0
    assert Scenario.from_json(out.getvalue()) == scenarios.test()
    out = io.StringIO()
    main(
        ["--scenario", "demo", "--rate-500", "0.1", "--timeout-s", "3", "--dump-scenario"], out=out
    )
    faults = Scenario.from_json(out.getvalue()).faults
    assert (faults.rate_500, faults.timeout_s, faults.rate_429) == (0.1, 3.0, 0.0)


def test_the_module_runs_as_a_server_process(tmp_path):
    scenario_file = tmp_path / "tiny.json"
    tiny = Scenario("tiny", (SimModel("solo", style=Style(mean_words=20)),))
    scenario_file.write_text(tiny.to_json())
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "judges.clients.fake_server",
            "--port",
            "0",
            "--scenario",
            str(scenario_file),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()
        assert "fake LLM server (tiny) on http://127.0.0.1:" in first
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/models")
        assert [m["id"] for m in json.loads(conn.getresponse().read())["data"]] == ["solo"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


# --- the peaks a client's limits are checked against ---------------------------------------------
def test_the_stats_keep_the_peak_in_flight_and_per_sliding_minute_per_model():
    from judges.clients.fake_server import Stats

    now = [0.0]
    stats = Stats(clock=lambda: now[0])
    for t in [0, 10, 20, 30, 59.9, 60.0, 70, 119.9, 130]:  # requests of judge-a at these times
        now[0] = t
        stats.enter("judge-a")
        stats.leave("judge-a")
    for _ in range(3):  # three of judge-b at once
        stats.enter("judge-b")
    snapshot = stats.snapshot()
    # windows (t - 60, t]: at 59.9 five (0..59.9); at 60 the one at 0 has left; 119.9: 60, 70, 119.9
    assert snapshot["models"]["judge-a"]["max_per_minute"] == 5
    assert snapshot["models"]["judge-a"]["max_in_flight"] == 1
    assert snapshot["models"]["judge-b"]["max_in_flight"] == 3
    assert snapshot["total"]["max_in_flight"] == 3 and snapshot["total"]["max_per_minute"] == 5


def test_the_stats_endpoint_reports_the_peaks(server):
    config = JudgeConfig(base_url=server.base_url, model="judge-fair", max_tokens=50)
    oc.complete_sync(config, [{"role": "user", "content": "hello"}], retry=False)
    response, body = get(server, "/stats")
    row = body["models"]["judge-fair"]
    assert response == 200 and row["max_in_flight"] == 1 and row["max_per_minute"] == 1
