"""Users of a client."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, case, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..domain.credentials import INITIAL, UNASSIGNED_REASON
from ..domain.users import ARCHIVED_USER, user_validity_problem
from ..errors import DuplicateValue, InvalidData, NoRecord, StaleVersion
from ..models import TICKET, VASCO, Client, Credential, Policy, TicketCredential, User
from ..models.types import utcnow
from ..storage import column_keys, detached_from_row
from .base import Repository, new_ext_id
from .clients import (
    CLIENT_COLUMNS,
    CLIENT_OF_CREDENTIAL_COLUMNS,
    ClientRepository,
    client_from_rows,
)
from .pagination import Page, keyset_page
from .policies import TERMS_COLUMNS, with_default_policies

USER_COLUMNS = column_keys(User.__table__)


def _user_with_client_statement(default_policies: ColumnElement[bool]) -> Select:
    """The user and its client, and the terms of the client's default policies: creating
    a credential for the user needs them next."""
    users, clients, policies = User.__table__, Client.__table__, Policy.__table__
    return (
        select(*users.c, *clients.c, *(policies.c[name] for name in TERMS_COLUMNS))
        .join_from(users, clients, users.c.client_id == clients.c.id)
        .outerjoin(policies, default_policies)
        .where(
            clients.c.ext_id == bindparam("client_ext_id"),
            users.c.ext_id == bindparam("user_ext_id"),
        )
    )


# Every request about a user reads it through this.
_USER_WITH_CLIENT = with_default_policies(_user_with_client_statement)

# What a new credential needs of its user: the rest of the row is not read for it.
OWNER_COLUMNS = ("id", "ext_id", "client_id")


def _owner_statement(default_policies: ColumnElement[bool]) -> Select:
    users, clients, policies = User.__table__, Client.__table__, Policy.__table__
    return (
        select(
            *(users.c[name] for name in OWNER_COLUMNS),
            *(clients.c[name] for name in CLIENT_OF_CREDENTIAL_COLUMNS),
            *(policies.c[name] for name in TERMS_COLUMNS),
        )
        .join_from(users, clients, users.c.client_id == clients.c.id)
        .outerjoin(policies, default_policies)
        .where(
            clients.c.ext_id == bindparam("client_ext_id"),
            users.c.ext_id == bindparam("user_ext_id"),
        )
    )


_OWNER = with_default_policies(_owner_statement)


class UserRepository(Repository):
    def create(
        self, client: Client, login_id: str, ext_id: str | None = None, **columns: Any
    ) -> User:
        """A user of ``client``; ``columns`` are the users table's (a parsed create body)."""
        user = User(
            client_id=client.id, ext_id=ext_id or new_ext_id(), login_id=login_id, **columns
        )
        with self.changing(lambda: self._explain_conflict(client, user)) as session:
            session.add(user)
        set_committed_value(user, "client", client)
        return user

    def owner(self, client_ext_id: str, user_ext_id: str) -> User:
        """The user as a new credential of theirs needs them: id and extId, with their
        client's id, extId and ``default_policies`` (other columns not loaded), detached,
        in one read; NoRecord names what is missing."""
        rows = _OWNER.all(
            self.work,
            {"client_ext_id": client_ext_id, "user_ext_id": user_ext_id},
            repeated=len(OWNER_COLUMNS) + len(CLIENT_OF_CREDENTIAL_COLUMNS),
        )
        if not rows:
            ClientRepository().get(client_ext_id)
            raise NoRecord(f"No user '{user_ext_id}' in client '{client_ext_id}'")
        user = detached_from_row(User, dict(zip(OWNER_COLUMNS, rows[0], strict=False)))
        client = client_from_rows(rows, len(OWNER_COLUMNS), CLIENT_OF_CREDENTIAL_COLUMNS)
        set_committed_value(user, "client", client)
        return user

    def get(self, client_ext_id: str, user_ext_id: str) -> User:
        """The user with its client (and the client's ``default_policies``), detached from
        the session, in one query; NoRecord names what is missing."""
        rows = _USER_WITH_CLIENT.all(
            self.work,
            {"client_ext_id": client_ext_id, "user_ext_id": user_ext_id},
            repeated=len(USER_COLUMNS) + len(CLIENT_COLUMNS),
        )
        if not rows:
            ClientRepository().get(client_ext_id)
            raise NoRecord(f"No user '{user_ext_id}' in client '{client_ext_id}'")
        user = detached_from_row(User, dict(zip(USER_COLUMNS, rows[0], strict=False)))
        set_committed_value(user, "client", client_from_rows(rows, len(USER_COLUMNS)))
        return user

    def page(
        self, client_ext_id: str, limit: int, token: str | None, total_result: bool = False
    ) -> Page:
        """One page of the client's users in (created, extId) order."""
        client = ClientRepository().get(client_ext_id)
        statement = select(User).where(User.client_id == client.id)
        page = keyset_page(self.session, statement, User, limit, token, total_result)
        for user in page.items:
            set_committed_value(user, "client", client)
        return page

    def update(self, user: User, changes: dict[str, Any]) -> User:
        """Apply a parsed PATCH body (the users table's columns); ``changes["version"]``, when
        sent, must be the user's version. ``address`` fields sent replace those stored (a
        field sent as ``null`` is removed), the others are kept."""
        changes = dict(changes)
        expected_version = changes.pop("version", None)
        client = user.client
        login_id = changes.get("login_id")
        conflict = DuplicateValue(
            f"A user with loginId '{login_id}' already exists in client '{client.ext_id}'",
            field="loginId",
        )
        with self.changing(lambda: conflict) as session:
            changed = self._locked(session, user)
            check_version(changed, expected_version)
            if "address" in changes:
                address = changes.pop("address")
                merged = {} if address is None else {**(changed.address or {}), **address}
                merged = {name: value for name, value in merged.items() if value is not None}
                changed.address = merged or None
            for column, value in changes.items():
                setattr(changed, column, value)
            problem = user_validity_problem(changed.valid_from, changed.valid_to)
            if problem is not None:
                raise InvalidData(problem, field="validity")
            touch(changed)
        set_committed_value(changed, "client", client)
        return changed

    def archive(self, client_ext_id: str, user_ext_id: str) -> None:
        """Archive the user, as nevisIDM does: its state ``archived``, its ticket deleted and
        its VASCO credentials returned to the client's pool (unassigned, ``initial``), in one
        unit of work."""
        user = self.get(client_ext_id, user_ext_id)
        with self.changing() as session:
            archived = self._locked(session, user)
            _release_credentials(session, archived.id)
            if archived.state != ARCHIVED_USER:
                archived.state = ARCHIVED_USER
                touch(archived)

    def delete(self, client_ext_id: str, user_ext_id: str) -> None:
        """Delete the user: its ticket is deleted and its VASCO credentials return to the
        client's pool (unassigned, ``initial``), in one unit of work."""
        user = self.get(client_ext_id, user_ext_id)
        with self.changing() as session:
            deleted = self._locked(session, user)
            _release_credentials(session, deleted.id)
            session.delete(deleted)

    @staticmethod
    def _locked(session: Session, user: User) -> User:
        """The user ``user`` was read as, read again in the unit of work and locked (a
        concurrent change of it waits, then sees this one's)."""
        changed = session.scalars(
            select(User)
            .where(User.id == user.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if changed is None:
            raise NoRecord(f"No user '{user.ext_id}' in client '{user.client.ext_id}'")
        return changed

    def _find(self, client: Client, **criteria: str) -> User | None:
        return self.session.scalars(
            select(User).filter_by(client_id=client.id, **criteria)
        ).one_or_none()

    def _explain_conflict(self, client: Client, user: User) -> DuplicateValue:
        if self._find(client, ext_id=user.ext_id) is not None:
            return DuplicateValue(
                f"A user with extId '{user.ext_id}' already exists in client '{client.ext_id}'",
                field="extId",
            )
        return DuplicateValue(
            f"A user with loginId '{user.login_id}' already exists in client '{client.ext_id}'",
            field="loginId",
        )


def check_version(user: User, expected_version: int | None) -> None:
    """409 unless the user is at ``expected_version``; none sent: the current version."""
    if expected_version is not None and user.version != expected_version:
        raise StaleVersion(
            f"User '{user.ext_id}' is at version {user.version}, not {expected_version}: "
            "read it again and retry"
        )


def touch(user: User) -> None:
    user.version += 1
    user.last_modified = utcnow()


def _release_credentials(session: Session, user_id: int) -> None:
    """What a user's deletion or archiving does to its credentials: its ticket is deleted,
    its VASCO credentials return to the pool, unassigned and ``initial``."""
    credentials, tickets = Credential.__table__, TicketCredential.__table__
    ticket_ids = select(credentials.c.id).where(
        credentials.c.user_id == user_id, credentials.c.kind == TICKET
    )
    session.execute(delete(tickets).where(tickets.c.id.in_(ticket_ids)))
    session.execute(
        delete(credentials).where(credentials.c.user_id == user_id, credentials.c.kind == TICKET)
    )
    session.execute(
        update(credentials)
        .where(credentials.c.user_id == user_id, credentials.c.kind == VASCO)
        .values(
            user_id=None,
            state_name=INITIAL,
            state_change_reason=case(
                (credentials.c.state_name == INITIAL, credentials.c.state_change_reason),
                else_=UNASSIGNED_REASON,
            ),
            state_change_detail=case(
                (credentials.c.state_name == INITIAL, credentials.c.state_change_detail),
                else_=None,
            ),
            version=credentials.c.version + 1,
            last_modified=utcnow(),
        )
    )
