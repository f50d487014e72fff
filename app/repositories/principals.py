"""Principals: api keys (stored hashed), their permissions and data rooms.

Every request authenticates, so ``by_key`` keeps what it read in a small per-process cache
for ``PRINCIPAL_CACHE_SECONDS`` (10 s by default; 0 turns it off): a principal whose key
is changed or removed in the database may still be accepted by a worker for up to that
long. ``upsert`` (the bootstrap key), ``revoke`` and ``rotate`` empty the cache of their own
process at once; other processes (the service's workers, when the CLI revokes) keep theirs.

When ``by_key`` reads a principal from the database for a request, and the key's
``last_used`` there is more than ``LAST_USED_INTERVAL`` old, ``LastUseRecorder`` writes the
new time once the request has been answered: a key in steady use costs an UPDATE about once
a minute per worker, and no caller waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, partial

from flask import Response, after_this_request, current_app, has_request_context
from sqlalchemy import Engine, Select, Update, bindparam, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..crypto import hash_api_key, new_api_key
from ..errors import DuplicateValue, NoRecord
from ..models import Principal
from ..models.types import UTCDateTime, utcnow
from ..storage import Prepared, current_work, write_apart
from .base import Repository

log = logging.getLogger(__name__)

CACHE_SIZE = 1024
# A key's ``last_used`` is written when the stored value is older than this: "last used" is
# right to about a minute (plus the principal cache's lifetime), at one UPDATE a minute.
LAST_USED_INTERVAL = timedelta(minutes=1)


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


class LastUseRecorder:
    """Writes when a key was last used (``principals.last_used``) once its request has been
    answered.

    ``noticed`` is told what the database holds each time ``by_key`` reads a principal for a
    request. When that value is older than ``LAST_USED_INTERVAL`` (or null), and this process
    has not written it for the key within the interval, one UPDATE runs in a transaction of
    its own when the server closes the response (WSGI's ``close``, after the body is sent):
    the caller has its answer, and the request's transaction and connection are given back,
    so the write reuses that pool connection and, on SQLite, queues with the other writers
    instead of waiting on the request's own lock. It changes nothing when another worker
    wrote within the interval, or when the key was rotated or revoked meanwhile (it finds
    the row by the key's hash). A failure is logged, never raised: the next read of the
    principal after the interval tries again.
    """

    EXTENSION = "nevisidm.last_use_recorder"

    def __init__(self, engine: Engine, size: int = CACHE_SIZE) -> None:
        self.engine = engine
        self.size = size
        # Key hash -> time.monotonic() when this process last wrote the key's last use.
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def noticed(self, key_hash: str, name: str, stored: datetime | None, now: datetime) -> None:
        """The key with hash ``key_hash`` (principal ``name``) authenticates the current
        request at ``now``; the database says it was last used at ``stored``."""
        if stored is not None and now - stored < LAST_USED_INTERVAL:
            return
        if not has_request_context():
            return
        interval = LAST_USED_INTERVAL.total_seconds()
        written_at = time.monotonic()
        with self._lock:
            previous = self._written.get(key_hash)
            if previous is not None and written_at - previous < interval:
                return
            if len(self._written) >= self.size:
                self._written = {
                    written: at
                    for written, at in self._written.items()
                    if written_at - at < interval
                }
                while len(self._written) >= self.size:  # the oldest go first
                    del self._written[next(iter(self._written))]
            self._written[key_hash] = written_at

        def when_answered(response: Response) -> Response:
            response.call_on_close(partial(self.record, key_hash, name, now))
            return response

        after_this_request(when_answered)

    def record(self, key_hash: str, name: str, used_at: datetime) -> None:
        """Write ``used_at`` as the last use of the key with hash ``key_hash``, unless a
        value less than ``LAST_USED_INTERVAL`` older is there already. Failures are logged,
        not raised."""
        try:
            write_apart(
                self.engine,
                _record_last_use(),
                {
                    "used_key_hash": key_hash,
                    "used_at": used_at,
                    "stale_before": used_at - LAST_USED_INTERVAL,
                },
            )
        except Exception as error:  # after the answer: nobody else would see it
            # The driver's message names the problem, without the statement.
            reason = getattr(error, "orig", None) or error
            log.warning(
                "Could not record when the api key of principal '%s' was last used: %s",
                name,
                reason,
            )

    @classmethod
    def of_app(cls) -> LastUseRecorder:
        app = current_app._get_current_object()
        recorder = app.extensions.get(cls.EXTENSION)
        if recorder is None:
            recorder = app.extensions.setdefault(cls.EXTENSION, cls(current_work().engine))
        return recorder


def _principal_by_key_hash() -> Select:
    principals = Principal.__table__
    return select(
        principals.c.name,
        principals.c.permissions,
        principals.c.client_ext_ids,
        principals.c.last_used,
    ).where(principals.c.key_hash == bindparam("key_hash"))


@cache
def _record_last_use() -> Update:
    principals = Principal.__table__
    return (
        update(principals)
        .where(
            # Not "key_hash": in an UPDATE, a column's name is its SET clause's parameter.
            principals.c.key_hash == bindparam("used_key_hash"),
            or_(
                principals.c.last_used.is_(None),
                principals.c.last_used < bindparam("stale_before", type_=UTCDateTime),
            ),
        )
        .values(last_used=bindparam("used_at", type_=UTCDateTime))
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
        name, permissions, client_ext_ids, last_used = row
        principal = AuthenticatedPrincipal(
            name=name,
            permissions=tuple(permissions),
            client_ext_ids=None if client_ext_ids is None else frozenset(client_ext_ids),
        )
        principal_cache.put(key_hash, principal)
        LastUseRecorder.of_app().noticed(key_hash, name, last_used, utcnow())
        return principal

    def every_principal(self) -> list[Principal]:
        """Every principal, by name (for ``api-key list``)."""
        return list(self.session.scalars(select(Principal).order_by(Principal.name)))

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

    def revoke(self, name: str) -> None:
        """Remove the principal ``name`` and with it its key (NoRecord when there is none).
        This process's cached principals are forgotten; other processes keep theirs for up
        to ``PRINCIPAL_CACHE_SECONDS``."""
        with self.changing() as session:
            removed = session.execute(delete(Principal).where(Principal.name == name))
            if removed.rowcount != 1:
                raise NoRecord(f"No principal named '{name}'")
        PrincipalCache.of_app().clear()

    def rotate(self, name: str) -> str:
        """Give the principal ``name`` a new key, returned here and stored only hashed; the
        old key stops working as a revoked one does (``revoke``). ``last_used`` starts over
        with the new key."""
        key = new_api_key()
        with self.changing() as session:
            changed = session.execute(
                update(Principal)
                .where(Principal.name == name)
                .values(key_hash=hash_api_key(key), last_used=None)
            )
            if changed.rowcount != 1:
                raise NoRecord(f"No principal named '{name}'")
        PrincipalCache.of_app().clear()
        return key

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
