"""Two gunicorn instances (two workers each) over one PostgreSQL schema: the uniqueness
rules hold across them, since they are database constraints, and each instance's metrics
add up its workers."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from app.config import normalise_database_url
from tests.support import CORE

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_KEY = f"instances-{secrets.token_urlsafe(24)}"
RACERS = 10

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs TEST_DATABASE_URL (PostgreSQL)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        content_type = response.getheader("Content-Type", "")
        return response.status, json.loads(raw) if "json" in content_type else raw.decode()
    finally:
        connection.close()


def wait_until_ready(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()}")
        try:
            if call(port, "GET", "/health/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"gunicorn on port {port} did not get ready: {log.read_text()}")


@pytest.fixture(scope="module")
def schema_url() -> Iterator[str]:
    """A PostgreSQL schema of this test's, migrated with ``flask db upgrade``."""
    server_url = normalise_database_url(os.environ["TEST_DATABASE_URL"])
    schema = f"instances_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in os.environ["TEST_DATABASE_URL"] else "?"
    url = f"{os.environ['TEST_DATABASE_URL']}{separator}options=-csearch_path%3D{schema}"
    try:
        subprocess.run(
            [Path(sys.executable).parent / "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url},
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def two_instances(schema_url, tmp_path_factory) -> Iterator[tuple[int, int]]:
    """Two gunicorn instances, two workers each, over the same schema; yields their ports."""
    environment = {
        key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"
    }
    environment.update(
        DATABASE_URL=schema_url,
        BOOTSTRAP_API_KEY=BOOTSTRAP_KEY,
        CREDENTIAL_ENCRYPTION_KEY="dGVzdC1vbmx5LWtleS1uZXZlci11c2UtaXQtbGl2ZSE=",
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY="2",
    )
    servers = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = tmp_path_factory.mktemp("instances") / f"gunicorn-{name}.log"
            server = subprocess.Popen(
                [
                    Path(sys.executable).parent / "gunicorn",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "wsgi:app",
                ],
                cwd=ROOT,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=log.open("w"),
            )
            servers.append((port, server, log))
        for port, server, log in servers:
            wait_until_ready(port, server, log)
        yield servers[0][0], servers[1][0]
    finally:
        for _, server, _ in servers:
            server.terminate()
        for _, server, _ in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def race(ports: tuple[int, int], path: str, bodies: list[Any]) -> list[tuple[int, Any]]:
    """POST each body at once, alternating between the instances."""
    start = threading.Barrier(len(bodies))
    results: list[tuple[int, Any]] = [(0, None)] * len(bodies)

    def send(index: int) -> None:
        start.wait()
        results[index] = call(ports[index % 2], "POST", path, bodies[index])

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def error_codes(results: list[tuple[int, Any]]) -> list[str]:
    return sorted(body["errors"][0]["code"] for status, body in results if status != 201)


def metric(port: int, name: str, **labels: str) -> float:
    _, body = call(port, "GET", "/metrics")
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_uniqueness_holds_across_instances(two_instances):
    a, _ = two_instances
    assert call(a, "POST", f"{CORE}/clients", {"extId": "acme", "name": "Acme"})[0] == 201
    assert call(a, "POST", f"{CORE}/acme/users", {"extId": "alice", "loginId": "alice"})[0] == 201

    tickets = race(two_instances, f"{CORE}/acme/users/alice/ticket", [{}] * RACERS)
    assert sorted(status for status, _ in tickets) == [201] + [422] * (RACERS - 1)
    assert error_codes(tickets) == ["errors.ticketExists"] * (RACERS - 1)

    clients = race(
        two_instances,
        f"{CORE}/clients",
        [{"extId": "race", "name": f"Race {index}"} for index in range(RACERS)],
    )
    assert sorted(status for status, _ in clients) == [201] + [422] * (RACERS - 1)
    assert error_codes(clients) == ["errors.duplicateValue"] * (RACERS - 1)


def test_each_instance_reports_the_requests_of_all_its_workers(two_instances):
    a, b = two_instances
    assert call(a, "POST", f"{CORE}/clients", {"extId": "metered", "name": "Metered"})[0] == 201
    user = {"extId": "bob", "loginId": "bob"}
    assert call(b, "POST", f"{CORE}/metered/users", user)[0] == 201
    rule = f"{CORE}/<client_ext_id>/users/<user_ext_id>/ticket"
    answered = {"endpoint": rule, "method": "POST"}

    def totals() -> list[float]:
        return [metric(port, "nevisidm_http_requests_total", **answered) for port in (a, b)] + [
            metric(port, "nevisidm_credentials_created_total", type="ticket") for port in (a, b)
        ]

    before = totals()
    race(two_instances, f"{CORE}/metered/users/bob/ticket", [{}] * RACERS)
    after = totals()
    # Whichever worker answers the scrape, it reports the requests of both workers.
    for _ in range(3):
        assert totals() == after
    assert after[0] - before[0] == after[1] - before[1] == RACERS // 2
    assert after[2] + after[3] - before[2] - before[3] == 1
