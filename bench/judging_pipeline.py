"""Judge calls per second through the Celery pipeline, against the fake OpenAI-compatible server.

    python bench/judging_pipeline.py [--pipeline-models 16] [--pipeline-prompts 20]
        [--workers 2] [--concurrency 8] [--latency-ms 50] [--designs all_pairs|all|a,b]
        [--judge-max-in-flight 32] [--judge-rpm 0] [--judge-tpm 0]

    goal: --latency-ms 2000 --judge-max-in-flight 256 --judge-rpm 12000

Full stack on this machine: a scratch PostgreSQL database, Redis as the broker and channel
layer, ``--workers`` Celery worker processes (thread pool, ``--concurrency`` batch tasks each)
and the fake server in this process, every request answered after ``--latency-ms``. The
judge's endpoint limits (``--judge-max-in-flight``, ``--judge-rpm``, ``--judge-tpm``; 0 is
unlimited) hold across the worker processes (:mod:`llm.limits`, in Redis). One
evaluation run per design of ``--pipeline-models`` contestants with endpoints on
``--pipeline-prompts`` prompts: the workers generate every answer through the contestants'
endpoints (first run only), make every judge call, and fit the run's leaderboard. Each
design has its own judge version, so no verdict is reused from another design's run.
Printed: the calls of each phase per second (from the stored rows' timestamps), the whole
run's wall time, the CPU the worker processes spent per judge call, the ceiling that the
limits set (min(in flight / latency, rpm / 60)), and the fake server's peaks (requests in
flight at once, in any 60 s) beside the limits, so every ratio is measured in the same
run; then the goal line (``goal throughput: ... MET`` or ``NOT MET``): at least
GOAL_CALLS_PER_S judge calls/s and GOAL_SHARE of the ceiling, the limits never exceeded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import _stack  # bench/_stack.py

ROOT = _stack.ROOT
JUDGE_NAME = "judge-good"  # the simulated judge of tests/integration/runs_world.py
GOAL_CALLS_PER_S, GOAL_SHARE = 100.0, 0.8
sys.path.insert(0, str(ROOT))


def _rate(stamps) -> tuple[int, float]:
    """(rows, rows per second between the first and the last timestamp)."""
    stamps = sorted(stamps)
    if len(stamps) < 2:
        return len(stamps), float("nan")
    span = (stamps[-1] - stamps[0]).total_seconds()
    return len(stamps), (len(stamps) - 1) / span if span > 0 else float("inf")


DESIGNS = {
    "all_pairs": {},
    "anchor": {"anchor": "cand-07"},
    "mediocre_anchor": {},
    "single_elimination": {},
    "swiss": {},
    "adaptive": {"fraction": 0.2},
}


def _cpu_seconds(processes) -> float:
    """User + system CPU seconds of the processes so far (Linux /proc; their threads included)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for process in processes:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _leases_held(judge, redis_url: str):
    """A function giving the judge endpoint's leases held now (in Redis, llm.limits)."""
    import redis

    from judges.judging import judge_config
    from llm.limits import RedisStore, endpoint_id

    client = redis.Redis.from_url(redis_url)
    key = RedisStore(redis_url)._keys(endpoint_id(judge_config(judge).endpoint.key))[0]

    def held() -> int:
        seconds, micros = client.time()
        return client.zcount(key, seconds + micros / 1e6, "+inf")

    return held


def _watch(run, workers, server, held, timeout: float) -> list[tuple]:
    """Wait for the run to end, sampling (judgments stored, workers' CPU seconds, judge
    requests in flight at the server, leases held) 5 times a second."""
    from arena.models import EvaluationRun, Judgment

    samples, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        in_flight = server.stats()["models"].get(JUDGE_NAME, {}).get("in_flight", 0)
        stored = Judgment.objects.filter(match__run=run).count()
        samples.append((stored, _cpu_seconds(workers), in_flight, held()))
        run.refresh_from_db()
        if run.status not in (EvaluationRun.Status.PENDING, EvaluationRun.Status.RUNNING):
            break
        time.sleep(0.2)
    return samples


def _judging_cpu(samples) -> tuple[float, int, float, float]:
    """Workers' CPU seconds from the first judgment stored to the last, the judgments
    stored meanwhile (answers generated before and the final fit after are left out), and
    the mean requests in flight at the server and leases held meanwhile."""
    final = samples[-1][0]
    first = next((i for i, s in enumerate(samples) if s[0] > 0), len(samples) - 1)
    last = next(i for i, s in enumerate(samples) if s[0] == final)
    judging = samples[first : last + 1]
    mean_in_flight = sum(s[2] for s in judging) / max(1, len(judging))
    mean_held = sum(s[3] for s in judging) / max(1, len(judging))
    cpu, calls = samples[last][1] - samples[first][1], samples[last][0] - samples[first][0]
    return cpu, calls, mean_in_flight, mean_held


