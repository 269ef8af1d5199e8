"""Judge calls per second through the Celery pipeline, against the fake OpenAI-compatible server.

    python bench/judging_pipeline.py [--pipeline-models 16] [--pipeline-prompts 20]
        [--workers 2] [--concurrency 8] [--latency-ms 50] [--designs all_pairs|all|a,b]

Full stack on this machine: a scratch PostgreSQL database, Redis as the broker and channel
layer, ``--workers`` Celery worker processes (thread pool, ``--concurrency`` slots each)
and the fake server in this process, every request answered after ``--latency-ms``. One
evaluation run per design of ``--pipeline-models`` contestants with endpoints on
``--pipeline-prompts`` prompts: the workers generate every answer through the contestants'
endpoints (first run only), make every judge call, and fit the run's leaderboard. Each
design has its own judge version, so no verdict is reused from another design's run. Printed: the calls of each phase per second
(from the stored rows' timestamps), the whole run's wall time, and the ceiling that the
latency alone sets (slots / latency), so the ratio is measured in the same run.
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
        from judges.runs import create_run, start_run, wait_for
        from tests.integration.runs_world import kendall_tau, make_world, scenario, true_order

        with (
            FakeLLMServer(scenario(args.models, latency_ms=args.latency_ms)) as server,
            log_path.open("w") as log,
        ):
            prompt_set, contestants, judge = make_world(
                server.base_url, n_models=args.models, n_prompts=args.prompts, max_retries=5
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
                run = create_run(
                    prompt_set=prompt_set,
                    judge=judge,
                    contestants=contestants,
                    design=design,
                    design_params=DESIGNS[design],
                )
                before = server.stats()["models"].get(JUDGE_NAME, {}).get("requests", 0)
                started = time.perf_counter()
                start_run(run)
                run = wait_for(run, timeout=args.timeout)
                wall = time.perf_counter() - started
                if run.status != "done":
                    raise SystemExit(
                        f"{design}: run {run.status} after {wall:.0f} s "
                        f"({run.calls_made}/{run.planned_calls}): {run.error}\n"
                        + log_path.read_text()[-3000:]
                    )
                requests = server.stats()["models"].get(JUDGE_NAME, {}).get("requests", 0)
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
                        "judge_requests": requests - before,
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


def print_results(args, results: list[dict]) -> None:
    slots = args.workers * args.concurrency
    ceiling = slots / (args.latency_ms / 1000)
    print(
        f"== Celery pipeline: {args.models} models x {args.prompts} prompts, {args.workers} worker "
        f"processes x {args.concurrency} threads, PostgreSQL + Redis, fake server latency "
        f"{args.latency_ms:.0f} ms =="
    )
    first = results[0]
    print(
        f"   answers generated (first run): {first['generated']} at "
        f"{first['generation_rate']:.1f} calls/s"
    )
    print(
        f"   {'design':<20}{'planned':>8}{'stored':>8}{'failed':>7}{'judge reqs':>11}"
        f"{'calls/s':>9}{'of ceiling':>11}{'run s':>8}{'tau':>7}"
    )
    for r in results:
        print(
            f"   {r['design']:<20}{r['planned']:>8}{r['judged']:>8}{r['failed']:>7}"
            f"{r['judge_requests']:>11}{r['judge_rate']:>9.1f}{r['judge_rate'] / ceiling:>11.0%}"
            f"{r['wall']:>8.1f}{r['tau']:>7.3f}"
        )
    print(
        f"   latency ceiling: {ceiling:.0f} calls/s ({slots} slots / {args.latency_ms:.0f} ms); "
        "calls/s from the stored judgments' timestamps, planned = an upper bound for adaptive"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline-models", dest="models", type=int, default=16)
    parser.add_argument("--pipeline-prompts", dest="prompts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=50.0)
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
    print_results(args, run_bench(args))


if __name__ == "__main__":
    main()
