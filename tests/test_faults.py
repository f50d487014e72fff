"""When PostgreSQL goes away or stalls, requests get 503 errors.serviceUnavailable within a
bounded time, and the service recovers by itself when it comes back (contract section 8,
"Time limits" and "While PostgreSQL is stalled").

The app talks to the database through a TCP proxy the test controls: cutting it closes
every connection and then refuses new ones ("refuse") or accepts them and never answers
("hang", a database host that has gone silent). Stalling it ("stall") keeps every
connection open and answers nothing on any of them, old or new: a server that has stopped
working with its sockets still open, whose kernel still acknowledges data and keepalives.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.extensions import db
from tests.support import CORE, bearer, gunicorn, make_app

# Two requests' worth of connect_timeout (5 s) would be a hang; one is the bound.
DEADLINE_SECONDS = 10


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to ``target``, until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "forward"
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.update(sockets)

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._track(downstream)
            if self.mode in ("hang", "stall"):
                continue  # held open, never answered, until restored
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            self._track(upstream)
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                if self.mode != "stall":  # stalled: what either side sends is dropped
                    sink.sendall(chunk)
        except OSError:
            pass
        for end in (source, sink):
            self._close(end)

    def _close(self, end: socket.socket) -> None:
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()

    def _close_all(self) -> None:
        with self._lock:
            ends, self._sockets = self._sockets, set()
        for end in ends:
            self._close(end)

    def cut(self, mode: str) -> None:
        """Close every connection; then refuse new ones, or accept and ignore them."""
        if mode == "refuse":
            self._stop.set()
            self._accepting.join()
            self._listener.close()
        self.mode = mode
        self._close_all()

    def stall(self) -> None:
        """Keep every connection open and answer nothing, on old and new ones alike."""
        self.mode = "stall"

    def restore(self) -> None:
        if self._stop.is_set():
            self._listener = socket.create_server(("127.0.0.1", self.port))
            self._stop.clear()
            self._accepting = threading.Thread(target=self._accept, daemon=True)
            self._accepting.start()
        self._close_all()
        self.mode = "forward"

    def close(self) -> None:
        self._stop.set()
        self._accepting.join()
        self._listener.close()
        self._close_all()


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttableProxy]:
    """A ``CuttableProxy`` in front of the test database's server."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs TEST_DATABASE_URL: a database server to lose")
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield proxy
    finally:
        proxy.close()


