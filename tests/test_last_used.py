"""When each api key was last used (``api-key list``): written once the request has been
answered, at most about once a minute per key, and never at the cost of a request."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import event, select, text

from app.auth import CLIENT_VIEW
from app.crypto import hash_api_key
from app.extensions import db
from app.models import Principal
from app.repositories import principals
from app.repositories.principals import LastUseRecorder, PrincipalRepository
from tests.support import bearer, gunicorn, make_app

PERMISSIONS_URL = "/nevisidm/api/principal/v1/permissions"
T = datetime(2026, 11, 22, 10, 15, 30, tzinfo=UTC)


def new_key(app, name: str = "ops") -> str:
    with app.app_context():
        _, key = PrincipalRepository().create(name, [CLIENT_VIEW], None)
    return key


def last_used(app, name: str = "ops") -> datetime | None:
    # In a GET's context: a read, which on SQLite does not queue with the writers.
    with app.test_request_context():
        return db.session.scalar(select(Principal.last_used).where(Principal.name == name))


def use(client, key: str) -> None:
    """A request, answered and closed as a WSGI server closes it."""
    with client.get(PERMISSIONS_URL, headers=bearer(key)) as response:
        assert response.status_code == 200


@pytest.fixture
def worker(database_url, app):
    """A worker with the principal cache off: every request reads its principal."""
    return make_app(database_url, PRINCIPAL_CACHE_SECONDS=0)


@pytest.fixture
def monotonic(monkeypatch) -> list[float]:
    """The clock the process's own bookkeeping runs on, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(principals.time, "monotonic", lambda: now[0])
    return now


@contextmanager
def counted_updates(app) -> Iterator[list[str]]:
    """The UPDATEs of ``principals`` the app sends meanwhile."""
    updates: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("UPDATE PRINCIPALS"):
            updates.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield updates
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_a_use_is_written_once_the_response_is_closed(worker):
    key = new_key(worker)
    client = worker.test_client()
    with time_machine.travel(T, tick=False):
        response = client.get(PERMISSIONS_URL, headers=bearer(key))
        assert response.status_code == 200
        assert last_used(worker) is None  # nothing written while the answer is on its way
        response.close()
    assert last_used(worker) == T


def test_a_key_in_steady_use_costs_one_write_a_minute(worker, monotonic):
    key = new_key(worker)
    client = worker.test_client()
    with time_machine.travel(T, tick=False) as clock, counted_updates(worker) as updates:
        for _ in range(5):
            use(client, key)
        assert (len(updates), last_used(worker)) == (1, T)

        clock.shift(timedelta(seconds=59))
        monotonic[0] += 59
        for _ in range(5):
            use(client, key)
        assert (len(updates), last_used(worker)) == (1, T)

        clock.shift(timedelta(seconds=2))
        monotonic[0] += 2
        use(client, key)
        use(client, key)
        assert (len(updates), last_used(worker)) == (2, T + timedelta(seconds=61))


def test_a_write_by_another_worker_within_the_minute_is_kept(database_url, worker, monotonic):
    key = new_key(worker)
    other = make_app(database_url, PRINCIPAL_CACHE_SECONDS=0)
    with time_machine.travel(T, tick=False) as clock:
        use(worker.test_client(), key)
        clock.shift(timedelta(seconds=30))
        with counted_updates(other) as updates:
            use(other.test_client(), key)  # reads a value younger than a minute
        assert updates == []
        # Two workers that read the same old value: the later write changes nothing.
        with worker.app_context():
            recorder = LastUseRecorder.of_app()
        recorder.record(hash_api_key(key), "ops", T + timedelta(seconds=40))
        assert last_used(worker) == T
        recorder.record(hash_api_key(key), "ops", T + timedelta(seconds=61))
        assert last_used(worker) == T + timedelta(seconds=61)


def test_a_use_of_a_key_rotated_meanwhile_is_not_written_for_the_new_key(app, worker):
    key = new_key(worker)
    client = worker.test_client()
    response = client.get(PERMISSIONS_URL, headers=bearer(key))
    assert response.status_code == 200
    # The key is rotated while the answer is on its way; its write comes after.
    assert app.test_cli_runner().invoke(args=["api-key", "rotate", "--name", "ops"]).exit_code == 0
    response.close()
    assert last_used(worker) is None  # the new key has not been used


def test_a_key_that_is_refused_or_unknown_writes_nothing(worker):
    new_key(worker)
    client = worker.test_client()
    with (
        counted_updates(worker) as updates,
        client.get(PERMISSIONS_URL, headers=bearer("nidm_unknown")) as response,
    ):
        assert response.status_code == 401
    assert updates == [] and last_used(worker) is None


@contextmanager
def principals_locked(app) -> Iterator[None]:
    """Another writer holds what the UPDATE needs: SQLite's write lock, or PostgreSQL's row
    locks on the principals. Reads go on."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        holder = sqlite3.connect(engine.url.database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
    else:
        with engine.connect() as holder:
            holder.execute(text("SELECT id FROM principals FOR UPDATE"))
            try:
                yield
            finally:
                holder.rollback()


def impatient_worker(database_url: str):
    """A worker whose writes give up after 0.2 s of waiting for a lock."""
    if database_url.startswith("sqlite"):
        return make_app(database_url, PRINCIPAL_CACHE_SECONDS=0, SQLITE_BUSY_TIMEOUT=0.2)
    url = database_url.replace("options=", "options=-clock_timeout%3D200%20", 1)
    assert url != database_url
    return make_app(url, PRINCIPAL_CACHE_SECONDS=0)


def test_a_write_that_fails_is_logged_and_the_answer_stands(database_url, app, caplog):
    caplog.set_level(logging.DEBUG)
    worker = impatient_worker(database_url)
    key = new_key(worker)
    with principals_locked(worker):
        response = worker.test_client().get(PERMISSIONS_URL, headers=bearer(key))
        assert response.status_code == 200  # answered before the write is tried ...
        response.close()  # ... which waits 0.2 s, gives up, and raises nothing
    assert response.json == {"elementaryPermissions": [CLIENT_VIEW]}
    failures = [
        record
        for record in caplog.records
        if record.getMessage().startswith("Could not record when the api key")
    ]
    assert len(failures) == 1 and failures[0].levelno == logging.WARNING
    assert "principal 'ops'" in failures[0].getMessage()
    assert key not in caplog.text
    assert last_used(worker) is None


def test_under_gunicorn_the_answer_does_not_wait_for_the_write(database_url, app, tmp_path):
    key = new_key(app, "served")
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PRINCIPAL_CACHE_SECONDS": "0",
        "BOOTSTRAP_API_KEY": "",
    }
    with gunicorn(environment, tmp_path / "gunicorn.log", workers=1) as port:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{PERMISSIONS_URL}", headers=bearer(key)
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=10):
            pass  # the worker is up and warm
        with principals_locked(app):
            started = time.monotonic()
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
                response.read()
            answered = time.monotonic() - started
            time.sleep(0.3)
            assert last_used(app, "served") is None  # the write waits for the lock ...
        deadline = time.monotonic() + 10
        while last_used(app, "served") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        # ... and lands once it is free. The caller had its answer meanwhile (in about
        # 25 ms; had it waited for the write, it would have waited for the lock: 10 s and
        # more).
        assert last_used(app, "served") is not None
        assert answered < 5.0
