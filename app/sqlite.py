"""The engine set-up of SQLite, the embedded default. Imported only for an SQLite engine
(app/database.py), so that PostgreSQL's workers do without the sqlite3 module.

SQLite is served by several gunicorn workers at once, so:

* WAL mode lets readers run beside the one writer;
* a busy timeout makes a writer wait for the lock instead of failing at once;
* write requests open their transaction with ``BEGIN IMMEDIATE``. A deferred transaction
  that reads first and writes later cannot wait for the lock (SQLite reports "database is
  locked" at once when its snapshot is stale), so a write transaction takes the write lock
  before its first read. Reads keep plain deferred transactions. (The create requests read
  before their transaction, each read by itself, and begin it with their first INSERT:
  app/repositories/transactions.py);
* writers queue on a file lock (``flock``) beside the database before ``BEGIN IMMEDIATE``.
  SQLite's busy timeout waits by sleeping 1, 2, 5, 10, ... 100 ms between tries, so under
  steady writes most of a writer's time went to sleeping past the moment the lock came
  free; the kernel hands a file lock to the next waiter as it is released. The file lock
  only orders writers of this service: SQLite's own lock still guards the data, and any
  other writer (a ``sqlite3`` shell) is waited for through the busy timeout as before;
* the WAL is checkpointed for the writers, every ``CHECKPOINT_EVERY_COMMITS`` commits of a
  connection, after they have released the file lock, by a thread of the process's own
  (``CHECKPOINTS``). SQLite's automatic checkpoint (every 1000 pages) runs inside the
  COMMIT that crosses the mark, so the copying and its fsync kept every other writer
  waiting for the lock. A checkpoint is mostly the wait for its fsync (about 2.3 of
  2.6 ms on this project's machines), during which the sqlite3 module lets other threads
  run: on a thread of its own, the request that crossed the mark answers without it and
  the worker serves the next request meanwhile. Once the WAL holds
  ``WAL_START_OVER_FRAMES``, a last copy is made in the writers' queue, so that the WAL
  starts over instead of growing (``checkpoint_wal``).
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import quote

from flask import has_request_context, request
from sqlalchemy import Dialect, Engine, event
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WRITER_LOCK_SUFFIX = "-writer.lock"
# A ticket's commit adds about 15 pages to the WAL: a checkpoint every 64 commits of each
# connection keeps the WAL near the size SQLite's default (1000 pages) keeps it at.
CHECKPOINT_EVERY_COMMITS = 64
# The WAL is made to start over once it holds this many frames (16 MB of 4 KB pages):
# checkpoint_wal.
WAL_START_OVER_FRAMES = 4096
# The WAL file is cut back to this size when it starts over, after a long read let it grow.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def _begin_statement() -> str:
    if has_request_context() and request._get_current_object().method not in WRITE_METHODS:
        return "BEGIN"
    return "BEGIN IMMEDIATE"


class QueuedWriterConnection(sqlite3.Connection):
    """An SQLite connection that holds the writers' file lock from ``lock_for_writing``
    until its transaction ends (commit, rollback or close).

    Each connection opens the lock file on its own, so connections exclude each other
    whether they live in one process (threads) or in several (gunicorn workers).
    """

    database_path: str | None = None  # on disk; the writers' lock file is beside it
    _writer_lock_fd: int | None = None
    _holds_writer_lock = False
    _commits_since_checkpoint = 0

    def lock_for_writing(self) -> None:
        """Wait until no other writer of this service is in a transaction. Its wait is
        bounded by that writer's own statements (each under the busy timeout) and, under
        gunicorn, by the worker timeout."""
        if self.database_path is None or self._holds_writer_lock:
            return
        if self._writer_lock_fd is None:
            self._writer_lock_fd = os.open(
                self.database_path + WRITER_LOCK_SUFFIX,
                os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC,
                0o644,
            )
        fcntl.flock(self._writer_lock_fd, fcntl.LOCK_EX)
        self._holds_writer_lock = True

    def unlock_for_writing(self) -> None:
        if self._holds_writer_lock:
            self._holds_writer_lock = False
            fcntl.flock(self._writer_lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        wrote = self._holds_writer_lock
        try:
            super().commit()
        finally:
            self.unlock_for_writing()
        if wrote:
            self._commits_since_checkpoint += 1
            if self._commits_since_checkpoint >= CHECKPOINT_EVERY_COMMITS:
                self._commits_since_checkpoint = 0
                self._checkpoint()

    def _checkpoint(self) -> Future | None:
        """Hand the database's checkpoint to the process's checkpoint thread. The commit is
        done: a thread that cannot start, or an interpreter shutting down, leaves the
        frames to a later checkpoint instead of failing it."""
        if self.database_path is None:
            return None
        try:
            return CHECKPOINTS.request(self.database_path)
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
            self.unlock_for_writing()
            if self._writer_lock_fd is not None:
                os.close(self._writer_lock_fd)
                self._writer_lock_fd = None


def checkpoint_wal(path: str) -> tuple[int, int, int] | None:
    """Checkpoint the WAL of the database at ``path`` (PASSIVE: without waiting for
    anyone), on a connection of its own (``mode=rw``: a database removed meanwhile is not
    created again).

    The copy runs beside the writers. The WAL starts over only at a commit that finds
    every frame copied, which commits made during the copy prevent: under steady writes
    it grew without end (about 15 MB per 1,000 ticket creates from two processes). So once
    it holds ``WAL_START_OVER_FRAMES``, a second copy follows in the writers' queue, of
    what was committed during the first and while it waited for the queue, with its two
    fsyncs (the WAL's, the database's). Writers wait for that second copy alone, about once
    per thousand creates rather than at every checkpoint. The next commit then starts the
    WAL over, unless a read that began before the copy ended is still open: then it goes
    on appending, and the next checkpoint past the mark tries again.

    Returns SQLite's (busy, WAL frames, frames checkpointed) of the last copy; busy when
    another connection was checkpointing, which then copies the frames itself. None when
    it failed, which leaves the frames to the next checkpoint (the commits are done
    already) and is logged, at most once a minute per process."""
    try:
        connection = sqlite3.connect(
            f"file://{quote(os.path.abspath(path))}?mode=rw",
            uri=True,
            isolation_level=None,
            factory=QueuedWriterConnection,
        )
    except sqlite3.Error as error:
        _checkpoint_failed(path, error)
        return None
    connection.database_path = path
    try:
        copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied[0] or copied[1] < WAL_START_OVER_FRAMES:
            return copied
        connection.lock_for_writing()
        return connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except (sqlite3.Error, OSError) as error:
        _checkpoint_failed(path, error)
        return None
    finally:
        connection.close()  # and out of the writers' queue


_last_failure_logged = -math.inf


def _checkpoint_failed(path: str, error: Exception) -> None:
    # With SQLite's own checkpoints off, checkpoints that keep failing let the WAL grow:
    # say so, without a line per commit.
    global _last_failure_logged
    now = time.monotonic()
    if now - _last_failure_logged >= 60:
        _last_failure_logged = now
        log.warning("SQLite WAL checkpoint of %s failed: %s", path, error)


class Checkpoints:
    """This process's WAL checkpoints, run one at a time on a thread of their own. Per
    database, at most one waits besides the one running: a request while one waits is
    that one, and a request while one runs queues the next, for the commits the running
    one may not see. The thread starts with the first checkpoint, so a gunicorn worker
    starts its own; a forked child forgets its parent's. The interpreter waits for the
    running and the waiting ones at exit (within gunicorn's graceful timeout, after which
    the worker is killed: a checkpoint cut short is redone by the next)."""

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._waiting: dict[str, Future] = {}

    def request(self, path: str) -> Future:
        with self._lock:
            waiting = self._waiting.get(path)
            if waiting is not None and not waiting.running() and not waiting.done():
                return waiting
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="sqlite-checkpoint"
                )
            future = self._executor.submit(checkpoint_wal, path)
            self._waiting = {
                database: queued
                for database, queued in self._waiting.items()
                if not queued.running() and not queued.done()
            }
            self._waiting[path] = future
            return future


CHECKPOINTS = Checkpoints()


def configure_sqlite(engine: Engine, busy_timeout_seconds: float) -> None:
    """The connection settings, the writers' queue and the BEGIN of the app's engine."""
    on_disk = engine.url.database not in (None, "", ":memory:")

    @event.listens_for(engine, "do_connect")
    def with_writer_queue(dialect, connection_record, cargs, cparams):
        cparams["factory"] = QueuedWriterConnection

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if on_disk:
            cursor.execute("PRAGMA journal_mode = WAL")
            # With WAL, NORMAL keeps the database consistent after a crash and skips an
            # fsync per commit; the last commits may be lost on power failure.
            cursor.execute("PRAGMA synchronous = NORMAL")
            if isinstance(dbapi_connection, QueuedWriterConnection):
                dbapi_connection.database_path = engine.url.database
                # Checkpoints are made for the writers (QueuedWriterConnection.commit).
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
                cursor.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        begin_sqlite_transaction(connection.connection.dbapi_connection, connection.dialect)


def begin_sqlite_transaction(dbapi_connection: sqlite3.Connection, dialect: Dialect) -> None:
    """Open the transaction of an SQLite connection: ``BEGIN IMMEDIATE`` in the writers'
    queue for a write request, a plain ``BEGIN`` otherwise. Run on the driver's connection:
    SQLAlchemy has nothing to add to a BEGIN but its error types, which the service's error
    handling knows (a locked database: 503)."""
    statement = _begin_statement()
    queued = statement == "BEGIN IMMEDIATE" and isinstance(dbapi_connection, QueuedWriterConnection)
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
