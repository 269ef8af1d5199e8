"""Votes per second through the HTTP vote endpoint, and vote -> leaderboard push latency.

    python bench/votes.py [--seconds 20] [--connections 32] [--web-processes 2]

Full stack on this machine: PostgreSQL (a scratch database), Redis (broker + channel
layer), `arena_serve --workers N` (uvicorn) and one Celery worker process for refits.
Battles are served beforehand (one per vote, spread over 2,000 voter sessions, each with
its signed cookie and CSRF token); a second process then posts votes over keep-alive
connections as fast as the server answers, and a websocket client subscribed to the
board records every push. Rate limits are switched off for the run (all load comes
from one address). Push latency: the time from a vote's HTTP answer to the first
pushed board whose vote count includes it — measured idle (one vote at a time) and
under the full load. Afterwards the database must hold exactly the votes answered 200,
in the judgments and in the running pair counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import _stack  # bench/_stack.py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SET = "bench-arena"
SCOPE = f"set={SET}|by=humans|cat=|style=0"
CONNECT_INTERVAL = 0.02  # seconds between two load connections opening


# --- load generator (runs in its own process) --------------------------------------------------


async def _voter(host, port, jobs, deadline, results, delay=0.0):
    # Connections open one by one, as clients arrive: opened in the same millisecond, the
    # first web process to wake up accepts every one of them and the others stay idle.
    await asyncio.sleep(delay)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.time() < deadline and jobs:
            battle, cookie, csrf = jobs.pop()
            body = json.dumps(
                {
                    "winner": "a" if np.random.random() < 0.6 else "b",
                    "idempotency_key": uuid.uuid4().hex,
                }
            ).encode()
            request = (
                f"POST /api/battles/{battle}/vote HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Cookie: arena_voter={cookie}; csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.time()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            results.append((started, time.time(), status))
    finally:
        writer.close()


async def _load(url, battles_file, seconds, connections):
    host, port = url.split("//")[1].split(":")
    jobs = [line.split() for line in Path(battles_file).read_text().splitlines()]
    results: list = []
    deadline = time.time() + seconds
    await asyncio.gather(
        *(
            _voter(host, int(port), jobs, deadline, results, delay=i * CONNECT_INTERVAL)
            for i in range(connections)
        )
    )
    return results


def load_main(args):
    results = asyncio.run(_load(args.url, args.battles, args.seconds, args.connections))
    print(json.dumps(results))


# --- orchestration -----------------------------------------------------------------------------

SEED = r"""
import django, numpy as np, sys
django.setup()
from django.core import signing
from django.utils.crypto import get_random_string
from arena.importers.loader import import_records
from arena.importers.records import OutputRecord, PromptRecord
from arena.battles import battle_facts
from arena.models import Match, MatchSlot, Output, PromptSet, Voter
n_votes = int(sys.argv[1])
models = [f"model-{i}" for i in range(8)]
rng0 = np.random.default_rng(1)
records = []
for p in range(200):
    records.append(PromptRecord(external_id=f"p{p}", text=f"Question {p}?"))
    records += [OutputRecord(prompt_id=f"p{p}", contestant=m, text=f"{m} answers question {p}.") for m in models]
# A board with history: 5,000 earlier votes from a known ranking (model-0 best).
from arena.importers.records import JudgmentRecord
for k in range(5000):
    i, j = rng0.choice(8, 2, replace=False)
    p_i = 1 / (1 + np.exp(-(j - i) * 0.3))
    records.append(JudgmentRecord(match_id=f"old{k}", contestants=(models[i], models[j]), winner="a" if rng0.random() < p_i else "b", voter=f"old-voter-{k % 500}"))
