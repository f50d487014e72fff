"""What the credential repositories share: a new credential's row, optimistic locking and
the common PATCH fields."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import CTE, bindparam, insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..domain.credentials import (
    INITIALIZED_REASON,
    change_state_by_admin,
    validity_problem,
)
from ..errors import InvalidData, StaleVersion
from ..models import Credential, Policy
from ..models.types import utcnow
from ..storage import Work, detached_from_row, insert_row
from .base import Repository, new_ext_id
from .policies import PolicyRepository


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


def insert_credential_row(work: Work, row: dict[str, Any]) -> int:
    """INSERT the ``credentials`` row of a new credential (``new_credential_row``); its id.
    For SQLite: on PostgreSQL a create writes all its rows in one statement
    (``credential_cte``)."""
    return insert_row(Credential.__table__, row).execute(work, row)


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

    def apply_common_changes(self, credential: Credential, changes: dict[str, Any]) -> None:
        """Set the fields every credential's PATCH takes, from a parsed PATCH body.

        ``changes`` may hold ``state_name``, ``modification_comment``, ``policy_ext_id`` and
        ``validity`` (``{"from": ..., "to": ...}``, either may be left out); absent keys are
        left as they are. A new state records ``changed-by-admin`` as its reason.
        """
        if "state_name" in changes:
            change_state_by_admin(credential, changes["state_name"])
        if "modification_comment" in changes:
            credential.modification_comment = changes["modification_comment"]
        if changes.get("policy_ext_id") is not None:
            credential.policy = PolicyRepository().for_credential(
                credential.client, changes["policy_ext_id"], self.policy_type
            )
        validity = changes.get("validity") or {}
        valid_from: datetime = validity.get("from", credential.valid_from)
        valid_to: datetime | None = validity.get("to", credential.valid_to)
        problem = validity_problem(valid_from, valid_to)
        if problem is not None:
            raise InvalidData(problem, field="validity.to")
        credential.valid_from, credential.valid_to = valid_from, valid_to

    @staticmethod
    def check_version(credential: Credential, expected_version: int | None) -> None:
        """409 ``errors.pessimisticLockingFailure`` unless ``credential`` is at
        ``expected_version`` (the version the caller last read); None: none was sent, the
        change applies to the current version."""
        if expected_version is not None and credential.version != expected_version:
            raise StaleVersion(
                f"Credential '{credential.ext_id}' is at version {credential.version}, "
                f"not {expected_version}: read it again and retry"
            )

    @staticmethod
    def touch(credential: Credential) -> None:
        """Every change moves ``version`` and ``lastModified``. Every UPDATE and DELETE
        carries "WHERE version = <the version read>" (the mapper's ``version_id_col``)."""
        credential.version += 1
        credential.last_modified = utcnow()

    @contextmanager
    def saving(self, credential_ext_id: str) -> Iterator[Session]:
        """A unit of work for a credential's change (``changing``): a concurrent change
        that slipped between its read and its write is 409, not lost."""
        try:
            with self.changing() as session:
                yield session
        except StaleDataError:
            raise StaleVersion(
                f"Credential '{credential_ext_id}' was changed concurrently: read it again"
            ) from None
