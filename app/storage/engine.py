"""The engine: which database, how to connect to it, and the set-up that depends on it.

Each dialect's set-up is in a module of its own, imported only for an engine of that dialect:
SQLite's (WAL, the writers' queue, checkpoints) in ``sqlite/``, PostgreSQL's (a deadline on
every wait for the server, the check of idle connections) in ``postgresql.py``. A PostgreSQL
deployment's workers load neither the sqlite3 module nor SQLAlchemy's SQLite dialect.

The files of an SQLite database (the database, its -wal and -shm files, which SQLite
creates with the database's mode, and the writers' lock) are readable by their owner alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from ..config import ANSWER_GRACE_SECONDS, check_time_limits, normalise_database_url
from ..extensions import db

# The execution option that says a transaction begun through SQLAlchemy will write
# (app/storage/work.py): SQLite then begins it in the writers' queue.
WRITES_OPTION = "nevisidm_writes"

# Files and folders the service creates: its owner's alone.
FILE_MODE = 0o600
FOLDER_MODE = 0o700

# libpq settings that bound how long a request can wait on an unreachable database.
POSTGRESQL_CONNECT_ARGS = {
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
    folder when unset), and the time limits on the database (app/config.py)."""
    check_time_limits(app.config)
    url = app.config["DATABASE_URL"]
    if not url:
        Path(app.instance_path).mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'nevisidm.db'}"
    url = normalise_database_url(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    database = make_url(url).database
    if url.startswith("postgresql"):
        options["connect_args"] = postgresql_connect_args(
            app.config, make_url(url).query, options.get("connect_args", {})
        )
    elif database and database != ":memory:" and not database.startswith("file:"):
        create_private_file(database)
    if url.startswith("postgresql") or (database and database != ":memory:"):
        # A gunicorn worker serves several requests at once, each with up to two
        # connections, so the pool never runs dry; were it to, a request would wait for a
        # connection as long as for a new one, or for SQLite's write lock.
        options.setdefault("pool_size", app.config["DATABASE_POOL_SIZE"])
        options.setdefault("max_overflow", 0)
        wait = "POSTGRES_CONNECT_TIMEOUT" if url.startswith("postgresql") else "SQLITE_BUSY_TIMEOUT"
        options.setdefault("pool_timeout", app.config[wait])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def postgresql_connect_args(config, query, given: dict) -> dict:
    """libpq's connection settings: fail fast (503) instead of hanging when the database
    cannot be reached, and the server's limits on statements and lock waits. A setting of
    the same name in DATABASE_URL wins over the service's, and so does an option the URL
    sets with ``options=-c...`` (it comes after the service's)."""
    connect_args = dict(given)
    settings = {
        # Whole seconds; psycopg waits 2 s at least.
        "connect_timeout": max(2, round(config["POSTGRES_CONNECT_TIMEOUT"])),
        **POSTGRESQL_CONNECT_ARGS,
    }
    for name, value in settings.items():
        if name not in query:
            connect_args.setdefault(name, value)
    limits = (
        f"-c statement_timeout={round(config['POSTGRES_STATEMENT_TIMEOUT'] * 1000)} "
        f"-c lock_timeout={round(config['POSTGRES_LOCK_TIMEOUT'] * 1000)}"
    )
    # connect_args replace the URL's parameters of the same name: keep the URL's options.
    theirs = connect_args.get("options", query.get("options"))
    if isinstance(theirs, tuple):
        theirs = " ".join(theirs)
    connect_args["options"] = f"{limits} {theirs}" if theirs else limits
    return connect_args


def create_private_file(path: str) -> None:
    """Create the empty file at ``path`` (an empty file is an empty SQLite database) readable
    by its owner alone, unless it exists. SQLite would create it with mode 0644."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        pass
    except OSError:
        # A folder that does not exist or cannot be written: SQLite's own error says so
        # at the first connection.
        pass


def configure_engine(app: Flask) -> None:
    """Attach the per-dialect connection settings to the app's engine."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        from .sqlite import configure_sqlite

        configure_sqlite(
            engine,
            app.config["SQLITE_BUSY_TIMEOUT"],
            WRITES_OPTION,
            # Production syncs every commit, so that a 201 or 204 survives a power loss.
            durable=app.config["APP_ENV"] == "production",
        )
    elif engine.dialect.name == "postgresql":
        from .postgresql import configure_postgresql

        configure_postgresql(
            engine, app.config["POSTGRES_STATEMENT_TIMEOUT"] + ANSWER_GRACE_SECONDS
        )


@contextmanager
def migration_connection(connection: Connection) -> Iterator[Connection]:
    """``connection`` for a migration run: no statement limit on PostgreSQL (a migration may
    build an index over a large table). It is discarded afterwards, its limit lifted with
    it."""
    if connection.dialect.name != "postgresql":
        yield connection
        return
    from .postgresql import lift_statement_limits

    lift_statement_limits(connection.connection.dbapi_connection)
    try:
        yield connection
    finally:
        connection.invalidate()
