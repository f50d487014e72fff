from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class Principal(db.Model):
    """A technical caller: an api key (stored as its SHA-256), permissions and a data room."""

    __tablename__ = "principals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    permissions: Mapped[list[str]] = mapped_column(JSON)
    # None: every client. Otherwise the extIds of the clients this principal may touch.
    client_ext_ids: Mapped[list[str] | None] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the key last authenticated a request, to about a minute (None: never since
    # it was created or rotated); see PrincipalRepository.by_key.
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def may_access_client(self, client_ext_id: str) -> bool:
        return self.client_ext_ids is None or client_ext_id in self.client_ext_ids
