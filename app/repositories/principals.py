"""Principals: api keys (stored hashed), their permissions and data rooms.

Every request authenticates, so ``by_key`` keeps what it read in a small per-process cache
for ``PRINCIPAL_CACHE_SECONDS`` (10 s by default; 0 turns it off): a principal whose key
is changed or removed in the database may still be accepted by a worker for up to that
long. ``upsert`` (the bootstrap key) empties the cache of its own process at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Select, bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..crypto import hash_api_key, new_api_key
from ..errors import DuplicateValue
from ..models import Principal
from ..storage import Prepared
from .base import Repository

CACHE_SIZE = 1024


@dataclass(frozen=True)
class AuthenticatedPrincipal:
    """What a request needs to know about its caller, as read from the database."""

    name: str
    permissions: tuple[str, ...]
    # None: every client.
    client_ext_ids: frozenset[str] | None

    def may_access_client(self, client_ext_id: str) -> bool:
        return self.client_ext_ids is None or client_ext_id in self.client_ext_ids


class PrincipalCache:
    """Principals by key hash, each kept ``seconds`` after it was read; at most ``size``."""

    EXTENSION = "nevisidm.principal_cache"

    def __init__(self, seconds: float, size: int = CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[str, tuple[float, AuthenticatedPrincipal]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> AuthenticatedPrincipal | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, principal: AuthenticatedPrincipal) -> None:
        if self.seconds <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries = {
                    cached: entry for cached, entry in self._entries.items() if entry[0] > now
                }
                while len(self._entries) >= self.size:  # the oldest entries go first
                    del self._entries[next(iter(self._entries))]
            self._entries[key_hash] = (now + self.seconds, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}

    @classmethod
    def of_app(cls) -> PrincipalCache:
        app = current_app
        extensions = app.extensions
        principal_cache = extensions.get(cls.EXTENSION)
        if principal_cache is None:
            seconds = app.config["PRINCIPAL_CACHE_SECONDS"]
            principal_cache = extensions.setdefault(cls.EXTENSION, cls(float(seconds)))
        return principal_cache


def _principal_by_key_hash() -> Select:
    principals = Principal.__table__
    return select(principals.c.name, principals.c.permissions, principals.c.client_ext_ids).where(
        principals.c.key_hash == bindparam("key_hash")
    )


_PRINCIPAL_BY_KEY_HASH = Prepared(_principal_by_key_hash)


class PrincipalRepository(Repository):
    def by_key(self, key: str) -> AuthenticatedPrincipal | None:
        """The principal holding api key ``key``, or None (see the module's note on caching)."""
        key_hash = hash_api_key(key)
        principal_cache = PrincipalCache.of_app()
        principal = principal_cache.get(key_hash)
        if principal is not None:
            return principal
        row = _PRINCIPAL_BY_KEY_HASH.one_or_none(self.work, {"key_hash": key_hash})
        if row is None:
            return None
        name, permissions, client_ext_ids = row
        principal = AuthenticatedPrincipal(
            name=name,
            permissions=tuple(permissions),
            client_ext_ids=None if client_ext_ids is None else frozenset(client_ext_ids),
        )
        principal_cache.put(key_hash, principal)
        return principal

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
        with self.changing(lambda: DuplicateValue(f"A principal named '{name}' already exists")):
            self.session.add(principal)
        return principal, key

    def upsert(
        self, name: str, key: str, permissions: list[str], client_ext_ids: list[str] | None
    ) -> None:
        """Make the principal ``name`` exist with exactly this key, in one statement. The
        principals this process has cached are forgotten (the old key stops working here
        at once)."""
        insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[self.work.dialect.name]
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
        with self.changing() as session:
            session.execute(statement)
        PrincipalCache.of_app().clear()
