from __future__ import annotations

from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm.attributes import set_committed_value

from ..errors import DuplicateValue, NoRecord
from ..models import Client, Policy, User
from .base import Repository, new_ext_id
from .clients import CLIENT_COLUMNS, ClientRepository, client_from_rows
from .policies import TERMS_COLUMNS, WithDefaultTerms, detached_from_row

USER_COLUMNS = tuple(column.key for column in User.__table__.c)


def _user_with_client_statement(default_policies: ColumnElement[bool]) -> Select:
    """The user and its client, and the terms of the client's default policies
    (``WithDefaultTerms``): creating a credential for the user needs them next."""
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


# Every request about a user reads it through this (app/repositories/statements.py).
_USER_WITH_CLIENT = WithDefaultTerms(_user_with_client_statement)


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
            client=client,
            ext_id=ext_id or new_ext_id(),
            login_id=login_id,
            first_name=name.get("first_name"),
            family_name=name.get("family_name"),
            email=email,
        )
        self.session.add(user)
        self.commit(lambda: self._explain_conflict(client, user))
        return user

    def get(
        self, client_ext_id: str, user_ext_id: str, *, default_policy_type: str | None = None
    ) -> User:
        """The user with its client, in one query; NoRecord names what is missing.

        The same query reads the terms of the client's default policies (or of its default
        policy of ``default_policy_type`` alone) and hands them to
        ``PolicyRepository.remember_default_terms``: a credential created for this user in
        this request then needs no query of its own for its policy."""
        rows = _USER_WITH_CLIENT.all(
            self.statements,
            {"client_ext_id": client_ext_id, "user_ext_id": user_ext_id},
            policy_type=default_policy_type,
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
