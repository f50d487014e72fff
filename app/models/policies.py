from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import Entity
from .clients import Client

TICKET_POLICY = "TicketPolicy"
VASCO_POLICY = "VascoPolicy"
POLICY_TYPES = (TICKET_POLICY, VASCO_POLICY)

# What a policy's parameters mean when it does not set them.
DEFAULT_PARAMETERS: dict[str, dict[str, str]] = {
    TICKET_POLICY: {
        "credentialLifetime": str(5 * 24 * 3600 * 1000),  # 5 days, in milliseconds
        "hashAlgorithm": "SSHA256",
        "maxCredFailureCount": "5",
    },
    VASCO_POLICY: {
        "credentialLifetime": str(3650 * 24 * 3600 * 1000),  # 10 years, in milliseconds
        "maxCredFailureCount": "5",
    },
}


class Policy(Entity, db.Model):
    """A named set of parameters (lifetime, hashing, lock-out) that credentials follow."""

    __tablename__ = "policies"
    __table_args__ = (
        UniqueConstraint("client_id", "ext_id", name="uq_policies_client_ext_id"),
        # At most one default policy of each type per client, whatever runs concurrently.
        Index(
            "uq_policies_one_default_per_type",
            "client_id",
            "policy_type",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        # Keyset pagination of a client's policies in (created, extId) order.
        Index("ix_policies_client_created_ext_id", "client_id", "created", "ext_id"),
    )

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    policy_type: Mapped[str] = mapped_column(String(32))
    is_default: Mapped[bool] = mapped_column(default=False)
    # Stored as given (strings); unset ones take DEFAULT_PARAMETERS.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    client: Mapped[Client] = relationship(lazy="raise")

    def parameter(self, name: str) -> str | None:
        value = self.parameters.get(name)
        return value if value is not None else DEFAULT_PARAMETERS[self.policy_type].get(name)

    @property
    def credential_lifetime(self) -> timedelta:
        return timedelta(milliseconds=int(self.parameter("credentialLifetime")))

    @property
    def hash_algorithm(self) -> str:
        return self.parameter("hashAlgorithm") or "SSHA256"

    @property
    def max_failure_count(self) -> int:
        return int(self.parameter("maxCredFailureCount"))

    @property
    def temporary_locking(self) -> tuple[int, timedelta] | None:
        """(failures, duration) when both tmpLockingThreshold and tmpLockingDuration are set."""
        threshold = self.parameter("tmpLockingThreshold")
        duration = self.parameter("tmpLockingDuration")
        if threshold is None or duration is None:
            return None
        return int(threshold), timedelta(milliseconds=int(duration))
