"""Time `arena_export --format fastchat|jsonl` of the 1.67M Chatbot Arena battles, on
PostgreSQL and SQLite, with the peak memory of the exporting process.

Usage: python bench/export.py [--battles N] [--database-url postgres://postgres@127.0.0.1:5432/test]
       [--engines postgresql,sqlite]

The battles are the counts file expanded into one battle a vote (seeded shuffle), written
into a scratch database directly (COPY on PostgreSQL, executemany on SQLite: the rows the
importer stores for a FastChat log without texts: a match, two slots and a judgment each),
so the export is measured without waiting for an import. The exported FastChat log is read
back by the battle reader and must hold exactly the battles written. Goals (issue 19):
export <= 30 s and peak memory <= 1.5 GB for 1.67M battles; with --battles N < 1.67M the
goal is scaled to N.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
COUNTS = (
    ROOT / "arena" / "fixtures" / "datasets" / "chatbot_arena" / "chatbotarena_20240814_agg.json"
)
PROMPT_SET = "chatbot-arena-log"
GOAL_SECONDS = 30.0  # for 1.67M battles
GOAL_BYTES = 1.5e9
FULL = 1_670_000  # about the counts file's battles
WINNER_NAMES = {"a": "model_a", "b": "model_b", "tie": "tie", "bothbad": "tie (bothbad)"}


def battles(n: int | None, seed: int = 0):
    """(model_a, model_b, winner) arrays: the counts file one row a vote, shuffled (seeded)."""
    import numpy as np

    from arena.importers.formats._common import load_json

    data = load_json(COUNTS)
    models = data["models"]
    pairs = np.asarray(data["X"], dtype=np.int64)
    counts = np.asarray(data["Y"], dtype=np.int64)  # wins_i, wins_j, ties, both_bad
    a = np.repeat(np.repeat(pairs[:, 0], 4), counts.ravel())
    b = np.repeat(np.repeat(pairs[:, 1], 4), counts.ravel())
    w = np.repeat(np.tile(np.arange(4), len(pairs)), counts.ravel())
    order = np.random.default_rng(seed).permutation(len(a))
    if n is not None:
        order = order[:n]
    return models, a[order], b[order], w[order]


def fill(n: int | None) -> int:
    """Write the battles into the configured database (Django set up); returns how many."""
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from arena.models import Contestant, Judgment, Match, MatchSlot, PromptSet, Voter

    models, a, b, w = battles(n)
    winners = ("a", "b", "tie", "bothbad")
    with transaction.atomic():
        ps = PromptSet.objects.create(slug=PROMPT_SET, name="Chatbot Arena log")
        Contestant.objects.bulk_create([Contestant(name=m) for m in models], ignore_conflicts=True)
        ids = dict(Contestant.objects.values_list("name", "id"))
        cid = [ids[m] for m in models]
        voter = Voter.objects.create(label="fastchat:anonymous", kind=Voter.Kind.IMPORTED)
        now = timezone.now()
        count = len(a)
        base = (Match.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
        _insert(connection, Match, count, lambda i: {
            "id": base + i, "public_id": uuid.uuid4(), "prompt_set_id": ps.id,
            "origin": "import", "source": "fastchat", "external_id": f"battle-{i}", "k": 2,
            "created_at": now,
        })  # fmt: skip
        _insert(connection, MatchSlot, 2 * count, lambda i: {
            "match_id": base + i // 2, "position": i % 2,
            "contestant_id": cid[int(a[i // 2] if i % 2 == 0 else b[i // 2])],
        })  # fmt: skip
        _insert(connection, Judgment, count, lambda i: {
            "match_id": base + i, "voter_id": voter.id, "kind": "pairwise", "status": "ok",
            "winner": winners[int(w[i])], "presentation": "0,1",
            "verdict_label": WINNER_NAMES[winners[int(w[i])]], "created_at": now,
        })  # fmt: skip
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in (Match, MatchSlot, Judgment):
                    table = model._meta.db_table
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
                cursor.execute("ANALYZE")
    return count


def _insert(connection, model, count: int, values) -> None:
    """``count`` rows of ``model``: ``values(i)`` gives some columns, the fields' defaults the rest."""
    fields = [f for f in model._meta.concrete_fields]
    given = values(0)
    columns = [f for f in fields if f.attname in given or f.attname not in ("id",)]
    defaults = {}
    for f in columns:
        if f.attname not in given:
            defaults[f.attname] = f.get_db_prep_save(f.get_default(), connection)
    names = [f.column for f in columns]
    table = model._meta.db_table
    pg = connection.vendor == "postgresql"
    preps = {
        f.attname: (lambda v, f=f: f.get_db_prep_save(v, connection))
        for f in columns
        if f.attname in given and f.get_internal_type() in ("UUIDField", "DateTimeField")
    }

    def rows():
        for i in range(count):
            row = values(i)
            for name, prep in preps.items():
                row[name] = row[name] if pg and name != "created_at" else prep(row[name])
            yield tuple(
                row[f.attname] if f.attname in row else defaults[f.attname] for f in columns
            )

    with connection.cursor() as cursor:
        if pg:
            raw = cursor.cursor
            with raw.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in names)
            raw = cursor.connection
            raw.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows())


