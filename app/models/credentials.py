"""Credentials: one common table, plus a table for what each type adds.

Joined-table inheritance: ``credentials`` holds what every credential has (state, counters of
the seeds' common fields, validity, policy, owner); ``ticket_credentials`` and
``vasco_token_blocks`` hold what tickets and VASCO credentials add.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Entity
from .clients import Client
from .policies import Policy
from .types import UTCDateTime
from .users import User

STATES = (
    "initial",
    "active",
    "tmp-locked",
    "fail-locked",
    "reset-code",
    "admin-changed",
    "disabled",
    "archived",
)

# Internal kind -> the seeds' ``type`` value.
TICKET = "TICKET"
VASCO = "VASCO"
TYPE_NAMES = {TICKET: "Ticket Authorization", VASCO: "Vasco"}


class Credential(Entity, db.Model):
    __tablename__ = "credentials"

    kind: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"))
    state_name: Mapped[str] = mapped_column(String(32))
    state_change_reason: Mapped[str | None] = mapped_column(String(255))
    state_change_detail: Mapped[str | None] = mapped_column(String(1024))
    last_successful_login_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    successful_login_count: Mapped[int] = mapped_column(default=0)
    last_failed_login_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_login_count: Mapped[int] = mapped_column(default=0)
    modification_comment: Mapped[str | None] = mapped_column(String(1024))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)

    client: Mapped[Client] = relationship(lazy="raise")
    user: Mapped[User | None] = relationship(lazy="raise")
    policy: Mapped[Policy] = relationship(lazy="raise")

    # Optimistic locking: every UPDATE carries "WHERE version = <the version read>"; the
    # repositories set the new version themselves (see CredentialRepository.save_changes).
    __mapper_args__ = {
        "polymorphic_on": kind,
        "version_id_col": version,
        "version_id_generator": False,
    }
    __table_args__ = (
        # An extId is unique among the credentials of a client.
        UniqueConstraint("client_id", "ext_id", name="uq_credentials_client_ext_id"),
        # One ticket credential per user, enforced by the database under concurrency.
        Index(
            "uq_credentials_one_ticket_per_user",
            "user_id",
            unique=True,
            sqlite_where=text("kind = 'TICKET'"),
            postgresql_where=text("kind = 'TICKET'"),
        ),
        # Keyset pagination: a client's credentials and a user's credentials in
        # (created, extId) order.
        Index("ix_credentials_client_created_ext_id", "client_id", "created", "ext_id"),
        Index("ix_credentials_user_created_ext_id", "user_id", "created", "ext_id"),
    )

    @property
    def user_ext_id(self) -> str | None:
        """The owner's extId; None while unassigned (a VASCO credential may have no user)."""
        return None if self.user_id is None else self.user.ext_id

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.kind]

    @property
    def validity(self) -> dict[str, datetime | None]:
        return {"from": self.valid_from, "to": self.valid_to}


class TicketCredential(Credential):
    """A ticket: a service-generated secret, stored only as a salted hash."""

    __tablename__ = "ticket_credentials"
    __mapper_args__ = {"polymorphic_identity": TICKET}

    id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), primary_key=True
    )
    ticket_hash: Mapped[str] = mapped_column(String(128))
    identification: Mapped[str | None] = mapped_column(String(255))
    context: Mapped[str | None] = mapped_column(Text)
    failure_count: Mapped[int] = mapped_column(default=0)
    success_count: Mapped[int] = mapped_column(default=0)
    reset_count: Mapped[int] = mapped_column(default=0)


class VascoCredential(Credential):
    """A OneSpan Digipass token: created unassigned, its data blocks encrypted at rest."""

    __mapper_args__ = {"polymorphic_identity": VASCO}

    token_blocks: Mapped[list[VascoTokenBlock]] = relationship(
        order_by="VascoTokenBlock.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )


class VascoTokenBlock(db.Model):
    """One Digipass data block. ``sealed_data`` is AES-GCM ciphertext (see app.crypto)."""

    __tablename__ = "vasco_token_blocks"
    __table_args__ = (
        UniqueConstraint("credential_id", "auth_mode", name="uq_vasco_blocks_auth_mode"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id", ondelete="CASCADE"))
    position: Mapped[int]
    auth_mode: Mapped[str] = mapped_column(String(8))
    sealed_data: Mapped[str] = mapped_column(Text)
