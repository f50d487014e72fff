from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..crypto import hash_api_key, new_api_key
from ..errors import DuplicateValue
from ..models import Principal
from .base import Repository


class PrincipalRepository(Repository):
    def by_key(self, key: str) -> Principal | None:
        return self.session.scalars(
            select(Principal).where(Principal.key_hash == hash_api_key(key))
        ).one_or_none()

    def create(
        self, name: str, permissions: list[str], client_ext_ids: list[str] | None
    ) -> tuple[Principal, str]:
        """A new principal and its api key; the key is returned here and stored only hashed."""
        key = new_api_key()
        principal = Principal(
            name=name,
            key_hash=hash_api_key(key),
            permissions=sorted(set(permissions)),
            client_ext_ids=sorted(set(client_ext_ids)) if client_ext_ids is not None else None,
        )
        self.session.add(principal)
        self.commit(lambda: DuplicateValue(f"A principal named '{name}' already exists"))
        return principal, key

    def upsert(
        self, name: str, key: str, permissions: list[str], client_ext_ids: list[str] | None
    ) -> None:
        """Make the principal ``name`` exist with exactly this key, in one statement."""
        insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[
            self.session.get_bind().dialect.name
        ]
        values = {
            "name": name,
            "key_hash": hash_api_key(key),
            "permissions": sorted(permissions),
            "client_ext_ids": client_ext_ids,
        }
        statement = insert(Principal).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[Principal.name],
            set_={column: statement.excluded[column] for column in values if column != "name"},
        )
        self.session.execute(statement)
        self.session.commit()
