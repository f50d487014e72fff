"""Who may call the VASCO endpoints, and the contract's order of checks (sections 1 to 3):
401, 403 permission, 403 data room, 404, then the body (400, 415, 422)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from app.auth import (
    CREDENTIAL_CREATE,
    CREDENTIAL_DELETE,
    CREDENTIAL_MODIFY,
    CREDENTIAL_VIEW,
    PERMISSIONS,
)
from tests.support import CORE, bearer, count_rows, create_vasco, tokens


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # under CORE; {c} client, {u} user, {v} credential
    needs: tuple[str, ...]
    body: dict[str, Any] | None = field(default=None, hash=False)
    success: int = 200

    def url(self, c: str = "acme", u: str = "alice", v: str = "token-1") -> str:
        return CORE + self.path.format(c=c, u=u, v=v)

    def call(self, client, headers: dict[str, str], **names: str):
        return client.open(self.url(**names), method=self.method, json=self.body, headers=headers)


CREATE = Endpoint(
    "create",
    "POST",
    "/{c}/vasco",
    (CREDENTIAL_CREATE, CREDENTIAL_VIEW),
    {"extId": "token-2", "vascoTokens": tokens("CR")},
    201,
)
LIST = Endpoint("list", "GET", "/{c}/vasco", (CREDENTIAL_VIEW,))
GET = Endpoint("get", "GET", "/{c}/vasco/{v}", (CREDENTIAL_VIEW,))
PATCH = Endpoint(
    "patch",
    "PATCH",
    "/{c}/vasco/{v}",
    (CREDENTIAL_MODIFY, CREDENTIAL_VIEW),
    {"version": 1, "stateName": "active"},
)
DELETE = Endpoint("delete", "DELETE", "/{c}/vasco/{v}", (CREDENTIAL_DELETE,), success=204)
ASSIGN = Endpoint("assign", "PUT", "/{c}/users/{u}/vasco/{v}", (CREDENTIAL_MODIFY, CREDENTIAL_VIEW))
UNASSIGN = Endpoint(
    "unassign", "PUT", "/{c}/vasco/{v}/unassign", (CREDENTIAL_MODIFY, CREDENTIAL_VIEW)
)

ENDPOINTS = [CREATE, LIST, GET, PATCH, DELETE, ASSIGN, UNASSIGN]
WITH_BODY = [CREATE, PATCH]
ON_A_CREDENTIAL = [GET, PATCH, DELETE, ASSIGN, UNASSIGN]


def by_name(endpoints: list[Endpoint]):
    return pytest.mark.parametrize("endpoint", endpoints, ids=[e.name for e in endpoints])


@pytest.fixture
def vasco(client, admin, acme) -> dict[str, Any]:
    response = create_vasco(client, admin, extId="token-1")
    assert response.status_code == 201, response.json
    return response.json


def assert_error(response, status: int, code: str, message_part: str = "") -> None:
    assert response.status_code == status, response.json
    [error] = response.json["errors"]
    assert error["code"] == code
    assert message_part in error["message"]


def assert_unchanged(client, admin, app, vasco: dict[str, Any]) -> None:
    assert client.get(f"{CORE}/acme/vasco/token-1", headers=admin).json == vasco
    assert count_rows(app, "credentials") == 1


@by_name(ENDPOINTS)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nidm_not-a-key"}, {"Authorization": "Basic YTpi"}],
    ids=["no-key", "unknown-key", "other-scheme"],
)
def test_calls_without_a_valid_key_are_401(client, admin, vasco, app, endpoint, headers):
    response = endpoint.call(client, headers)
    assert_error(response, 401, "errors.authenticationRequired")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_unchanged(client, admin, app, vasco)


@pytest.mark.parametrize(
    ("endpoint", "missing"),
    [(endpoint, permission) for endpoint in ENDPOINTS for permission in endpoint.needs],
    ids=[
        f"{endpoint.name}-without-{p.split('.')[1]}"
        for endpoint in ENDPOINTS
        for p in endpoint.needs
    ],
)
def test_each_required_permission_is_needed(client, admin, vasco, app, make_key, endpoint, missing):
    key = make_key(*(permission for permission in PERMISSIONS if permission != missing))
    response = endpoint.call(client, bearer(key))
    assert_error(response, 403, "errors.permissionDenied", missing)
    assert_unchanged(client, admin, app, vasco)


@by_name(ENDPOINTS)
def test_exactly_the_required_permissions_are_enough(client, vasco, make_key, endpoint):
    key = make_key(*endpoint.needs, clients=["acme"])
    response = endpoint.call(client, bearer(key))
    assert response.status_code == endpoint.success, response.json


@by_name(ENDPOINTS)
def test_a_client_outside_the_data_room_is_403(client, admin, vasco, app, make_key, endpoint):
    key = make_key(*PERMISSIONS, clients=["globex"])
    response = endpoint.call(client, bearer(key))
    assert_error(response, 403, "errors.dataroomPermissionDenied", "acme")
    assert_unchanged(client, admin, app, vasco)


@by_name(ENDPOINTS)
def test_permission_is_checked_before_the_client_exists(client, make_key, acme, endpoint):
    key = make_key()
    assert_error(endpoint.call(client, bearer(key), c="nobody"), 403, "errors.permissionDenied")


@by_name(ENDPOINTS)
def test_data_room_is_checked_before_the_client_exists(client, make_key, acme, endpoint):
    key = make_key(*PERMISSIONS, clients=["acme"])
    response = endpoint.call(client, bearer(key), c="nobody")
    assert_error(response, 403, "errors.dataroomPermissionDenied")


@by_name(ENDPOINTS)
def test_unknown_client_is_404(client, admin, acme, endpoint):
    response = endpoint.call(client, admin, c="nobody")
    assert response.json == {
        "errors": [{"code": "errors.noRecord", "message": "No client 'nobody'"}]
    }
    assert response.status_code == 404


@by_name(ON_A_CREDENTIAL)
def test_unknown_credential_is_404(client, admin, vasco, endpoint):
    response = endpoint.call(client, admin, v="nope")
    assert response.status_code == 404
    assert response.json == {
        "errors": [
            {"code": "errors.noRecord", "message": "No VASCO credential 'nope' in client 'acme'"}
        ]
    }


def test_unknown_user_is_404(client, admin, vasco, app):
    response = ASSIGN.call(client, admin, u="nobody")
    assert response.status_code == 404
    assert response.json == {
        "errors": [{"code": "errors.noRecord", "message": "No user 'nobody' in client 'acme'"}]
    }
    assert_unchanged(client, admin, app, vasco)


def test_a_user_of_another_client_is_404(client, admin, vasco):
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    client.post(f"{CORE}/globex/users", json={"extId": "carol", "loginId": "carol"}, headers=admin)
    assert ASSIGN.call(client, admin, u="carol").status_code == 404


@by_name(WITH_BODY)
def test_existence_is_checked_before_the_body(client, admin, vasco, endpoint):
    bad = {"vascoTokens": "none", "version": "x", "unknown": 1}
    url = endpoint.url(c="nobody")
    assert client.open(url, method=endpoint.method, json=bad, headers=admin).status_code == 404
    if endpoint is PATCH:
        url = endpoint.url(v="nope")
        assert client.open(url, method="PATCH", json=bad, headers=admin).status_code == 404


@by_name(WITH_BODY)
@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ('{"extId": "x"}', "text/plain", 415),
        ("extId=x", "application/x-www-form-urlencoded", 415),
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"a string"', "application/json", 400),
        ("NaN", "application/json", 400),
        ("", "application/json", 400),
    ],
)
def test_bodies_that_are_not_json_objects_are_rejected(
    client, admin, vasco, app, endpoint, data, content_type, status
):
    response = client.open(
        endpoint.url(), method=endpoint.method, data=data, content_type=content_type, headers=admin
    )
    assert_error(response, status, "errors.invalidData")
    assert_unchanged(client, admin, app, vasco)


def test_a_body_over_the_limit_is_413(client, admin, acme):
    huge = {"vascoTokens": tokens("CR"), "extId": "x", "padding": "x" * (1024 * 1024)}
    assert_error(client.post(CREATE.url(), json=huge, headers=admin), 413, "errors.invalidData")
