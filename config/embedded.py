"""Run a real Celery worker and beat scheduler inside the serving process (embedded mode).

With no REDIS_URL the broker is kombu's ``memory://`` transport, which only exists
inside one process; so the worker consumes in threads of the process that serves the
site, exactly as ``celery.contrib.testing.worker`` does. Tasks still go through the
broker (no eager mode), get acked, retried and scheduled like in production, and their
websocket broadcasts reach the in-memory channel layer the pages listen on.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.beat import EmbeddedService
from celery.worker import WorkController
from kombu.utils.imports import symbol_by_name

log = logging.getLogger(__name__)


class _EmbeddedWorker(WorkController):
    def __init__(self, *args, **kwargs):
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer):
        self.ready.set()


def start_worker(
    app: Celery,
    concurrency: int = 4,
    pool: str = "threads",
    queues: list[str] | None = None,
    hostname: str = "embedded@arena",
) -> _EmbeddedWorker:
    """Start a worker thread and wait until it consumes. Returns the controller (call ``.stop()``)."""
    app.set_current()
    app.set_default()
    app.loader.import_default_modules()
    worker = _EmbeddedWorker(
        app=app,
        concurrency=concurrency,
        pool=pool,
        hostname=hostname,
        queues=queues,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="INFO",
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()
    if not worker.ready.wait(30):
        raise RuntimeError("the embedded Celery worker did not start within 30 s")
    log.info("embedded Celery worker consuming (%s pool, concurrency %d)", pool, concurrency)
    return worker


def start_beat(app: Celery) -> EmbeddedService:
    """Start the beat scheduler (django-celery-beat's DatabaseScheduler) in a thread."""
    scheduler = symbol_by_name(app.conf.beat_scheduler)
    beat = EmbeddedService(app, thread=True, scheduler_cls=scheduler)
    beat.start()
    log.info("embedded Celery beat started")
    return beat
