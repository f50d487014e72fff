"""The database's own bookkeeping: which Alembic revisions it is at."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, inspect, select

from .base import Repository

# Alembic's bookkeeping table, as Alembic creates it.
ALEMBIC_VERSION = Table("alembic_version", MetaData(), Column("version_num", String(32)))


class SchemaRepository(Repository):
    def current_revisions(self) -> frozenset[str]:
        """The revisions the database is migrated to; empty when it was never migrated.

        Runs on a connection of its own, outside the request's session."""
        with self.work.engine.connect() as connection:
            if not inspect(connection).has_table(ALEMBIC_VERSION.name):
                return frozenset()
            return frozenset(connection.scalars(select(ALEMBIC_VERSION.c.version_num)))
