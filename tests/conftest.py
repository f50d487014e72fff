"""Fixtures: every test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set.

Each database is migrated once per session (from empty, with the project's migrations); each
test gets a fresh app over it and leaves the tables empty behind it. PostgreSQL runs use a
schema of their own, so that several runs can share one server.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import flask_migrate
import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import Schema
from sqlalchemy import text

from app.auth import PERMISSIONS
from app.extensions import db
from app.migrations import init_migrations
from app.repositories.principals import PrincipalRepository
from app.schemas.dumping import Dumper
from tests.support import CORE, DATABASES, bearer, fresh_database, make_app


@pytest.fixture(autouse=True)
def dumped_as_marshmallow_dumps(monkeypatch) -> None:
    """Every response body the tests make is checked against marshmallow's own dump of it
    (app/schemas/dumping.py dumps them more cheaply), key order included."""
    dump = Dumper.__call__

    def checked(dumper: Dumper, obj: Any) -> dict[str, Any]:
        result = dump(dumper, obj)
        expected = Schema._serialize(dumper.schema, obj)
        assert list(result.items()) == list(expected.items()), type(dumper.schema).__name__
        return result

    monkeypatch.setattr(Dumper, "__call__", checked)


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A database migrated to the newest revision, for the whole session."""
    with contextlib.ExitStack() as stack:
        directory = tmp_path_factory.mktemp(request.param)
        url = stack.enter_context(fresh_database(request.param, directory, "test"))
        app = make_app(url)
        init_migrations(app)
        with app.app_context():
            flask_migrate.upgrade()
            db.engine.dispose()
        yield url


def empty_tables(app: Flask) -> None:
    with app.app_context():
        tables = list(reversed(db.metadata.sorted_tables))
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                names = ", ".join(table.name for table in tables)
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    connection.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    app = make_app(database_url)
    yield app
    empty_tables(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_key(app: Flask):
    """Create a principal with the given permissions (and data room) and return its key."""

    def make(*permissions: str, clients: list[str] | None = None) -> str:
        with app.app_context():
            _, key = PrincipalRepository().create(
                name=f"principal-{uuid.uuid4().hex[:12]}",
                permissions=list(permissions),
                client_ext_ids=clients,
            )
        return key

    return make


@pytest.fixture
def admin(make_key) -> dict[str, str]:
    """Headers of a principal holding every permission on every client."""
    return bearer(make_key(*PERMISSIONS))


@pytest.fixture
def acme(client: FlaskClient, admin) -> dict[str, Any]:
    """A client 'acme' with a user 'alice'; returns the client's JSON."""
    response = client.post(f"{CORE}/clients", json={"extId": "acme", "name": "Acme"}, headers=admin)
    assert response.status_code == 201, response.json
    response = client.post(
        f"{CORE}/acme/users", json={"extId": "alice", "loginId": "alice"}, headers=admin
    )
    assert response.status_code == 201, response.json
    return response.json
