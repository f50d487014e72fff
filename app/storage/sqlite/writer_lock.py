"""The writers' queue of an SQLite database: a file lock (``flock``) beside it.

SQLite's busy timeout waits for its write lock by sleeping 1, 2, 5, 10, ... 100 ms between
tries, so under steady writes most of a writer's time went to sleeping past the moment the
lock came free; the kernel hands a file lock to the next waiter as it is released. The file
lock only orders the writers of this service: SQLite's own lock still guards the data, and
any other writer (a ``sqlite3`` shell) is waited for through the busy timeout as before.
"""

from __future__ import annotations

import fcntl
import os

WRITER_LOCK_SUFFIX = "-writer.lock"


class WriterLock:
    """The writers' queue of the database at ``database_path``, as one connection holds it.

    Each connection opens the lock file on its own, so connections exclude each other
    whether they live in one process (threads) or in several (gunicorn workers)."""

    def __init__(self, database_path: str) -> None:
        self.database_path = database_path
        self._fd: int | None = None
        self.held = False

    def acquire(self) -> None:
        """Wait until no other writer of this service is in a transaction. The wait is
        bounded by that writer's own statements (each under the busy timeout) and, under
        gunicorn, by the worker timeout."""
        if self.held:
            return
        if self._fd is None:
            self._fd = os.open(
                self.database_path + WRITER_LOCK_SUFFIX,
                os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC,
                0o644,
            )
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
