"""Columns every nevisIDM entity carries: an internal id, an extId, dates and a version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from .types import UTCDateTime, utcnow

EXT_ID_LENGTH = 255


def _same_as_created(context) -> datetime:
    return context.get_current_parameters()["created"]


class Entity:
    """Mixin: ``version`` starts at 1 and ``last_modified`` equals ``created`` on insert."""

    id: Mapped[int] = mapped_column(primary_key=True)
    ext_id: Mapped[str] = mapped_column(String(EXT_ID_LENGTH))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=_same_as_created)
    version: Mapped[int] = mapped_column(default=1)
