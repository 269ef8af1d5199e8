"""Vote rigging against the full stack: can one client move the public board?

    python bench/rigging.py [--attack-seconds 100] [--attack-votes 300] [--honest 40]

Full stack on this machine: PostgreSQL (a scratch database), Redis, `arena_serve
--workers 2`, one Celery worker and the beat scheduler (the trust pass runs every
ARENA_TRUST_INTERVAL_SECONDS, 30 s). Data: the PandaLM test set with its human labels
(about 3,000 votes of 3 annotators) on its public human board, as `arena_demo` loads it.
Clients reach the server through the trusted proxy 127.0.0.1 with an address of their
own in `X-Forwarded-For` (ARENA_TRUSTED_PROXIES=127.0.0.1).

While honest simulated voters vote from many addresses (each its own cookie, choosing by
the Bradley-Terry probabilities of the board before the attack), two attackers play the
attack of issue 13, one after the other, each from one address, each with at most
``--attack-votes`` votes (<= 600) over at most ``--attack-seconds`` (<= 300):

- **mapper**: throwaway votes with fresh cookies to map answer texts to models through the
  reveals, then a vote for the target (the weakest model of the human board) whenever it
  recognises it in a battle;
- **table**: knows the published dataset's text -> model table (no throwaway votes), and
  votes for the target whenever it is in a battle, over a few sessions (``--table-cookies``,
  5: fewer than a burst), so only its votes can give it away.

Printed: the target's rating and rank on the public default board before and after (the
served board, once the trust pass and the refit have followed the last vote), on the
robust board (without flagged voters) and on the raw board (every vote), the share of
each attacker's votes flagged (counted off the public board) and the share of honest votes
flagged, and the goal line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path

import _stack  # bench/_stack.py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SET = "pandalm"
ELO_SCALE = 400 / np.log(10)
TRUST_INTERVAL = 30.0

SETUP = r"""
import django, json, sys
django.setup()
from django.conf import settings
from arena.importers.loader import import_file
from arena.models import Output, PromptSet
from arena.services import refresh_prompt_set
data = settings.BASE_DIR / "arena" / "fixtures" / "datasets" / "pandalm" / "testset-v1.json"
report = import_file("pandalm", data, prompt_set="SET")
assert report.ok, report.summary()
PromptSet.objects.filter(slug="SET").update(is_public_arena=True)
refresh_prompt_set(PromptSet.objects.get(slug="SET"))
# The published dataset's answers: text -> model (what the "table" attacker knows).
table = dict(Output.objects.filter(prompt__prompt_set__slug="SET").values_list("text", "contestant__name"))
json.dump(table, open(sys.argv[1], "w"))
""".replace("SET", SET)

MEASURE = r"""
import django, json, sys
django.setup()
from django.db.models import Sum
from arena.boards import BoardScope, judgment_counts, scope_counts
from arena.models import Judgment, Voter
from arena.ratings.leaderboard import leaderboard
labels = json.load(open(sys.argv[1]))
out = {"groups": {}, "boards": {}, "reasons": {}}
for group, names in labels.items():
    votes = Judgment.objects.filter(voter__label__in=names)
    total = votes.aggregate(n=Sum("weight"))["n"] or 0
    off = votes.filter(voter__counted_flagged=True).aggregate(n=Sum("weight"))["n"] or 0
    out["groups"][group] = [total, off]
    reasons = Voter.objects.filter(label__in=names, flagged=True).values_list("flag_reason", flat=True)
    out["reasons"][group] = sorted(set(r.split(" [")[0][:110] for r in reasons))[:3]
scope = BoardScope("SET", "humans")
attackers = [name for group, names in labels.items() if group != "honest" for name in names]
# What the board would be had the attackers never voted (every other vote, flagged or not).
without = judgment_counts(Judgment.objects.in_scope(scope).exclude(voter__label__in=attackers))
for name, counts in (("robust", scope_counts(scope)), ("raw", scope_counts(scope, raw=True)), ("without attackers", without)):
    board = leaderboard(counts, bootstrap=1000)
    out["boards"][name] = [{"model": r.model, "rating": r.rating, "ci_lower": r.ci_lower, "ci_upper": r.ci_upper} for r in board.rows]
