"""``flask --app wsgi api-key create``: a principal and its key, printed alone on the last line."""

from __future__ import annotations

import sys
from pathlib import Path

from app.auth import CLIENT_VIEW, USER_VIEW
from tests.support import CORE, bearer, run_with_the_service

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
