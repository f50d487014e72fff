"""Statements of the hot paths, compiled once and run on the driver's cursor.

Creating a ticket or a VASCO credential, and the read of the client or user that comes
first, are the requests a deployment makes most. SQLAlchemy builds their SQL from the
models as for every other statement, but running a statement through ``Connection.execute``
costs several times what the database needs for it (an execution context, result metadata,
events), several times the database's own work for an indexed read. ``Prepared`` keeps what
SQLAlchemy compiled for the dialect (the SQL, the order of its parameters, the type
conversions of each parameter and result column) and runs it on a DB-API cursor of the
work's connection (work.py), in the transaction where the statement belongs. Errors are
SQLAlchemy's as usual (``IntegrityError`` for a violated constraint, ``OperationalError`` for an
unreachable database), and when the database has dropped the connection, it and the rest of
the pool are discarded, as ``Connection.execute`` would do.

Only plain statements qualify: bound parameters by name, no expanding IN, no Python-side
column defaults (every value is passed explicitly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Dialect, Table, bindparam, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

if TYPE_CHECKING:
    from .work import Work

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool
    # (parameter name, its conversion) in the order the SQL takes them.
    binds: tuple[tuple[str, Processor], ...]
    # The conversion of each result column, None where the driver's value is final.
    results: tuple[Processor, ...]

    def __post_init__(self) -> None:
        # Only the columns that have a conversion are visited for each row.
        conversions = tuple(
            (index, convert) for index, convert in enumerate(self.results) if convert is not None
        )
        object.__setattr__(self, "_conversions", conversions)

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        converted = [
            (name, values[name] if convert is None else convert(values[name]))
            for name, convert in self.binds
        ]
        if self.positional:
            return [value for _, value in converted]
        return dict(converted)

    def row(self, raw: Sequence[Any], start: int = 0) -> tuple[Any, ...]:
        """The row's values as the columns' types give them; before column ``start``, as the
        driver gave them."""
        if len(raw) != len(self.results):
            raise ValueError(f"{len(raw)} columns where {len(self.results)} were expected")
        if not self._conversions:
            return tuple(raw)
        values = list(raw)
        for index, convert in self._conversions:
            if index >= start:
                values[index] = convert(values[index])
        return tuple(values)


class Prepared:
    """A Core statement, built by ``build`` on first use and compiled once per dialect."""

    def __init__(self, build: Callable[[], ClauseElement]) -> None:
        self._build = build
        self._statement: ClauseElement | None = None
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    @property
    def statement(self) -> ClauseElement:
        if self._statement is None:
            self._statement = self._build()
        return self._statement

    def compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _compile(self.statement, dialect)
        return compiled

    def one_or_none(self, on: Work, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        compiled = self.compiled(on.dialect)
        row = _run(on, compiled, compiled.parameters(values), lambda cursor: cursor.fetchone())
        return None if row is None else compiled.row(row)

    def all(
        self, on: Work, values: Mapping[str, Any], *, repeated: int = 0
    ) -> list[tuple[Any, ...]]:
        """Every row. The first ``repeated`` columns are the same in every row (the one side
        of a join): they are converted in the first row only, and are left as the driver
        gave them in the others."""
        compiled = self.compiled(on.dialect)
        rows = _run(on, compiled, compiled.parameters(values), lambda cursor: cursor.fetchall())
        return [compiled.row(row, repeated if index else 0) for index, row in enumerate(rows)]

    def execute(self, on: Work, values: Mapping[str, Any]) -> int | None:
        """Run a statement that returns no rows; the id of the row an INSERT made (SQLite's
        ``lastrowid``: on PostgreSQL, ask for it with ``RETURNING``)."""
        compiled = self.compiled(on.dialect)
        return _run(on, compiled, compiled.parameters(values), lambda cursor: cursor.lastrowid)

    def execute_many(self, on: Work, rows: Iterable[Mapping[str, Any]]) -> None:
        compiled = self.compiled(on.dialect)
        batch = [compiled.parameters(values) for values in rows]
        _run(on, compiled, batch, lambda cursor: None, many=True)


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    binds = tuple(
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in names
    )
    columns = getattr(statement, "exported_columns", ())
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
    )
    return _Compiled(compiled.string, bool(compiled.positional), binds, results)


def _run(
    on: Work,
    compiled: _Compiled,
    parameters: Any,
    fetch: Callable[[Any], Any],
    *,
    many: bool = False,
) -> Any:
    """Run ``compiled`` with its driver ``parameters`` (a list of them with ``many``, for
    ``executemany``) on a cursor of its own, in the transaction where it belongs; then
    ``fetch(cursor)``. The driver's errors become SQLAlchemy's, as in ``on_driver``: every
    plain statement goes to the driver here."""
    driver_connection = on.driver_connection()
    try:
        cursor = driver_connection.cursor()
        try:
            if many:
                cursor.executemany(compiled.sql, parameters)
            else:
                cursor.execute(compiled.sql, parameters)
            return fetch(cursor)
        finally:
            cursor.close()
    except on.dialect.loaded_dbapi.Error as error:
        raise _driver_error(on, driver_connection, compiled.sql, error) from error


def on_driver(on: Work, driver_connection: Any, sql: str, work: Callable[[Any], Any]):
    """``work(driver_connection)``, with the driver's errors as SQLAlchemy's: IntegrityError
    for a violated constraint, OperationalError for an unreachable database. When the
    database has dropped the connection, it and the rest of the pool are discarded."""
    try:
        return work(driver_connection)
    except on.dialect.loaded_dbapi.Error as error:
        raise _driver_error(on, driver_connection, sql, error) from error


def _driver_error(on: Work, driver_connection: Any, sql: str, error: Exception) -> DBAPIError:
    """SQLAlchemy's error for the driver's ``error`` (``on_driver``)."""
    dialect = on.dialect
    disconnected = dialect.is_disconnect(error, driver_connection, None)
    if disconnected:
        # The server went away (a restart, a failover): the pool's other connections
        # went with it. Replace them all rather than fail a request on each.
        on.invalidate(error)
        on.engine.dispose()
    # Parameters stay out of the error: they may carry secrets.
    return DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=disconnected,
        dialect=dialect,
    )


_INSERTS: dict[tuple[str, tuple[str, ...]], Prepared] = {}


def insert_row(table: Table, columns: Iterable[str]) -> Prepared:
    """``INSERT INTO table (columns) VALUES (...)``, one per table and set of columns."""
    columns = tuple(columns)
    key = (table.name, columns)
    prepared = _INSERTS.get(key)
    if prepared is None:

        def build() -> ClauseElement:
            return insert(table).values(
                {name: bindparam(name, type_=table.c[name].type) for name in columns}
            )

        prepared = _INSERTS[key] = Prepared(build)
    return prepared
