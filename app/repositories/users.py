from __future__ import annotations

from functools import cache

from sqlalchemy import Select, and_, bindparam, select, true
from sqlalchemy.orm import contains_eager

from ..errors import DuplicateValue, NoRecord
from ..models import Client, Policy, User
from .base import Repository, new_ext_id
from .clients import ClientRepository
from .policies import TERMS_COLUMNS, PolicyRepository


@cache
def _user_with_client() -> Select:
    """The user and its client, and the terms of the client's default policies (one row
    per default policy): creating a credential for the user needs them next. Built once:
    every request about a user reads it through this, and composing the statement costs
    more than running it from the compiled cache."""
    policies = Policy.__table__
    return (
        select(
            User,
            *(policies.c[name].label(f"policy_{name}") for name in TERMS_COLUMNS),
        )
        .join(User.client)
        .outerjoin(
            policies, and_(policies.c.client_id == Client.id, policies.c.is_default == true())
        )
        .options(contains_eager(User.client))
        .where(Client.ext_id == bindparam("client_ext_id"), User.ext_id == bindparam("user_ext_id"))
    )


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

    def get(self, client_ext_id: str, user_ext_id: str) -> User:
        """The user with its client, in one query; NoRecord names what is missing.

        The same query reads the terms of the client's default policies and hands them to
        ``PolicyRepository.remember_default_terms``: a credential created for this user in
        this request then needs no query of its own for its policy."""
        rows = self.session.execute(
            _user_with_client(), {"client_ext_id": client_ext_id, "user_ext_id": user_ext_id}
        ).all()
        if not rows:
            ClientRepository().get(client_ext_id)
            raise NoRecord(f"No user '{user_ext_id}' in client '{client_ext_id}'")
        user = rows[0][0]
        default_policies = [
            dict(zip(TERMS_COLUMNS, row[1:], strict=True)) for row in rows if row[1] is not None
        ]
        PolicyRepository().remember_default_terms(user.client_id, default_policies)
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
