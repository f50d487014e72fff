"""Engine set-up that depends on the database behind the service.

SQLite is the embedded default and is served by several gunicorn workers at once, so:

* WAL mode lets readers run beside the one writer;
* a busy timeout makes a writer wait for the lock instead of failing at once;
* write requests open their transaction with ``BEGIN IMMEDIATE``. A deferred transaction
  that reads first and writes later cannot wait for the lock (SQLite reports "database is
  locked" at once when its snapshot is stale), so a request that will write takes the
  write lock before its first read. Reads keep plain deferred transactions.

PostgreSQL needs nothing of this: row locks and unique indexes do the work.
"""

from __future__ import annotations

from flask import Flask, has_request_context, request
from sqlalchemy import Engine, event

from .extensions import db

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _begin_statement() -> str:
    if has_request_context() and request.method not in WRITE_METHODS:
        return "BEGIN"
    return "BEGIN IMMEDIATE"


def _configure_sqlite(engine: Engine, busy_timeout_seconds: float) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL keeps the database consistent after a crash and skips an
            # fsync per commit; the last commits may be lost on power failure.
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql(_begin_statement())


def configure_engines(app: Flask) -> None:
    """Attach the per-dialect connection settings to the app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT"])
