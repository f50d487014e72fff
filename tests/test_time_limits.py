"""SQLite's time limits, durability and file modes (contract section 8, "Time limits" and
"Durability"); PostgreSQL's time limits are in test_faults.py.

A writer waits for the write lock (the writers' queue and SQLite's own lock together) at
most SQLITE_BUSY_TIMEOUT, and then gets 503 in the envelope, in-process and under gunicorn;
the limits must be below gunicorn's worker timeout or the service does not start; production
syncs every commit; the files the service creates are readable by their owner alone.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from app.config import TestConfig, TimeLimitError, check_time_limits
from app.crypto import load_or_create_key_file
from app.extensions import db
from app.storage import current_work
from app.storage.engine import configure_database
from app.storage.sqlite.writer_lock import WRITER_LOCK_SUFFIX, WriterLock, WriterQueueTimeout
from tests.support import BIN, CORE, ROOT, TICKET_URL, count_rows, free_port, gunicorn, make_app

BUSY_TIMEOUT = 0.5  # seconds, for the tests' impatient writers
SLACK = 0.5  # what a loaded machine may add to a wait


def sqlite_file(database_url: str) -> str:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    return database_url.removeprefix("sqlite:///")


@contextmanager
def writers_queue_held(path: str) -> Iterator[None]:
    """The writers' queue held by someone else (another process would do the same)."""
    descriptor = os.open(path + WRITER_LOCK_SUFFIX, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


@contextmanager
def sqlite_write_lock_held(path: str) -> Iterator[None]:
    """SQLite's own write lock held by another writer (a ``sqlite3`` shell, say)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


def writers_queue_is_free(path: str) -> bool:
    descriptor = os.open(path + WRITER_LOCK_SUFFIX, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def timed_post(app: Flask, path: str, body, headers) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = app.test_client().post(path, json=body, headers=headers)
    return response.status_code, response.json, time.monotonic() - started


@pytest.fixture
def impatient(database_url) -> Iterator[Flask]:
    sqlite_file(database_url)
    app = make_app(database_url, SQLITE_BUSY_TIMEOUT=BUSY_TIMEOUT)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("holder", [writers_queue_held, sqlite_write_lock_held])
def test_a_writer_waits_for_the_lock_at_most_the_busy_timeout_then_gets_503(
    database_url, impatient, admin, acme, holder
):
    path = sqlite_file(database_url)
    with holder(path):
        status, body, seconds = timed_post(impatient, TICKET_URL, {}, admin)
        assert status == 503
        assert body["errors"][0]["code"] == "errors.serviceUnavailable"
        assert BUSY_TIMEOUT - 0.05 < seconds < BUSY_TIMEOUT + SLACK
        # A unit of work (a ticket's change) waits the same way.
        status, body, _ = timed_post(impatient, f"{CORE}/acme/users", {"loginId": "bob"}, admin)
        assert status == 503
    assert count_rows(impatient, "credentials") == 0
    assert writers_queue_is_free(path)  # a wait given up leaves nothing held
    status, _, _ = timed_post(impatient, TICKET_URL, {}, admin)
    assert status == 201


def test_the_queue_and_sqlites_lock_share_one_timeout(database_url, impatient, admin, acme):
    path = sqlite_file(database_url)
    queue = os.open(path + WRITER_LOCK_SUFFIX, os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(queue, fcntl.LOCK_EX)
    # The queue comes free after 0.3 s; SQLite's lock stays held: the writer has 0.2 s
    # left for it, not another 0.5.
    threading.Timer(0.3, os.close, args=[queue]).start()
    with sqlite_write_lock_held(path):
        status, body, seconds = timed_post(impatient, TICKET_URL, {}, admin)
    assert status == 503
    assert body["errors"][0]["code"] == "errors.serviceUnavailable"
    assert BUSY_TIMEOUT - 0.05 < seconds < BUSY_TIMEOUT + SLACK / 2
    with impatient.app_context(), db.engine.connect() as connection:
        # The busy timeout is the whole of it again for the next writer.
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 500


def test_a_writer_queued_behind_another_gets_the_lock_when_it_is_released(database_url, tmp_path):
    path = str(tmp_path / "queue.db")
    first, second = WriterLock(path), WriterLock(path)
    try:
        assert first.acquire(1) == 0.0
        threading.Timer(0.2, first.release).start()
        waited = second.acquire(2)
        assert 0.15 < waited < 1.5 and second.held
        with pytest.raises(WriterQueueTimeout):
            first.acquire(0.1)
        # The given-up wait is taken over by the next: one waiting thread per connection.
        threads = threading.active_count()
        with pytest.raises(WriterQueueTimeout):
            first.acquire(0.1)
        assert threading.active_count() == threads
        second.release()
        assert first.acquire(1) < 1 and first.held
        first.release()
        # A wait given up releases the lock as soon as it gets it.
        second.acquire(1)
        with pytest.raises(WriterQueueTimeout):
            first.acquire(0.1)
        second.release()
        deadline = time.monotonic() + 2
        while not writers_queue_is_free(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writers_queue_is_free(path)
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SQLITE_BUSY_TIMEOUT": 0}, "SQLITE_BUSY_TIMEOUT must be a positive number"),
        ({"POSTGRES_STATEMENT_TIMEOUT": -1}, "POSTGRES_STATEMENT_TIMEOUT must be a positive"),
    ],
)
def test_a_time_limit_that_is_not_positive_stops_start_up(database_url, settings, message):
    with pytest.raises(TimeLimitError, match=message):
        make_app(database_url, **settings)


def test_time_limits_must_be_below_the_worker_timeout():
    limits = {
        "SQLITE_BUSY_TIMEOUT": 10,
        "POSTGRES_CONNECT_TIMEOUT": 5,
        "POSTGRES_STATEMENT_TIMEOUT": 5,
        "POSTGRES_LOCK_TIMEOUT": 5,
    }
    sqlite = {**limits, "SQLALCHEMY_DATABASE_URI": "sqlite:////srv/idm.db"}
    postgresql = {**limits, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://idm@db/idm"}
    check_time_limits(sqlite, 30)
    check_time_limits(postgresql, 30)
    with pytest.raises(TimeLimitError, match="SQLITE_BUSY_TIMEOUT lets a request wait 30 s"):
        check_time_limits({**sqlite, "SQLITE_BUSY_TIMEOUT": 30}, 30)
    check_time_limits({**postgresql, "SQLITE_BUSY_TIMEOUT": 30}, 30)  # not in use
    # The client waits a second past the server's statement limit.
    with pytest.raises(TimeLimitError, match="POSTGRES_STATEMENT_TIMEOUT lets a request wait"):
        check_time_limits({**postgresql, "POSTGRES_STATEMENT_TIMEOUT": 29.5}, 30)


def serve(port: int, path: str, body: bytes | None = None, headers=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST" if body is not None else "GET",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], time.monotonic() - started


def test_under_gunicorn_a_queued_writer_gets_503_before_the_worker_timeout(
    database_url, app, admin, acme, tmp_path
):
    path = sqlite_file(database_url)
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SQLITE_BUSY_TIMEOUT": "1",
        "GUNICORN_TIMEOUT": "3",
        "BOOTSTRAP_API_KEY": "",
    }
    log = tmp_path / "gunicorn.log"
    with gunicorn(environment, log, workers=2, migrate=False) as port:
        for _ in range(4):  # both workers warm
            assert serve(port, f"{CORE}/acme/users/alice", headers=admin)[0] == 200
        with writers_queue_held(path):
            answers = [serve(port, TICKET_URL, b"{}", admin) for _ in range(2)]
            assert serve(port, "/health/live")[0] == 200
        for status, content_type, seconds in answers:
            assert status == 503 and content_type == "application/json"
            assert 0.95 < seconds < 1 + SLACK
        assert serve(port, TICKET_URL, b"{}", admin)[0] == 201
    assert "WORKER TIMEOUT" not in log.read_text()


def test_gunicorn_refuses_to_start_with_a_busy_timeout_at_its_worker_timeout(
    database_url, tmp_path
):
    sqlite_file(database_url)
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SQLITE_BUSY_TIMEOUT": "30",
        "GUNICORN_TIMEOUT": "30",
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [BIN / "gunicorn", "-w", "1", "-b", f"127.0.0.1:{free_port()}", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        assert server.wait(timeout=60) != 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    assert "SQLITE_BUSY_TIMEOUT lets a request wait 30 s" in log.read_text()


@pytest.mark.parametrize(("app_env", "synchronous"), [("production", 2), ("development", 1)])
def test_production_syncs_every_commit(database_url, app_env, synchronous):
    sqlite_file(database_url)
    app = make_app(database_url, APP_ENV=app_env)
    with app.app_context():
        with db.engine.connect() as connection:
            # 2 is FULL: each commit waits for its fsync; 1 is NORMAL.
            assert connection.execute(text("PRAGMA synchronous")).scalar() == synchronous
        db.engine.dispose()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away: the modes are the service's own doing."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_database_its_wal_and_lock_files_are_the_owners_alone(tmp_path, open_umask):
    path = tmp_path / "private.db"
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        db.create_all()
        with db.engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM clients"))
    with app.app_context():
        with current_work().changes() as session:  # a write: the writers' queue
            session.execute(text("DELETE FROM clients"))
        # While a connection is open: the last one to close removes the -wal and -shm.
        files = {name: mode_of(tmp_path / name) for name in os.listdir(tmp_path)}
        db.engine.dispose()
    assert {"private.db", "private.db-wal", "private.db-shm", "private.db-writer.lock"} <= set(
        files
    )
    assert set(files.values()) == {0o600}, files


def test_the_instance_folder_and_the_key_file_are_the_owners_alone(tmp_path, open_umask):
    # Without DATABASE_URL the database is a file in the instance folder.
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.from_object(TestConfig)
    app.config["DATABASE_URL"] = None
    configure_database(app)
    assert mode_of(tmp_path / "instance") == 0o700
    assert mode_of(tmp_path / "instance" / "nevisidm.db") == 0o600
    key_file = tmp_path / "keys" / "credential-encryption.key"
    load_or_create_key_file(key_file)
    assert mode_of(key_file.parent) == 0o700
    assert mode_of(key_file) == 0o600
