import uuid

import pytest

from tests.factories import staff_user


@pytest.fixture
def celery_worker(settings):
    """A real Celery worker (threads) consuming a queue of its own, on the configured broker.

    Embedded settings: kombu memory:// in this process. CI: Redis. Tests using it need
    ``transaction=True`` so the worker's own database connection sees committed rows.
    """
    from config.celery import app
    from config.embedded import start_worker

    queue = f"test-{uuid.uuid4().hex[:8]}"
    old_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    settings.ARENA_REFIT_MIN_INTERVAL_SECONDS = 0.05
    worker = start_worker(app, concurrency=2, queues=[queue], hostname=f"{queue}@test")
    try:
        yield worker
    finally:
        worker.stop(in_sighandler=False)
        app.conf.task_default_queue = old_queue
        _close_worker_connections()


def _close_worker_connections():
    """Worker threads hand their connections back to the process's PostgreSQL pool when a
    task ends; close the pool so no idle session outlives the test (the test database must
    be droppable). The next query opens a fresh pool."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.vendor == "postgresql":
            conn.close()
            conn.close_pool()


@pytest.fixture
def staff(client):
    """The test client, logged in as a staff member (the audit and run pages)."""
    client.force_login(staff_user())
    return client


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit windows and refit flags must not leak from one test into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def one_rate_window(monkeypatch):
    """Pin the rate limiter's clock inside one window: a test that counts requests against
    a fixed-window limit must not straddle a window's end (a new window forgets the hits)."""
    from types import SimpleNamespace

    from arena import ratelimit

    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_000_000_020.0))
