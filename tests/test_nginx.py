"""The production set-up: nginx with the shipped configuration (deploy/nginx/nevisidm.conf)
in front of gunicorn, on a fresh SQLite database (API.md section 8, "Slow clients").

nginx runs as this user with a main configuration of the test's own (its pid file, logs,
temporary folders and ports in a temporary folder) that includes the shipped file, in which
only the listen address, the upstream address and the access log's path are replaced.
"""

from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import CORE, ROOT, free_port, gunicorn

SHIPPED = ROOT / "deploy" / "nginx" / "nevisidm.conf"
BOOTSTRAP_KEY = f"nginx-{secrets.token_urlsafe(24)}"
ATTACKERS = 64
# What "answering normally" means under attack (API.md section 8).
NORMAL_SECONDS = 2.0


def nginx_binary() -> str:
    """nginx from Debian's package; in CI its absence fails the test (.ci/run installs it)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("nginx is not installed: .ci/run installs it (apt-get install nginx)")
    pytest.skip("nginx is not installed (apt-get install nginx); CI installs it")


def site_config(listen_port: int, upstream_port: int, access_log: Path) -> str:
    """The shipped file with this test's addresses: each replaced line must be there once,
    so that an edit of the shipped file cannot leave the test running something else."""
    text = SHIPPED.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "access_log /var/log/nginx/nevisidm.access.log nevisidm;": (
            f"access_log {access_log} nevisidm;"
        ),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{SHIPPED} no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    port: int
    access_log: Path
    error_log: Path


@contextmanager
def nginx(upstream_port: int, folder: Path) -> Iterator[Nginx]:
    """nginx in the foreground with the shipped configuration, on a free local port."""
    binary = nginx_binary()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    served = Nginx(port, folder / "access.log", folder / "error.log")
    (folder / "nevisidm.conf").write_text(site_config(port, upstream_port, served.access_log))
    # Run as root (as in CI), nginx would start its workers as nobody, who cannot enter
    # pytest's temporary folders: they run as this user instead.
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temporary = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {served.error_log} warn;
events {{
    worker_connections 1024;
}}
http {{
{temporary}
    include {folder / "nevisidm.conf"};
}}
"""
    )
    command = [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")]
    command += ["-e", str(served.error_log), "-g", "daemon off;"]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    with (folder / "nginx.out").open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert server.poll() is None, (folder / "nginx.out").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield served
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: Any
    seconds: float


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    key: str | None = BOOTSTRAP_KEY,
    timeout: float = 10,
    source: str = "127.0.0.1",
) -> Answer:
    """One request on a connection of its own; JSON bodies decoded."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=timeout, source_address=(source, 0)
    )
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        payload = raw
        if body is not None:
            payload = json.dumps(body).encode()
        if payload is not None:
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    seconds = time.monotonic() - started
    if "json" in response.getheader("Content-Type", ""):
        content = json.loads(content)
    return Answer(response.status, response.headers, content, seconds)


# A request's headers, never finished.
SLOW_HEADERS = (b"", b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 4000)


def slow_body(path: str) -> tuple[bytes, bytes]:
    """A ticket request with a valid key whose headers come at once and whose body (of the
    size they announce) never arrives whole: the app gets as far as reading the body."""
    headers = (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {BOOTSTRAP_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
    )
    return headers.encode(), b" " * 4000


class Dribblers:
    """``count`` connections that each send a request one byte a second and never finish
    it (``attack``: what each sends at once, then what it dribbles); a connection the server
    closes is opened again, as an attacker would."""

    def __init__(
        self, port: int, count: int = ATTACKERS, attack: tuple[bytes, bytes] = SLOW_HEADERS
    ) -> None:
        self.port = port
        self.count = count
        self.prefix, self.dribbled = attack
        self.sockets: list[socket.socket | None] = []
        self.sent = [0] * count
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._dribble, daemon=True)

    def _connect(self, index: int) -> None:
        self.sockets[index] = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        self.sockets[index].sendall(self.prefix)
        self.sent[index] = 0

    def _send_next_byte(self, index: int) -> None:
        connection = self.sockets[index]
        try:
            assert connection is not None
            position = self.sent[index]
            connection.send(self.dribbled[position : position + 1])
            self.sent[index] += 1
        except OSError:
            if connection is not None:
                connection.close()
            self.reconnects += 1
            self._connect(index)

    def _dribble(self) -> None:
        while not self._stop.wait(1.0):
            for index in range(self.count):
                if self._stop.is_set():
                    return
                self._send_next_byte(index)

    def wait_until_each_sent(self, count: int) -> None:
        deadline = time.monotonic() + count + 5
        while min(self.sent) < count:
            assert time.monotonic() < deadline, f"the attack stalled: {self.sent}"
            time.sleep(0.1)

    def __enter__(self) -> Dribblers:
        self.sockets = [None] * self.count
        try:
            for index in range(self.count):
                self._connect(index)
                self._send_next_byte(index)
        except BaseException:
            self._close()
            raise
        self._thread.start()
        return self

    def _close(self) -> None:
        for connection in self.sockets:
            if connection is not None:
                connection.close()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._close()


@dataclass
class Stack:
    gunicorn_port: int
    gunicorn_log: Path
    nginx: Nginx


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """gunicorn (two sync workers, the shipped gunicorn.conf.py) on a fresh SQLite database,
    and nginx in front of it."""
    nginx_binary()
    folder = tmp_path_factory.mktemp("nginx-stack")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PROMETHEUS_MULTIPROC_DIR", "DATABASE_URL", "BOOTSTRAP_API_KEY")
    }
    environment.update(
        DATABASE_URL=f"sqlite:///{folder / 'nevisidm.db'}",
        BOOTSTRAP_API_KEY=BOOTSTRAP_KEY,
        LOG_LEVEL="INFO",
    )
    log = folder / "gunicorn.log"
    with gunicorn(environment, log, workers=2) as port, nginx(port, folder / "nginx") as proxy:
        yield Stack(port, log, proxy)


def create_users(port: int, client: str, count: int) -> list[str]:
    assert call(port, "POST", f"{CORE}/clients", {"extId": client, "name": client}).status == 201
    users = [f"user-{index}" for index in range(count)]
    for user in users:
        body = {"extId": user, "loginId": user, "name": {"firstName": "A", "familyName": user}}
        assert call(port, "POST", f"{CORE}/{client}/users", body).status == 201
    return users


@pytest.mark.parametrize("slow", ["headers", "body"])
def test_slow_clients_hold_nginx_not_the_workers(stack, slow):
    """64 connections dribbling their headers (or their bodies) to nginx: /health/live and
    POST ticket answer as usual (API.md section 8)."""
    port = stack.nginx.port
    client = f"slow-{secrets.token_hex(3)}"
    *users, victim = create_users(port, client, 6)
    latencies: dict[str, list[float]] = {"live": [], "ticket": []}
    if slow == "headers":
        attack = SLOW_HEADERS
    else:
        attack = slow_body(f"{CORE}/{client}/users/{victim}/ticket")
    with Dribblers(port, attack=attack) as dribblers:
        dribblers.wait_until_each_sent(3)
        sent_before = list(dribblers.sent)
        for user in users:
            live = call(port, "GET", "/health/live", key=None, timeout=NORMAL_SECONDS + 3)
            assert (live.status, live.body) == (200, {"status": "ok"})
            latencies["live"].append(live.seconds)

            path = f"{CORE}/{client}/users/{user}/ticket"
            ticket = call(port, "POST", path, {"identification": "portal"}, timeout=5)
            assert ticket.status == 201, ticket.body
            assert ticket.body["userExtId"] == user
            assert ticket.headers["Location"] == path
            latencies["ticket"].append(ticket.seconds)
            time.sleep(0.3)
        # The attack was on all along: no connection closed by nginx yet
        # (client_header_timeout and client_body_timeout are 10 s), each one sending while
        # the requests ran.
        assert dribblers.reconnects == 0
        assert all(
            after > before for after, before in zip(dribblers.sent, sent_before, strict=True)
        )
    print(f"\nunder {ATTACKERS} connections dribbling their {slow}, seconds: {latencies}")
    assert max(latencies["live"]) < NORMAL_SECONDS, latencies
    assert max(latencies["ticket"]) < NORMAL_SECONDS, latencies


def test_slow_clients_stall_gunicorn_without_nginx(stack):
    """The same attack straight at gunicorn leaves no worker free: /health/live does not
    answer. Once the attackers leave, gunicorn answers again."""
    with Dribblers(stack.gunicorn_port) as attack:
        attack.wait_until_each_sent(2)
        with pytest.raises(TimeoutError):
            call(stack.gunicorn_port, "GET", "/health/live", key=None, timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            if call(stack.gunicorn_port, "GET", "/health/live", key=None, timeout=2).status == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "gunicorn did not recover"
        time.sleep(0.2)


def test_request_ids_and_locations_behind_nginx(stack):
    """The app's Location is the resource's path, and nginx's access log, the app's log and
    the response share one request id; neither log shows the api key or the ticket."""
    port = stack.nginx.port
    (user,) = create_users(port, "logged", 1)
    path = f"{CORE}/logged/users/{user}/ticket"
    created = call(port, "POST", path, {"identification": "portal"})
    assert created.status == 201
    assert created.headers["Location"] == path
    request_id = created.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)

    access = stack.nginx.access_log.read_text()
    assert re.search(rf'"POST {re.escape(path)}" 201 .* request_id={request_id}$', access, re.M)
    app_lines = [
        json.loads(line)
        for line in stack.gunicorn_log.read_text().splitlines()
        if line.startswith("{") and request_id in line
    ]
    assert [(line["method"], line["path"], line["status"]) for line in app_lines] == [
        ("POST", path, 201)
    ]
    logs = access + stack.nginx.error_log.read_text()
    assert BOOTSTRAP_KEY not in logs
    assert created.body["plainTicket"] not in logs


def test_nginx_answers_its_own_errors_in_the_envelope(stack):
    port = stack.nginx.port
    (user,) = create_users(port, "limits", 1)
    path = f"{CORE}/limits/users/{user}/ticket"
    limit = 1024 * 1024  # client_max_body_size, the app's MAX_BODY_BYTES

    # One byte over the limit: nginx refuses it before gunicorn sees it.
    too_large = call(port, "POST", path, raw=b" " * (limit + 1))
    assert too_large.status == 413
    assert too_large.headers["Content-Type"] == "application/json"
    assert [entry["code"] for entry in too_large.body["errors"]] == ["errors.invalidData"]
    assert "X-Request-ID" not in too_large.headers

    # At the limit it reaches the app (a JSON document padded with spaces to 1 MiB).
    document = json.dumps({"identification": "portal"}).encode()
    at_limit = call(port, "POST", path, raw=document + b" " * (limit - len(document)))
    assert at_limit.status == 201, at_limit.body
    assert "X-Request-ID" in at_limit.headers

    # Paths the app does not serve, and the unauthenticated endpoints from an address that
    # is not internal (127.0.0.2: loopback, but not in the allow list).
    unknown = call(port, "GET", "/static/../etc/passwd", key=None)
    assert unknown.status == 404
    assert unknown.body["errors"][0]["code"] == "errors.noRecord"
    for internal in ("/health/live", "/metrics", "/openapi.json", "/docs"):
        refused = call(port, "GET", internal, key=None, source="127.0.0.2")
        assert refused.status == 403, internal
        assert refused.body["errors"][0]["code"] == "errors.permissionDenied"
        assert call(port, "GET", internal, key=None).status == 200, internal
    published = call(port, "GET", f"{CORE}/limits/users/{user}/ticket", source="127.0.0.2")
    assert published.status == 200
    assert call(port, "GET", "/metrics", key=None).headers["Content-Type"].startswith("text/")


def test_nginx_answers_503_in_the_envelope_when_gunicorn_is_down(tmp_path):
    with nginx(free_port(), tmp_path / "nginx") as proxy:
        down = call(proxy.port, "GET", "/health/live", key=None)
    assert down.status == 503
    assert down.headers["Content-Type"] == "application/json"
    assert down.body == {
        "errors": [
            {
                "code": "errors.serviceUnavailable",
                "message": "The service is unavailable; try again later",
            }
        ]
    }
