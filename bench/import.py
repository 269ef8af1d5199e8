"""Time to import the 1.67M-battle Chatbot Arena counts file, on PostgreSQL (and SQLite).

Usage: python bench/import.py [--database-url postgres://postgres@127.0.0.1:5432/test]

Creates a scratch database next to the given one, migrates it, imports the file twice
(the second import must store nothing) and fits the leaderboard, printing each time.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNTS = (
    ROOT / "arena" / "fixtures" / "datasets" / "chatbot_arena" / "chatbotarena_20240814_agg.json"
)

STEP = r"""
import time, django
django.setup()
from arena.importers.loader import import_file
from arena.boards import BoardScope
from arena.services import refresh_leaderboard
t = time.perf_counter(); first = import_file("counts", PATH, prompt_set="chatbot-arena"); t1 = time.perf_counter() - t
assert first.ok, first.summary()
t = time.perf_counter(); again = import_file("counts", PATH, prompt_set="chatbot-arena"); t2 = time.perf_counter() - t
assert again.ok and again.judgments == 0, again.summary()
t = time.perf_counter(); snap = refresh_leaderboard(BoardScope("chatbot-arena", "humans"), bootstrap=1000); t3 = time.perf_counter() - t
print(f"{first.votes} battles as {first.judgments} weighted judgments | import {t1:.2f} s | re-import (stores nothing) {t2:.2f} s | BT + 1000 bootstrap from the DB {t3:.2f} s")
"""


def run(label: str, env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    print(f"{label}: ", end="", flush=True)
    subprocess.run(
        [sys.executable, "-c", STEP.replace("PATH", repr(str(COUNTS)))],
        cwd=ROOT,
        env=env,
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    base_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT)}
    base_env.pop("REDIS_URL", None)

    import psycopg

    name = f"arena_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = args.database_url.rsplit("/", 1)[0] + "/" + name
        run("PostgreSQL", {**base_env, "DATABASE_URL": url})
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    import tempfile

    with tempfile.TemporaryDirectory() as var:
        env = {**base_env, "ARENA_VAR_DIR": var}
        env.pop("DATABASE_URL", None)
        run("SQLite    ", env)
    started = time.perf_counter()
    from arena.importers.formats import parse

    n = sum(1 for _ in parse("counts", COUNTS))
    print(f"parsing alone: {n} records in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
