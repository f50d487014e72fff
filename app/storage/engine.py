"""The engine: which database, how to connect to it, and the set-up that depends on it.

SQLite's (WAL mode, the writers' queue, checkpoints) is in the ``sqlite`` sub-package,
imported only for an SQLite engine: a PostgreSQL deployment's workers load neither the
sqlite3 module nor SQLAlchemy's SQLite dialect.

PostgreSQL needs none of that: row locks and unique indexes do the work. Its connections
can go stale, though (a server restart, a network cut): a pooled connection that has been
idle for ``PING_AFTER_IDLE_SECONDS`` is checked with ``SELECT 1`` before a request gets it,
and replaced if that fails. One in steady use is not: it was working a moment ago, and a
check would cost a round trip per request. A connection that fails in use is discarded with
the rest of the pool (SQLAlchemy's disconnect handling) and that request gets 503.
"""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from ..config import normalise_database_url
from ..extensions import db

# The execution option that says a transaction begun through SQLAlchemy will write
# (app/storage/work.py): SQLite then begins it in the writers' queue.
WRITES_OPTION = "nevisidm_writes"

PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN = "nevisidm.checked_in"

# libpq settings that bound how long a request can wait on an unreachable database.
POSTGRESQL_CONNECT_ARGS = {
    "connect_timeout": 5,  # seconds to establish a connection
    # A connection whose sent data stays unacknowledged this long is dead (a black-holed
    # network): the request gets its 503 instead of waiting for the kernel's retries.
    "tcp_user_timeout": 10_000,  # milliseconds
    # An idle connection (waiting for a reply) probes its peer: silent after 5 s, then
    # every 2 s, dead after 3 missed probes.
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def configure_database(app: Flask) -> None:
    """The engine's URL and options, from ``DATABASE_URL`` (an SQLite file in the instance
    folder when unset)."""
    url = app.config["DATABASE_URL"]
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'nevisidm.db'}"
    url = normalise_database_url(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    if url.startswith("postgresql"):
        # Fail fast (503) instead of hanging when the database cannot be reached. Each
        # setting can be overridden by a parameter of the same name in DATABASE_URL.
        given = make_url(url).query
        connect_args = dict(options.get("connect_args", {}))
        for name, value in POSTGRESQL_CONNECT_ARGS.items():
            if name not in given:
                connect_args.setdefault(name, value)
        options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


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


def configure_engine(app: Flask) -> None:
    """Attach the per-dialect connection settings to the app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        from .sqlite import configure_sqlite

        configure_sqlite(engine, app.config["SQLITE_BUSY_TIMEOUT"], WRITES_OPTION)
    elif engine.dialect.name == "postgresql":
        _configure_postgresql(engine)