def run_bench(args) -> list[dict]:
    """One scratch database and worker set; one run per design in ``args.designs``."""
    db = _stack.create_scratch_database(args.database_url, "arena_bench_judging")
    env = _stack.stack_env(
        args.database_url,
        db,
        args.redis_url,
        ARENA_BOOTSTRAP_ROUNDS="200",
        ARENA_RUN_REFIT_SECONDS="5",
        DB_POOL_MAX=str(args.concurrency + 4),
    )
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    log_path = Path(f"/tmp/{db}.log")
    results = []
    try:
        import django

        # Django's modules import only once the environment above is set and Django set up.
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from arena.models import Judgment, LeaderboardSnapshot, Output
        from judges.clients.fake_server import FakeLLMServer
        from judges.judging import run_scope
        from judges.runs import create_run, start_run
        from tests.integration.runs_world import kendall_tau, make_world, scenario, true_order

        with (
            FakeLLMServer(scenario(args.models, latency_ms=args.latency_ms)) as server,
            log_path.open("w") as log,
        ):
            prompt_set, contestants, judge = make_world(
                server.base_url,
                n_models=args.models,
                n_prompts=args.prompts,
                max_retries=5,
                timeout_s=max(5.0, 4 * args.latency_ms / 1000),
                max_concurrency=args.judge_max_in_flight,
                requests_per_minute=args.judge_rpm,
                tokens_per_minute=args.judge_tpm,
            )
            workers = [
                _stack.start_celery_worker(env, log, args.concurrency, name=f"bench{i}")
                for i in range(args.workers)
            ]
            time.sleep(3)  # let the workers connect before the first batch
            for seed, design in enumerate(args.designs):
                # Its own judge version (seed) per design: no verdict is reused across designs.
                judge.pk, judge.name, judge.seed = None, f"{JUDGE_NAME}-{design}", seed
                judge.save()
                held = _leases_held(judge, args.redis_url)
                run = create_run(
                    prompt_set=prompt_set,
                    judge=judge,
                    contestants=contestants,
                    design=design,
                    design_params=DESIGNS[design],
                )
                server.reset_stats()  # the peaks of this run's judge calls only
                started = time.perf_counter()
                start_run(run)
                samples = _watch(run, workers, server, held, args.timeout)
                wall = time.perf_counter() - started
                if run.status != "done":
                    raise SystemExit(
                        f"{design}: run {run.status} after {wall:.0f} s "
                        f"({run.calls_made}/{run.planned_calls}): {run.error}\n"
                        + log_path.read_text()[-3000:]
                    )
                cpu, calls, mean_in_flight, mean_held = _judging_cpu(samples)
                served = server.stats()["models"].get(JUDGE_NAME, {})
                judged, judge_rate = _rate(
                    Judgment.objects.filter(match__run=run).values_list("created_at", flat=True)
                )
                board = LeaderboardSnapshot.objects.latest_of(run_scope(run).key)
                ranked = [r["model"] for r in sorted(board.rows, key=lambda r: -r["rating"])]
                results.append(
                    {
                        "design": design,
                        "planned": run.planned_calls,
                        "judged": judged,
                        "failed": run.calls_failed,
                        "judge_requests": served.get("requests", 0),
                        "served_rate": (served.get("requests", 0) - 1)
                        / max(1e-9, served.get("last_at", 0) - served.get("first_at", 0)),
                        "peak_in_flight": served.get("max_in_flight", 0),
                        "mean_in_flight": mean_in_flight,
                        "mean_held": mean_held,
                        "peak_per_minute": served.get("max_per_minute", 0),
                        "cpu_ms_per_call": 1000 * cpu / max(1, calls),
                        "judge_rate": judge_rate,
                        "wall": wall,
                        "tau": kendall_tau(ranked, true_order(args.models)),
                    }
                )
            generated, generation_rate = _rate(
                Output.objects.filter(prompt__prompt_set=prompt_set).values_list(
                    "created_at", flat=True
                )
            )
        for r in results:
            r.update(generated=generated, generation_rate=generation_rate)
        return results
    finally:
        _stack.stop(workers, timeout=20)
        try:
            from django.db import connections

            for conn in connections.all(initialized_only=True):
                conn.close()
                if conn.vendor == "postgresql":
                    conn.close_pool()
        except Exception:
            pass
        _stack.drop_database(args.database_url, db)


