"""Engine set-up that depends on the database behind the service.

SQLite's (WAL mode, the writers' queue, checkpoints) is in app/sqlite.py, which is imported
only for an SQLite engine: a PostgreSQL deployment's workers load neither the sqlite3 module
nor SQLAlchemy's SQLite dialect (about 1.6 MB each).

PostgreSQL needs none of that: row locks and unique indexes do the work. Its connections
can go stale, though (a server restart, a network cut): a pooled connection that has been
idle for ``PING_AFTER_IDLE_SECONDS`` is checked with ``SELECT 1`` before a request gets it,
and replaced if that fails. One in steady use is not: it was working a moment ago, and a
check would cost a round trip per request. A connection that fails in use is discarded with
the rest of the pool (SQLAlchemy's disconnect handling) and that request gets 503.
"""

from __future__ import annotations

import time

from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

from .extensions import db

PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN = "nevisidm.checked_in"


def _configure_postgresql(engine: Engine) -> None:
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
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and tries another (or a new one).
            raise DisconnectionError("the pooled connection is gone") from error


def configure_engines(app: Flask) -> None:
    """Attach the per-dialect connection settings to the app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        from .sqlite import configure_sqlite

        configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT"])
    elif engine.dialect.name == "postgresql":
        _configure_postgresql(engine)
