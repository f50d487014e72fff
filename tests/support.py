"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import event, text

from app.extensions import db

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


def count_statements(app: Flask, action: Callable[[], object]) -> int:
    """How many SQL statements ``action`` runs, transaction control left out."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(statements)


ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEST_ENCRYPTION_KEY = "dGVzdC1vbmx5LWtleS1uZXZlci11c2UtaXQtbGl2ZSE="  # test-only


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
