from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import Entity


class Client(Entity, db.Model):
    """A tenant: users, policies and credentials all live in exactly one client."""

    __tablename__ = "clients"
    __table_args__ = (
        # Keyset pagination of the clients in (created, extId) order.
        Index("ix_clients_created_ext_id", "created", "ext_id"),
    )

    ext_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # {"EN": .., "DE": .., "FR": .., "IT": ..}, each language optional.
    display_name: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    remarks: Mapped[str | None] = mapped_column(Text)

    @property
    def display_names(self) -> dict[str, Any]:
        """``displayName`` as shown: ``{}`` when none was given."""
        return self.display_name or {}

    # Not a column: the terms of the client's default policies by type, when they were read
    # with it (app/repositories/clients.py), so that a credential created next needs no read
    # of its own for them.
    default_policies = None
