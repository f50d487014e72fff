"""Who may call: api-key authentication, ``require_permissions`` and the client data room.

Checks run in the contract's order: authentication (401), the permissions (403
``errors.permissionDenied``), then the client named in the path (403
``errors.dataroomPermissionDenied``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from .errors import AuthenticationRequired, DataroomPermissionDenied, PermissionDenied
from .repositories.principals import AuthenticatedPrincipal, PrincipalRepository

CREDENTIAL_CREATE = "AccessControl.CredentialCreate"
CREDENTIAL_VIEW = "AccessControl.CredentialView"
CREDENTIAL_MODIFY = "AccessControl.CredentialModify"
CREDENTIAL_DELETE = "AccessControl.CredentialDelete"
CLIENT_CREATE = "AccessControl.ClientCreate"
CLIENT_VIEW = "AccessControl.ClientView"
CLIENT_MODIFY = "AccessControl.ClientModify"
CLIENT_DELETE = "AccessControl.ClientDelete"
USER_CREATE = "AccessControl.UserCreate"
USER_VIEW = "AccessControl.UserView"
USER_MODIFY = "AccessControl.UserModify"
USER_DELETE = "AccessControl.UserDelete"
USER_ARCHIVE = "AccessControl.UserArchive"
POLICY_CREATE = "AccessControl.PolicyCreate"
POLICY_VIEW = "AccessControl.PolicyView"
POLICY_MODIFY = "AccessControl.PolicyModify"
POLICY_DELETE = "AccessControl.PolicyDelete"

PERMISSIONS = (
    CREDENTIAL_CREATE,
    CREDENTIAL_VIEW,
    CREDENTIAL_MODIFY,
    CREDENTIAL_DELETE,
    CLIENT_CREATE,
    CLIENT_VIEW,
    CLIENT_MODIFY,
    CLIENT_DELETE,
    USER_CREATE,
    USER_VIEW,
    USER_MODIFY,
    USER_DELETE,
    USER_ARCHIVE,
    POLICY_CREATE,
    POLICY_VIEW,
    POLICY_MODIFY,
    POLICY_DELETE,
)

BOOTSTRAP_PRINCIPAL = "bootstrap"
# With APP_ENV=production a shorter BOOTSTRAP_API_KEY stops start-up: the key opens every
# permission on every client.
BOOTSTRAP_KEY_MIN_LENGTH = 32

View = TypeVar("View", bound=Callable[..., Any])


def authenticated_principal() -> AuthenticatedPrincipal:
    """The principal behind the request's ``Authorization: Bearer <api key>``, or 401.

    Principals are cached per process for a few seconds (app/repositories/principals.py):
    a key removed from the database may keep working that long.
    """
    principal = g.get("principal")
    if principal is not None:
        return principal
    authorization = request.headers.get("Authorization", "")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationRequired("Send an api key as 'Authorization: Bearer <api key>'")
    bootstrap = current_app.extensions.get(BootstrapPrincipal.EXTENSION)
    if bootstrap is not None:
        bootstrap.ensure()
    principal = PrincipalRepository().by_key(key)
    # Without BOOTSTRAP_API_KEY, the bootstrap principal's last key is refused, whatever the
    # database still holds (BootstrapPrincipal).
    if principal is None or (bootstrap is None and principal.name == BOOTSTRAP_PRINCIPAL):
        raise AuthenticationRequired("The api key is not valid")
    g.principal = principal
    return principal


def require_permissions(*needed: str, every_client: bool = False) -> Callable[[View], View]:
    """Let the view run only for a principal holding every permission in ``needed``.

    The client data room is checked against the view's ``client_ext_id`` path argument;
    ``every_client=True`` is for views that act outside any one client (creating a client),
    which only a principal whose data room is every client may call.
    The permissions are recorded in the operation's OpenAPI document.
    """
    unknown = set(needed) - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permissions: {sorted(unknown)}")

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticated_principal()
            missing = [
                permission for permission in needed if permission not in principal.permissions
            ]
            if missing:
                raise PermissionDenied(f"Permission required: {', '.join(missing)}")
            client_ext_id = kwargs.get("client_ext_id")
            if every_client and principal.client_ext_ids is not None:
                raise DataroomPermissionDenied("This operation needs access to every client")
            if client_ext_id is not None and not principal.may_access_client(client_ext_id):
                raise DataroomPermissionDenied(f"No access to client '{client_ext_id}'")
            return view(*args, **kwargs)

        _document(wrapper, needed)
        return wrapper  # type: ignore[return-value]

    return decorator


def _document(view: Callable[..., Any], needed: tuple[str, ...]) -> None:
    apidoc = getattr(view, "_apidoc", {})
    manual = apidoc.setdefault("manual_doc", {})
    manual["security"] = [{"bearerAuth": []}]
    manual["x-permissions"] = list(needed)
    if needed:
        note = f"Required permission(s): {', '.join(needed)}"
        manual["description"] = f"{note}\n\n{inspect.cleandoc(view.__doc__ or '')}".strip()
    view._apidoc = apidoc  # type: ignore[attr-defined]


class BootstrapKeyError(RuntimeError):
    """``BOOTSTRAP_API_KEY`` is not fit for production: the service refuses to start."""


def check_bootstrap_key(key: str | None, app_env: str) -> None:
    """Refuse a production start-up whose bootstrap key is shorter than 32 characters."""
    if key and app_env == "production" and len(key) < BOOTSTRAP_KEY_MIN_LENGTH:
        raise BootstrapKeyError(
            f"BOOTSTRAP_API_KEY must be at least {BOOTSTRAP_KEY_MIN_LENGTH} characters when "
            f"APP_ENV=production (it has {len(key)}): it grants every permission on every "
            "client. Generate one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`, "
            "or unset it and create api keys with `flask --app wsgi api-key create`."
        )


class BootstrapPrincipal:
    """Makes the ``bootstrap`` principal hold ``BOOTSTRAP_API_KEY`` with every permission.

    Registered only when the variable is set. It runs when each worker authenticates its
    first request (not at start-up, so that ``flask db upgrade`` works on an empty database
    and a database that is down at start-up does not stop the service), and again until it
    has succeeded once. The upsert is a single ``INSERT .. ON CONFLICT`` statement, so
    workers starting together cannot trip over each other.

    A service started without the variable refuses the principal named ``bootstrap``
    (``authenticated_principal``) instead of deleting its row: a check in memory, the same in
    every worker from its first request, needing no write and no database at start-up.
    """

    EXTENSION = "nevisidm.bootstrap_principal"

    def __init__(self, app: Flask) -> None:
        self._done = False
        app.extensions[self.EXTENSION] = self

    def ensure(self) -> None:
        if self._done:
            return
        # Requests that meet here (a worker's threads, at its start) each run the upsert,
        # which is idempotent: none waits behind another's, which may take as long as the
        # database's time limits while it is down.
        PrincipalRepository().upsert(
            name=BOOTSTRAP_PRINCIPAL,
            key=current_app.config["BOOTSTRAP_API_KEY"],
            permissions=list(PERMISSIONS),
            client_ext_ids=None,
        )
        self._done = True
