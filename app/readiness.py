"""Whether this instance can serve: the database answers and its schema is the one the code
expects.

The schema is compared with the head of the migrations shipped with the code, read once per
process. A database at an older (known) revision, or not migrated at all, is not ready:
the code would use tables or columns that are not there. A database at a revision this code
does not know was migrated by a newer release during a rolling upgrade (migrate first, then
roll the instances); revisions are written to be compatible with the release before them,
so the old instances stay ready until they are replaced.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from .errors import ServiceUnavailable
from .migrations import MIGRATIONS, shipped_revisions
from .repositories.schema import SchemaRepository

log = logging.getLogger(__name__)


def check_database_ready() -> None:
    """Return when the database answers and is migrated; raise ``ServiceUnavailable`` if not."""
    heads, known = shipped_revisions(MIGRATIONS)
    if not heads:
        # Without its migration scripts this release cannot tell which schema it needs.
        raise ServiceUnavailable("The migration scripts of this release are missing")
    try:
        current = SchemaRepository().current_revisions()
    except SQLAlchemyError as error:
        # The message may hold connection details: log the kind, never return it.
        log.warning("readiness: database unreachable: %s", error.__class__.__name__)
        raise ServiceUnavailable("The database is not reachable") from None
    if current == heads or (current and not current & known):
        return
    if not current:
        raise ServiceUnavailable("The database schema is not migrated (run flask db upgrade)")
    raise ServiceUnavailable(
        f"The database schema is at {', '.join(sorted(current))}; this release needs "
        f"{', '.join(sorted(heads))} (run flask db upgrade)"
    )
