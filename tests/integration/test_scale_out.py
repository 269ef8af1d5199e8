"""Scale-out on the full stack: an evaluation run and human votes keep going while a worker
is killed, Redis restarts and PostgreSQL drops every connection.

Separate OS processes, as docker-compose runs them: two web processes (``arena_serve``),
two Celery workers (threads), beat, on a scratch PostgreSQL database and a private Redis
server (``redis-server`` on a free port, append-only file on, as the README recommends) that
this test stops and starts again; the fake OpenAI-compatible server answers the run's
judge and contestants. A client thread serves battles and votes through the HTTP API (CSRF
token and cookies, like the battle page) on both web processes, and retries a vote that
failed with the same idempotency key. Meanwhile the test

(a) kills a worker with SIGKILL and starts another;
(b) restarts Redis;
(c) terminates every PostgreSQL connection to the database, twice.

At the end: the run is done; every match of the run has exactly one judgment; every vote
answered 2xx (or 409 "already recorded" on a retry) is stored exactly once, and no other
vote is; the running counts equal a rebuild from the judgments; every failed request was
answered quickly with a JSON error (a 503 that says what is unavailable), never a hang.

Needs PostgreSQL (DATABASE_URL) and ``redis-server`` on the PATH; CI has both.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from judges.clients.fake_server import FakeLLMServer
from tests.integration.private_redis import Redis, free_port, wait
from tests.integration.runs_world import judge_requests, scenario

ROOT = Path(__file__).resolve().parents[2]
N_MODELS, N_PROMPTS = 7, 8  # 21 pairs x 8 prompts = 168 judge calls, 56 answers generated
VOTE_SET = "scale-votes"
# Every request comes from one address: the limits stay on (counted in Redis), never reached.
RATE_LIMITS = dict.fromkeys(
    [
        "ARENA_VOTE_RATE_SESSION",
        "ARENA_VOTE_RATE_IP",
        "ARENA_VOTE_RATE_NET",
        "ARENA_BATTLE_RATE_SESSION",
        "ARENA_BATTLE_RATE_IP",
        "ARENA_BATTLE_RATE_NET",
        "ARENA_NEW_VOTER_RATE_IP",
        "ARENA_NEW_VOTER_RATE_NET",
    ],
    "100000/60",
)
REQUEST_TIMEOUT = 15  # seconds: a request that takes longer is a hang, and fails the test
# Redis keeps an append-only file (as the README recommends): the queued and unacked tasks
# survive its restart. SCALE_OUT_APPENDONLY=no tries a Redis that loses them all: the run
# still finishes, once the watchdog hands its stalled batch out again.
APPENDONLY = os.environ.get("SCALE_OUT_APPENDONLY", "yes")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres")
        or shutil.which("redis-server") is None,
        reason="needs PostgreSQL (DATABASE_URL) and redis-server on the PATH; CI has both",
    ),
]


def _load_stack():
    """bench/_stack.py: the scratch database and the full stack's process environment."""
    spec = importlib.util.spec_from_file_location("_stack", ROOT / "bench" / "_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STACK = _load_stack()


SEED = r"""
import json, sys
import django
django.setup()
from arena.importers.loader import import_records
from arena.importers.records import OutputRecord, PromptRecord
from arena.models import PromptSet
from judges.tokens import create_token
from tests.integration.runs_world import make_world
base_url, n_models, n_prompts, vote_set = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
prompt_set, contestants, judge = make_world(base_url, n_models=n_models, n_prompts=n_prompts)
models = [f"voted-{i}" for i in range(4)]
records = []
for p in range(30):
    records.append(PromptRecord(external_id=f"v{p}", text=f"Question {p}?"))
    records += [OutputRecord(prompt_id=f"v{p}", contestant=m, text=f"{m} answers {p}.") for m in models]
import_records(records, prompt_set=vote_set, source="scale-test")
PromptSet.objects.filter(slug=vote_set).update(is_public_arena=True)
_, raw = create_token("scale-out")
print(json.dumps({
    "token": raw, "prompt_set": prompt_set.slug, "judge": judge.name,
    "contestants": [c.name for c in contestants],
}))
"""

CHECK = r"""
import json, sys
import django
django.setup()
from django.db import transaction
from django.db.models import Count
from arena.boards import rebuild_pair_counts
from arena.models import EvaluationRun, Judgment, Match, PairOutcomeCount, PromptSet
run = EvaluationRun.objects.get(pk=int(sys.argv[1]))
matches = Match.objects.filter(run=run).annotate(n=Count("judgments"))
def cells():
    return sorted(
        PairOutcomeCount.objects.filter(count__gt=0).values_list(
            "prompt_set__slug", "source", "category", "contestant_a_id", "contestant_b_id",
            "winner", "a_first", "count",
        )
    )
stored = cells()
with transaction.atomic():
    for prompt_set in PromptSet.objects.all():
        rebuild_pair_counts(prompt_set)
    rebuilt = cells()
    transaction.set_rollback(True)
votes = Judgment.objects.filter(match__origin=Match.Origin.ARENA)
print(json.dumps({
    "status": run.status, "error": run.error, "planned": run.planned_calls,
    "calls_made": run.calls_made, "calls_failed": run.calls_failed,
    "failures": sorted(set(Judgment.objects.filter(match__run=run).exclude(
        status=Judgment.Status.OK).values_list("error", flat=True)))[:5],
    "judgments": Judgment.objects.filter(match__run=run).count(),
    "matches": matches.count(),
    "matches_not_judged_once": list(matches.exclude(n=1).values_list("id", "n")),
    "votes": list(votes.values_list("idempotency_key", flat=True)),
    "counts_equal_rebuild": stored == rebuilt,
    "counted_votes": sum(c[-1] for c in stored if c[0] == sys.argv[2]),
}))
"""


def _django(env: dict, script: str, *args: str, timeout: float = 120) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class Stack:
    """The processes of the full stack, each logging to a file of its own."""

    def __init__(self, env: dict, logs: Path):
        self.env, self.logs = env, logs
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("a")
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a SIGKILL takes its children
        )

    def web(self, name: str, port: int) -> None:
        self.start(
            name,
            [sys.executable, "manage.py", "arena_serve", "--no-collectstatic", "--port", str(port)],
        )

    def worker(self, name: str) -> None:
        self.start(
            name,
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "threads",
                "-c", "3", "-Q", self.env["CELERY_TASK_DEFAULT_QUEUE"], "-n", f"{name}@%h",
                "--without-mingle", "--without-gossip", "-l", "WARNING",
            ],
        )  # fmt: skip

    def beat(self) -> None:
        self.start(
            "beat",
            [
                sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "WARNING",
                "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                "--schedule", str(self.logs / "beat-schedule"),
            ],
        )  # fmt: skip

    def kill(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name, process in self.processes.items():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill(name)

    def alive(self) -> list[str]:
        return [name for name, p in self.processes.items() if p.poll() is None]

    def tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-2500:]}"
            for path in sorted(self.logs.glob("*.log"))
        )


