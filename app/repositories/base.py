"""What every repository shares: its database work, generated extIds, and conflict
translation."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..storage import Work, current_work

T = TypeVar("T")


def new_ext_id() -> str:
    return str(uuid.uuid4())


class Repository:
    """Base for the repositories; SQL is written in the subclasses and nowhere else.

    Uniqueness rules are database constraints, so they hold under concurrency; when one
    fires, the repository's ``explain_conflict`` looks at the committed data (after the
    rollback) to say which rule it was."""

    @property
    def work(self) -> Work:
        """Where this request's statements run (app/storage/work.py)."""
        return current_work()

    @property
    def session(self) -> Session:
        """The ORM session, for reads (``changing`` for changes)."""
        return current_work().session

    @contextmanager
    def changing(self, explain_conflict: Callable[[], ApiError] | None = None) -> Iterator[Session]:
        """A unit of work (``Work.changes``); a violated unique constraint rolls it back and
        raises ``explain_conflict()`` instead."""
        try:
            with self.work.changes() as session:
                yield session
        except IntegrityError:
            if explain_conflict is None:
                raise
            raise explain_conflict() from None

    def write(
        self,
        run: Callable[[], T],
        explain_conflict: Callable[[], ApiError],
        *,
        single_statement: bool = False,
    ) -> T:
        """Plain statements that commit together (``Work.write``); a violated unique
        constraint rolls them back and raises ``explain_conflict()`` instead."""
        try:
            return self.work.write(run, single_statement=single_statement)
        except IntegrityError:
            raise explain_conflict() from None
