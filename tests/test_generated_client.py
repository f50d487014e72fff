"""A Python client generated from /openapi.json works (contract section 11): openapi-python-client
makes it without a warning, ``mypy --strict`` finds nothing in it, and the README's three
walkthroughs (a client, a user and a ticket; the ticket's life cycle; VASCO), and the README's
own example of the client, run through it against gunicorn serving ``wsgi:app``."""

from __future__ import annotations

import base64
import contextlib
import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support import BIN, DATABASES, ROOT, fresh_database, gunicorn, make_app

PACKAGE = "nevisidm_client"
CONFIG = ROOT / "openapi-python-client.yaml"
KEY = "generated-client-test-key-0123456789"
# The generator formats what it writes with ruff.
TOOLS = ("openapi-python-client", "mypy", "ruff")


def tool(name: str) -> Path:
    """The tool in the project's environment; missing, the test is skipped, except in CI,
    where it fails: `make install` provides it (setup.cfg, extra ``test``)."""
    path = BIN / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed in {BIN}: run `make install`")
        pytest.skip(f"{name} is not installed (`make install` provides it)")
    return path


def run(command: list[Any], cwd: Path) -> str:
    """``command``'s output; it must succeed."""
    # The generator runs ruff from PATH on what it wrote.
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    completed = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    return output


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The client generated from the document gunicorn serves: the folder of its project."""
    for name in TOOLS:
        tool(name)
    folder = tmp_path_factory.mktemp("generated")
    # The document needs no database: gunicorn serves it over an empty one.
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'empty.db'}"}
    with gunicorn(environment, folder / "gunicorn.log", workers=1, migrate=False) as port:
        url = f"http://127.0.0.1:{port}/openapi.json"
        # As the README says, with the project's settings (openapi-python-client.yaml).
        command = [tool("openapi-python-client"), "generate", "--url", url, "--config", CONFIG]
        output = run(command, cwd=folder)
    assert "warning" not in output.lower(), output
    return folder / "nevisidm-client"


@pytest.fixture(scope="module")
def package(generated: Path) -> Iterator[ModuleType]:
    """The generated package, imported."""
    sys.path.insert(0, str(generated))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(generated))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_the_client_is_generated_with_a_function_per_operation(generated):
    functions = {path.stem for path in (generated / PACKAGE / "api").glob("*/*.py")}
    document = make_app("sqlite://").test_client().get("/openapi.json").json
    ids = {
        operation["operationId"]
        for path_item in document["paths"].values()
        for operation in path_item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert functions - {"__init__"} == {re.sub(r"(?<!^)([A-Z])", r"_\1", i).lower() for i in ids}


def test_the_generated_client_passes_mypy_strict(generated, tmp_path):
    output = run(
        [tool("mypy"), "--strict", "--cache-dir", tmp_path / "mypy", PACKAGE], cwd=generated
    )
    assert "Success: no issues found" in output, output


@pytest.fixture(params=DATABASES)
def served(request, tmp_path) -> Iterator[str]:
    """gunicorn over a fresh, migrated database, with ``KEY`` as the bootstrap api key; its
    base URL."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(request.param, tmp_path, "client"))
        environment = {**os.environ, "DATABASE_URL": database_url, "BOOTSTRAP_API_KEY": KEY}
        port = stack.enter_context(gunicorn(environment, tmp_path / "gunicorn.log"))
        yield f"http://127.0.0.1:{port}"


def expect(response: Any, status: int) -> Any:
    """The parsed body of a generated function's ``sync_detailed`` response, which must have
    ``status``."""
    assert response.status_code == status, response.content
    return response.parsed


def error_code(response: Any, status: int, models: ModuleType) -> str:
    error = expect(response, status)
    assert isinstance(error, models.Error)
    return error.errors[0].code


