"""Import, re-import and export of 1.67M per-battle rows, on PostgreSQL and SQLite.

Usage: python bench/import.py [--database-url postgres://postgres@127.0.0.1:5432/test]
       [--databases postgresql,sqlite] [--rows N] [--seed 0] [--no-export]

The Chatbot Arena counts file (arena/fixtures/datasets/chatbot_arena) is expanded into a
FastChat battle log, one JSONL line per battle (``question_id``, ``tstamp``, ``model_a``,
``model_b``, ``winner``, ``anony``; seeded, written to a temporary directory: no data is
added to the repository), the generator of ``bench/ratings.py``. Then, for each database
(a scratch PostgreSQL database created next to ``--database-url`` and dropped after; a
SQLite file in a temporary directory), each step in a process of its own, timed wall to
wall with its peak RSS (``os.wait4``):

1. ``arena_import --format fastchat --quiet LOG``;
2. the same again (stores nothing);
3. the board fitted from the imported battles' running counts (exact BT, no bootstrap,
   anchor mixtral-8x7b-instruct-v0.1 = 1114), compared with the counts file's published
   board (``bt_20240814_reference_table.txt``);
4. ``arena_export --format fastchat``, then ``--format jsonl``, of the imported set (not
   with ``--no-export``).

It prints one ``goal NAME: ... MET`` (or ``NOT MET``) line per goal and database: import
<= 60 s, re-import <= 15 s, export <= 30 s, peak RSS of the steps' processes <= 1.5 GB
(the database server's memory is not counted), and the board's max |rating diff| < 0.01.
Times depend on the machine's load: the ``uptime`` load is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _stack import create_scratch_database, drop_database  # noqa: E402
from ratings import run_measured, write_battle_log  # noqa: E402

DATA = ROOT / "arena" / "fixtures" / "datasets" / "chatbot_arena"
COUNTS = DATA / "chatbotarena_20240814_agg.json"
REFERENCE = DATA / "bt_20240814_reference_table.txt"
PROMPT_SET = "battles"
GOALS = {"import": 60.0, "re-import": 15.0, "export": 30.0}
MEMORY_GOAL = 1.5e9
RATING_GOAL = 0.01

BOARD = r"""
import json, sys, django
django.setup()
from arena.boards import BoardScope, scope_counts
from arena.ratings.leaderboard import leaderboard
board = leaderboard(scope_counts(BoardScope(sys.argv[1], "humans")), bootstrap=0,
                    anchor=("mixtral-8x7b-instruct-v0.1", 1114.0))
print(json.dumps({row.model: row.rating for row in board.rows}))
"""


def load() -> str:
    """The machine's load averages, as ``uptime`` prints them."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def reference() -> dict[str, float]:
    rows = {}
    for line in REFERENCE.read_text().splitlines()[2:]:
        _, model, rating, *_ = line.split("|")
        rows[model] = float(rating)
    return rows


def step(argv: list[str], env: dict, out: Path) -> tuple[float, int, str]:
    """(wall seconds, peak RSS bytes, stdout) of one measured child process."""
    previous = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        wall, rss, rc, err = run_measured(argv, out)
    finally:
        os.environ.clear()
        os.environ.update(previous)
    if rc != 0:
        sys.exit(f"{' '.join(argv[1:4])} failed ({rc}): {err[-2000:]}")
    return wall, rss, out.read_text()


