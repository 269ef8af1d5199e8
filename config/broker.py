"""Celery's Redis broker transport, with a channel that survives its own close when Redis
is gone (``CELERY_BROKER_TRANSPORT`` when ``REDIS_URL`` is set).

Why: when a worker loses Redis, Celery's consumer first ``collect()``\\ s the broker
connection, then ``close()``\\ s it (``Consumer.on_connection_error_after_connected``,
celery 5.7). kombu's Redis ``Channel.close`` starts by reading the reply of the ``BRPOP``
it left waiting for more tasks; with Redis down that read raises a connection error, which
aborts the close before the channel is marked closed. ``collect()`` ignores the error and
detaches the transport from the connection (``transport.client = None``). The ``close()``
that follows closes the same channel again; this time it gets past the read and gives its
unacked messages back, which needs a new connection pool built from ``transport.client``:
``AttributeError: 'NoneType' object has no attribute 'hostname'`` (in ``_connparams``).
Celery ignores only connection errors there, so the worker dies ("Unrecoverable error").

It happens whenever Redis goes away while a worker holds an unacked (``acks_late``) task
and waits for more: a worker whose slots are not all busy. Judge calls travel in batches
(:func:`judges.judging.judge_batch`), a few long tasks per worker, so that is the usual
state of a worker during a run; with one short task per call the slots were mostly full
and the consumer seldom waited on ``BRPOP``.

The fix: a connection error on that read means the reply is lost with the connection, so
:meth:`Channel.close` goes on closing. The channel is then closed once, while the transport
is still attached; giving the unacked messages back fails with a connection error (Redis is
down), which Celery ignores. They stay in Redis's unacked set, and a worker hands them out
again after ``CELERY_VISIBILITY_TIMEOUT`` (the tasks are idempotent).
"""

from __future__ import annotations

from kombu.transport import redis


class Channel(redis.Channel):
    def close(self):
        if self._in_poll:
            try:
                self._brpop_read()  # the reply of the BRPOP left waiting, if Redis sent one
            except redis.Empty:
                pass
            except self.connection_errors:
                pass  # the connection is gone, and the reply with it: close the rest
        super().close()


class Transport(redis.Transport):
    Channel = Channel
