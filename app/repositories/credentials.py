"""What the credential repositories share: optimistic locking and the common PATCH fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import CTE, bindparam, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..errors import ApiError, InvalidData, StaleVersion
from ..models import Credential, Policy
from ..models.types import utcnow
from .base import Repository, new_ext_id
from .policies import PolicyRepository, detached_from_row
from .statements import insert_row
from .transactions import Statements

ADMIN_CHANGE_REASON = "changed-by-admin"
INITIALIZED_REASON = "initialized"


def new_credential_row(
    *,
    kind: str,
    ext_id: str | None,
    client_id: int,
    user_id: int | None,
    policy: Policy,
    state_name: str,
    now: datetime,
) -> dict[str, Any]:
    """The ``credentials`` row of a credential being created: state ``initialized``,
    counters at 0, valid from ``now`` for the policy's lifetime, version 1."""
    return {
        "kind": kind,
        "ext_id": ext_id or new_ext_id(),
        "client_id": client_id,
        "user_id": user_id,
        "policy_id": policy.id,
        "state_name": state_name,
        "state_change_reason": INITIALIZED_REASON,
        "state_change_detail": None,
        "last_successful_login_date": None,
        "successful_login_count": 0,
        "last_failed_login_date": None,
        "failed_login_count": 0,
        "modification_comment": None,
        "valid_from": now,
        "valid_to": now + policy.credential_lifetime,
        "created": now,
        "last_modified": now,
        "version": 1,
    }


def insert_credential_row(statements: Statements, row: dict[str, Any]) -> int:
    """INSERT the ``credentials`` row of a new credential (``new_credential_row``); its id.
    For SQLite: on PostgreSQL a create writes all its rows in one statement
    (``credential_cte``)."""
    return insert_row(Credential.__table__, row).execute(statements, row)


def credential_cte(columns: tuple[str, ...]) -> CTE:
    """``INSERT INTO credentials (columns) .. RETURNING id`` as the WITH of a statement that
    writes the credential's other rows from its id (PostgreSQL's data-modifying WITH): a
    create in one statement, atomic by itself, one round trip."""
    credentials = Credential.__table__
    return (
        insert(credentials)
        .values({name: bindparam(name, type_=credentials.c[name].type) for name in columns})
        .returning(credentials.c.id)
        .cte("credential")
    )


NewCredential = TypeVar("NewCredential", bound=Credential)


def committed_credential(
    model: type[NewCredential], row: dict[str, Any], **related: Any
) -> NewCredential:
    """The credential a create has just committed, built from its ``row`` (detached from
    the session), with its ``related`` objects (user, client, policy) attached: set as its
    columns are, as loaded values, which is what ``set_committed_value`` makes of them on
    an object that has no history."""
    return detached_from_row(model, {**row, **related})


class CredentialRepository(Repository):
    """Base of TicketRepository and VascoRepository."""

    #: The policy type a credential of this repository follows.
    policy_type: str

    def write_new(
        self, write: Callable[[Statements], int], explain_conflict: Callable[[], ApiError]
    ) -> int:
        """Run a create's ``write`` (its INSERTs; returns the credential's id) and commit. A
        violated unique constraint rolls back and raises ``explain_conflict()`` instead."""
        statements = self.statements
        try:
            credential_id = write(statements)
            statements.commit()
        except IntegrityError:
            statements.rollback()
            raise explain_conflict() from None
        return credential_id

    def apply_common_changes(self, credential: Credential, changes: dict[str, Any]) -> None:
        """Set the fields every credential's PATCH takes, from a parsed PATCH body.

        ``changes`` may hold ``state_name``, ``modification_comment``, ``policy_ext_id`` and
        ``validity`` (``{"from": ..., "to": ...}``, either may be left out); absent keys are
        left as they are. A new state records ``changed-by-admin`` as its reason.
        """
        if "state_name" in changes and changes["state_name"] != credential.state_name:
            credential.state_name = changes["state_name"]
            credential.state_change_reason = ADMIN_CHANGE_REASON
            credential.state_change_detail = None
        if "modification_comment" in changes:
            credential.modification_comment = changes["modification_comment"]
        if changes.get("policy_ext_id") is not None:
            credential.policy = PolicyRepository().for_credential(
                credential.client, changes["policy_ext_id"], self.policy_type
            )
        validity = changes.get("validity") or {}
        valid_from: datetime = validity.get("from", credential.valid_from)
        valid_to: datetime | None = validity.get("to", credential.valid_to)
        if valid_to is not None and valid_to <= valid_from:
            raise InvalidData("validity.to must be after validity.from", field="validity.to")
        credential.valid_from, credential.valid_to = valid_from, valid_to

    def save_changes(self, credential: Credential, expected_version: int) -> None:
        """Commit the changes made to ``credential`` if it is still at ``expected_version``.

        A stale version, whether the caller's or one lost to a concurrent writer, is 409
        ``errors.pessimisticLockingFailure``; ``version`` and ``lastModified`` move on success.
        """
        if credential.version != expected_version:
            self.session.rollback()
            raise StaleVersion(
                f"Credential '{credential.ext_id}' is at version {credential.version}, "
                f"not {expected_version}: read it again and retry"
            )
        credential.version = expected_version + 1
        credential.last_modified = utcnow()
        self.commit_guarded(credential)

    def commit_guarded(self, credential: Credential) -> None:
        """Commit the changes to (or the deletion of) ``credential``. Every UPDATE and
        DELETE of it carries "WHERE version = <the version read>": when another request
        changed it meanwhile, nothing is written and the caller gets 409."""
        try:
            self.session.commit()
        except StaleDataError:
            self.session.rollback()
            raise StaleVersion(
                f"Credential '{credential.ext_id}' was changed concurrently: read it again"
            ) from None
