"""Keyset pagination, the nevisIDM way: ``limit`` and an opaque ``continuationToken``.

The token holds the (created, extId) of the last item returned; the next page starts after
it. No OFFSET: a page costs the same however deep the walk, and items created during the
walk do not shift the pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.orm import Session

from ..errors import InvalidData


@dataclass(frozen=True)
class Page:
    items: list[Any]
    continuation_token: str | None
    limit: int
    # Every item of the list, on every page: counted only when asked
    # (``returnTotalResultCount=true``).
    total_result: int | None = None

    @property
    def pagination(self) -> Page:
        """What ``_pagination`` shows: this page's token and limit, and ``totalResult``
        (null unless it was counted)."""
        return self

    @property
    def classifications(self) -> dict[str, list[str]]:
        """nevisIDM's ``_classifications``: nothing to say here."""
        return {}


def encode_token(created: datetime, ext_id: str) -> str:
    raw = json.dumps([created.isoformat(), ext_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, ext_id = json.loads(raw)
        ext_id = str(ext_id)
        # An extId holds neither NUL (PostgreSQL cannot even compare text holding one) nor an
        # unpaired surrogate (no UTF-8 for it: UnicodeEncodeError, a ValueError).
        ext_id.encode("utf-8")
        if "\x00" in ext_id:
            raise ValueError("NUL in extId")
        return datetime.fromisoformat(created), ext_id
    except (binascii.Error, ValueError, TypeError, RecursionError) as error:
        raise InvalidData(
            "continuationToken is not a token this service issued", field="continuationToken"
        ) from error


def keyset_page(
    session: Session,
    statement: Select,
    model: Any,
    limit: int,
    token: str | None,
    total_result: bool = False,
) -> Page:
    """Run ``statement`` (a select of ``model``) for one page in (created, extId) order;
    with ``total_result``, count every item the statement selects too."""
    total = None
    if total_result:
        total = session.scalar(
            select(func.count()).select_from(statement.order_by(None).subquery())
        )
    if token:
        created, ext_id = decode_token(token)
        statement = statement.where(tuple_(model.created, model.ext_id) > tuple_(created, ext_id))
    statement = statement.order_by(model.created, model.ext_id).limit(limit + 1)
    items = list(session.scalars(statement))
    if len(items) <= limit:
        return Page(items, None, limit, total)
    items = items[:limit]
    return Page(items, encode_token(items[-1].created, items[-1].ext_id), limit, total)
