"""The engine set-up of SQLite, the embedded default. Imported only for an SQLite engine
(app/storage/engine.py), so that PostgreSQL's workers do without the sqlite3 module.

SQLite is served by several gunicorn workers at once, so:

* WAL mode lets readers run beside the one writer;
* a writer waits for the lock instead of failing at once, for ``busy_timeout_seconds`` at
  most (the writers' queue and SQLite's busy timeout together: connection.py);
* a durable engine (production) syncs every commit (``synchronous = FULL``): a change that
  was answered survives a power loss. Otherwise (development) ``NORMAL``, which with WAL
  keeps the database consistent after a crash and skips an fsync per commit, but may lose
  the last commits on power failure;
* a write transaction begins with ``BEGIN IMMEDIATE`` after queueing on the writers' lock
  (connection.py, writer_lock.py); reads keep plain deferred transactions;
* the WAL is checkpointed for the writers, on a thread of each process (checkpoints.py).
"""

from __future__ import annotations

from sqlalchemy import Engine, event

from .checkpoints import WAL_SIZE_LIMIT_BYTES
from .connection import QueuedWriterConnection, begin_transaction
from .writer_lock import WriterLock

__all__ = ["begin_transaction", "configure_sqlite"]


def configure_sqlite(
    engine: Engine, busy_timeout_seconds: float, writes_option: str, *, durable: bool = False
) -> None:
    """The connection settings, the writers' queue and the BEGIN of ``engine``. A
    transaction begun through SQLAlchemy writes when its connection carries the execution
    option ``writes_option`` (app/storage/work.py)."""
    synchronous = "FULL" if durable else "NORMAL"
    database = engine.url.database
    on_disk = database not in (None, "", ":memory:")

    @event.listens_for(engine, "do_connect")
    def with_writer_queue(dialect, connection_record, cargs, cparams):
        cparams["factory"] = QueuedWriterConnection

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        # Let the service, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if isinstance(dbapi_connection, QueuedWriterConnection):
            dbapi_connection.write_lock_timeout = busy_timeout_seconds
        if on_disk:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            if isinstance(dbapi_connection, QueuedWriterConnection):
                dbapi_connection.writer_lock = WriterLock(database)
                # Checkpoints are made for the writers (QueuedWriterConnection.commit).
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
                cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        writes = connection.get_execution_options().get(writes_option, False)
        begin_transaction(connection.connection.dbapi_connection, connection.dialect, writes)
