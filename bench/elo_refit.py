"""The refit's online Elo: a full replay of a board's votes against the incremental one
(``arena.fitting.board_elo`` continuing the last board's state) after a few new votes.

    .venv/bin/python bench/elo_refit.py --votes 100000 --new 100

A scratch SQLite database (``--db``, removed first; ANALYZEd after the import) or
``DATABASE_URL``; prints the
seconds of each, the votes each read and the goal line (the incremental refit reads only
the new votes and costs under a tenth of the full replay).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--db", default="/tmp/arena_bench_elo_refit.sqlite3")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        Path(args.db).unlink(missing_ok=True)
        os.environ["SQLITE_PATH"] = args.db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.db import connection

    from arena import fitting
    from arena.boards import BoardScope
    from arena.importers.loader import import_records
    from arena.importers.records import JudgmentRecord

    call_command("migrate", verbosity=0)
    rng = np.random.default_rng(0)
    names = [f"model-{i:02d}" for i in range(args.models)]

    def votes(start, n):
        pairs = rng.integers(0, args.models, (n, 2))
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        winners = rng.choice(["a", "b", "tie"], len(pairs))
        return [
            JudgmentRecord(f"v{start + t}", (names[i], names[j]), winner=w, voter=f"voter{t % 97}")
            for t, ((i, j), w) in enumerate(zip(pairs.tolist(), winners, strict=True))
        ]

    import_records(votes(0, args.votes), prompt_set="bench", source="bench")
    if connection.vendor == "sqlite":
        # the planner's statistics (PostgreSQL's autovacuum keeps its own): without them
        # SQLite walks the prompt set's matches instead of the judgments' id range
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    scope = BoardScope("bench", "humans")
    read = []
    original = fitting.scope_votes_in_order

    def counted(scope, after_id=0):
        found = original(scope, after_id=after_id)
        read.append(len(found))
        return found

    fitting.scope_votes_in_order = counted
    started = time.perf_counter()
    full = fitting.board_elo(scope, 4.0, None)
    full_s = time.perf_counter() - started
    full_read = sum(read)
    import_records(votes(args.votes, args.new), prompt_set="bench", source="bench")
    read.clear()
    started = time.perf_counter()
    step = fitting.board_elo(scope, 4.0, full["state"])
    step_s = time.perf_counter() - started
    step_read = sum(read)
    again = fitting.board_elo(scope, 4.0, None)
    same = [r["rating"] for r in step["rows"]] == [r["rating"] for r in again["rows"]]
    n_new = step["state"]["n_votes"] - full["state"]["n_votes"]
    print(f"load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"full replay: {full_read} votes read, {full_s:.3f} s")
    print(f"incremental after {n_new} votes: {step_read} read, {step_s:.3f} s, equal: {same}")
    met = same and step_read == n_new and step_s < full_s / 10
    print(
        f"goal elo_refit: incremental {step_s:.3f} s reading {step_read} votes vs full "
        f"{full_s:.3f} s reading {full_read} (ratio {full_s / step_s:.0f}x; < 1/10 and "
        f"equal to a full replay) {'MET' if met else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
