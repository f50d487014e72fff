"""A script written for nevisIDM runs against the service unchanged (contract section 12):
tests/scripts/nevisidm_script.py, against gunicorn over a fresh database of each kind."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import DATABASES, ROOT, gunicorn, postgresql_schema

SCRIPT = ROOT / "tests" / "scripts" / "nevisidm_script.py"


@pytest.fixture(params=DATABASES)
def fresh_database(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'script.db'}"
        return
    with postgresql_schema(os.environ["TEST_DATABASE_URL"], prefix="script") as url:
        yield url


def test_a_nevisidm_script_runs_unchanged_under_gunicorn(fresh_database, tmp_path):
    key = secrets.token_urlsafe(32)
    environment = {
        **os.environ,
        "DATABASE_URL": fresh_database,
        "BOOTSTRAP_API_KEY": key,
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "gunicorn.log"
    with gunicorn(environment, log) as port:
        completed = subprocess.run(
            [sys.executable, SCRIPT],
            env={"NEVISIDM_URL": f"http://127.0.0.1:{port}", "NEVISIDM_API_KEY": key},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, f"{completed.stderr}\n--- gunicorn ---\n{log.read_text()}"
    assert completed.stdout.startswith("OK: "), completed.stdout
    assert int(completed.stdout.split()[1]) >= 60  # every response was checked
