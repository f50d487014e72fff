"""The engine set-up of PostgreSQL. Imported only for a PostgreSQL engine (engine.py), so that
SQLite's workers do without psycopg.

Every wait on the server has a limit, so that a request ends in 503 whatever the database
does:

* connecting: libpq's ``connect_timeout`` (engine.py);
* a statement, and a lock wait, on a server that answers: the server's own
  ``statement_timeout`` and ``lock_timeout``, set on each connection (engine.py); the
  statement is cancelled and the connection stays usable;
* a server that has stalled (connections open, nothing answered): the server's limits
  cannot fire, and TCP keepalives are answered by its kernel. The client gives up on each
  wait for an answer ``answer_within`` seconds after it began (``DeadlineConnection``):
  the server's limit plus a grace period, so that a server that answers cancels first. The
  connection is then closed, and the pool replaces it and the rest of its connections.

A pooled connection that has been idle for ``PING_AFTER_IDLE_SECONDS`` is checked with
``SELECT 1`` before a request gets it, and replaced if that fails (a server restart, a
network cut). One in steady use is not: it was working a moment ago, and a check would
cost a round trip per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

PING_AFTER_IDLE_SECONDS = 1.0
# The answer to a ping is awaited this long at most: a ping that goes unanswered, and the
# new connection the pool then makes (connect_timeout), stay within a request's bound.
PING_ANSWER_SECONDS = 2.0
# After a wait went unanswered, the engine's waits that begin within the next
# ``answer_within`` seconds are given this long at most: a request that held two
# connections (its own and the ORM session's) waits out a stalled server once, not twice.
# A server that answers again answers within it.
STALLED_ANSWER_SECONDS = 1.0
_CHECKED_IN = "nevisidm.checked_in"


class _Stall:
    """When a wait for the server last went unanswered, on any connection of one engine."""

    def __init__(self) -> None:
        self.last = -math.inf


class DeadlineConnection(psycopg.Connection):
    """A psycopg connection whose every wait for the server ends after ``answer_within``
    seconds (None: no limit), as ``OperationalError`` on a closed connection.

    All of a connection's round trips (execute, fetch, commit, rollback) wait for the server
    in ``Connection.wait``, which takes a timeout since psycopg 3.3; connecting does not
    (``connect_timeout`` bounds it). ``tests/test_faults.py`` stalls a server under it."""

    answer_within: float | None = None
    stall = _Stall()  # the engine's (configure_postgresql)

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        limit = self.answer_within
        if limit is None or kwargs.get("timeout") is not None:
            return super().wait(gen, *args, **kwargs)
        if time.monotonic() - self.stall.last < limit:
            limit = min(limit, STALLED_ANSWER_SECONDS)
        kwargs["timeout"] = limit
        try:
            return super().wait(gen, *args, **kwargs)
        except errors._WaitTimeout:
            self.stall.last = time.monotonic()
            # The exchange with the server stopped half-way: the connection cannot be used
            # again. Closed, it counts as disconnected, and the pool discards it.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {limit:g} s"
            ) from None

    @contextmanager
    def answering_within(self, seconds: float | None) -> Iterator[None]:
        """Wait ``seconds`` at most for each answer in the block (None: no limit)."""
        saved, self.answer_within = self.answer_within, seconds
        try:
            yield
        finally:
            self.answer_within = saved


def configure_postgresql(engine: Engine, answer_within: float) -> None:
    """Connections that wait ``answer_within`` seconds at most for each answer, and the
    check of a connection that has been idle in the pool."""

    stall = _Stall()

    def connect(*cargs: Any, **cparams: Any) -> DeadlineConnection:
        connection = DeadlineConnection.connect(*cargs, **cparams)
        connection.answer_within = answer_within
        connection.stall = stall
        return connection

    # The dialect's own connect (psycopg.connect), made with the service's class; "do_connect"
    # listeners (tests simulate an unreachable server with one) still come first.
    engine.dialect.connect = connect

    @event.listens_for(engine, "checkin")
    def remember_checkin(dbapi_connection, connection_record):
        if connection_record is not None:
            connection_record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, connection_record, connection_proxy):
        checked_in = connection_record.info.get(_CHECKED_IN)
        # A new connection has just been made, one checked in a moment ago has just worked.
        if checked_in is None or time.monotonic() - checked_in < PING_AFTER_IDLE_SECONDS:
            return
        limit = min(dbapi_connection.answer_within or math.inf, PING_ANSWER_SECONDS)
        try:
            with dbapi_connection.answering_within(limit), dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                dbapi_connection.rollback()
        except psycopg.Error as error:
            # The pool discards this connection and tries another (or a new one).
            raise DisconnectionError("the pooled connection is gone") from error


def lift_statement_limits(dbapi_connection: DeadlineConnection) -> None:
    """No statement limit on this connection any more, on the server or the client
    (migrations: building an index over a large table may take minutes). Lock waits keep
    theirs: a migration that would queue behind a long transaction, and every request
    behind it, fails instead. Committed at once; the caller discards the connection after
    use (``engine.migration_connection``)."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
    dbapi_connection.commit()
    dbapi_connection.answer_within = None
