"""How the repositories reach the database, and nothing above them does.

* engine.py: which database, its connection settings, and the set-up that depends on it
  (``sqlite/``: WAL, the writers' queue and checkpoints, loaded for SQLite alone);
* work.py: a request's or a command's database work: reads, writes and units of work, and
  on which connection and in which transaction each runs;
* statements.py: the hot paths' statements, compiled once and run on the driver's cursor;
* rows.py: objects made from those statements' rows.
"""

from __future__ import annotations

from .rows import RowLayout, column_keys, detached_from_row
from .statements import Prepared, insert_row
from .work import Work, current_work, write_apart

__all__ = [
    "Prepared",
    "RowLayout",
    "Work",
    "column_keys",
    "current_work",
    "detached_from_row",
    "insert_row",
    "write_apart",
]
