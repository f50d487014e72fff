"""The migrations, on a fresh database of their own: upgrade from empty, the models match
the migrated schema, and downgrade to base takes everything away again."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from app.config import normalise_database_url
from app.extensions import db
from app.migrations import MIGRATIONS, init_migrations, shipped_revisions
from app.repositories.users import UserRepository
from app.schemas.users import UserSchema
from tests.support import BIN, DATABASES, make_app, run_with_the_service


@pytest.fixture(params=DATABASES)
def empty_app(request, tmp_path) -> Iterator[Flask]:
    """An app over an empty database (SQLite file, or a PostgreSQL schema) of this test's."""
    if request.param == "sqlite":
        app = make_app(f"sqlite:///{tmp_path / 'migrations.db'}")
        init_migrations(app)
        yield app
        with app.app_context():
            db.engine.dispose()
        return
    server_url = normalise_database_url(os.environ["TEST_DATABASE_URL"])
    schema = f"migrations_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in server_url else "?"
    app = make_app(f"{server_url}{separator}options=-csearch_path%3D{schema}")
    init_migrations(app)
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def table_names(app: Flask) -> set[str]:
    with app.app_context(), db.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def head_revision(app: Flask) -> str:
    return ScriptDirectory(app.extensions["migrate"].directory).get_current_head()


def test_upgrade_from_empty_reaches_the_head(empty_app):
    assert table_names(empty_app) == set()
    with empty_app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    assert current == (head_revision(empty_app),)
    assert table_names(empty_app) == set(db.metadata.tables) | {"alembic_version"}
    assert empty_app.test_client().get("/health/ready").status_code == 200


def test_models_match_the_migrated_schema(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_downgrade_to_base_leaves_only_the_version_table(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
    assert table_names(empty_app) == {"alembic_version"}
    with empty_app.app_context(), db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0
    # And the way back up works again.
    with empty_app.app_context():
        flask_migrate.upgrade()
    assert table_names(empty_app) == set(db.metadata.tables) | {"alembic_version"}


def head_revision_of_the_scripts() -> str:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def principal_columns(app: Flask) -> list[str]:
    with app.app_context(), db.engine.connect() as connection:
        return [column["name"] for column in inspect(connection).get_columns("principals")]


def test_principals_last_used_is_added_and_removed_keeping_the_principals(empty_app):
    with empty_app.app_context():
        flask_migrate.upgrade(revision="0001_initial_schema")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO principals (name, key_hash, permissions, client_ext_ids, created)"
                    " VALUES ('ops', :hash, '[\"AccessControl.ClientView\"]', NULL, :created)"
                ),
                {"hash": "a" * 64, "created": "2026-11-22 10:15:30"},
            )
    assert "last_used" not in principal_columns(empty_app)

    with empty_app.app_context():
        flask_migrate.upgrade(revision="0002_principal_last_used")
    assert principal_columns(empty_app)[-1] == "last_used"
    with empty_app.app_context(), db.engine.connect() as connection:
        # A principal from before the revision: used, but nobody knows when.
        row = connection.execute(text("SELECT name, key_hash, last_used FROM principals")).one()
    assert tuple(row) == ("ops", "a" * 64, None)

    with empty_app.app_context():
        flask_migrate.downgrade(revision="0001_initial_schema")
    assert "last_used" not in principal_columns(empty_app)
    with empty_app.app_context(), db.engine.connect() as connection:
        names = connection.execute(text("SELECT name, key_hash FROM principals")).all()
        assert [tuple(name) for name in names] == [("ops", "a" * 64)]
        connection.rollback()
        # The unique constraints survive SQLite's copy of the table.
        with pytest.raises(IntegrityError), connection.begin():
            connection.execute(
                text(
                    "INSERT INTO principals (name, key_hash, permissions, created)"
                    " VALUES ('ops', :hash, '[]', :created)"
                ),
                {"hash": "b" * 64, "created": "2026-11-22 10:15:30"},
            )


def test_the_shipped_revisions_are_read_as_alembic_reads_them():
    # Serving workers read them without Alembic (app/migrations.py).
    script = ScriptDirectory(str(MIGRATIONS))
    heads, every = shipped_revisions(MIGRATIONS)
    assert heads == frozenset(script.get_heads())
    assert every == frozenset(revision.revision for revision in script.walk_revisions())


