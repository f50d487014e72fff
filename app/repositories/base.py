"""What every repository shares: the session, generated extIds, and conflict translation."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError

from ..errors import ApiError
from ..extensions import db
from .transactions import Statements, current_statements


def new_ext_id() -> str:
    return str(uuid.uuid4())


class Repository:
    """Base for the repositories; SQL is written in the subclasses and nowhere else."""

    @property
    def session(self):
        return db.session

    @property
    def statements(self) -> Statements:
        """Where this request's plain statements run (app/repositories/transactions.py)."""
        return current_statements()

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
