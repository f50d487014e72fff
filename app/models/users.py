from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Entity
from .clients import Client


class User(Entity, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("client_id", "ext_id", name="uq_users_client_ext_id"),
        UniqueConstraint("client_id", "login_id", name="uq_users_client_login_id"),
    )

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    login_id: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))

    client: Mapped[Client] = relationship(lazy="raise")

    @property
    def name(self) -> dict[str, str | None]:
        return {"first_name": self.first_name, "family_name": self.family_name}