EXPORT = """
import sys, time, django
django.setup()
from django.core.management import call_command
started = time.perf_counter()
call_command("arena_export", "--format", sys.argv[1], "--prompt-set", sys.argv[2], "-o", sys.argv[3], "--quiet")
print(time.perf_counter() - started)
"""


def measure(env: dict, fmt: str, out: Path) -> tuple[float, float, float, int]:
    """(seconds exporting, seconds of the whole process, its CPU seconds, peak RSS bytes)."""
    command = [sys.executable, "-c", EXPORT, fmt, PROMPT_SET, str(out)]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"arena_export --format {fmt} failed")
    cpu = usage.ru_utime + usage.ru_stime
    return float(output.strip().splitlines()[-1]), wall, cpu, usage.ru_maxrss * 1024


def check(path: Path, n: int | None) -> str:
    """Whether the exported FastChat log holds exactly the battles written."""
    from arena.importers.formats import guarded
    from arena.importers.formats.fastchat import battles as read_battles

    models, a, b, w = battles(n)
    winners = ("a", "b", "tie", "bothbad")
    expected = Counter(zip(a.tolist(), b.tolist(), w.tolist(), strict=True))
    index = {m: k for k, m in enumerate(models)}
    got = Counter(
        (index[x], index[y], winners.index(v))
        for x, y, v in guarded("fastchat", path, read_battles)
    )
    return "yes" if got == expected else f"NO ({sum((got - expected).values())} differ)"


def run(label: str, env: dict, n: int | None, work: Path) -> list[str]:
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    started = time.perf_counter()
    code = f"import sys; sys.path.insert(0, 'bench'); from export import fill; print(fill({n!r}))"
    filled = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    count = int(filled.stdout.strip().splitlines()[-1])
    print(
        f"{label}: {count:,} battles written in {time.perf_counter() - started:.1f} s", flush=True
    )
    goals = []
    scale = count / FULL
    for fmt in ("fastchat", "jsonl"):
        out = work / f"export.{fmt}.jsonl"
        seconds, wall, cpu, peak = measure(env, fmt, out)
        lines = sum(1 for _ in out.open("rb"))
        rate = count / seconds
        extra = f", read back equal: {check(out, n)}" if fmt == "fastchat" else ""
        print(
            f"  export --format {fmt}: {seconds:.1f} s ({rate:,.0f} battles/s; the process "
            f"{wall:.1f} s with Django's start, {cpu:.1f} s of CPU), "
            f"peak {peak / 1e9:.2f} GB, {lines:,} lines, {out.stat().st_size / 1e6:.0f} MB{extra}",
            flush=True,
        )
        goal_s = GOAL_SECONDS * scale
        goals.append(
            f"goal export {label} {fmt}: {seconds:.1f} s <= {goal_s:.1f} s"
            f"{' (30 s scaled to ' + format(count, ',') + ' battles)' if n else ''}, "
            f"peak {peak / 1e9:.2f} GB <= 1.5 GB "
            + ("MET" if seconds <= goal_s and peak <= GOAL_BYTES else "NOT MET")
        )
        out.unlink()
    return goals


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, help="battles to write (default: all, 1.67M)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--engines", default="postgresql,sqlite")
    args = parser.parse_args()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    engines = args.engines.split(",")
    goals = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if "postgresql" in engines:
            from bench._stack import create_scratch_database, drop_database

            name = create_scratch_database(args.database_url, "arena_bench_export")
            try:
                url = args.database_url.rsplit("/", 1)[0] + "/" + name
                goals += run("PostgreSQL", {**env, "DATABASE_URL": url}, args.battles, work)
            finally:
                drop_database(args.database_url, name)
        if "sqlite" in engines:
            sqlite_env = {**env, "ARENA_VAR_DIR": str(work)}
            sqlite_env.pop("DATABASE_URL", None)
            goals += run("SQLite", sqlite_env, args.battles, work)
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores)")
    print("\n".join(goals))


if __name__ == "__main__":
    main()
