from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..domain.users import ACTIVE_USER
from ..extensions import db
from .base import Entity
from .clients import Client
from .types import UTCDateTime

# nevisIDM's address fields, in the order its documentation lists them.
ADDRESS_FIELDS = (
    "addressline1",
    "addressline2",
    "postalCode",
    "city",
    "street",
    "houseNumber",
    "dwellingNumber",
    "postOfficeBoxText",
    "postOfficeBoxNumber",
    "locality",
    "countryCode",
)


class User(Entity, db.Model):
    """A user of a client, with the fields of nevisIDM's "Create a user" body."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("client_id", "ext_id", name="uq_users_client_ext_id"),
        UniqueConstraint("client_id", "login_id", name="uq_users_client_login_id"),
        # Keyset pagination of a client's users in (created, extId) order.
        Index("ix_users_client_created_ext_id", "client_id", "created", "ext_id"),
    )

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    login_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default=ACTIVE_USER, server_default="active")
    language_code: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    is_technical_user: Mapped[bool] = mapped_column(default=False, server_default=false())
    title: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    sex: Mapped[str | None] = mapped_column(String(8))
    gender: Mapped[str | None] = mapped_column(String(8))
    birth_date: Mapped[date | None] = mapped_column(Date)
    # {"countryCode": .., "city": .., ...}: shown and changed whole, never queried by part.
    address: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    email: Mapped[str | None] = mapped_column(String(320))
    mobile: Mapped[str | None] = mapped_column(String(16))
    telephone: Mapped[str | None] = mapped_column(String(16))
    telefax: Mapped[str | None] = mapped_column(String(16))
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remarks: Mapped[str | None] = mapped_column(Text)
    modification_comment: Mapped[str | None] = mapped_column(String(1024))

    client: Mapped[Client] = relationship(lazy="raise")

    @property
    def name(self) -> dict[str, str | None]:
        return {"title": self.title, "first_name": self.first_name, "family_name": self.family_name}

    @property
    def contacts(self) -> dict[str, str | None]:
        return {
            "email": self.email,
            "mobile": self.mobile,
            "telephone": self.telephone,
            "telefax": self.telefax,
        }

    @property
    def address_shown(self) -> dict[str, str | None] | None:
        """``address`` with every documented field, null where unset; None when the user has
        no address at all."""
        if not self.address:
            return None
        return {name: self.address.get(name) for name in ADDRESS_FIELDS}

    @property
    def validity(self) -> dict[str, datetime | None]:
        return {"from": self.valid_from, "to": self.valid_to}
