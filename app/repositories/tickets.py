"""Ticket credentials. The rule "one ticket per user" lives in the database (a partial
unique index); this repository turns its violation into ``errors.ticketExists``."""

from __future__ import annotations

from sqlalchemy import select

from ..crypto import hash_ticket, new_ticket_value
from ..errors import ApiError, DuplicateValue, TicketExists
from ..models import TICKET, TICKET_POLICY, Credential, TicketCredential, User
from ..models.types import utcnow
from .base import Repository, new_ext_id
from .policies import PolicyRepository


class TicketRepository(Repository):
    def create(
        self,
        user: User,
        ext_id: str | None = None,
        policy_ext_id: str | None = None,
        state_name: str = "active",
        identification: str | None = None,
        context: str | None = None,
    ) -> TicketCredential:
        """Issue the user's ticket. The plain value is on ``plain_ticket`` of the returned
        object, for this response only; the database holds its salted hash."""
        policy = PolicyRepository().for_credential(user.client, policy_ext_id, TICKET_POLICY)
        value = new_ticket_value()
        now = utcnow()
        ticket = TicketCredential(
            ext_id=ext_id or new_ext_id(),
            client_id=user.client_id,
            user=user,
            policy=policy,
            state_name=state_name,
            state_change_reason="initialized",
            valid_from=now,
            valid_to=now + policy.credential_lifetime,
            created=now,
            ticket_hash=hash_ticket(value, policy.hash_algorithm),
            identification=identification,
            context=context,
        )
        self.session.add(ticket)
        client_ext_id = user.client.ext_id  # read now: a rollback expires the loaded objects
        self.commit(lambda: self._explain_conflict(user, client_ext_id, ticket.ext_id))
        ticket.plain_ticket = value
        return ticket

    def _explain_conflict(self, user: User, client_ext_id: str, ext_id: str) -> ApiError:
        has_ticket = self.session.scalar(
            select(Credential.id).where(Credential.user_id == user.id, Credential.kind == TICKET)
        )
        if has_ticket is not None:
            return TicketExists(
                f"User '{user.ext_id}' in client '{client_ext_id}' already has a ticket credential"
            )
        return DuplicateValue(
            f"A credential with extId '{ext_id}' already exists in client '{client_ext_id}'",
            field="extId",
        )
