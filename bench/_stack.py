"""The full stack for the benches: a scratch PostgreSQL database, the environment that
points Arena at it and at Redis, Celery worker processes, and stopping them again.

Imported by bench/votes.py and bench/judging_pipeline.py (not a bench itself).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def create_scratch_database(database_url: str, prefix: str) -> str:
    """A new empty database on the server of ``database_url``; returns its name."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(database_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stack_env(database_url: str, database: str, redis_url: str, **settings: str) -> dict:
    """Environment for Arena's processes: the scratch database, Redis, a queue and channel
    prefix of their own (other deployments on the same Redis are not disturbed)."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url.rsplit("/", 1)[0] + "/" + database,
        "REDIS_URL": redis_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-" + uuid.uuid4().hex,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CHANNELS_PREFIX": queue,
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        **settings,
    }


def start_celery_worker(env: dict, log, concurrency: int, name: str = "bench") -> subprocess.Popen:
    """A Celery worker process (thread pool) consuming the environment's queue."""
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "--pool", "threads", "-c", str(concurrency), "-Q", env["CELERY_TASK_DEFAULT_QUEUE"],
        "-n", f"{name}@%h", "--without-mingle", "--without-gossip", "--loglevel", env["LOG_LEVEL"],
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(processes: list[subprocess.Popen], timeout: float = 15) -> None:
    """SIGTERM every process, then SIGKILL those still running after ``timeout`` seconds."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
