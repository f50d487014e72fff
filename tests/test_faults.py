"""When PostgreSQL goes away, requests get 503 errors.serviceUnavailable within a bounded
time, and the service recovers by itself when it comes back.

The app talks to the database through a TCP proxy the test controls: cutting it closes
every connection and then refuses new ones ("refuse") or accepts them and never answers
("hang", a database host that has gone silent).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from app.extensions import db
from tests.support import CORE, make_app

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
            if self.mode == "hang":
                continue  # held open, never answered, until restored
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            self._track(upstream)
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
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
def proxied_app(database_url: str) -> Iterator[tuple[Flask, CuttableProxy]]:
    """An app whose database connections all go through a ``CuttableProxy``."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("needs TEST_DATABASE_URL: a database server to lose")
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    app = make_app(url.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    try:
        yield app, proxy
    finally:
        with app.app_context():
            db.engine.dispose()
        proxy.close()


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