print(json.dumps(out))
""".replace("SET", SET)


# --- HTTP clients ------------------------------------------------------------------------------


class Client:
    """One browser: an address (sent as X-Forwarded-For to the trusted proxy), a CSRF token,
    and the arena_voter cookie the server gives it (unless dropped)."""

    def __init__(self, url: str, address: str):
        host, port = url.split("//")[1].split(":")
        self.host, self.port, self.address = host, int(port), address
        self.csrf = secrets.token_hex(16)
        self.cookie: str | None = None
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        raw = json.dumps(body).encode()
        cookies = f"csrftoken={self.csrf}" + (f"; arena_voter={self.cookie}" if self.cookie else "")
        headers = {
            "Content-Type": "application/json",
            "Cookie": cookies,
            "X-CSRFToken": self.csrf,
            "X-Forwarded-For": self.address,
        }
        for attempt in range(2):
            try:
                self.conn.request("POST", path, raw, headers)
                response = self.conn.getresponse()
                content = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt:
                    return 599, {}
        for value in response.headers.get_all("Set-Cookie") or []:
            morsel = SimpleCookie(value).get("arena_voter")
            if morsel is not None:
                self.cookie = morsel.value
        try:
            return response.status, json.loads(content or b"{}")
        except ValueError:
            return response.status, {}

    def battle(self) -> tuple[int, dict]:
        return self.post("/api/battles", {"prompt_set": SET})

    def vote(self, battle: dict, winner: str) -> tuple[int, dict]:
        body = {"winner": winner, "idempotency_key": uuid.uuid4().hex}
        return self.post(f"/api/battles/{battle['id']}/vote", body)

    @property
    def label(self) -> str | None:
        """The voter label inside the signed cookie ("label:timestamp:signature")."""
        return self.cookie.split(":", 1)[0] if self.cookie else None


def _models(battle: dict, table: dict) -> list[str | None]:
    return [table.get(answer["text"]) for answer in battle.get("answers", [])]


# --- voters ------------------------------------------------------------------------------------


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.votes = 0
        self.battles = 0
        self.statuses: dict[int, int] = {}
        self.labels: set[str] = set()

    def add(self, status: int, client: Client | None = None, voted: bool = False):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if voted and status == 200:
                self.votes += 1
                if client is not None and client.label:
                    self.labels.add(client.label)


def honest_voter(url, address, strength, table, stop, tally, seed):
    """Votes by the BT probabilities of the board before the attack, every 1.5-4 s."""
    rng = random.Random(seed)
    client = Client(url, address)
    while not stop.is_set():
        status, battle = client.battle()
        if status != 201:
            tally.add(status)
            stop.wait(5)
            continue
        a, b = _models(battle, table)
        if a in strength and b in strength:
            p = 1 / (1 + np.exp(strength[b] - strength[a]))
            status, _ = client.vote(battle, "a" if rng.random() < p else "b")
            tally.add(status, client, voted=True)
        stop.wait(rng.uniform(1.5, 4.0))


def attacker(url, address, target, table, seconds, budget, map_votes, max_cookies, tally, log):
    """Maps texts through throwaway votes (``table`` empty at first) when ``map_votes``,
    then votes for ``target`` whenever it recognises it, spreading its votes over at most
    ``max_cookies`` voter sessions (more if the mapping minted them). Returns what it learnt."""
    deadline = time.time() + seconds
    known = dict(table)
    cookies: dict[str, str] = {}  # voter label -> its signed cookie
    revealed = 0

    def client_for(fresh: bool) -> Client:
        client = Client(url, address)
        if not fresh and cookies:
            client.cookie = random.choice(list(cookies.values()))
        return client

    # Mapping: a fresh cookie per throwaway vote (the server may refuse new identities:
    # then an earlier cookie).
    def take_battle(fresh: bool):
        """A battle for a fresh cookie (or, refused, an earlier one); None if refused."""
        client = client_for(fresh=fresh)
        status, battle = client.battle()
        if status in (403, 429) and fresh:
            client = client_for(fresh=False)
            status, battle = client.battle()
        tally.add(status)
        if status != 201:
            time.sleep(0.5)
            return None, None
        if client.label:
            cookies[client.label] = client.cookie
        return client, battle

    mapped = 0
    while map_votes and mapped < map_votes and tally.votes < budget and time.time() < deadline:
        client, battle = take_battle(fresh=True)
        if client is None:
            continue
        status, answer = client.vote(battle, random.choice("ab"))
        tally.add(status, client, voted=True)
        mapped += 1
        if status == 200 and answer.get("reveal"):
            revealed += 1
            for slot in answer["reveal"]:
                known[battle["answers"][slot["slot"]]["text"]] = slot["model"]
    log(f"  mapping: {mapped} throwaway votes, {revealed} reveals, {len(known)} texts known")
    # Rigging: vote for the target whenever it is recognised.
    seen = recognised = 0
    while tally.votes < budget and time.time() < deadline:
        client, battle = take_battle(fresh=len(cookies) < max_cookies)
        if client is None:
            continue
        seen += 1
        models = _models(battle, known)
        if target in models:
            recognised += 1
            status, _ = client.vote(battle, "ab"[models.index(target)])
            tally.add(status, client, voted=True)
    log(
        f"  rigging: {seen} battles, target recognised in {recognised}; "
        f"{tally.votes} votes stored from {len(tally.labels)} cookies; statuses {tally.statuses}"
    )
    return {"mapped": mapped, "revealed": revealed, "seen": seen, "recognised": recognised}


# --- measuring ---------------------------------------------------------------------------------


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def public_board(url: str) -> dict:
    return _get(f"{url}/api/leaderboard?set={SET}")


def standing(rows: list[dict], model: str) -> tuple[float, int, float]:
    """Rating, rank (by rating) and CI half-width of ``model`` on a board."""
    ordered = sorted(rows, key=lambda r: -r["rating"])
    row = next(r for r in ordered if r["model"] == model)
    half = (row["ci_upper"] - row["ci_lower"]) / 2 if row.get("ci_upper") is not None else 0.0
    return row["rating"], ordered.index(row) + 1, half


def wait_for_fit(url: str, after: float, timeout: float = 60) -> dict:
    """The public board once a snapshot newer than ``after`` (epoch seconds) is served."""
    deadline = time.time() + timeout
    board = public_board(url)
    while time.time() < deadline:
        board = public_board(url)
        created = board.get("created_at")
        if created and datetime.fromisoformat(created).timestamp() > after:
            return board
        time.sleep(1)
    return board


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--attack-seconds", type=float, default=100)
    parser.add_argument("--attack-votes", type=int, default=300)
    parser.add_argument("--map-votes", type=int, default=150)
    parser.add_argument("--honest", type=int, default=40, help="honest voters (one address each)")
    parser.add_argument(
        "--table-cookies",
        type=int,
        default=5,
        help="sessions the table attacker spreads its votes over (5: below the burst threshold)",
    )
    parser.add_argument("--reveal", default="fresh", help="ARENA_REVEAL for the run")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    args = parser.parse_args()
    assert args.attack_votes <= 600 and args.attack_seconds <= 300, "the issue's budget"

    def log(message):
        print(message, flush=True)

    db = _stack.create_scratch_database(args.database_url, "arena_bench_rigging")
    env = _stack.stack_env(
        args.database_url,
        db,
        args.redis_url,
        ARENA_TRUSTED_PROXIES="127.0.0.1",
        ARENA_REVEAL=args.reveal,
        ARENA_TRUST_INTERVAL_SECONDS=str(TRUST_INTERVAL),
    )
    procs = []
    var = Path(f"/tmp/{db}")
    var.mkdir()
    try:
        started = time.time()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
        table_file = var / "table.json"
        subprocess.run(
            [sys.executable, "-c", SETUP, str(table_file)], cwd=ROOT, env=env, check=True
        )
        table = json.loads(table_file.read_text())
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        server_log = (var / "server.log").open("w")
        serve = [sys.executable, "manage.py", "arena_serve", "--port", str(port), "--workers", "2"]
        procs.append(
            subprocess.Popen(serve, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT)
        )
        procs.append(_stack.start_celery_worker(env, server_log, concurrency=2))
        beat = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
                "-s", str(var / "beat-schedule")]  # fmt: skip
        procs.append(
            subprocess.Popen(beat, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT)
        )
        deadline = time.time() + 60
        while True:
            try:
                before = public_board(url)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        rows = before["rows"]
        target = min(rows, key=lambda r: r["rating"])["model"]
        strength = {r["model"]: r["rating"] / ELO_SCALE for r in rows}
        t_before = standing(rows, target)
        log(
            f"PandaLM human board: {before['n_votes']} votes, {len(rows)} models; target "
            f"{target}: rating {t_before[0]:.1f}, rank {t_before[1]}, CI half-width "
            f"{t_before[2]:.1f}; ARENA_REVEAL={args.reveal}; set up in {time.time() - started:.0f} s"
        )

        stop = threading.Event()
        honest = Tally()
        threads = [
            threading.Thread(
                target=honest_voter,
                args=(url, f"10.{20 + n // 200}.{n % 200}.7", strength, table, stop, honest, n),
                daemon=True,
            )
            for n in range(args.honest)
        ]
        for thread in threads:
            thread.start()
        results = {}
        tallies = {}
        for name, address, known, map_votes, max_cookies in (
            ("mapper", "203.0.113.10", {}, args.map_votes, 40),
            ("table", "198.51.100.20", table, 0, args.table_cookies),
        ):
            log(f"attacker {name!r} from {address}:")
            tallies[name] = Tally()
            results[name] = attacker(
                url,
                address,
                target,
                known,
                args.attack_seconds,
                args.attack_votes,
                map_votes,
                max_cookies,
                tallies[name],
                log,
            )
        last_vote = time.time()
        stop.set()
        for thread in threads:
            thread.join(10)
        log(f"honest voters: {honest.votes} votes from {len(honest.labels)} voters")
        # The trust pass runs within one interval; its refits follow.
        time.sleep(TRUST_INTERVAL + 5)
        # A fit after the last votes (honest voters stop within a few seconds).
        after = wait_for_fit(url, last_vote - 5, timeout=30)
        labels_file = var / "labels.json"
        labels_file.write_text(
            json.dumps(
                {name: sorted(t.labels) for name, t in {**tallies, "honest": honest}.items()}
            )
        )
        measured = json.loads(
            subprocess.run(
                [sys.executable, "-c", MEASURE, str(labels_file)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        t_after = standing(after["rows"], target)
        robust = standing(measured["boards"]["robust"], target)
        raw = standing(measured["boards"]["raw"], target)
        control = standing(measured["boards"]["without attackers"], target)
        drift = t_after[0] - t_before[0]
        moved = t_after[0] - control[0]  # what the attack did to the public board
        log(
            f"public default board, target {target}: before {t_before[0]:.1f} (rank "
            f"{t_before[1]}), after {t_after[0]:.1f} (rank {t_after[1]}), CI half-width "
            f"{t_before[2]:.1f}; {after['n_votes']} votes"
        )
        log(
            f"  without the attackers' votes (the honest votes alone): {control[0]:.1f} (rank "
            f"{control[1]}): the honest votes moved it {control[0] - t_before[0]:+.1f}, the "
            f"attack {moved:+.1f}; after - before {drift:+.1f}"
        )
        log(f"robust board (without flagged voters): {robust[0]:.1f} (rank {robust[1]})")
        log(f"raw board (every vote):                {raw[0]:.1f} (rank {raw[1]})")
        shares = {}
        for name, (total, off) in measured["groups"].items():
            shares[name] = off / total if total else 0.0
            log(
                f"{name}: {total} votes, {off} flagged ({shares[name]:.1%}); reasons: "
                f"{measured['reasons'][name]}"
            )
        attack_total = sum(measured["groups"][n][0] for n in tallies)
        attack_off = sum(measured["groups"][n][1] for n in tallies)
        attack_share = attack_off / attack_total if attack_total else 1.0
        met = abs(moved) < t_before[2] and attack_share >= 0.9 and shares.get("honest", 0) <= 0.02
        log(
            f"goal rigging: attack moved the target {moved:+.1f} on the public board (< CI "
            f"half-width {t_before[2]:.1f}; after - before {drift:+.1f}), "
            f"attack votes flagged {attack_share:.1%} of {attack_total} (>= 90%), honest votes "
            f"flagged {shares.get('honest', 0):.1%} of {measured['groups']['honest'][0]} (<= 2%) "
            f"{'MET' if met else 'NOT MET'}"
        )
        log(f"wall time {time.time() - started:.0f} s")
    finally:
        _stack.stop(procs)
        _stack.drop_database(args.database_url, db)


if __name__ == "__main__":
    main()
