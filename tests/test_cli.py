"""``flask --app wsgi api-key create|list|revoke|rotate``: a principal's key from its creation
to its end (contract section 3)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from app.auth import BOOTSTRAP_PRINCIPAL, CLIENT_VIEW, PERMISSIONS, USER_VIEW
from app.extensions import db
from app.models import Principal
from app.repositories import principals
from tests.support import CORE, bearer, make_app, run_with_the_service

PERMISSIONS_URL = "/nevisidm/api/principal/v1/permissions"

ROOT = Path(__file__).resolve().parent.parent


def test_created_key_is_the_last_line_and_works(app, client):
    result = app.test_cli_runner().invoke(
        args=[
            "api-key",
            "create",
            "--name",
            "ops",
            "--permission",
            CLIENT_VIEW,
            "--permission",
            USER_VIEW,
        ]
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert result.stdout.strip() == key and key.startswith("nidm_") and len(key) > 40

    response = client.get("/nevisidm/api/principal/v1/permissions", headers=bearer(key))
    assert response.json == {"elementaryPermissions": [CLIENT_VIEW, USER_VIEW]}


def test_client_option_limits_the_data_room(app, client):
    result = app.test_cli_runner().invoke(
        args=[
            "api-key",
            "create",
            "--name",
            "acme-ops",
            "--permission",
            CLIENT_VIEW,
            "--client",
            "acme",
        ]
    )
    key = result.output.strip().splitlines()[-1]
    response = client.get(f"{CORE}/clients/globex", headers=bearer(key))
    assert response.json["errors"][0]["code"] == "errors.dataroomPermissionDenied"


def test_unknown_permission_is_refused(app):
    result = app.test_cli_runner().invoke(
        args=["api-key", "create", "--name", "x", "--permission", "AccessControl.Everything"]
    )
    assert result.exit_code != 0
    assert "AccessControl.Everything" in result.output


def test_taken_name_is_refused(app):
    runner = app.test_cli_runner()
    args = ["api-key", "create", "--name", "twice", "--permission", CLIENT_VIEW]
    assert runner.invoke(args=args).exit_code == 0
    second = runner.invoke(args=args)
    assert second.exit_code != 0
    assert "already exists" in second.output


def test_command_runs_from_the_shell_with_the_wsgi_app(database_url, app, client):
    output = run_with_the_service(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "api-key",
            "create",
            "--name",
            "shell",
            "--permission",
            CLIENT_VIEW,
        ],
        database_url,
    )
    key = output.strip().splitlines()[-1]
    response = client.get("/nevisidm/api/principal/v1/permissions", headers=bearer(key))
    assert response.status_code == 200


def create(app, name: str, *permissions: str, clients: tuple[str, ...] = ()) -> str:
    """``api-key create`` through the CLI; the new key."""
    args = ["api-key", "create", "--name", name]
    for permission in permissions:
        args += ["--permission", permission]
    for client_ext_id in clients:
        args += ["--client", client_ext_id]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def stored_principals(app) -> dict[str, Principal]:
    with app.app_context():
        rows = db.session.scalars(select(Principal)).all()
        db.session.expunge_all()
    return {principal.name: principal for principal in rows}


@pytest.fixture
def uncached(database_url, app):
    """The service as its workers run it, with the principal cache off
    (PRINCIPAL_CACHE_SECONDS=0): a revocation shows at the next request."""
    return make_app(database_url, PRINCIPAL_CACHE_SECONDS=0)


# --- list ------------------------------------------------------------------------------------


def test_list_shows_each_principal_and_never_a_key(app, client):
    with time_machine.travel(datetime(2026, 11, 22, 10, 15, 30, tzinfo=UTC), tick=False):
        ops = create(app, "ops", CLIENT_VIEW, USER_VIEW)
        acme = create(app, "acme-ops", CLIENT_VIEW, clients=("globex", "acme"))

    result = app.test_cli_runner().invoke(args=["api-key", "list"])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "name",
        "created",
        "last used",
        "clients",
        "permissions",
    ]
    assert [re.split(r"\s{2,}", line) for line in lines[1:]] == [
        ["acme-ops", "2026-11-22T10:15:30Z", "never", "acme, globex", CLIENT_VIEW],
        ["ops", "2026-11-22T10:15:30Z", "never", "every client", f"{CLIENT_VIEW}, {USER_VIEW}"],
    ]
    hashes = [principal.key_hash for principal in stored_principals(app).values()]
    for secret in [ops, acme, *hashes]:
        assert secret not in result.output
        assert secret[5:20] not in result.output


def test_list_shows_when_a_key_was_last_used(app, client):
    key = create(app, "ops", CLIENT_VIEW)
    used = datetime(2026, 11, 22, 10, 20, 0, tzinfo=UTC)
    # Recorded once the response is closed, as the WSGI server closes it after sending.
    with (
        time_machine.travel(used, tick=False),
        client.get(PERMISSIONS_URL, headers=bearer(key)) as response,
    ):
        assert response.status_code == 200

    listed = app.test_cli_runner().invoke(args=["api-key", "list"]).stdout
    assert re.split(r"\s{2,}", listed.splitlines()[1])[:3] == [
        "ops",
        stored_principals(app)["ops"].created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "2026-11-22T10:20:00Z",
    ]


def test_list_without_principals_says_so(app):
    result = app.test_cli_runner().invoke(args=["api-key", "list"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No api keys" in result.output


def test_list_says_when_the_bootstrap_principal_is_accepted(database_url, app):
    key = "bootstrap-key-listed-0123456789-abcdef"
    bootstrap = make_app(database_url, BOOTSTRAP_API_KEY=key)
    assert bootstrap.test_client().get(PERMISSIONS_URL, headers=bearer(key)).status_code == 200

    result = app.test_cli_runner().invoke(args=["api-key", "list"])

    assert result.stdout.splitlines()[1].startswith(f"{BOOTSTRAP_PRINCIPAL} ")
    assert "accepted only by a service started with BOOTSTRAP_API_KEY" in result.output
    assert key not in result.output


# --- revoke ----------------------------------------------------------------------------------


def test_a_revoked_key_is_refused_and_the_principal_is_gone(app, uncached):
    key = create(app, "ops", *PERMISSIONS)
    kept = create(app, "kept", CLIENT_VIEW)
    client = uncached.test_client()
    assert client.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 200

    result = app.test_cli_runner().invoke(args=["api-key", "revoke", "--name", "ops"])

    assert result.exit_code == 0, result.output
    assert "Revoked the api key of principal 'ops'" in result.output
    response = client.get(PERMISSIONS_URL, headers=bearer(key))
    assert response.status_code == 401
    assert response.json["errors"][0]["code"] == "errors.authenticationRequired"
    assert list(stored_principals(app)) == ["kept"]
    assert client.get(PERMISSIONS_URL, headers=bearer(kept)).status_code == 200


def test_a_revoked_key_works_until_the_workers_cache_entry_expires(database_url, app, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(principals.time, "monotonic", lambda: now[0])
    worker = make_app(database_url, PRINCIPAL_CACHE_SECONDS=10)  # the default lifetime
    key = create(app, "ops", CLIENT_VIEW)
    client = worker.test_client()
    assert client.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 200

    # The CLI is another process: the worker's cache does not hear of it.
    assert app.test_cli_runner().invoke(args=["api-key", "revoke", "--name", "ops"]).exit_code == 0
    now[0] += 9.5
    assert client.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 200
    now[0] += 1
    assert client.get(PERMISSIONS_URL, headers=bearer(key)).status_code == 401


@pytest.mark.parametrize("command", ["revoke", "rotate"])
def test_an_unknown_name_is_a_clear_error(app, command):
    create(app, "ops", CLIENT_VIEW)
    result = app.test_cli_runner().invoke(args=["api-key", command, "--name", "nobody"])
    assert result.exit_code != 0
    assert "No principal named 'nobody'" in result.output
    assert result.stdout == ""
    assert list(stored_principals(app)) == ["ops"]


# --- rotate ----------------------------------------------------------------------------------


def test_a_rotated_key_is_refused_and_the_new_one_works(app, uncached):
    old = create(app, "acme-ops", CLIENT_VIEW, USER_VIEW, clients=("acme",))
    client = uncached.test_client()
    with client.get(PERMISSIONS_URL, headers=bearer(old)) as response:
        assert response.status_code == 200
    before = stored_principals(app)["acme-ops"]
    assert before.last_used is not None

    result = app.test_cli_runner().invoke(args=["api-key", "rotate", "--name", "acme-ops"])

    assert result.exit_code == 0, result.output
    new = result.output.strip().splitlines()[-1]
    assert result.stdout.strip() == new and new.startswith("nidm_") and new != old
    assert client.get(PERMISSIONS_URL, headers=bearer(old)).status_code == 401
    response = client.get(PERMISSIONS_URL, headers=bearer(new))
    assert response.json == {"elementaryPermissions": [CLIENT_VIEW, USER_VIEW]}
    # The same principal: its permissions, data room and creation stay; its use starts over.
    after = stored_principals(app)["acme-ops"]
    assert (after.id, after.permissions, after.client_ext_ids, after.created) == (
        before.id,
        before.permissions,
        before.client_ext_ids,
        before.created,
    )
    assert after.last_used is None and after.key_hash != before.key_hash
    outside = client.get(f"{CORE}/clients/globex", headers=bearer(new))
    assert outside.json["errors"][0]["code"] == "errors.dataroomPermissionDenied"


def test_the_bootstrap_principal_is_not_created_or_rotated_by_hand(database_url, app):
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["api-key", "create", "--name", BOOTSTRAP_PRINCIPAL, "--permission", CLIENT_VIEW]
    )
    assert created.exit_code != 0
    assert "BOOTSTRAP_API_KEY" in created.output
    assert stored_principals(app) == {}

    bootstrap = make_app(database_url, BOOTSTRAP_API_KEY="bootstrap-0123456789")
    bootstrap.test_client().get(PERMISSIONS_URL, headers=bearer("bootstrap-0123456789"))
    assert list(stored_principals(app)) == [BOOTSTRAP_PRINCIPAL]
    rotated = runner.invoke(args=["api-key", "rotate", "--name", BOOTSTRAP_PRINCIPAL])
    assert rotated.exit_code != 0
    assert "BOOTSTRAP_API_KEY" in rotated.output and rotated.stdout == ""


@pytest.mark.parametrize("name", ["", "x" * 101, "tab\there"])
def test_a_name_the_table_cannot_hold_is_refused(app, name):
    result = app.test_cli_runner().invoke(
        args=["api-key", "create", "--name", name, "--permission", CLIENT_VIEW]
    )
    assert result.exit_code != 0
    assert "printable characters" in result.output
    assert stored_principals(app) == {}


def test_the_life_of_a_key_from_the_shell(database_url, app, uncached):
    def flask(*arguments: str) -> str:
        command = [sys.executable, "-m", "flask", "--app", "wsgi", "api-key", *arguments]
        return run_with_the_service(command, database_url)

    client = uncached.test_client()
    first = flask("create", "--name", "shell", "--permission", CLIENT_VIEW).strip()
    assert client.get(PERMISSIONS_URL, headers=bearer(first)).status_code == 200
    second = flask("rotate", "--name", "shell").strip()
    assert client.get(PERMISSIONS_URL, headers=bearer(first)).status_code == 401
    assert client.get(PERMISSIONS_URL, headers=bearer(second)).status_code == 200
    listed = flask("list")
    assert listed.splitlines()[1].startswith("shell ") and second not in listed
    flask("revoke", "--name", "shell")
    assert client.get(PERMISSIONS_URL, headers=bearer(second)).status_code == 401