def test_a_serving_process_loads_neither_alembic_nor_flask_migrate(tmp_path):
    probe = (
        "import sys, wsgi; "
        "wsgi.app.test_client().get('/health/ready'); "
        "print(sorted({'alembic', 'flask_migrate'} & set(sys.modules)))"
    )
    database_url = f"sqlite:///{tmp_path / 'probe.db'}"
    loaded = run_with_the_service([sys.executable, "-c", probe], database_url)
    assert loaded.strip() == "[]"


def test_flask_db_loads_the_migration_commands(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"

    def flask_db(*arguments: str) -> str:
        command = [BIN / "flask", "--app", "wsgi", "db", *arguments]
        return run_with_the_service(command, database_url, timeout=120)

    assert {"upgrade", "downgrade", "current", "migrate"} <= set(flask_db("--help").split())
    flask_db("upgrade")
    assert f"{head_revision_of_the_scripts()} (head)" in flask_db("current")


def column_names(app: Flask, table: str) -> list[str]:
    with app.app_context(), db.engine.connect() as connection:
        return [column["name"] for column in inspect(connection).get_columns(table)]


def test_nevisidm_fields_are_added_and_removed_keeping_users_clients_and_policies(empty_app):
    created = "2026-11-22 10:15:30"
    with empty_app.app_context():
        flask_migrate.upgrade(revision="0002_principal_last_used")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO clients (id, ext_id, name, created, last_modified, version)"
                    " VALUES (1, 'acme', 'Acme', :created, :created, 1)"
                ),
                {"created": created},
            )
            connection.execute(
                text(
                    "INSERT INTO users (client_id, ext_id, login_id, first_name, email, created,"
                    " last_modified, version)"
                    " VALUES (1, 'alice', 'alice', 'Alice', 'alice@acme.example', :created,"
                    " :created, 3)"
                ),
                {"created": created},
            )
            connection.execute(
                text(
                    "INSERT INTO policies (client_id, ext_id, name, policy_type, is_default,"
                    " parameters, created, last_modified, version)"
                    " VALUES (1, 'p', 'P', 'TicketPolicy', true, '{}', :created, :created, 1)"
                ),
                {"created": created},
            )

    with empty_app.app_context():
        flask_migrate.upgrade(revision="0003_nevisidm_fields")
        with db.engine.connect() as connection:
            user = connection.execute(
                text(
                    "SELECT login_id, first_name, email, state, language_code,"
                    " is_technical_user, mobile, address, version FROM users"
                )
            ).one()
            client_row = connection.execute(text("SELECT display_name, remarks FROM clients")).one()
            policy = connection.execute(text("SELECT name, description FROM policies")).one()
    # The user keeps its email (shown as contacts.email now), and is active, in English.
    assert tuple(user) == (
        "alice",
        "Alice",
        "alice@acme.example",
        "active",
        "en",
        False,
        None,
        None,
        3,
    )
    assert tuple(client_row) == (None, None)
    assert tuple(policy) == ("P", None)
    # The app shows it as nevisIDM does.
    with empty_app.app_context():
        shown = UserSchema().dump(UserRepository().get("acme", "alice"))
    assert shown["contacts"]["email"] == "alice@acme.example"
    assert shown["userState"] == "active" and shown["languageCode"] == "en"

    with empty_app.app_context():
        flask_migrate.downgrade(revision="0002_principal_last_used")
    assert "state" not in column_names(empty_app, "users")
    assert "display_name" not in column_names(empty_app, "clients")
    assert "description" not in column_names(empty_app, "policies")
    with empty_app.app_context(), db.engine.connect() as connection:
        row = connection.execute(text("SELECT login_id, email, version FROM users")).one()
        assert tuple(row) == ("alice", "alice@acme.example", 3)
        connection.rollback()
        # The unique constraints survive SQLite's copy of the table.
        with pytest.raises(IntegrityError), connection.begin():
            connection.execute(
                text(
                    "INSERT INTO users (client_id, ext_id, login_id, created, last_modified,"
                    " version) VALUES (1, 'alice2', 'alice', :created, :created, 1)"
                ),
                {"created": created},
            )
