"""Where a request's plain statements (``Prepared``, statements.py) run, and their
transaction.

Most requests run them in the ORM session's transaction (``SessionStatements``), beside
whatever the session loads. The views that create credentials, and GET ticket, run nothing
but plain statements, so they need none of the session's bookkeeping: ``own_connection``
gives such a request a pool connection of its own (``RequestConnection``), on which it
begins, commits and rolls back with the driver's calls alone. Measured in one process, a
begin-and-commit cycle costs about 130 us through the session and 30 us on a pool
connection.

Both kinds offer what a repository needs: the driver connection to run a statement on
(which begins the transaction where the statement belongs in one, ``BEGIN IMMEDIATE`` in
the writers' queue for an SQLite write request, app/sqlite.py), ``commit``, ``rollback``,
and ``info``, a dict for what the request has read and may use again (the terms of default
policies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g, has_app_context
from sqlalchemy import Dialect, Engine
from sqlalchemy.orm import Session

from ..extensions import db
from .statements import on_driver

# Where a request keeps its own connection (``own_connection``).
_REQUEST_CONNECTION = "nevisidm_request_connection"


class SessionStatements:
    """Plain statements in the ORM session's transaction, on the session's connection."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def dialect(self) -> Dialect:
        return self.session.get_bind().dialect

    @property
    def engine(self) -> Engine:
        return self.session.get_bind()

    @property
    def info(self) -> dict[str, Any]:
        return self.session.info

    def driver_connection(self, writes: bool = True) -> Any:
        """The driver's connection, in the session's transaction (begun if none is open),
        whatever the statement does."""
        return self.session.connection().connection.driver_connection

    def invalidate(self, error: BaseException) -> None:
        """The connection is broken: the session's transaction is over, and the pool will
        not hand the connection out again."""
        self.session.connection().invalidate(error)

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


class RequestConnection:
    """A pool connection of the request's own, for statements outside the ORM session.

    Checked out on the first statement. The transaction begins with the first statement too,
    unless ``single_write``; ``commit`` and ``rollback`` end it and return the connection to
    the pool (a later statement checks one out again); ``release``, at the end of the
    request, rolls back what is still open and returns the connection.

    ``single_write`` is for a request whose reads need no snapshot in common with its write,
    and whose write is atomic by itself and takes no row locks: the reads run outside any
    transaction, each by itself. On PostgreSQL the write is one statement, which commits
    itself too (psycopg's autocommit): no BEGIN and COMMIT round trips. On SQLite, where a
    create writes with more than one statement, the transaction begins with the first
    statement that writes: it joins the writers' queue then, which is held for the writes
    alone, not for the reads and the Python work between them.
    """

    def __init__(self, engine: Engine, *, single_write: bool = False) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.info: dict[str, Any] = {}
        self._single_write = single_write
        # PostgreSQL's statements outside a transaction: psycopg's autocommit.
        self._autocommit = single_write and self.dialect.name == "postgresql"
        self._pooled: Any = None  # SQLAlchemy's pool proxy of the driver connection
        self._driver: Any = None
        self._in_transaction = False

    def driver_connection(self, writes: bool = True) -> Any:
        """The driver's connection for the next statement, in the transaction where that
        statement belongs: begun here, unless the statement runs by itself (a read, or the
        write on PostgreSQL, of a ``single_write`` request)."""
        if self._in_transaction:
            return self._driver
        if self._pooled is None:
            self._check_out()
        if not self._autocommit and (writes or not self._single_write):
            self._begin()
        return self._driver

    def _check_out(self) -> None:
        # The pool's own checkout, whose events run (app/database.py). The pool lets the
        # driver's error through: ``on_driver`` makes a failure to connect SQLAlchemy's
        # OperationalError, as the session's connection makes it (503).
        self._pooled = on_driver(self, None, "connect", lambda _: self.engine.raw_connection())
        self._driver = self._pooled.driver_connection
        if self._autocommit:
            self._driver.autocommit = True

    def _begin(self) -> None:
        if self.dialect.name == "sqlite":
            from ..sqlite import begin_sqlite_transaction

            # Without a BEGIN, each SQLite statement is a transaction of its own.
            begin_sqlite_transaction(self._pooled.dbapi_connection, self.dialect)
        # psycopg begins a transaction by itself on the first statement.
        self._in_transaction = True

    def commit(self) -> None:
        self._end("COMMIT", lambda driver: driver.commit())

    def rollback(self) -> None:
        self._end("ROLLBACK", lambda driver: driver.rollback())

    def _end(self, sql: str, end: Callable[[Any], None]) -> None:
        """End the transaction and give the connection back at once, as the session does:
        what the request does next (explaining a conflict through the session) must not
        need a second connection while it holds this one."""
        try:
            if self._in_transaction:
                self._in_transaction = False
                on_driver(self, self._pooled.dbapi_connection, sql, end)
        finally:
            self.release()

    def invalidate(self, error: BaseException) -> None:
        """The connection is broken: forget it; the pool will not hand it out again."""
        pooled, self._pooled, self._driver = self._pooled, None, None
        self._in_transaction = False
        if pooled is not None:
            pooled.invalidate(error)

    def release(self) -> None:
        """Roll back what is still open and give the connection back to the pool."""
        pooled = self._pooled
        if pooled is None:
            return
        self._pooled = self._driver = None
        in_transaction, self._in_transaction = self._in_transaction, False
        try:
            if in_transaction:
                pooled.dbapi_connection.rollback()
            if self._autocommit:
                # The pool's connections are in transactions mode, as the session expects.
                pooled.driver_connection.autocommit = False
        except self.dialect.loaded_dbapi.Error as error:
            # The request is answered already: a connection that cannot be reset is not
            # given out again.
            pooled.invalidate(error)
        finally:
            pooled.close()


# Where a plain statement runs.
Statements = SessionStatements | RequestConnection


def current_statements() -> Statements:
    """Where this request's plain statements run: its own connection (``own_connection``),
    else the ORM session's transaction."""
    if has_app_context():
        connection = g._get_current_object().get(_REQUEST_CONNECTION)
        if connection is not None:
            return connection
    return SessionStatements(db.session)


def own_connection(*, single_write: bool = False) -> RequestConnection:
    """Run the rest of this request's plain statements on a connection of its own.

    Whatever the session did before (an api key's lookup) is committed first: on SQLite its
    transaction would hold the writers' queue that this connection is about to join. The
    connection goes back to the pool when the request ends (``release_own_connection``).
    """
    if db.session.registry.has():
        session = db.session()
        if session.in_transaction():
            session.commit()
    connection = RequestConnection(db.engine, single_write=single_write)
    setattr(g, _REQUEST_CONNECTION, connection)
    return connection


def release_own_connection(error: BaseException | None = None) -> None:
    """Teardown: the request's own connection, if it had one, goes back to the pool."""
    connection = g._get_current_object().pop(_REQUEST_CONNECTION, None)
    if connection is not None:
        connection.release()