def bench(
    label: str, env: dict, log: Path, rows: int, tmp: Path, full: bool, export_too: bool
) -> list[str]:
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    importing = [*manage, "arena_import", "--format", "fastchat", "--quiet"]
    importing += ["--prompt-set", PROMPT_SET, str(log)]
    print(f"{label} ({load()})", flush=True)
    first, first_rss, said = step(importing, env, tmp / "import.out")
    print(f"  import     {first:7.2f} s  {first_rss / 1e9:5.2f} GB  {said.strip()}", flush=True)
    again, again_rss, said = step(importing, env, tmp / "again.out")
    print(f"  re-import  {again:7.2f} s  {again_rss / 1e9:5.2f} GB  {said.strip()}", flush=True)
    if " 0 judgments" not in said:
        print("  RE-IMPORT STORED SOMETHING")
    board = [sys.executable, "-c", BOARD, PROMPT_SET]
    _, _, said = step(board, env, tmp / "board.out")
    ours, published = json.loads(said), reference()
    exports, export_rss = {"export fastchat": None, "export jsonl": None}, 0
    for goal in exports if export_too else ():
        exported = tmp / "export.jsonl"
        exporting = [*manage, "arena_export", "--format", goal.split()[1]]
        exporting += ["--prompt-set", PROMPT_SET, "-o", str(exported)]
        exports[goal], rss, _ = step(exporting, env, tmp / "export.out")
        export_rss = max(export_rss, rss)
        lines = sum(1 for _ in exported.open("rb"))
        print(
            f"  {goal:<16} {exports[goal]:7.2f} s  {rss / 1e9:5.2f} GB  {lines:,} lines ({load()})"
        )
        exported.unlink()
    print(f"  ({load()})", flush=True)

    name = label.strip()
    goals = []
    for goal, seconds in (("import", first), ("re-import", again), *exports.items()):
        if seconds is None:
            goals.append(f"goal {goal}: {name} not measured (--no-export) NOT MET")
            continue
        met = seconds <= GOALS[goal.split()[0]] and full
        goals.append(
            f"goal {goal}: {name} {rows:,} battles in {seconds:.1f} s "
            f"(<= {GOALS[goal.split()[0]]:g} s) "
            f"{'MET' if met else 'NOT MET'}"
        )
    peak = max(first_rss, again_rss, export_rss or 0)
    goals.append(
        f"goal memory: {name} peak RSS {peak / 1e9:.2f} GB (<= {MEMORY_GOAL / 1e9:g} GB) "
        f"{'MET' if peak <= MEMORY_GOAL and full else 'NOT MET'}"
    )
    if set(ours) == set(published):
        diff = max(abs(ours[m] - published[m]) for m in published)
        same = f"max |rating diff| {diff:.4f} over {len(ours)} models"
        met = diff < RATING_GOAL
    else:
        same, met = f"{len(ours)} models fitted, {len(published)} published", False
    goals.append(
        f"goal board: {name} the board fitted from the imported battles equals the counts "
        f"file's board: {same} (< {RATING_GOAL:g}) {'MET' if met and full else 'NOT MET'}"
    )
    return goals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--rows", type=int, default=0, help="the first N battles only")
    parser.add_argument("--seed", type=int, default=0, help="of the generated battle log")
    parser.add_argument("--prefix", default="arena_bench_import", help="scratch database name")
    parser.add_argument("--no-export", action="store_true", help="import and re-import only")
    args = parser.parse_args()
    databases = args.databases.split(",")
    base_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT)}
    base_env.pop("REDIS_URL", None)

    goals = []
    with tempfile.TemporaryDirectory(prefix="arena-bench-import-") as tmp:
        tmp = Path(tmp)
        log = tmp / "battles.jsonl"
        started = time.perf_counter()
        rows = write_battle_log(json.loads(COUNTS.read_text()), log, seed=args.seed)
        if args.rows and args.rows < rows:
            cut = tmp / "head.jsonl"
            with log.open("rb") as src, cut.open("wb") as dst:
                for _, line in zip(range(args.rows), src, strict=False):
                    dst.write(line)
            log.unlink()
            log, rows = cut, args.rows
        full = not args.rows
        print(
            f"FastChat battle log from the counts file: {rows:,} lines, "
            f"{log.stat().st_size / 1e6:.0f} MB (seed {args.seed}, written in "
            f"{time.perf_counter() - started:.1f} s){'' if full else ' (a part: goals NOT MET)'}"
        )
        if "postgresql" in databases:
            name = create_scratch_database(args.database_url, args.prefix)
            try:
                url = args.database_url.rsplit("/", 1)[0] + "/" + name
                env = {**base_env, "DATABASE_URL": url}
                goals += bench("PostgreSQL", env, log, rows, tmp, full, not args.no_export)
            finally:
                drop_database(args.database_url, name)
        if "sqlite" in databases:
            var = tmp / "var"
            var.mkdir()
            env = {**base_env, "ARENA_VAR_DIR": str(var)}
            env.pop("DATABASE_URL", None)
            env.pop("SQLITE_PATH", None)
            goals += bench("SQLite", env, log, rows, tmp, full, not args.no_export)
    print("\n".join(goals))


if __name__ == "__main__":
    main()