# --- the client: a browser's battles and votes over HTTP ---------------------------------------


class Failure(AssertionError):
    pass


def _request(url: str, method: str, body: dict | None, headers: dict) -> tuple[int, dict, dict]:
    """(status, JSON body, response headers); a refused connection is (0, {...}, {})."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = {"not_json": raw[:300].decode(errors="replace")}
        return error.code, answer, dict(error.headers)
    except TimeoutError as error:  # a hang: the request got no answer in time
        raise Failure(f"{method} {url}: no answer in {REQUEST_TIMEOUT} s") from error
    except (urllib.error.URLError, ConnectionError) as error:  # nobody listening (yet)
        return 0, {"error": str(error)}, {}


class Voter:
    """Cookies and a CSRF token, like a browser on the battle page."""

    def __init__(self):
        self.cookies = {"csrftoken": secrets.token_hex(16)}

    def post(self, url: str, body: dict) -> tuple[int, dict]:
        headers = {
            "Content-Type": "application/json",
            "X-CSRFToken": self.cookies["csrftoken"],
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
        }
        status, answer, response_headers = _request(url, "POST", body, headers)
        for name, value in response_headers.items():
            if name.lower() == "set-cookie" and value.startswith("arena_voter="):
                self.cookies["arena_voter"] = value.split(";", 1)[0].split("=", 1)[1]
        return status, answer


class Client(threading.Thread):
    """Serves battles and votes on them, round robin over the web processes, until stopped.

    It keeps a few battles served ahead, as people keep battle pages open: a vote does not
    wait for a battle to be served, so votes go on while serving fails. A vote that fails
    is sent again with the same idempotency key until it is answered 200, or 409 "already
    recorded" (its first try was stored, the answer was lost)."""

    def __init__(self, urls: list[str]):
        super().__init__(daemon=True)
        self.urls = urls
        self.voters = [Voter() for _ in range(4)]
        self.stop = threading.Event()
        self.recorded: list[str] = []  # idempotency keys of votes the server said it stored
        self.failures: list[tuple[str, int, dict]] = []  # (what, status, body) of each failure
        self.error: BaseException | None = None
        self.n = 0
        self.served: list[tuple[Voter, str]] = []  # battles served, not voted on yet

    def run(self):
        try:
            while not self.stop.is_set():
                self.vote_once()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def url(self) -> str:
        self.n += 1
        return self.urls[self.n % len(self.urls)]

    def vote_once(self) -> None:
        while len(self.served) < 4:
            voter = self.voters[self.n % len(self.voters)]
            status, battle = voter.post(f"{self.url()}/api/battles", {"prompt_set": VOTE_SET})
            if status != 201:
                self.failed("battle", status, battle)
                if self.served:
                    break  # vote on a battle already served meanwhile
                continue
            self.served.append((voter, battle["id"]))
        voter, battle_id = self.served.pop(0)
        key = uuid.uuid4().hex
        body = {"winner": "a" if self.n % 3 else "b", "idempotency_key": key}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, answer = voter.post(f"{self.url()}/api/battles/{battle_id}/vote", body)
            if status == 200 or (status == 409 and "already recorded" in answer.get("detail", "")):
                self.recorded.append(key)
                return
            self.failed("vote", status, answer)
        raise Failure(f"vote {key} not stored after 60 s of retries: {self.failures[-3:]}")

    def failed(self, what: str, status: int, answer: dict) -> None:
        self.failures.append((what, status, answer))  # the test checks each one
        if len(self.failures) > 2000:
            raise Failure(f"{what}: {status} {answer}")
        time.sleep(0.2)


