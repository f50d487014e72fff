"""The database work of a request or a command: one ``Work`` per app context, the only way
the repositories reach the database.

A repository says how each piece of its work runs; nothing here looks at the request:

* **Reads** (``Prepared`` statements, statements.py) run by themselves, outside any
  transaction (PostgreSQL in autocommit, SQLite without a BEGIN), or in the unit of work
  when one is open. ORM reads go through ``session`` in a read transaction.
* **A write** (``write``): plain statements that commit together, and whose reads need no
  snapshot in common with the reads before them. On SQLite the transaction begins with its
  first statement, in the writers' queue, which is held for the writes alone; on
  PostgreSQL a ``single_statement`` write commits itself (autocommit): no BEGIN and COMMIT
  round trips.
* **A unit of work** (``changes``): changes to ORM objects in the session, committed
  together at the end; on SQLite in the writers' queue from its first statement.

Plain statements run on a pool connection of the work's own, with the driver's calls alone
(cheaper than the session's bookkeeping: docs/decisions.md, "Storage"); the session has its
own connection, and a request uses one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.sql import Executable

from ..extensions import db
from .engine import WRITES_OPTION
from .statements import on_driver

T = TypeVar("T")

# Where the app context keeps its work (``current_work``).
_WORK = "nevisidm_work"


class Work:
    """Where a request's statements run, and its transactions (see the module's note)."""

    def __init__(self, engine: Engine, session: scoped_session) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._sessions = session
        self._postgresql = self.dialect.name == "postgresql"
        self._pooled: Any = None  # SQLAlchemy's pool proxy of the driver connection
        self._driver: Any = None
        self._writing = False  # in ``write``: statements begin the transaction
        self._single_statement = False  # in a ``write`` that commits itself
        self._in_transaction = False  # the own connection's transaction is open
        self._changing = False  # in ``changes``: statements run in the session's transaction

    @property
    def session(self) -> Session:
        """The ORM session, for reads; change objects in ``changes`` alone."""
        return self._sessions()

    # Plain statements (statements.py) ---------------------------------------------------

    def driver_connection(self) -> Any:
        """The driver's connection for the next plain statement, in the transaction where
        it belongs."""
        if self._changing:
            return self._sessions().connection().connection.driver_connection
        if self._in_transaction:
            return self._driver
        if self._pooled is None:
            self._check_out()
        if self._writing and not self._single_statement:
            self._begin()
        return self._driver

    def _check_out(self) -> None:
        # The pool's own checkout, whose events run (engine.py). The pool lets the driver's
        # error through: ``on_driver`` makes a failure to connect SQLAlchemy's
        # OperationalError, as the session's connection makes it (503).
        self._pooled = on_driver(self, None, "connect", lambda _: self.engine.raw_connection())
        self._driver = self._pooled.driver_connection
        if self._postgresql:
            # Reads and single-statement writes run by themselves.
            self._driver.autocommit = True

    def _begin(self) -> None:
        if self._postgresql:
            # psycopg begins a transaction by itself on the next statement.
            self._driver.autocommit = False
        else:
            from .sqlite import begin_transaction

            # Without a BEGIN, each SQLite statement is a transaction of its own.
            begin_transaction(self._pooled.dbapi_connection, self.dialect, writes=True)
        self._in_transaction = True

    def invalidate(self, error: BaseException) -> None:
        """The connection of the failed statement is broken: the pool will not hand it out
        again."""
        if self._changing:
            self._sessions().connection().invalidate(error)
            return
        pooled, self._pooled, self._driver = self._pooled, None, None
        self._in_transaction = False
        if pooled is not None:
            pooled.invalidate(error)

    # Transactions ------------------------------------------------------------------------

    def write(self, run: Callable[[], T], *, single_statement: bool = False) -> T:
        """``run()``: plain statements that commit together when it returns, and are rolled
        back when it raises. With ``single_statement`` (``run`` runs one statement, atomic
        by itself) PostgreSQL runs it without a transaction. The connection goes back to
        the pool at once: what the caller does next (explaining a conflict through the
        session) must not need a second connection while it holds this one."""
        if self._changing:
            return run()
        self._writing, self._single_statement = True, single_statement and self._postgresql
        try:
            result = run()
            if self._in_transaction:
                self._in_transaction = False
                on_driver(self, self._pooled.dbapi_connection, "COMMIT", lambda d: d.commit())
            return result
        finally:
            self._writing = self._single_statement = False
            self.release()

    @contextmanager
    def changes(self) -> Iterator[Session]:
        """A unit of work in the ORM session: what is changed in the block is committed
        together at its end (the write lock taken at its start on SQLite), and rolled back
        when the block raises. A read transaction the session had open ends first: the
        objects it loaded stay as they are (``expire_on_commit`` is off); reread with a lock
        what a read-modify-write needs."""
        # One connection at a time: the own one is outside any transaction here.
        self.release()
        session = self._sessions()
        if session.in_transaction():
            session.commit()
        session.connection(execution_options={WRITES_OPTION: True})
        self._changing = True
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            self._changing = False

    def release(self) -> None:
        """Roll back what is still open on the own connection and give it back to the pool."""
        pooled = self._pooled
        if pooled is None:
            return
        self._pooled = self._driver = None
        in_transaction, self._in_transaction = self._in_transaction, False
        try:
            if in_transaction:
                pooled.dbapi_connection.rollback()
            if self._postgresql:
                # The pool's connections are in transactions mode, as the session expects.
                pooled.driver_connection.autocommit = False
        except self.dialect.loaded_dbapi.Error as error:
            # A connection that cannot be reset is not given out again.
            pooled.invalidate(error)
        finally:
            pooled.close()


def write_apart(engine: Engine, statement: Executable, values: dict[str, Any]) -> None:
    """One statement in a write transaction of its own, outside any request's or command's
    work (after a response has been sent): on SQLite in the writers' queue like any write."""
    connection = engine.connect().execution_options(**{WRITES_OPTION: True})
    with connection, connection.begin():
        connection.execute(statement, values)


def current_work() -> Work:
    """The work of the current app context (made on first use)."""
    state = g._get_current_object()  # looked up once: each use of the proxy looks it up
    work = state.get(_WORK)
    if work is None:
        work = Work(db.engine, db.session)
        setattr(state, _WORK, work)
    return work


def end_work(error: BaseException | None = None) -> None:
    """App context teardown: the work's own connection goes back to the pool."""
    work = g._get_current_object().pop(_WORK, None)
    if work is not None:
        work.release()
