"""The error envelope (contract section 2) for every error the app itself produces."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import event

from app.auth import PERMISSIONS
from app.extensions import db
from tests.support import CORE, bearer, count_rows, make_app

TICKET_URL = f"{CORE}/acme/users/alice/ticket"


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) == {"errors"}
    assert body["errors"] and all(set(e) <= {"code", "message", "field"} for e in body["errors"])
    assert all(e["message"] for e in body["errors"])
    assert body["errors"][0]["code"] == code
    return body


def test_unknown_route_is_404_in_the_envelope(client):
    body = assert_envelope(client.get("/no/such/thing"), 404, "errors.noRecord")
    assert "/no/such/thing" in body["errors"][0]["message"]


def test_wrong_method_is_405_with_allow_header(client, admin):
    response = client.delete(f"{CORE}/clients", headers=admin)
    assert_envelope(response, 405, "errors.methodNotAllowed")
    assert "POST" in response.headers["Allow"]


def test_body_over_the_limit_is_413(client, admin, acme):
    body = b'{"context": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(TICKET_URL, data=body, content_type="application/json", headers=admin)
    assert_envelope(response, 413, "errors.invalidData")


def test_body_limit_is_configurable(database_url, make_key):
    app = make_app(database_url, MAX_CONTENT_LENGTH=100)
    response = app.test_client().post(
        f"{CORE}/clients", json={"name": "x" * 200}, headers=bearer(make_key(*PERMISSIONS))
    )
    assert_envelope(response, 413, "errors.invalidData")


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'"text"', b"null", b"42", b'{"a": NaN}', b"\xff\xfe{}", b""],
    ids=["truncated", "array", "string", "null", "number", "nan", "bad-utf8", "empty"],
)
def test_body_that_is_not_a_json_object_is_400(client, admin, acme, body):
    response = client.post(TICKET_URL, data=body, content_type="application/json", headers=admin)
    assert_envelope(response, 400, "errors.invalidData")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_body_of_another_media_type_is_415(client, admin, acme, content_type):
    response = client.post(TICKET_URL, data="{}", content_type=content_type, headers=admin)
    body = assert_envelope(response, 415, "errors.invalidData")
    assert content_type in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_json_media_types_with_parameters_or_suffix_are_accepted(client, admin, acme, content_type):
    response = client.post(TICKET_URL, data="{}", content_type=content_type, headers=admin)
    assert response.status_code == 201


def test_unexpected_exception_is_500_without_internals(database_url, caplog):
    app = make_app(database_url)

    @app.get("/explode")
    def explode():
        raise RuntimeError("SELECT secret FROM credentials WHERE ticket = 'abc'")

    response = app.test_client().get("/explode")
    body = assert_envelope(response, 500, "errors.fatalError")
    assert "SELECT" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert body["errors"][0]["message"]
    assert "RuntimeError" in caplog.text  # the operator still sees it in the log


@pytest.mark.parametrize(
    "unreachable",
    ["sqlite:////nonexistent-directory/for/tests/db.sqlite", "postgresql://postgres@127.0.0.1:1/x"],
    ids=["sqlite", "postgresql"],
)
def test_unreachable_database_is_503(unreachable):
    app = make_app(unreachable)
    response = app.test_client().get(f"{CORE}/clients/acme", headers=bearer("some-key"))
    assert_envelope(response, 503, "errors.serviceUnavailable")
    text = response.get_data(as_text=True)
    assert "SELECT" not in text and "127.0.0.1" not in text and "sqlite" not in text


@pytest.mark.parametrize("create", ["ticket", "vasco"])
def test_a_create_is_503_when_the_database_cannot_be_reached(app, client, admin, acme, create):
    # The api key is cached by now (the fixtures' requests): the first connection the request
    # asks for is the create's own (app/storage/work.py).
    with app.app_context():
        engine = db.engine
    engine.dispose()

    def unreachable(dialect, connection_record, cargs, cparams):
        raise dialect.loaded_dbapi.OperationalError("the database host is down")

    event.listen(engine, "do_connect", unreachable)
    try:
        if create == "ticket":
            response = client.post(TICKET_URL, json={}, headers=admin)
        else:
            data = base64.b64encode(b"digipass block").decode()
            body = {"vascoTokens": [{"authMode": "CR", "data": data}]}
            response = client.post(f"{CORE}/acme/vasco", json=body, headers=admin)
    finally:
        event.remove(engine, "do_connect", unreachable)
    assert_envelope(response, 503, "errors.serviceUnavailable")
    assert count_rows(app, "credentials") == 0