def test_readme_walkthroughs_run_through_the_generated_client(package, served):
    from nevisidm_client import AuthenticatedClient, models
    from nevisidm_client.api.clients import create_client
    from nevisidm_client.api.credentials import list_user_credentials
    from nevisidm_client.api.principal import get_permissions
    from nevisidm_client.api.tickets import (
        create_ticket,
        delete_ticket,
        get_ticket,
        reset_ticket,
        update_ticket,
        verify_ticket,
    )
    from nevisidm_client.api.users import create_user
    from nevisidm_client.api.vasco import (
        assign_vasco_credential,
        create_vasco_credential,
        delete_vasco_credential,
        get_vasco_credential,
        list_vasco_credentials,
        unassign_vasco_credential,
        update_vasco_credential,
    )

    api = AuthenticatedClient(base_url=served, token=KEY, raise_on_unexpected_status=True)

    # A client, a user and a ticket.
    permissions = expect(get_permissions.sync_detailed(client=api), 200)
    assert "AccessControl.CredentialCreate" in permissions.elementary_permissions
    acme = models.ClientCreate(ext_id="acme", name="Acme")
    expect(create_client.sync_detailed(client=api, body=acme), 201)
    name = models.UserNameInput(first_name="Alice", family_name="Smith")
    alice = models.UserCreate(ext_id="alice", login_id="alice", name=name)
    user = expect(create_user.sync_detailed("acme", client=api, body=alice), 201)
    assert user.name.first_name == "Alice"
    created = create_ticket.sync_detailed(
        "acme", "alice", client=api, body=models.TicketCreate(identification="portal")
    )
    issued = expect(created, 201)
    assert isinstance(issued, models.IssuedTicket)
    assert created.headers["location"].endswith("/acme/users/alice/ticket")
    assert issued.type_ == models.CredentialType.TICKET_AUTHORIZATION
    assert issued.state_name == models.CredentialState.ACTIVE
    assert issued.ticket.startswith("{SSHA256}") and issued.plain_ticket
    again = create_ticket.sync_detailed("acme", "alice", client=api, body=models.TicketCreate())
    assert error_code(again, 422, models) == "errors.ticketExists"

    # The ticket's life cycle.
    right = models.TicketVerify(ticket=issued.plain_ticket)
    verified = expect(verify_ticket.sync_detailed("acme", "alice", client=api, body=right), 200)
    assert verified.success_count == 1 and verified.last_successful_login_date is not None
    wrong = models.TicketVerify(ticket="not-the-ticket")
    refused = verify_ticket.sync_detailed("acme", "alice", client=api, body=wrong)
    assert error_code(refused, 422, models) == "errors.invalidCredential"
    ticket = expect(get_ticket.sync_detailed("acme", "alice", client=api), 200)
    assert ticket.failure_count == 1 and not hasattr(ticket, "plain_ticket")
    change = models.TicketUpdate(
        version=ticket.version,
        modification_comment="moved to the new portal",
        context="https://portal.example/return",
    )
    changed = expect(update_ticket.sync_detailed("acme", "alice", client=api, body=change), 200)
    assert changed.modification_comment == "moved to the new portal"
    assert changed.version == ticket.version + 1
    stale = update_ticket.sync_detailed("acme", "alice", client=api, body=change)
    assert error_code(stale, 409, models) == "errors.pessimisticLockingFailure"
    reset = expect(reset_ticket.sync_detailed("acme", "alice", client=api), 200)
    assert reset.reset_count == 1 and reset.plain_ticket != issued.plain_ticket
    expect(delete_ticket.sync_detailed("acme", "alice", client=api), 204)
    gone = get_ticket.sync_detailed("acme", "alice", client=api)
    assert error_code(gone, 404, models) == "errors.noRecord"

    # VASCO.
    blocks = [
        models.VascoTokenInput(auth_mode=mode, data=base64.b64encode(os.urandom(248)).decode())
        for mode in ("CR", "RO")
    ]
    body = models.VascoCreate(ext_id="dp-0001", vasco_tokens=blocks)
    created = create_vasco_credential.sync_detailed("acme", client=api, body=body)
    vasco = expect(created, 201)
    assert created.headers["location"].endswith("/acme/vasco/dp-0001")
    assert vasco.user_ext_id is None and vasco.state_name == models.CredentialState.INITIAL
    assert [(token.auth_mode, token.data) for token in vasco.vasco_tokens] == [
        (block.auth_mode, block.data) for block in blocks
    ]
    again = create_vasco_credential.sync_detailed("acme", client=api, body=body)
    assert error_code(again, 422, models) == "errors.vascoExists"
    read = expect(get_vasco_credential.sync_detailed("acme", "dp-0001", client=api), 200)
    assert read.vasco_tokens == vasco.vasco_tokens
    page = expect(list_vasco_credentials.sync_detailed("acme", client=api, limit=10), 200)
    assert [item.ext_id for item in page.items] == ["dp-0001"]
    assert page.pagination.limit == 10
    assigned = expect(
        assign_vasco_credential.sync_detailed("acme", "alice", "dp-0001", client=api), 200
    )
    assert assigned.user_ext_id == "alice" and assigned.version == 2
    held = expect(list_user_credentials.sync_detailed("acme", "alice", client=api), 200)
    assert [(type(item), item.ext_id) for item in held.items] == [
        (models.VascoCredential, "dp-0001")
    ]
    activate = models.VascoUpdate(version=2, state_name=models.CredentialState.ACTIVE)
    active = update_vasco_credential.sync_detailed("acme", "dp-0001", client=api, body=activate)
    assert expect(active, 200).state_name == models.CredentialState.ACTIVE
    stale = update_vasco_credential.sync_detailed("acme", "dp-0001", client=api, body=activate)
    assert error_code(stale, 409, models) == "errors.pessimisticLockingFailure"
    unassigned = expect(unassign_vasco_credential.sync_detailed("acme", "dp-0001", client=api), 200)
    assert unassigned.user_ext_id is None
    assert unassigned.state_name == models.CredentialState.INITIAL
    expect(delete_vasco_credential.sync_detailed("acme", "dp-0001", client=api), 204)
    gone = get_vasco_credential.sync_detailed("acme", "dp-0001", client=api)
    assert error_code(gone, 404, models) == "errors.noRecord"

    # The README's example of the client, as it stands there.
    example = readme_client_example().replace("http://127.0.0.1:8080", served)
    example = example.replace("local-demo-key-change-me", KEY)
    exec(compile(example, "README.md", "exec"), {})


def readme_client_example() -> str:
    """The Python block of the README's section on the generated client."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### A generated Python client", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return block
