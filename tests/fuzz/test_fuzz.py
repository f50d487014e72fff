"""Schema-driven fuzzing: schemathesis against gunicorn serving ``wsgi:app``, run by `make fuzz`.

Every operation of /openapi.json is called with generated requests (the settings, seed and
number of examples are in schemathesis.toml beside this file), authenticated with a bootstrap
api key, on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL in a schema of its own.
Each response is checked: no 5xx (``not_a_server_error``), a status the operation documents
(``status_code_conformance``), a body that matches its documented schema
(``response_schema_conformance``). Zero failures are expected.

Before the run, a client with users, policies, a ticket and VASCO credentials is created, and
schemathesis.toml makes most generated path values name them, so that the operations get past
404 to their logic.

`make test` skips this module (it takes a few minutes); `make fuzz` sets FUZZ=1. The JUnit
report and a HAR file of every request go to FUZZ_REPORT_DIR when it is set.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BIN, DATABASES, ROOT, TEST_ENCRYPTION_KEY, gunicorn, postgresql_schema

pytestmark = pytest.mark.skipif(
    not os.environ.get("FUZZ"), reason="schema fuzzing runs with `make fuzz` (FUZZ=1)"
)

CONFIG = Path(__file__).with_name("schemathesis.toml")
CORE = "/nevisidm/api/core/v1"

# (method, path, body): the objects that the path parameters' examples in /openapi.json
# (client-123, user-123, ...) and the dictionaries of schemathesis.toml name.
SEED_DATA = [
    ("POST", "/clients", {"extId": "client-123", "name": "Fuzz"}),
    # Taken by DELETE /clients/{clientExtId} alone (schemathesis.toml).
    ("POST", "/clients", {"extId": "client-456", "name": "Fuzz deleted"}),
    *(
        ("POST", "/client-123/users", {"extId": ext_id, "loginId": ext_id})
        for ext_id in ("user-123", "user-456", "user-789", "user-790")
    ),
    *(
        ("POST", "/client-123/policies", {"extId": ext_id, "name": ext_id, "policyType": kind})
        for ext_id, kind in (
            ("policy-123", "TicketPolicy"),
            ("policy-456", "VascoPolicy"),
            ("policy-789", "TicketPolicy"),
        )
    ),
    ("POST", "/client-123/users/user-123/ticket", {"identification": "fuzz"}),
    *(
        (
            "POST",
            "/client-123/vasco",
            {"extId": ext_id, "vascoTokens": [{"authMode": "CR", "data": "AAECAwQFBgc="}]},
        )
        for ext_id in ("vasco-123", "vasco-456", "vasco-789")
    ),
    ("PUT", "/client-123/users/user-123/vasco/vasco-123", None),
]


@pytest.fixture(params=DATABASES)
def fuzz_database(request) -> Iterator[str]:
    """An empty database for one run: an SQLite file, or a PostgreSQL schema dropped after."""
    if request.param == "sqlite":
        path = request.getfixturevalue("tmp_path") / "fuzz.db"
        yield f"sqlite:///{path}"
        return
    with postgresql_schema(os.environ["TEST_DATABASE_URL"], prefix="fuzz") as url:
        yield url


@pytest.fixture
def served(fuzz_database: str, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """gunicorn with 2 workers over the migrated database: (base URL, api key, log file)."""
    key = secrets.token_urlsafe(32)
    environment = {
        **os.environ,
        "DATABASE_URL": fuzz_database,
        "BOOTSTRAP_API_KEY": key,
        "CREDENTIAL_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "gunicorn.log"
    with gunicorn(environment, log) as port:
        yield f"http://127.0.0.1:{port}", key, log


def call(base: str, key: str, method: str, path: str, body: dict | None) -> int:
    request = urllib.request.Request(
        f"{base}{CORE}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_operation_survives_schema_driven_fuzzing(served, tmp_path):
    base, key, log = served
    for method, path, body in SEED_DATA:
        assert call(base, key, method, path, body) in (200, 201), (method, path)
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as response:
        document = json.load(response)
    operations = sum(
        method != "parameters" for path_item in document["paths"].values() for method in path_item
    )

    completed = subprocess.run(
        [
            BIN / "st",
            "--config-file",
            CONFIG,
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--no-color",
            "--report",
            "junit,har",
            "--report-dir",
            os.environ.get("FUZZ_REPORT_DIR") or tmp_path / "report",
        ],
        cwd=tmp_path,  # schemathesis keeps its cache in the working directory
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
            "PYTHONPATH": str(ROOT),
            "FUZZ_API_KEY": key,
        },
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = completed.stdout + completed.stderr
    print(output)  # the run's summary, with its seed, in the log of `make fuzz`
    assert completed.returncode == 0, f"{output}\n--- gunicorn log ---\n{log.read_text()[-5000:]}"
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert tested and int(tested.group(1)) == operations, "not every operation was tested"
