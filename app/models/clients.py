from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import Entity


class Client(Entity, db.Model):
    """A tenant: users, policies and credentials all live in exactly one client."""

    __tablename__ = "clients"

    ext_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)

    # Not a column: the terms of the client's default policies by type, when they were read
    # with it (app/repositories/clients.py), so that a credential created next needs no read
    # of its own for them.
    default_policies = None
