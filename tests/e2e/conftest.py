"""Browser tests: the real server (arena_serve: HTTP, websockets, embedded worker) in a
subprocess on its own database, driven by Playwright in Debian's Chromium."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args, env):
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def browser_executable():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("ARENA_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def fake_llm():
    from judges.clients.fake_server import FakeLLMServer

    with FakeLLMServer("test") as server:
        yield server


@pytest.fixture(scope="session")
def arena_server(tmp_path_factory, browser_executable, fake_llm):
    """Base URL of a live Arena on a fresh database seeded by tests/e2e/seed.py."""
    var = tmp_path_factory.mktemp("arena-e2e")
    env = {
        **os.environ,
        "ARENA_VAR_DIR": str(var),
        "ARENA_BOOTSTRAP_ROUNDS": "100",
        "ARENA_REFIT_MIN_INTERVAL_SECONDS": "0.2",
        # Every browser context is a new voter from 127.0.0.1: the per-address limits on
        # new voters, and counting a burst of them as flagged, would take the later tests'
        # votes off the public board (tests/integration/test_voter_trust.py covers them).
        "ARENA_TRUST_BURST_SESSIONS": "100000",
        "ARENA_NEW_VOTER_RATE_IP": "100000/3600",
        "ARENA_NEW_VOTER_RATE_NET": "100000/3600",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    env["ARENA_E2E_LLM_URL"] = fake_llm.base_url
    database = None
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        import psycopg

        base = os.environ["DATABASE_URL"]
        database = f"arena_e2e_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + database
    if os.environ.get("REDIS_URL"):
        env["ARENA_EMBEDDED_WORKER"] = "yes"  # the server's own worker consumes from Redis
        env["CELERY_TASK_DEFAULT_QUEUE"] = f"e2e-{uuid.uuid4().hex[:8]}"
    _run(["migrate", "--noinput", "-v0"], env)
    in_server_db(env, "from tests.e2e.seed import seed; seed()")
    try:
        with serving(env, var) as url:
            yield url
    finally:
        if database:
            import psycopg

            with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(var, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(browser_executable):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def private_server_env(var, **settings: str) -> dict:
    """The environment of a server of one test module, migrated: its own SQLite database
    and embedded services in ``var`` (never the suite's PostgreSQL or Redis), and the
    ``ARENA_*`` ``settings`` it is about."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "PYTEST_CURRENT_TEST")
    }
    env.update(
        ARENA_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONPATH=str(ROOT),
        **settings,
    )
    _run(["migrate", "--noinput", "-v0"], env)
    return env


def in_server_db(env: dict, statement: str) -> None:
    """Run a Python ``statement`` with Django set up on the server's database."""
    code = f"import django; django.setup(); {statement}"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=120)


@contextlib.contextmanager
def serving(env: dict, var):
    """Run ``arena_serve`` with ``env`` (its data in ``var``) until the block ends; yields
    its base URL once it answers."""
    port = _free_port()
    log = open(var / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "arena_serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/battle/", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "arena_serve did not start:\n" + (var / "server.log").read_text()
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
