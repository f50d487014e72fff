"""Engine set-up: SQLite serves several gunicorn workers without "database is locked"."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import text

from app.config import normalise_database_url
from app.extensions import db
from tests.support import run_with_the_service


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(app):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite only")
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10000
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_urls_are_driven_with_psycopg(given, used):
    assert normalise_database_url(given) == used


def test_a_serving_process_loads_the_sqlite3_module_only_for_sqlite(database_url):
    # SQLite's engine set-up is imported only for an SQLite engine (app/storage/sqlite/): a
    # PostgreSQL worker is spared the module and its shared library.
    probe = (
        "import sys, wsgi; "
        "print(wsgi.app.test_client().get('/health/ready').status_code, "
        "'sqlite3' in sys.modules)"
    )
    printed = run_with_the_service([sys.executable, "-c", probe], database_url).split()
    sqlite = database_url.startswith("sqlite")
    assert printed == ["200", str(sqlite)]
