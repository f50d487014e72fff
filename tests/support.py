"""Helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

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
