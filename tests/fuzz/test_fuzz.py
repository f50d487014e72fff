"""Schema-driven fuzzing: schemathesis against gunicorn serving ``wsgi:app``, run by `make fuzz`.

Every operation of /openapi.json is called with generated requests (the settings, seed and
number of examples are in schemathesis.toml beside this file), authenticated with a bootstrap
api key, on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL in a schema of its own.
Every check of schemathesis runs on each response: no 5xx, a status and headers the operation
documents, a body that matches its schema, valid data accepted (but for the business rules
the operations of schemathesis.toml refuse with 422) and invalid data refused, no answer
without the api key, a created object found and a deleted one gone, and so on. Zero failures
are expected.

Two runs, on one service: first the stateful phase, on the empty database, which makes its
objects by following the document's links from the creates (the test reports how many links
and operations it reached); then the examples, coverage and fuzzing phases, after a client
with users, policies, tickets and VASCO credentials is created that seed-data.toml makes most
generated values name, so that the operations get past 404 to their logic.

`make test` skips this module (it takes a few minutes); `make fuzz` sets FUZZ=1. The JUnit
reports and HAR files of every request go to FUZZ_REPORT_DIR when it is set.
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
SEED_CONFIG = Path(__file__).with_name("seed-data.toml")
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
    *(
        ("POST", f"/client-123/users/{user}/ticket", {"identification": "fuzz"})
        for user in ("user-123", "user-456")
    ),
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


def schemathesis(base: str, key: str, config: str, phases: str, tmp_path: Path, log: Path) -> str:
    """``st run`` of ``phases`` with the settings ``config`` against the service at ``base``;
    its output, printed (the run's summary, with its seed, in the log of `make fuzz`). It must
    find nothing."""
    config_file = tmp_path / f"{phases.replace(',', '-')}.toml"
    config_file.write_text(config)
    completed = subprocess.run(
        [
            BIN / "st",
            "--config-file",
            config_file,
            "run",
            f"{base}/openapi.json",
            "--phases",
            phases,
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
            "FUZZ_STATEFUL_LOG": str(tmp_path / "stateful.log"),
        },
        capture_output=True,
        text=True,
        timeout=1200,
    )
    output = completed.stdout + completed.stderr
    print(output)
    assert completed.returncode == 0, f"{output}\n--- gunicorn log ---\n{log.read_text()[-5000:]}"
    return output


def test_every_operation_survives_schema_driven_fuzzing(served, tmp_path):
    base, key, log = served
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=30) as response:
        document = json.load(response)
    operations = [
        (method.upper(), path)
        for path, path_item in document["paths"].items()
        for method in path_item
        if method != "parameters"
    ]
    links = sum(
        len(response.get("links", {}))
        for path_item in document["paths"].values()
        for operation in path_item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
    )
    settings = CONFIG.read_text()

    # The stateful phase first, on the empty database: what it reaches, it reaches by
    # following the document's links from the creates.
    output = schemathesis(base, key, settings, "stateful", tmp_path, log)
    covered = re.search(r"API Links:\s+(\d+) covered / (\d+) selected / (\d+) total", output)
    assert covered and int(covered.group(3)) == links, "the links schemathesis saw"
    calls = [line.split() for line in (tmp_path / "stateful.log").read_text().splitlines()]
    reached = {(method, path) for method, path, _ in calls}
    succeeded = {(method, path) for method, path, status in calls if status.startswith("2")}
    not_called = sorted(f"{method} {path}" for method, path in set(operations) - reached)
    never_2xx = sorted(f"{method} {path}" for method, path in reached - succeeded)
    print(
        f"Stateful phase: {covered.group(1)} of {links} links followed; {len(reached)} of "
        f"{len(operations)} operations called, {len(succeeded)} of them answering 2xx. Not "
        f"called: {', '.join(not_called)}. Never 2xx: {', '.join(never_2xx) or 'none'}."
    )
    assert int(covered.group(1)) == links, "a link the stateful phase did not follow"

    # The other phases, with objects made beforehand that most generated values name.
    for method, path, body in SEED_DATA:
        assert call(base, key, method, path, body) in (200, 201), (method, path)
    output = schemathesis(
        base,
        key,
        f"{settings}\n{SEED_CONFIG.read_text()}",
        "examples,coverage,fuzzing",
        tmp_path,
        log,
    )
    tested = re.search(r"Tested:\s+(\d+)", output)
    assert tested and int(tested.group(1)) == len(operations), "not every operation was tested"
