"""A worker survives Redis going away while it holds an unacked task (config/broker.py).

What Celery's consumer does when the broker connection fails
(``Consumer.on_connection_error_after_connected``, celery 5.7): ``collect()`` the
connection, then ``close()`` it, ignoring connection errors. Here on a real connection in
the state of a worker with a free slot: one task taken and not acked (``acks_late``), a
``BRPOP`` waiting for the next, and the remote-control mailbox (a fanout queue on a
channel of its own). Then Redis stops.

With kombu's own Redis transport the ``close()`` raises AttributeError in
``_connparams`` (the worker's "Unrecoverable error"): the test says so, so that a kombu
that fixes it shows that config/broker.py can go. With ours it closes, and the unacked
task is handed out again once Redis is back.

Needs ``redis-server`` on the PATH (a private one on a free port).
"""

from __future__ import annotations

import shutil

import pytest
from kombu import Connection, Consumer, Exchange, Queue
from kombu.common import ignore_errors

from config.broker import Transport
from tests.integration.private_redis import Redis

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server on the PATH"
)

TASKS = Queue("tasks", Exchange("tasks"), "tasks")
MAILBOX = Queue("worker.pidbox", Exchange("celery.pidbox", "fanout"), auto_delete=True)


def _worker_holding_a_task(url: str, transport) -> tuple[Connection, list]:
    """A connection in a worker's state: a task taken, not acked, a BRPOP waiting."""
    connection = Connection(url, transport=transport, transport_options={"visibility_timeout": 1})
    with connection.Producer() as producer:
        producer.publish({"task": 1}, exchange=TASKS.exchange, routing_key="tasks", declare=[TASKS])
    taken = []
    tasks = connection.Consumer(TASKS, callbacks=[lambda body, m: taken.append(m)], accept=["json"])
    tasks.qos(prefetch_count=3)
    tasks.consume()
    mailbox = Consumer(connection.channel(), [MAILBOX], accept=["json"])
    mailbox.consume()
    connection.drain_events(timeout=5)  # the task
    for _ in range(20):  # nothing more: a BRPOP stays waiting (Redis ends one after 1 s)
        try:
            connection.drain_events(timeout=0.2)
        except TimeoutError:
            pass
        if connection.default_channel._in_poll:
            break
    assert len(taken) == 1 and not taken[0].acknowledged
    assert connection.default_channel._in_poll
    return connection, taken


def _consumer_connection_lost(connection: Connection) -> None:
    """Celery's consumer on a connection error: collect, then close (connection errors ignored)."""
    try:
        connection.collect(socket_timeout=5)
    except Exception:
        pass
    ignore_errors(connection, connection.close)


def test_kombus_redis_transport_dies_closing_a_channel_that_holds_an_unacked_task(tmp_path):
    redis = Redis(tmp_path)
    redis.start()
    try:
        connection, _ = _worker_holding_a_task(redis.url, None)
        redis.stop()
        with pytest.raises(AttributeError, match="hostname"):
            _consumer_connection_lost(connection)
    finally:
        redis.stop()


def test_our_transport_closes_and_the_task_is_handed_out_again_after_the_restart(tmp_path):
    redis = Redis(tmp_path)
    redis.start()
    try:
        connection, _ = _worker_holding_a_task(redis.url, Transport)
        redis.stop()
        _consumer_connection_lost(connection)  # no AttributeError: the worker lives on
        redis.start()  # the append-only file kept the unacked task
        again = Connection(
            redis.url, transport=Transport, transport_options={"visibility_timeout": 1}
        )
        with again:
            got = []
            consumer = again.Consumer(
                TASKS, callbacks=[lambda body, m: got.append(body)], accept=["json"]
            )
            with consumer:
                for _ in range(40):  # restored after the visibility timeout (1 s)
                    try:
                        again.drain_events(timeout=0.25)
                    except TimeoutError:
                        pass
                    if got:
                        break
            assert got == [{"task": 1}]
    finally:
        redis.stop()
