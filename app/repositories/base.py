"""What every repository shares: the session, generated extIds, and conflict translation."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from ..errors import ApiError
from ..extensions import db


def new_ext_id() -> str:
    return str(uuid.uuid4())


def statements_commit_themselves() -> None:
    """On PostgreSQL, let every statement of this request commit on its own (autocommit)
    rather than in one transaction, for a request whose reads need no common snapshot and
    whose write is a single statement: it saves the BEGIN and COMMIT round trips. Nothing
    changes on SQLite (a writer holds the write lock from its first read, app/database.py).
    Call it before the request's own statements: what ran before (the api key's lookup,
    when it was not cached) is committed first. SQLAlchemy restores the connection's
    isolation level when the connection goes back to the pool."""
    session = db.session()
    if session.get_bind().dialect.name != "postgresql":
        return
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


class Repository:
    """Base for the repositories; SQL is written in the subclasses and nowhere else."""

    @property
    def session(self):
        return db.session

    def commit(self, explain_conflict: Callable[[], ApiError]) -> None:
        """Commit, turning a unique-constraint violation into the contract's error.

        Uniqueness rules are database constraints, so they hold under concurrency; when one
        fires, ``explain_conflict`` looks at the committed data (after the rollback) to say
        which rule it was.
        """
        try:
            self.session.commit()
        except IntegrityError:
            self.session.rollback()
            raise explain_conflict() from None
