"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, event, text

from app import create_app
from app.config import TestConfig, normalise_database_url
from app.extensions import db
from app.storage import statements as app_statements

# Contract section 6: what every new credential shows, with the JSON type of each value.
NEW_CREDENTIAL_FIELDS = {
    "created": str,
    "lastModified": str,
    "version": int,
    "extId": str,
    "userExtId": str,
    "policyExtId": str,
    "stateName": str,
    "stateChangeReason": str,
    "stateChangeDetail": type(None),
    "lastSuccessfulLoginDate": type(None),
    "successfulLoginCount": int,
    "lastFailedLoginDate": type(None),
    "failedLoginCount": int,
    "modificationComment": type(None),
    "type": str,
    "validity": dict,
}


def parse_date(value: str) -> datetime:
    """A date as the API writes it (second precision, ``Z``), as an aware datetime."""
    assert value.endswith("Z") and len(value) == len("2026-11-22T10:15:30Z"), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def count_rows(app: Flask, table: str) -> int:
    with app.app_context():
        return db.session.scalar(text(f"SELECT count(*) FROM {table}"))


# Not statements of the request: transaction control, the connection's settings, and the
# liveness check of a pooled connection that has been idle.
_NOT_COUNTED = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "SELECT 1")


def count_statements(app: Flask, action: Callable[[], object]) -> int:
    """How many SQL statements ``action`` sends to the database, transaction control left
    out. Counted at the driver (the hot paths run their statements on the driver's cursor,
    app/repositories/statements.py): SQLite's trace callback, a psycopg cursor that notes
    what it executes."""
    statements: list[str] = []

    def record(statement: str) -> None:
        if not statement.lstrip().upper().startswith(_NOT_COUNTED):
            statements.append(statement)

    # psycopg connections traced, with the cursor class each had before.
    cursor_classes: dict[int, type] = {}

    def trace(dbapi_connection, connection_record, connection_proxy) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(record)
        else:
            cursor_classes[id(dbapi_connection)] = dbapi_connection.cursor_factory
            dbapi_connection.cursor_factory = _counting_cursor(
                dbapi_connection.cursor_factory, record
            )

    def untrace(dbapi_connection, connection_record) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_trace_callback(None)
        elif id(dbapi_connection) in cursor_classes:
            dbapi_connection.cursor_factory = cursor_classes.pop(id(dbapi_connection))

    with app.app_context():
        engine = db.engine
        engine.dispose()  # every connection of the action is checked out while counting
    event.listen(engine, "checkout", trace)
    event.listen(engine, "checkin", untrace)
    try:
        action()
    finally:
        event.remove(engine, "checkout", trace)
        event.remove(engine, "checkin", untrace)
    return len(statements)


def _counting_cursor(base: type, record: Callable[[str], None]) -> type:
    class CountingCursor(base):
        def execute(self, query, *args, **kwargs):
            record(str(query))
            return super().execute(query, *args, **kwargs)

        def executemany(self, query, *args, **kwargs):
            record(str(query))
            return super().executemany(query, *args, **kwargs)

    return CountingCursor


ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEST_ENCRYPTION_KEY = "dGVzdC1vbmx5LWtleS1uZXZlci11c2UtaXQtbGl2ZSE="  # test-only


def run_with_the_service(
    command: list[str | Path], database_url: str, *, timeout: float = 60
) -> str:
    """Run ``command`` from the project's folder against ``database_url`` (no bootstrap
    key, the test encryption key unless one is set); its stdout. Fails on a non-zero exit."""
    environment = {
        "CREDENTIAL_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        **os.environ,
        "DATABASE_URL": database_url,
    }
    environment.pop("BOOTSTRAP_API_KEY", None)
    return subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, server: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("gunicorn did not start")


