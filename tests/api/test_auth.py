"""Who may call (contract section 3) and the order of checks (section 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from app import create_app
from app.auth import (
    BOOTSTRAP_PRINCIPAL,
    CLIENT_CREATE,
    CLIENT_VIEW,
    CREDENTIAL_CREATE,
    PERMISSIONS,
    POLICY_CREATE,
    POLICY_VIEW,
    USER_CREATE,
    USER_VIEW,
    BootstrapKeyError,
)
from app.config import TestConfig
from app.extensions import db
from app.models import Principal
from tests.support import BIN, CORE, ROOT, TEST_ENCRYPTION_KEY, bearer, make_app

# (method, url, body, permissions needed) for each endpoint of this slice, on client acme.
ENDPOINTS = [
    ("POST", f"{CORE}/clients", {"name": "New"}, [CLIENT_CREATE]),
    ("GET", f"{CORE}/clients/acme", None, [CLIENT_VIEW]),
    ("POST", f"{CORE}/acme/users", {"loginId": "bob"}, [USER_CREATE]),
    ("GET", f"{CORE}/acme/users/alice", None, [USER_VIEW]),
    ("POST", f"{CORE}/acme/policies", {"name": "P", "policyType": "TicketPolicy"}, [POLICY_CREATE]),
    ("POST", f"{CORE}/acme/users/alice/ticket", {}, [CREDENTIAL_CREATE]),
]
PERMISSIONS_URL = "/nevisidm/api/principal/v1/permissions"
CLIENT_SCOPED = [endpoint for endpoint in ENDPOINTS if endpoint[1] != f"{CORE}/clients"]


def call(client, method, url, body, headers):
    return client.open(url, method=method, json=body, headers=headers)


def code_of(response) -> str:
    return response.json["errors"][0]["code"]


@pytest.mark.parametrize(("method", "url", "body", "needed"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer not-a-key", "Basic dXNlcjpwYXNz", "nidm_x"]
)
def test_missing_or_invalid_credentials_are_401(
    client, acme, method, url, body, needed, authorization
):
    headers = {"Authorization": authorization} if authorization else {}
    response = call(client, method, url, body, headers)
    assert response.status_code == 401
    assert code_of(response) == "errors.authenticationRequired"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "url", "body", "missing"),
    [(m, u, b, permission) for m, u, b, needed in ENDPOINTS for permission in needed],
)
def test_each_endpoint_needs_its_permissions(client, acme, make_key, method, url, body, missing):
    key = make_key(*(p for p in PERMISSIONS if p != missing))
    response = call(client, method, url, body, bearer(key))
    assert response.status_code == 403
    assert code_of(response) == "errors.permissionDenied"
    assert missing in response.json["errors"][0]["message"]


@pytest.mark.parametrize(("method", "url", "body", "needed"), ENDPOINTS)
def test_the_needed_permissions_suffice(client, acme, make_key, method, url, body, needed):
    response = call(client, method, url, body, bearer(make_key(*needed)))
    assert response.status_code in (200, 201), response.json


@pytest.mark.parametrize(("method", "url", "body", "needed"), CLIENT_SCOPED)
def test_a_client_outside_the_data_room_is_403(client, acme, make_key, method, url, body, needed):
    key = make_key(*PERMISSIONS, clients=["globex"])
    response = call(client, method, url, body, bearer(key))
    assert response.status_code == 403
    assert code_of(response) == "errors.dataroomPermissionDenied"


@pytest.mark.parametrize(("method", "url", "body", "needed"), CLIENT_SCOPED)
def test_a_client_inside_the_data_room_is_allowed(
    client, acme, make_key, method, url, body, needed
):
    key = make_key(*needed, clients=["globex", "acme"])
    assert call(client, method, url, body, bearer(key)).status_code in (200, 201)


def test_creating_a_client_needs_a_data_room_of_every_client(client, make_key):
    key = make_key(CLIENT_CREATE, clients=["acme"])
    response = client.post(
        f"{CORE}/clients", json={"extId": "acme", "name": "A"}, headers=bearer(key)
    )
    assert response.status_code == 403
    assert code_of(response) == "errors.dataroomPermissionDenied"


def test_checks_run_in_the_contracts_order(client, acme, make_key):
    url = f"{CORE}/nobody/users/nobody/ticket"
    bad_body = {"unknown": 1}
    assert call(client, "POST", url, bad_body, {}).status_code == 401
    weak = bearer(make_key(CLIENT_VIEW))
    assert code_of(call(client, "POST", url, bad_body, weak)) == "errors.permissionDenied"
    outside = bearer(make_key(CREDENTIAL_CREATE, clients=["acme"]))
    assert (
        code_of(call(client, "POST", url, bad_body, outside)) == "errors.dataroomPermissionDenied"
    )
    allowed = bearer(make_key(CREDENTIAL_CREATE))
    assert call(client, "POST", url, bad_body, allowed).status_code == 404
    not_json = client.post(url, data=b"not json", content_type="text/plain", headers=allowed)
    assert not_json.status_code == 404
    real_user = f"{CORE}/acme/users/alice/ticket"
    assert call(client, "POST", real_user, bad_body, allowed).status_code == 422


def test_permissions_endpoint_lists_what_the_caller_holds(client, make_key):
    key = make_key(USER_VIEW, CLIENT_VIEW)
    response = client.get("/nevisidm/api/principal/v1/permissions", headers=bearer(key))
    assert response.status_code == 200
    assert response.json == {"elementaryPermissions": [CLIENT_VIEW, USER_VIEW]}


def test_permissions_endpoint_needs_authentication(client):
    response = client.get("/nevisidm/api/principal/v1/permissions")
    assert response.status_code == 401


def test_bearer_scheme_is_case_insensitive(client, make_key):
    key = make_key(CLIENT_VIEW)
    response = client.get(
        "/nevisidm/api/principal/v1/permissions", headers={"Authorization": f"bearer {key}"}
    )
    assert response.status_code == 200


def test_api_keys_are_stored_only_as_hashes(client, app, make_key):
    key = make_key(CLIENT_VIEW)
    with app.app_context():
        for principal in db.session.scalars(select(Principal)):
            assert key not in principal.key_hash
            assert len(principal.key_hash) == 64


def test_bootstrap_key_gets_every_permission_on_every_client(database_url, app):
    bootstrap = make_app(database_url, BOOTSTRAP_API_KEY="first-bootstrap-key-0123456789")
    client = bootstrap.test_client()
    headers = bearer("first-bootstrap-key-0123456789")

    response = client.get("/nevisidm/api/principal/v1/permissions", headers=headers)
    assert response.status_code == 200
    assert sorted(response.json["elementaryPermissions"]) == sorted(PERMISSIONS)
    response = client.post(
        f"{CORE}/clients", json={"extId": "boot", "name": "Boot"}, headers=headers
    )
    assert response.status_code == 201


def test_bootstrap_is_idempotent_and_follows_a_changed_key(database_url, app):
    for key in ("old-bootstrap-key-0123456789", "old-bootstrap-key-0123456789", "new-key-98765"):
        make_app(database_url, BOOTSTRAP_API_KEY=key).test_client().get(
            "/nevisidm/api/principal/v1/permissions", headers=bearer(key)
        )
    current = make_app(database_url, BOOTSTRAP_API_KEY="new-key-98765").test_client()
    old = current.get(
        "/nevisidm/api/principal/v1/permissions", headers=bearer("old-bootstrap-key-0123456789")
    )
    new = current.get("/nevisidm/api/principal/v1/permissions", headers=bearer("new-key-98765"))
    assert (old.status_code, new.status_code) == (401, 200)
    with app.app_context():
        names = db.session.scalars(select(Principal.name)).all()
    assert names == ["bootstrap"]


def test_started_without_the_bootstrap_key_the_old_one_is_refused(database_url, app, make_key):
    key = "bootstrap-key-of-yesterday-0123456789"
    with_key = make_app(database_url, BOOTSTRAP_API_KEY=key).test_client()
    assert with_key.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 200
    other = bearer(make_key(CLIENT_VIEW))

    without = make_app(database_url, BOOTSTRAP_API_KEY=None).test_client()
    response = without.get(PERMISSIONS_URL, headers=bearer(key))
    assert response.status_code == 401
    assert response.json["errors"][0]["code"] == "errors.authenticationRequired"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    created = without.post(
        f"{CORE}/clients", json={"extId": "late", "name": "Late"}, headers=bearer(key)
    )
    assert created.status_code == 401
    assert without.get(PERMISSIONS_URL, headers=other).status_code == 200
    # Refused by every worker from its first request, without a write: the row stays until
    # `api-key revoke --name bootstrap`, and a start with the key accepts it again.
    with app.app_context():
        assert BOOTSTRAP_PRINCIPAL in db.session.scalars(select(Principal.name)).all()
    again = make_app(database_url, BOOTSTRAP_API_KEY=key).test_client()
    assert again.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 200


def production_app(key: str | None):
    settings = {"APP_ENV": "production", "DATABASE_URL": "sqlite://", "BOOTSTRAP_API_KEY": key}
    return create_app(type("Production", (TestConfig,), settings))


@pytest.mark.parametrize("length", [8, 24, 31])
def test_production_refuses_to_start_with_a_short_bootstrap_key(length):
    key = ("zq9X" * 8)[:length]
    with pytest.raises(BootstrapKeyError) as refused:
        production_app(key)
    message = str(refused.value)
    assert "BOOTSTRAP_API_KEY must be at least 32 characters when APP_ENV=production" in message
    assert f"(it has {length})" in message
    assert key not in message


def test_production_starts_with_a_long_bootstrap_key_or_none():
    assert production_app("k" * 32).config["BOOTSTRAP_API_KEY"] == "k" * 32
    assert production_app(None).config["BOOTSTRAP_API_KEY"] is None


def test_development_accepts_a_short_bootstrap_key(database_url):
    short = make_app(database_url, APP_ENV="development", BOOTSTRAP_API_KEY="short-demo-key")
    response = short.test_client().get(PERMISSIONS_URL, headers=bearer("short-demo-key"))
    assert response.status_code == 200


def test_gunicorn_does_not_start_in_production_with_a_short_bootstrap_key(tmp_path):
    environment = {
        **os.environ,
        "APP_ENV": "production",
        "CREDENTIAL_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.db'}",
        "BOOTSTRAP_API_KEY": "local-demo-key-change-me",  # the README's, 24 characters
    }
    started = subprocess.run(
        [BIN / "gunicorn", "-w", "1", "-b", "127.0.0.1:0", "wsgi:app"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "BOOTSTRAP_API_KEY must be at least 32 characters" in started.stderr
    assert "local-demo-key-change-me" not in started.stderr
    loaded = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=environment, capture_output=True
    )
    assert loaded.returncode != 0


def test_unknown_permission_names_are_refused_at_declaration():
    from app.auth import require_permissions

    with pytest.raises(ValueError, match="unknown permissions"):
        require_permissions("AccessControl.Everything")


def test_policy_view_permission_guards_get_policy(client, acme, admin, make_key):
    created = client.post(
        f"{CORE}/acme/policies", json={"name": "P", "policyType": "TicketPolicy"}, headers=admin
    ).json
    url = f"{CORE}/acme/policies/{created['extId']}"
    denied = client.get(url, headers=bearer(make_key(CLIENT_VIEW)))
    allowed = client.get(url, headers=bearer(make_key(POLICY_VIEW)))
    assert (denied.status_code, allowed.status_code) == (403, 200)