import_records(records, prompt_set="SET", source="bench")
ps = PromptSet.objects.get(slug="SET"); ps.is_public_arena = True; ps.save()
outputs = {(o.prompt_id, o.contestant_id): o.id for o in Output.objects.filter(prompt__prompt_set=ps)}
contestants = sorted({c for _, c in outputs}); prompts = sorted({p for p, _ in outputs})
voters = Voter.objects.bulk_create(Voter(label=get_random_string(32), kind="session") for _ in range(2000))
signer = signing.get_cookie_signer(salt="arena_voter" + "arena.voter")
cookies = {v.id: signer.sign(v.label) for v in voters}
rng = np.random.default_rng(0)
lines = []
for start in range(0, n_votes, 2000):
    batch = []
    for k in range(start, min(n_votes, start + 2000)):
        voter = voters[k % len(voters)]
        batch.append(Match(prompt_set=ps, prompt_id=int(rng.choice(prompts)), origin="arena", source="arena", k=2, owner=voter, policy="uniform", pair_probability=1 / 28))
    Match.objects.bulk_create(batch)
    slots = []
    for m in batch:
        a, b = rng.choice(contestants, 2, replace=False)
        slots += [MatchSlot(match=m, position=0, contestant_id=int(a), output_id=outputs[(m.prompt_id, int(a))]),
                  MatchSlot(match=m, position=1, contestant_id=int(b), output_id=outputs[(m.prompt_id, int(b))])]
        lines.append(f"{m.public_id} {cookies[m.owner_id]} {get_random_string(32)}")
    MatchSlot.objects.bulk_create(slots)
    for m in batch:
        battle_facts(m.public_id)  # served: what start_battle does for each battle it serves
