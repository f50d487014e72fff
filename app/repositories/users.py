from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from ..errors import DuplicateValue, NoRecord
from ..models import Client, User
from .base import Repository, new_ext_id
from .clients import ClientRepository


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
        """The user with its client, in one query; NoRecord names what is missing."""
        user = self.session.scalars(
            select(User)
            .join(User.client)
            .options(contains_eager(User.client))
            .where(Client.ext_id == client_ext_id, User.ext_id == user_ext_id)
        ).one_or_none()
        if user is None:
            ClientRepository().get(client_ext_id)
            raise NoRecord(f"No user '{user_ext_id}' in client '{client_ext_id}'")
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