def _get_json(url: str, token: str) -> tuple[int, dict]:
    status, answer, _ = _request(url, "GET", None, {"Authorization": f"Bearer {token}"})
    return status, answer


def _post_json(url: str, token: str, body: dict) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, answer, _ = _request(url, "POST", body, headers)
    return status, answer


def _terminate_connections(database_url: str, database: str) -> int:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return len(
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        )


@pytest.fixture
def scratch_database():
    """A new empty database on DATABASE_URL's server (bench/_stack.py), dropped at the end."""
    database = STACK.create_scratch_database(os.environ["DATABASE_URL"], "arena_scale_out")
    yield database
    STACK.drop_database(os.environ["DATABASE_URL"], database)


@pytest.fixture
def redis(tmp_path):
    server = Redis(tmp_path, appendonly=APPENDONLY)
    server.start()
    yield server
    server.stop()


def test_a_run_and_votes_survive_a_killed_worker_a_redis_restart_and_dropped_connections(
    tmp_path, scratch_database, redis
):
    database_url, database = os.environ["DATABASE_URL"], scratch_database
    stack = None
    client = None
    try:
        with FakeLLMServer(scenario(N_MODELS, latency_ms=150)) as server:
            env = STACK.stack_env(
                database_url,
                database,
                redis.url,
                LOG_LEVEL="WARNING",
                CELERY_VISIBILITY_TIMEOUT="5",
                ARENA_JUDGE_CLAIM_SECONDS="5",
                ARENA_JUDGE_RETRY_BASE_DELAY="0.05",
                ARENA_JUDGE_TASK_BACKOFF_SECONDS="0.2",
                ARENA_RUN_REFIT_SECONDS="2",
                ARENA_RUN_STALL_SECONDS="15",
                ARENA_RUN_WATCH_SECONDS="5",
                ARENA_BOOTSTRAP_ROUNDS="50",
                ARENA_REFIT_MIN_INTERVAL_SECONDS="0.5",
                ARENA_TRUST_INTERVAL_SECONDS="5",
                **RATE_LIMITS,
            )
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
            )
            world = _django(env, SEED, server.base_url, str(N_MODELS), str(N_PROMPTS), VOTE_SET)
            stack = Stack(env, tmp_path)
            ports = [free_port(), free_port()]
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            for i, port in enumerate(ports):
                stack.web(f"web{i}", port)
            stack.worker("worker0")
            stack.worker("worker1")
            stack.beat()
            for url in urls:
                wait(lambda url=url: _port_open(url), 60, f"{url} to serve")

            started = time.monotonic()
            client = Client(urls)
            client.start()
            token = world.pop("token")
            status, run = _post_json(f"{urls[0]}/api/runs", token, world)
            assert status == 201, run
            run_url = f"{urls[1]}/api/runs/{run['id']}"

            def progress(share: float):
                status, run = _get_json(run_url, token)
                if status != 200:
                    return None
                assert run["status"] == "running", run
                return run if run["calls_made"] >= share * run["planned_calls"] else None

            events = []

            def event(what: str, share: float, action) -> None:
                wait(lambda: progress(share), 90, f"{share:.0%} of the run before {what}")
                votes_before = len(client.recorded)
                action()
                events.append((what, votes_before, round(time.monotonic() - started)))

            # (a) a worker killed (its tasks in flight go back to the queue) and another started
            event("kill worker0", 0.2, lambda: (stack.kill("worker0"), stack.worker("worker2")))

            # (b) Redis stops (broker, results, channel layer, cache) and comes back
            def restart_redis():
                redis.stop()
                stored = len(client.recorded)  # votes are stored while Redis is down
                wait(lambda: len(client.recorded) >= stored + 3, 30, "votes without Redis")
                redis.start()

            event("restart redis", 0.4, restart_redis)

            # (c) PostgreSQL drops every connection to the database, twice
            def drop_connections():
                assert _terminate_connections(database_url, database) > 0
                time.sleep(1)
                _terminate_connections(database_url, database)

            event("drop connections", 0.6, drop_connections)

            def finished():
                status, run = _get_json(run_url, token)
                return run if status == 200 and run["status"] != "running" else None

            run = wait(finished, 120, "the run to finish", poll=0.5)
            events.append(("run finished", len(client.recorded), round(time.monotonic() - started)))
            votes_at_end = len(client.recorded)
            wait(
                lambda: len(client.recorded) >= votes_at_end + 5 or client.error,
                30,
                "votes after the run",
            )
            client.stop.set()
            client.join(REQUEST_TIMEOUT * 5)
            requested = judge_requests(server)["requests"]
            alive = stack.alive()
    except BaseException:
        if stack is not None:
            print(stack.tail())
        raise
    finally:
        if client is not None:
            client.stop.set()
        if stack is not None:
            stack.stop()
        redis.stop()

    check = _django(env, CHECK, str(run["id"]), VOTE_SET)
    print(
        f"events {events}; votes recorded {len(client.recorded)}, failures "
        f"{_summary(client.failures)}; judge requests {requested} for {check['planned']} calls"
    )
    assert client.error is None, f"{client.error!r}\n{stack.tail()}"
    assert alive == ["web0", "web1", "worker1", "beat", "worker2"], stack.tail()
    assert run["status"] == "done", f"{run}\n{stack.tail()}"
    assert check["status"] == "done"
    assert check["judgments"] == check["planned"] == check["calls_made"] == check["matches"]
    assert check["calls_failed"] == 0, check["failures"]
    assert check["matches_not_judged_once"] == []
    # Every vote the client was told is stored, exactly once, and no other one.
    assert sorted(check["votes"]) == sorted(client.recorded)
    assert check["counted_votes"] == len(client.recorded)
    assert check["counts_equal_rebuild"]
    # Votes went on through every event.
    for what, votes_before, _ in events:
        assert len(client.recorded) > votes_before, what
    for what, status, answer in client.failures:
        assert status == 503 and answer.get("detail"), (what, status, answer)


def _port_open(url: str) -> bool:
    status, _, _ = _request(url + "/api/runs", "GET", None, {})
    return status == 401  # served by Django: the runs API wants its token


def _summary(failures) -> dict:
    summary: dict = {}
    for what, status, _ in failures:
        summary[f"{what} {status}"] = summary.get(f"{what} {status}", 0) + 1
    return summary
