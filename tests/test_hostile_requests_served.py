"""Request limits as gunicorn hands requests over (contract section 8): a chunked body is
held to the size limit as one with a Content-Length is, and a path's raw bytes decide what it
names. The test client cannot send either as a server does."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from app.auth import PERMISSIONS
from tests.support import CORE, bearer, count_rows, gunicorn

BODY_LIMIT = 1024 * 1024


@pytest.fixture
def served(database_url, app, tmp_path) -> Iterator[int]:
    environment = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    with gunicorn(environment, tmp_path / "gunicorn.log", workers=1, migrate=False) as port:
        yield port


def exchange(port: int, head: bytes, body_parts: list[bytes]) -> tuple[int, dict]:
    """Send a request (the body from a thread of its own: the server may answer and close
    before reading it all) and read the whole response; its status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:

        def send() -> None:
            try:
                connection.sendall(head)
                for part in body_parts:
                    connection.sendall(part)
            except OSError:
                pass  # the server answered and closed without reading the rest

        sender = threading.Thread(target=send)
        sender.start()
        response = b""
        try:
            while chunk := connection.recv(65536):
                response += chunk
        except ConnectionResetError:
            pass  # closed with unread body: what arrived before the reset is the answer
        sender.join(timeout=30)
    status_line, _, rest = response.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(content)


def post(port: int, key: str, body: bytes, *, chunked: bool) -> tuple[int, dict]:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (
        f"POST {CORE}/clients HTTP/1.1\r\nHost: localhost\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"{framing}\r\nConnection: close\r\n\r\n"
    ).encode()
    if not chunked:
        return exchange(port, head, [body])
    size = 16 * 1024
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return exchange(port, head, [*parts, b"0\r\n\r\n"])


def padded_client_body(name: str, size: int) -> bytes:
    """A JSON object creating client ``name``, padded with blanks to ``size`` bytes: valid
    JSON whole, and valid JSON too if it were cut at the limit."""
    body = json.dumps({"extId": name, "name": name}).encode()
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_over_the_limit_is_413_however_it_is_framed(app, served, make_key, chunked):
    key = make_key(*PERMISSIONS)
    status, body = post(served, key, padded_client_body("big", 1_200_000), chunked=chunked)
    assert status == 413, body
    assert body["errors"][0]["code"] == "errors.invalidData"
    assert count_rows(app, "clients") == 0


def test_a_chunked_body_at_the_limit_is_accepted(app, served, make_key):
    key = make_key(*PERMISSIONS)
    status, body = post(served, key, padded_client_body("edge", BODY_LIMIT), chunked=True)
    assert status == 201, body
    assert body["extId"] == "edge"


def get(port: int, key: str, raw_path: bytes) -> tuple[int, dict]:
    head = (
        b"GET " + raw_path + b" HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nConnection: close\r\n\r\n"
    )
    return exchange(port, head, [])


def test_paths_name_objects_by_their_utf8_bytes(app, client, served, make_key):
    key = make_key(*PERMISSIONS)
    body = {"extId": "acme\ufffd", "name": "Replacement"}
    assert client.post(f"{CORE}/clients", json=body, headers=bearer(key)).status_code == 201

    assert get(served, key, f"{CORE}/clients/acme%EF%BF%BD".encode())[0] == 200
    for path in (b"/clients/acme%FF", b"/clients/acme%C3", b"/clients/a%E2%80%AEb"):
        status, body = get(served, key, CORE.encode() + path)
        assert status == 404, (path, body)
        assert body["errors"][0]["code"] == "errors.noRecord"
