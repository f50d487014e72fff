"""WAL checkpoints, made for the service's writers on a thread of each process's own.

SQLite's automatic checkpoint (every 1000 pages) runs inside the COMMIT that crosses the
mark, so the copying and its fsync kept every other writer waiting for the lock. A
checkpoint is mostly the wait for its fsync, during which the sqlite3 module lets other
threads run: on a thread of its own, the request that crossed the mark answers without it
and the worker serves the next request meanwhile. Once the WAL holds
``WAL_START_OVER_FRAMES``, a last copy is made in the writers' queue, so that the WAL starts
over instead of growing (``checkpoint_wal``). Measurements: docs/decisions.md, "Storage".
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import quote

from .writer_lock import WriterLock

log = logging.getLogger(__name__)

# A ticket's commit adds about 15 pages to the WAL: a checkpoint every 64 commits of each
# connection keeps the WAL near the size SQLite's default (1000 pages) keeps it at.
CHECKPOINT_EVERY_COMMITS = 64
# The WAL is made to start over once it holds this many frames (16 MB of 4 KB pages).
WAL_START_OVER_FRAMES = 4096
# The WAL file is cut back to this size when it starts over, after a long read let it grow.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# The second copy waits this long at most for the writers' queue; the next checkpoint past
# the mark tries again.
QUEUE_WAIT_SECONDS = 10.0


def checkpoint_wal(path: str) -> tuple[int, int, int] | None:
    """Checkpoint the WAL of the database at ``path`` (PASSIVE: without waiting for
    anyone), on a connection of its own (``mode=rw``: a database removed meanwhile is not
    created again).

    The copy runs beside the writers. The WAL starts over only at a commit that finds
    every frame copied, which commits made during the copy prevent: under steady writes
    it grew without end. So once it holds ``WAL_START_OVER_FRAMES``, a second copy follows
    in the writers' queue, of what was committed during the first and while it waited for
    the queue. Writers wait for that second copy alone, about once per thousand creates.
    The next commit then starts the WAL over, unless a read that began before the copy
    ended is still open: then the next checkpoint past the mark tries again.

    Returns SQLite's (busy, WAL frames, frames checkpointed) of the last copy; busy when
    another connection was checkpointing, which then copies the frames itself. None when
    it failed, which leaves the frames to the next checkpoint (the commits are done
    already) and is logged, at most once a minute per process."""
    try:
        connection = sqlite3.connect(
            f"file://{quote(os.path.abspath(path))}?mode=rw", uri=True, isolation_level=None
        )
    except sqlite3.Error as error:
        _checkpoint_failed(path, error)
        return None
    queue = WriterLock(path)
    try:
        copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied[0] or copied[1] < WAL_START_OVER_FRAMES:
            return copied
        queue.acquire(QUEUE_WAIT_SECONDS)
        return connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except (sqlite3.Error, OSError) as error:
        _checkpoint_failed(path, error)
        return None
    finally:
        connection.close()
        queue.close()


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
        self._commits: dict[str, int] = {}

    def checkpoint_due(self, path: str) -> bool:
        """Count a commit that wrote to the database at ``path``: whether it is the
        ``CHECKPOINT_EVERY_COMMITS``-th since the last checkpoint this process asked for.
        (A commit counted twice or missed by threads racing here only moves a checkpoint.)"""
        commits = self._commits.get(path, 0) + 1
        if commits >= CHECKPOINT_EVERY_COMMITS:
            self._commits[path] = 0
            return True
        self._commits[path] = commits
        return False

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
