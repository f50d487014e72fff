"""Objects from rows read or written with plain statements (statements.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from itertools import accumulate
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import instance_state

Model = TypeVar("Model")


def detached_from_row(model: type[Model], row: dict[str, Any]) -> Model:
    """An object of ``model`` for a row read or written with plain SQL: detached from the
    session, its columns set from ``row`` without attribute events (as the ORM fills the
    objects it loads). Columns missing from ``row`` are unloaded: reading one raises.

    What ``make_transient_to_detached`` makes of a new object, without its other work
    (which changes nothing on an object that has no history yet): the identity key from the
    row's primary key, and the missing columns marked expired."""
    mapper = model.__mapper__  # type: ignore[attr-defined]
    instance = mapper.class_manager.new_instance()
    instance.__dict__.update(row)
    state = instance_state(instance)
    state.key = mapper.identity_key_from_primary_key(
        [row[column.key] for column in mapper.primary_key]
    )
    unloaded = _column_keys(mapper).difference(row)
    if unloaded:
        state.expired_attributes.update(unloaded)
    return instance


@cache
def _column_keys(mapper: Mapper) -> frozenset[str]:
    return frozenset(attribute.key for attribute in mapper.column_attrs)


def column_keys(table: Table, *, leave_out: Iterable[str] = ()) -> tuple[str, ...]:
    """The keys of ``table``'s columns, in order, but those in ``leave_out``."""
    left_out = frozenset(leave_out)
    return tuple(column.key for column in table.c if column.key not in left_out)


class RowLayout:
    """A row that holds the columns of several groups one after the other (a join's), and
    where each group is in it."""

    def __init__(self, *groups: tuple[str, ...]) -> None:
        ends = list(accumulate(len(columns) for columns in groups))
        self._slices = tuple(zip(groups, [0, *ends[:-1]], ends, strict=True))

    def split(self, row: Sequence[Any]) -> tuple[dict[str, Any], ...]:
        """One dict of column key: value per group."""
        return tuple(
            dict(zip(columns, row[start:end], strict=True)) for columns, start, end in self._slices
        )