@contextmanager
def gunicorn(
    environment: dict[str, str], log: Path, *, workers: int = 2, migrate: bool = True
) -> Iterator[int]:
    """``gunicorn wsgi:app`` on a free local port (the database migrated first, unless
    ``migrate`` is false), its output in ``log``; yields the port, stops it afterwards."""
    environment = {"CREDENTIAL_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, **environment}
    if migrate:
        subprocess.run(
            [BIN / "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=environment,
            check=True,
            capture_output=True,
            timeout=120,
        )
    port = free_port()
    with log.open("w") as log_file:  # a file, not a pipe: a full pipe would block the workers
        server = subprocess.Popen(
            [BIN / "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        wait_for(port, server, log)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def fresh_database(kind: str, directory: Path, prefix: str) -> Iterator[str]:
    """The URL of an empty database of ``kind`` (one of ``DATABASES``): an SQLite file in
    ``directory``, or a PostgreSQL schema of its own on TEST_DATABASE_URL's server, dropped
    afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'{prefix}.db'}"
        return
    with postgresql_schema(os.environ["TEST_DATABASE_URL"], prefix=prefix) as url:
        yield url


@contextmanager
def postgresql_schema(server_url: str, prefix: str) -> Iterator[str]:
    """A schema of our own on the PostgreSQL server, dropped afterwards; yields the URL whose
    connections use it (the tests, the fuzz run and the bench never touch ``public``)."""
    server_url = normalise_database_url(server_url)
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in server_url else "?"
    try:
        yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


CORE = "/nevisidm/api/core/v1"

# Every test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set.
DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def make_app(database_url: str, **settings: Any) -> Flask:
    config = type("Settings", (TestConfig,), {"DATABASE_URL": database_url, **settings})
    return create_app(config)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def block(size: int = 248) -> str:
    """A Digipass-like data block: ``size`` random bytes, Base64-encoded."""
    return base64.b64encode(os.urandom(size)).decode()


def tokens(*auth_modes: str, size: int = 248) -> list[dict[str, str]]:
    return [{"authMode": auth_mode, "data": block(size)} for auth_mode in auth_modes]


def create_vasco(client: FlaskClient, headers: dict[str, str], client_ext_id: str = "acme", **body):
    """POST a VASCO credential; ``vascoTokens`` defaults to two fresh blocks (CR and RO)."""
    body.setdefault("vascoTokens", tokens("CR", "RO"))
    return client.post(f"{CORE}/{client_ext_id}/vasco", json=body, headers=headers)


def fail_writing_the_blocks(monkeypatch, app) -> Callable[[], None]:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql":
        # The credential's row and its blocks are one statement: the database itself fails
        # it at the first block, after the credential's row (a trigger).
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE FUNCTION fail_block() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'database failure in the middle of a create'; "
                    "END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER fail_block BEFORE INSERT ON vasco_token_blocks "
                    "FOR EACH ROW EXECUTE FUNCTION fail_block()"
                )
            )

        def undo() -> None:
            with engine.begin() as connection:
                connection.execute(text("DROP TRIGGER fail_block ON vasco_token_blocks"))
                connection.execute(text("DROP FUNCTION fail_block()"))

        return undo

    # Every statement of a create goes to the driver through statements._run.
    statements: list[str] = []
    run = app_statements._run

    def fail_blocks(on, compiled, parameters, fetch, **options):
        sql = compiled.sql
        statements.append(sql)
        if sql.startswith("INSERT INTO vasco_token_blocks"):
            # The credential row is written by now: this failure is really half-way.
            assert any(earlier.startswith("INSERT INTO credentials") for earlier in statements)
            raise RuntimeError("database failure in the middle of a create")
        return run(on, compiled, parameters, fetch, **options)

    monkeypatch.setattr(app_statements, "_run", fail_blocks)
    return monkeypatch.undo


TICKET_URL = f"{CORE}/acme/users/alice/ticket"


MISSING_PARTS = pytest.mark.parametrize(
    ("client_ext_id", "user_ext_id", "message"),
    [
        pytest.param("nobody", "alice", "No client 'nobody'", id="no-client"),
        pytest.param("acme", "nobody", "No user 'nobody' in client 'acme'", id="no-user"),
        pytest.param(
            "acme",
            "alice",
            "User 'alice' in client 'acme' has no ticket credential",
            id="no-ticket",
        ),
    ],
)


def empty_objects_body(limit: int = 1024 * 1024) -> tuple[bytes, int]:
    """The issue's body: ``vascoTokens`` holding as many ``{}`` as fit in ``limit`` bytes."""
    head, tail = b'{"vascoTokens": [', b"]}"
    count = (limit - len(head) - len(tail) + 1) // 3  # "{}," per item, no comma after the last
    body = head + b",".join([b"{}"] * count) + tail
    assert len(body) <= limit
    return body, count


OPENAPI_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@cache
def served_app() -> Flask:
    return make_app("sqlite://")  # the document touches no database


@cache
def openapi() -> dict[str, Any]:
    response = served_app().test_client().get("/openapi.json")
    assert response.status_code == 200
    return response.json


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), operation)
        for path, path_item in openapi()["paths"].items()
        for method, operation in path_item.items()
        if method.upper() in OPENAPI_METHODS
    ]
