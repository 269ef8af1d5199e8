"""Two connections of one process at once, as the worker threads, the pages and the tests
use the database: a writer waits for another writer's commit (SQLite: busy_timeout on the
write lock its BEGIN IMMEDIATE takes; PostgreSQL: row locks), and a reader reads the last
commit while a writer writes (WAL; MVCC).

Django's default SQLite test database, shared-cache and in memory, refused both at once
with "database table is locked" (a table lock, which SQLite never waits for): worker
threads failed their writes and runs were left at step "fit" (config/settings.py).
"""

import threading

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from arena.models import BoardState

pytestmark = pytest.mark.django_db(transaction=True)


class HeldWrite:
    """A write transaction on a connection of another thread, held until released."""

    def __init__(self, scope: str):
        self.holding, self.release = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._hold, args=(scope,))

    def _hold(self, scope: str) -> None:
        try:
            with transaction.atomic():
                BoardState.objects.create(scope=scope, requested_at=timezone.now())
                self.holding.set()
                self.release.wait(30)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
        finally:
            self.holding.set()
            connections.close_all()  # this thread's connection

    def __enter__(self) -> "HeldWrite":
        self.thread.start()
        assert self.holding.wait(30)
        assert not self.errors, self.errors
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(30)
        assert not self.errors, self.errors


def scopes() -> set[str]:
    return set(BoardState.objects.values_list("scope", flat=True))


def test_a_reader_reads_the_last_commit_while_another_connection_writes():
    BoardState.objects.create(scope="committed", requested_at=timezone.now())
    with HeldWrite("uncommitted"):
        assert scopes() == {"committed"}  # shared cache: "database table is locked"
    assert scopes() == {"committed", "uncommitted"}


def test_a_writer_waits_for_another_connection_s_commit():
    with HeldWrite("first") as held:
        release = threading.Timer(0.3, held.release.set)

        def release_soon(execute, sql, params, many, context):
            # This thread's first statement (on SQLite its BEGIN IMMEDIATE, which then waits
            # for the other writer's commit) starts the clock that releases the other writer.
            if not release.is_alive() and not held.release.is_set():
                release.start()
            return execute(sql, params, many, context)

        with connection.execute_wrapper(release_soon):
            with transaction.atomic():  # shared cache: "database table is locked" at once
                BoardState.objects.create(scope="second", requested_at=timezone.now())
        release.join(30)
    assert scopes() == {"first", "second"}
