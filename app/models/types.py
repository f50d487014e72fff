"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Now, in UTC, at the second precision the API shows."""
    return datetime.now(UTC).replace(microsecond=0)


# SQLAlchemy's text for an SQLite DATETIME (its DATETIME._storage_format).
_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def _in_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every database.

    PostgreSQL stores ``timestamptz``; SQLite has no zone, so values are written as naive UTC
    and given their zone back when read.

    On SQLite, a value becomes SQLAlchemy's text for a DATETIME
    (``2026-11-23 17:05:09.000000``) in one step: SQLAlchemy would convert it here, then
    format it field by field. A credential's row writes four dates.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = _in_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect):
        if not self._sqlite_text(dialect):
            return super().bind_processor(dialect)

        def process(value):
            if value is None:
                return None
            value = _in_utc(value)
            # isoformat(" ", "microseconds") of the naive value, in one step.
            return _SQLITE_DATETIME % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )

        return process

    def _sqlite_text(self, dialect) -> bool:
        """Whether the value is written as SQLite's DATETIME text in SQLAlchemy's own format,
        which is what ``datetime.isoformat(" ", "microseconds")`` writes."""
        if dialect.name != "sqlite":
            return False
        implementation = self.impl_instance.dialect_impl(dialect)
        return (
            type(implementation) is sqlite.DATETIME
            and implementation._storage_format == sqlite.DATETIME._storage_format
            and implementation._reg is None
        )
