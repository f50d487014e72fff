"""SQLite's connections: in the writers' queue for a write transaction, and checkpointed
for the writers.

A write transaction opens with ``BEGIN IMMEDIATE``: a deferred transaction that reads first
and writes later cannot wait for the lock (SQLite reports "database is locked" at once when
its snapshot is stale), so it takes the write lock before its first read. Before that, it
queues on the writers' lock (writer_lock.py). Read transactions are plain deferred ones.
Whether a transaction writes is said by the caller (app/storage/work.py), never guessed.

A writer waits ``write_lock_timeout`` seconds at most for the write lock: the writers' queue
and SQLite's own lock (its busy timeout) together. A writer that queued is given what is
left of it for the BEGIN; one that did not has it all. Either way the wait ends in
"database is locked" (OperationalError: 503).
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError

from . import checkpoints
from .writer_lock import WriterLock


class QueuedWriterConnection(sqlite3.Connection):
    """An SQLite connection that holds the writers' queue from ``lock_for_writing`` until
        its transaction ends (commit, rollback or close), and hands a checkpoint of the WAL to
        the process's checkpoint thread every ``CHECKPOINT_EVERY_COMMITS`` commits that wrote (of
    all its connections to the database)."""

    writer_lock: WriterLock | None = None  # for a database on disk
    write_lock_timeout = 0.0  # seconds; SQLite's busy timeout as set on connecting

    def lock_for_writing(self) -> float:
        """Queue for writing; the seconds left of ``write_lock_timeout`` for SQLite's lock."""
        if self.writer_lock is None:
            return self.write_lock_timeout
        return self.write_lock_timeout - self.writer_lock.acquire(self.write_lock_timeout)

    def set_busy_timeout(self, seconds: float) -> None:
        # SQLite waits at least a millisecond: 0 would mean "do not wait at all".
        self.execute(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")

    def unlock_for_writing(self) -> None:
        if self.writer_lock is not None:
            self.writer_lock.release()

    def commit(self) -> None:
        wrote = self.writer_lock is not None and self.writer_lock.held
        try:
            super().commit()
        finally:
            self.unlock_for_writing()
        if wrote and checkpoints.CHECKPOINTS.checkpoint_due(self.writer_lock.database_path):
            self._checkpoint()

    def _checkpoint(self) -> Future | None:
        """Hand the database's checkpoint to the process's checkpoint thread. The commit is
        done: a thread that cannot start, or an interpreter shutting down, leaves the
        frames to a later checkpoint instead of failing it."""
        try:
            return checkpoints.CHECKPOINTS.request(self.writer_lock.database_path)
        except RuntimeError:
            return None

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.unlock_for_writing()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.writer_lock is not None:
                self.writer_lock.close()


def begin_transaction(dbapi_connection: sqlite3.Connection, dialect: Dialect, writes: bool) -> None:
    """Open the transaction of an SQLite connection: ``BEGIN IMMEDIATE`` in the writers'
    queue when it ``writes``, a plain ``BEGIN`` otherwise. Run on the driver's connection:
    SQLAlchemy has nothing to add to a BEGIN but its error types, which the service's error
    handling knows (a locked database: 503)."""
    statement = "BEGIN IMMEDIATE" if writes else "BEGIN"
    queued = writes and isinstance(dbapi_connection, QueuedWriterConnection)
    try:
        if not queued:
            dbapi_connection.execute(statement)
            return
        left = dbapi_connection.lock_for_writing()
        if left >= dbapi_connection.write_lock_timeout:
            dbapi_connection.execute(statement)
            return
        # Queued for a while: SQLite's own wait gets what is left of the timeout.
        dbapi_connection.set_busy_timeout(left)
        try:
            dbapi_connection.execute(statement)
        finally:
            dbapi_connection.set_busy_timeout(dbapi_connection.write_lock_timeout)
    except BaseException as error:
        if queued:
            dbapi_connection.unlock_for_writing()
        if isinstance(error, sqlite3.Error):
            raise DBAPIError.instance(
                statement, None, error, sqlite3.Error, dialect=dialect
            ) from error
        raise