def through(proxy: CuttableProxy, database_url: str) -> str:
    """``database_url`` with its connections going through ``proxy``."""
    return make_url(database_url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


@pytest.fixture
def proxied_app(database_url: str, proxy) -> Iterator[tuple[Flask, CuttableProxy]]:
    """An app whose database connections all go through a ``CuttableProxy``."""
    app = make_app(through(proxy, database_url))
    try:
        yield app, proxy
    finally:
        with app.app_context():
            db.engine.dispose()


def timed_get(client, path: str, **kwargs) -> tuple[int, str | None, float]:
    started = time.monotonic()
    response = client.get(path, **kwargs)
    code = response.json["errors"][0]["code"] if response.status_code >= 400 else None
    return response.status_code, code, time.monotonic() - started


@pytest.mark.parametrize("mode", ["refuse", "hang"])
def test_database_outage_gives_503_quickly_and_the_service_recovers(proxied_app, admin, mode):
    app, proxy = proxied_app
    client = app.test_client()
    created = client.post(f"{CORE}/clients", json={"name": "Acme", "extId": "acme"}, headers=admin)
    assert created.status_code == 201
    api = f"{CORE}/clients/acme"
    assert client.get(api, headers=admin).status_code == 200
    assert client.get("/health/ready").status_code == 200

    proxy.cut(mode)
    # "hang" costs a connect_timeout per request: one API request is enough there.
    paths = [api, "/health/ready"] if mode == "refuse" else [api]
    for path in paths:
        status, code, seconds = timed_get(client, path, headers=admin)
        assert (status, code) == (503, "errors.serviceUnavailable")
        assert seconds < DEADLINE_SECONDS
    assert client.get("/health/live").status_code == 200

    proxy.restore()
    assert client.get(api, headers=admin).status_code == 200
    assert client.get("/health/ready").status_code == 200
    assert (
        client.post(
            f"{CORE}/acme/users", json={"loginId": "after-outage"}, headers=admin
        ).status_code
        == 201
    )


def test_postgresql_connections_fail_fast(database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only")
    connect_args = make_app(database_url).config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    assert connect_args["connect_timeout"] == 5
    assert connect_args["tcp_user_timeout"] > 0
    assert connect_args["keepalives"] == 1


def test_connection_settings_in_the_url_win(database_url):
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only")
    url = url.update_query_dict({"connect_timeout": "2"})
    app = make_app(url.render_as_string(False))
    assert "connect_timeout" not in app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]
    with app.app_context():
        assert db.engine.url.query["connect_timeout"] == "2"


def test_a_stalled_database_ends_each_request_in_503_and_the_service_recovers(
    database_url, proxy, admin, acme
):
    # Short limits, to keep the test short: the client gives up on a statement
    # POSTGRES_STATEMENT_TIMEOUT + 1 s after it began, on a ping after 2 s.
    app = make_app(
        through(proxy, database_url), POSTGRES_STATEMENT_TIMEOUT=1, POSTGRES_CONNECT_TIMEOUT=2
    )
    client = app.test_client()
    api = f"{CORE}/clients/acme"
    try:
        assert client.get(api, headers=admin).status_code == 200
        proxy.stall()
        # The pooled connection was used a moment ago: no ping, the statement itself waits.
        status, code, seconds = timed_get(client, api, headers=admin)
        assert (status, code) == (503, "errors.serviceUnavailable")
        assert 1.5 < seconds < 3.5  # the client's deadline (2 s), not the server's limit
        # The next requests connect anew: refused within connect_timeout (2 s).
        status, code, seconds = timed_get(client, f"{CORE}/acme/users/alice", headers=admin)
        assert (status, code) == (503, "errors.serviceUnavailable")
        assert seconds < 3.5
        assert client.get("/health/live").status_code == 200

        proxy.restore()
        assert client.get(api, headers=admin).status_code == 200
        time.sleep(1.2)  # idle long enough to be pinged at the next checkout
        proxy.stall()
        # A ping that goes unanswered (2 s), then a new connection that is (2 s).
        status, code, seconds = timed_get(client, api, headers=admin)
        assert (status, code) == (503, "errors.serviceUnavailable")
        assert seconds < 6
        proxy.restore()
        assert client.get(api, headers=admin).status_code == 200
    finally:
        with app.app_context():
            db.engine.dispose()


def test_after_one_wait_ran_out_the_next_ones_wait_a_second(database_url, proxy):
    # A request may hold two connections: a stalled server costs it one deadline, not two.
    app = make_app(through(proxy, database_url), POSTGRES_STATEMENT_TIMEOUT=2)
    with app.app_context():
        engine = db.engine
    first, second = engine.raw_connection(), engine.raw_connection()
    try:
        proxy.stall()
        timings = []
        for connection in (first, second):
            cursor = connection.cursor()
            started = time.monotonic()
            with pytest.raises(Exception, match="did not answer within"):
                cursor.execute("SELECT 1")
            timings.append(time.monotonic() - started)
        assert 2.9 < timings[0] < 4  # the statement limit and a second
        assert 0.9 < timings[1] < 1.9
    finally:
        proxy.restore()
        first.invalidate()
        second.invalidate()
        engine.dispose()


@pytest.mark.parametrize(
    ("limits", "error"),
    [
        pytest.param({"POSTGRES_LOCK_TIMEOUT": 0.5}, "LockNotAvailable", id="lock_timeout"),
        pytest.param(
            {"POSTGRES_STATEMENT_TIMEOUT": 0.5, "POSTGRES_LOCK_TIMEOUT": 5},
            "QueryCanceled",
            id="statement_timeout",
        ),
    ],
)
def test_a_statement_past_the_servers_limit_ends_in_503(
    app, database_url, admin, acme, limits, error, caplog
):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only (SQLite's limit: test_time_limits.py)")
    client = app.test_client()
    ticket = f"{CORE}/acme/users/alice/ticket"
    created = client.post(ticket, json={}, headers=admin)
    assert created.status_code == 201
    impatient_app = make_app(database_url, **limits)
    impatient = impatient_app.test_client()
    with locked_credentials_of(app):
        started = time.monotonic()
        response = impatient.patch(
            ticket, json={"version": 1, "modificationComment": "x"}, headers=admin
        )
        seconds = time.monotonic() - started
    assert response.status_code == 503
    assert response.json["errors"][0]["code"] == "errors.serviceUnavailable"
    assert 0.4 < seconds < 3
    assert f"database unavailable: {error}" in caplog.text
    # Nothing was changed, and the connection serves the next request.
    shown = impatient.get(ticket, headers=admin)
    assert shown.status_code == 200 and shown.json["version"] == 1
    with impatient_app.app_context():
        db.engine.dispose()


@contextlib.contextmanager
def locked_credentials_of(app) -> Iterator[None]:
    """Every credential row locked by another connection, for the block."""
    with app.app_context():
        engine = db.engine
    with engine.connect() as holder:
        holder.execute(text("SELECT id FROM credentials FOR UPDATE"))
        try:
            yield
        finally:
            holder.rollback()


def test_migrations_run_without_the_statement_limit(app, database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("PostgreSQL only")
    from app.storage.engine import migration_connection

    with app.app_context():
        engine = db.engine
    with engine.connect() as connection, migration_connection(connection):
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "0"
        assert connection.execute(text("SHOW lock_timeout")).scalar() == "5s"
        connection.execute(text("SELECT pg_sleep(0.01)"))
    with engine.connect() as connection:  # the next connection has its limit again
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "5s"


# Contract section 8: under a stall every API request ends within 10 s with 503, and
# /health/live answers within 2 s with up to 8 API requests waiting on the database.
STALL_REQUEST_SECONDS = 10
LIVE_SECONDS = 2
WAITING_REQUESTS = 8


def http_request(port: int, method: str, path: str, key: str, body=None, timeout: float = 30):
    """(status, content type, JSON body or None, seconds) of one request on a connection of
    its own."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = bearer(key) if key else {}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    started = time.monotonic()
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        seconds = time.monotonic() - started
        content_type = response.getheader("Content-Type") or ""
        parsed = json.loads(raw) if content_type.startswith("application/json") else None
        return response.status, content_type, parsed, seconds
    finally:
        connection.close()


def test_under_gunicorn_a_stalled_database_gets_503s_while_liveness_answers(
    app, database_url, proxy, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    key = "stall-test-bootstrap-key-0123456789abcdef"
    environment = {
        **os.environ,
        "DATABASE_URL": through(proxy, database_url),
        "BOOTSTRAP_API_KEY": key,
    }
    log = tmp_path / "gunicorn.log"
    with gunicorn(environment, log, workers=2, migrate=False) as port:
        acme = {"extId": "acme", "name": "Acme"}
        assert http_request(port, "POST", f"{CORE}/clients", key, acme)[0] == 201
        for user in ("alice", "bob"):
            body = {"extId": user, "loginId": user}
            assert http_request(port, "POST", f"{CORE}/acme/users", key, body)[0] == 201
        assert http_request(port, "POST", f"{CORE}/acme/users/bob/ticket", key, {})[0] == 201
        requests = [
            ("GET", f"{CORE}/clients/acme", None),
            ("GET", f"{CORE}/acme/users/alice", None),
            ("GET", f"{CORE}/acme/users/bob/ticket", None),
            ("POST", f"{CORE}/acme/users", {"loginId": "carol"}),
            ("POST", f"{CORE}/acme/users/alice/ticket", {}),
            ("PATCH", f"{CORE}/acme/users/bob/ticket", {"version": 1}),
            ("GET", f"{CORE}/acme/users/alice/credentials", None),
            ("GET", f"{CORE}/acme/vasco", None),
        ]
        assert len(requests) == WAITING_REQUESTS
        for method, path, _ in requests[:3]:  # every worker's connections in use
            assert http_request(port, method, path, key)[0] == 200
        # Idle long enough that a pooled connection is pinged before use: the longest way
        # (an unanswered ping, then a new connection that is not answered either).
        time.sleep(1.5)

        proxy.stall()
        live: list[tuple[int, float]] = []
        stop = threading.Event()

        def poll_live() -> None:
            while not stop.is_set():
                status, _, _, seconds = http_request(port, "GET", "/health/live", "", timeout=15)
                live.append((status, seconds))
                stop.wait(0.2)

        with ThreadPoolExecutor(max_workers=WAITING_REQUESTS + 1) as pool:
            poller = pool.submit(poll_live)
            time.sleep(0.3)
            answers = list(
                pool.map(
                    lambda request: http_request(port, request[0], request[1], key, request[2]),
                    requests,
                )
            )
            time.sleep(0.5)  # the probes after the last answer too
            stop.set()
            poller.result(timeout=20)

        for status, content_type, body, seconds in answers:
            assert status == 503, body
            assert content_type.startswith("application/json")
            assert body["errors"][0]["code"] == "errors.serviceUnavailable"
            assert seconds < STALL_REQUEST_SECONDS
        assert len(live) >= 10
        assert all(status == 200 for status, _ in live)
        assert max(seconds for _, seconds in live) < LIVE_SECONDS
        request_seconds = sorted(answer[3] for answer in answers)
        logging.getLogger(__name__).info(
            "stalled: API requests ended in %.2f to %.2f s; /health/live took at most %.3f s "
            "over %d probes",
            request_seconds[0],
            request_seconds[-1],
            max(seconds for _, seconds in live),
            len(live),
        )

        proxy.restore()
        deadline = time.monotonic() + 15
        while True:  # recovers without a restart
            status = http_request(port, "GET", f"{CORE}/clients/acme", key)[0]
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200
        assert http_request(port, "POST", f"{CORE}/acme/users", key, {"loginId": "dave"})[0] == 201
        assert http_request(port, "GET", f"{CORE}/acme/users/bob/ticket", key)[0] == 200
    assert "WORKER TIMEOUT" not in log.read_text()
