"""SQLite's connections: in the writers' queue for a write transaction, and checkpointed
for the writers.

A write transaction opens with ``BEGIN IMMEDIATE``: a deferred transaction that reads first
and writes later cannot wait for the lock (SQLite reports "database is locked" at once when
its snapshot is stale), so it takes the write lock before its first read. Before that, it
queues on the writers' lock (writer_lock.py). Read transactions are plain deferred ones.
Whether a transaction writes is said by the caller (app/storage/work.py), never guessed.
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

    def lock_for_writing(self) -> None:
        if self.writer_lock is not None:
            self.writer_lock.acquire()

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
    if queued:
        dbapi_connection.lock_for_writing()
    try:
        dbapi_connection.execute(statement)
    except BaseException as error:
        if queued:
            dbapi_connection.unlock_for_writing()
        if isinstance(error, sqlite3.Error):
            raise DBAPIError.instance(
                statement, None, error, sqlite3.Error, dialect=dialect
            ) from error
        raise