def ceiling(args) -> float:
    """Judge calls/s the limits allow at this latency: min(in flight / latency, rpm / 60)."""
    limits = [args.judge_max_in_flight / (args.latency_ms / 1000)]
    if args.judge_rpm:
        limits.append(args.judge_rpm / 60)
    return min(limits)


def print_results(args, results: list[dict]) -> None:
    top = ceiling(args)
    print(
        f"== Celery pipeline: {args.models} models x {args.prompts} prompts, {args.workers} worker "
        f"processes x {args.concurrency} batch tasks, PostgreSQL + Redis, fake server latency "
        f"{args.latency_ms:.0f} ms; judge limits: {args.judge_max_in_flight} in flight, "
        f"{args.judge_rpm or 'unlimited'} rpm, {args.judge_tpm or 'unlimited'} tpm =="
    )
    first = results[0]
    print(
        f"   answers generated (first run): {first['generated']} at "
        f"{first['generation_rate']:.1f} calls/s"
    )
    print(
        f"   {'design':<20}{'planned':>8}{'stored':>8}{'failed':>7}{'judge reqs':>11}"
        f"{'calls/s':>9}{'of ceiling':>11}{'CPU ms/call':>12}{'peak fl.':>9}{'peak/min':>9}"
        f"{'run s':>8}{'tau':>7}"
    )
    for r in results:
        print(
            f"   {r['design']:<20}{r['planned']:>8}{r['judged']:>8}{r['failed']:>7}"
            f"{r['judge_requests']:>11}{r['judge_rate']:>9.1f}{r['judge_rate'] / top:>11.0%}"
            f"{r['cpu_ms_per_call']:>12.2f}{r['peak_in_flight']:>9}{r['peak_per_minute']:>9}"
            f"{r['wall']:>8.1f}{r['tau']:>7.3f}"
        )
    print(
        f"   ceiling: {top:.0f} calls/s = min({args.judge_max_in_flight} in flight / "
        f"{args.latency_ms:.0f} ms"
        + (f", {args.judge_rpm} rpm / 60)" if args.judge_rpm else ")")
        + "; calls/s from the stored judgments' timestamps; CPU: the worker processes' user + "
        "system time per stored judgment; peaks as the fake server saw them; planned = an "
        "upper bound for adaptive"
    )
    for r in results:
        print(
            f"   {r['design']}: {r['mean_in_flight']:.0f} judge requests in flight at the "
            f"server on average while judging, so {r['judge_rate']:.1f} calls/s spent "
            f"{r['mean_in_flight'] / max(r['judge_rate'], 1e-9):.2f} s each at the server "
            f"(server latency {args.latency_ms / 1000:.2f} s); {r['mean_held']:.0f} leases held "
            f"on average (llm.limits); the server received {r['served_rate']:.1f} judge "
            "requests/s between its first and last"
        )
    # The slower of the two measures: judgments are stored a second's worth at a time, so
    # their timestamps can shorten the span a little; the server's arrivals cannot.
    rate = min(min(r["judge_rate"], r["served_rate"]) for r in results)
    peak_flight = max(r["peak_in_flight"] for r in results)
    peak_minute = max(r["peak_per_minute"] for r in results)
    met = (
        rate >= GOAL_CALLS_PER_S
        and rate >= GOAL_SHARE * top
        and peak_flight <= args.judge_max_in_flight
        and (not args.judge_rpm or peak_minute <= args.judge_rpm)
        and all(r["failed"] == 0 for r in results)
    )
    print(
        f"goal throughput: {rate:.1f} judge calls/s (>= {GOAL_CALLS_PER_S:.0f} and >= "
        f"{GOAL_SHARE:.0%} of {top:.0f}: {rate / top:.0%}), peak {peak_flight} in flight "
        f"(<= {args.judge_max_in_flight}), peak {peak_minute} a minute "
        f"(<= {args.judge_rpm or 'unlimited'}): {'MET' if met else 'NOT MET'}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline-models", dest="models", type=int, default=16)
    parser.add_argument("--pipeline-prompts", dest="prompts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--judge-max-in-flight",
        type=int,
        default=32,
        help="the judge endpoint's requests in flight, over every worker",
    )
    parser.add_argument("--judge-rpm", type=int, default=0, help="requests per minute; 0: none")
    parser.add_argument("--judge-tpm", type=int, default=0, help="tokens per minute; 0: none")
    parser.add_argument(
        "--designs",
        type=lambda text: DESIGNS if text == "all" else text.split(","),
        default=["all_pairs"],
        help='comma-separated designs, or "all" (default: all_pairs)',
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    results = run_bench(args)
    print(f"   load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min, 2 cores)")
    print_results(args, results)


if __name__ == "__main__":
    main()
