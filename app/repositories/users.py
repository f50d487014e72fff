"""Users of a client."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm.attributes import set_committed_value

from ..errors import DuplicateValue, NoRecord
from ..models import Client, Policy, User
from ..storage import column_keys, detached_from_row
from .base import Repository, new_ext_id
from .clients import CLIENT_COLUMNS, ClientRepository, client_from_rows
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


class UserRepository(Repository):
    def create(
        self,
        client: Client,
        login_id: str,
        ext_id: str | None = None,
        name: dict[str, str | None] | None = None,
        email: str | None = None,
    ) -> User:
        """A user of ``client``; ``name`` holds ``first_name`` and ``family_name``."""
        name = name or {}
        user = User(
            client_id=client.id,
            ext_id=ext_id or new_ext_id(),
            login_id=login_id,
            first_name=name.get("first_name"),
            family_name=name.get("family_name"),
            email=email,
        )
        with self.changing(lambda: self._explain_conflict(client, user)) as session:
            session.add(user)
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