print("\n".join(lines))
""".replace("SET", SET)


def _wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


async def _listen(url, pushes, stop):
    import websockets

    async with websockets.connect(url.replace("http", "ws") + "/ws/leaderboard/", origin=url) as ws:
        await ws.send(json.dumps({"subscribe": SCOPE}))
        while not stop.is_set():
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
            except TimeoutError:
                continue
            if message.get("type") == "board.updated":
                pushes.append((time.time(), message["n_votes"]))


def _vote_once(url, line):
    battle, cookie, csrf = line.split()
    body = json.dumps({"winner": "b", "idempotency_key": uuid.uuid4().hex}).encode()
    request = urllib.request.Request(
        f"{url}/api/battles/{battle}/vote",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Cookie": f"arena_voter={cookie}; csrftoken={csrf}",
            "X-CSRFToken": csrf,
        },
    )
    urllib.request.urlopen(request).read()
    return time.time()


def _push_latency(vote_times, pushes, base):
    """For the k-th vote (by answer time): first push whose count >= base + k."""
    push_t = np.array([t for t, _ in pushes])
    push_n = np.maximum.accumulate(np.array([n for _, n in pushes])) if pushes else np.array([])
    latencies = []
    for k, t in enumerate(sorted(vote_times), start=1):
        later = np.flatnonzero((push_n >= base + k) & (push_t >= t))
        if later.size:
            latencies.append(push_t[later[0]] - t)
    return np.array(latencies)


def _stored(database_url):
    """Votes stored by the arena, and the sum of the running pair counts."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM arena_judgment j JOIN arena_match m ON m.id = j.match_id "
            "WHERE m.origin = 'arena'"
        ).fetchone()[0]
        counted = conn.execute("SELECT sum(count) FROM arena_pairoutcomecount").fetchone()[0]
    return stored, counted


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--battles", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--web-processes", type=int, default=2)
    parser.add_argument(
        "--hold",
        type=float,
        default=0,
        help="set up, print the URL, keep serving this many seconds (debugging)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    args = parser.parse_args()
    if args.load:
        load_main(args)
        return

    db = _stack.create_scratch_database(args.database_url, "arena_bench_votes")
    env = _stack.stack_env(
        args.database_url,
        db,
        args.redis_url,
        ARENA_VOTE_RATE_SESSION="0/1",
        ARENA_VOTE_RATE_IP="0/1",
        ARENA_VOTE_RATE_NET="0/1",
    )
    procs = []
    var = Path(f"/tmp/{db}")
    var.mkdir()
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        n = int(1000 * args.seconds) + 200
        battles = var / "battles.txt"
        with battles.open("w") as out:
            subprocess.run(
                [sys.executable, "-c", SEED, str(n)], cwd=ROOT, env=env, check=True, stdout=out
            )
        lines = battles.read_text().splitlines()
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        log = (var / "server.log").open("w")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "arena_serve",
                    "--port",
                    str(port),
                    "--workers",
                    str(args.web_processes),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        procs.append(_stack.start_celery_worker(env, log, concurrency=2))
        _wait_http(url + "/battle/")
        time.sleep(2)
        if args.hold:
            print(url, battles, flush=True)
            time.sleep(args.hold)
            return

        async def measure():
            pushes: list = []
            stop = asyncio.Event()
            listener = asyncio.create_task(_listen(url, pushes, stop))
            await asyncio.sleep(1)
            # Idle: one vote at a time, then wait for its push.
            idle_votes = []
            for k in range(20):
                t = await asyncio.to_thread(_vote_once, url, lines[k])
                idle_votes.append(t)
                await asyncio.sleep(1.2)
            idle = _push_latency(idle_votes, pushes, 5000)
            base = 5020
            # Under load: the second process votes as fast as the server answers.
            vote_file = var / "load.txt"
            vote_file.write_text("\n".join(lines[20:]))
            load = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    __file__,
                    "--load",
                    "--url",
                    url,
                    "--battles",
                    str(vote_file),
                    "--seconds",
                    str(args.seconds),
                    "--connections",
                    str(args.connections),
                ],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            results = json.loads(load.stdout)
            await asyncio.sleep(3)
            stop.set()
            await listener
            return idle, results, pushes, base

        idle, results, pushes, base = asyncio.run(measure())
        ok = [(s, e) for s, e, status in results if status == 200]
        bad = [status for _, _, status in results if status != 200]
        span = max(e for _, e in ok) - min(s for s, _ in ok)
        rate = len(ok) / span
        request_ms = np.array([e - s for s, e in ok]) * 1000
        loaded = _push_latency([e for _, e in ok], pushes, base)
        stored, counted = _stored(env["DATABASE_URL"])
        print(
            f"web processes {args.web_processes}, {args.connections} connections, {args.seconds:g} s, PostgreSQL + Redis, 2 cores shared with the load and the refit worker"
        )
        print(
            f"votes: {len(ok)} stored in {span:.1f} s = {rate:.0f} votes/s (goal >= 300); failed: {len(bad)} {sorted(set(bad))}"
        )
        print(
            f"in the database: {stored} arena votes (answered 200: {len(ok) + 20}), running counts "
            f"{counted} (5,000 earlier + {counted - 5000}): {'consistent' if stored == len(ok) + 20 == counted - 5000 else 'INCONSISTENT'}"
        )
        print(
            f"vote request latency ms: p50 {np.percentile(request_ms, 50):.0f}, p95 {np.percentile(request_ms, 95):.0f}"
        )
        print(
            f"push latency idle (n={idle.size}): p50 {np.percentile(idle, 50) * 1000:.0f} ms, p95 {np.percentile(idle, 95) * 1000:.0f} ms (goal p95 <= 1000 ms)"
        )
        if loaded.size:
            print(
                f"push latency under load (n={loaded.size}): p50 {np.percentile(loaded, 50) * 1000:.0f} ms, p95 {np.percentile(loaded, 95) * 1000:.0f} ms; {len(pushes)} boards pushed"
            )
        consistent = stored == len(ok) + 20 == counted - 5000
        push_p95 = max(np.percentile(idle, 95), np.percentile(loaded, 95) if loaded.size else 0)
        met = rate >= 300 and push_p95 <= 1.0 and consistent and not bad
        print(
            f"goal votes: {rate:.0f} votes/s (>= 300), push p95 {push_p95 * 1000:.0f} ms (<= 1000), "
            f"database {'consistent' if consistent else 'INCONSISTENT'} {'MET' if met else 'NOT MET'}"
        )
    finally:
        _stack.stop(procs)
        _stack.drop_database(args.database_url, db)


if __name__ == "__main__":
    main()
