"""The writers' queue of an SQLite database: a file lock (``flock``) beside it.

SQLite's busy timeout waits for its write lock by sleeping 1, 2, 5, 10, ... 100 ms between
tries, so under steady writes most of a writer's time went to sleeping past the moment the
lock came free; the kernel hands a file lock to a waiter as it is released. The file lock
only orders the writers of this service: SQLite's own lock still guards the data, and any
other writer (a ``sqlite3`` shell) is waited for through the busy timeout as before.

``flock`` has no timeout. A writer first tries without waiting, which is all an uncontended
write costs. When another writer holds the lock, the blocking ``flock`` runs on a thread of
its own while the writer waits for it at most its timeout: the wait stays in the kernel's
queue, and a writer that gives up leaves the thread to release the lock as soon as it gets
it. A connection has one such thread at most: its next write takes the pending wait over.

The lock file is readable by its owner alone: anyone who can open it can hold the lock.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time

WRITER_LOCK_SUFFIX = "-writer.lock"
WRITER_LOCK_MODE = 0o600


class WriterQueueTimeout(sqlite3.OperationalError):
    """Another writer held the writers' queue for longer than the wait allowed."""


class _Wait:
    """A blocking ``flock`` of the lock file, on a thread of its own, on a duplicate of the
    connection's descriptor: the same open file, so the lock it takes is the connection's,
    and the file stays open for it should the connection close meanwhile."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor = os.dup(descriptor)
        self._mutex = threading.Lock()
        self._ended = threading.Event()
        self._wanted = True
        self._kept = False  # it ended with the lock, for its writer
        self.failed: OSError | None = None
        threading.Thread(target=self._lock, name="sqlite-writer-queue", daemon=True).start()

    def _lock(self) -> None:
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX)
        except OSError as error:
            self.failed = error
        with self._mutex:
            if self.failed is None:
                if self._wanted:
                    self._kept = True
                else:
                    fcntl.flock(self._descriptor, fcntl.LOCK_UN)  # its writer gave up
            os.close(self._descriptor)
            self._ended.set()

    def wait(self, timeout: float) -> bool:
        """Whether the lock is the connection's within ``timeout`` seconds. If not, and
        the thread is still waiting, it releases the lock as soon as it gets it, unless
        ``wait`` is called again first."""
        with self._mutex:
            if not self._ended.is_set():
                self._wanted = True
        self._ended.wait(timeout)
        with self._mutex:
            if self._ended.is_set():
                kept, self._kept = self._kept, False
                return kept
            self._wanted = False
            return False

    def abandon(self) -> None:
        with self._mutex:
            self._wanted = False

    @property
    def pending(self) -> bool:
        return not self._ended.is_set()


class WriterLock:
    """The writers' queue of the database at ``database_path``, as one connection holds it.

    Each connection opens the lock file on its own, so connections exclude each other
    whether they live in one process (threads) or in several (gunicorn workers)."""

    def __init__(self, database_path: str) -> None:
        self.database_path = database_path
        self._fd: int | None = None
        self._wait: _Wait | None = None
        self.held = False

    def acquire(self, timeout: float) -> float:
        """Wait until no other writer of this service is in a transaction, at most
        ``timeout`` seconds (``WriterQueueTimeout`` then); the seconds waited (0 when the
        lock was free)."""
        if self.held:
            return 0.0
        if self._fd is None:
            self._fd = os.open(
                self.database_path + WRITER_LOCK_SUFFIX,
                os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC,
                WRITER_LOCK_MODE,
            )
        if self._wait is None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                self.held = True
                return 0.0
        started = time.monotonic()
        deadline = started + timeout
        while True:
            if self._wait is None:
                self._wait = _Wait(self._fd)
            wait = self._wait
            kept = wait.wait(max(0.0, deadline - time.monotonic()))
            if not wait.pending:
                self._wait = None
            if kept:
                self.held = True
                return time.monotonic() - started
            if wait.failed is not None:
                raise wait.failed
            if wait.pending or time.monotonic() >= deadline:
                raise WriterQueueTimeout(
                    f"database is locked: another writer held it for more than {timeout:g} s"
                )
            # A wait given up earlier got the lock and let it go: wait again.

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        if self._wait is not None:
            self._wait.abandon()
            self._wait = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
