"""Ticket credentials: issue, read, change, reset, verify, delete.

The rule "one ticket per user" lives in the database (a partial unique index); this
repository turns its violation into ``errors.ticketExists``. The rules of a ticket's use
(counters, lock-out, temporary locks) are app/domain/tickets.py's.

Every change reads the ticket again in its unit of work, its rows locked (``SELECT .. FOR
UPDATE`` on PostgreSQL; SQLite's writers' queue is held from the unit's start): concurrent
verifications queue up and no counter update is lost.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, bindparam, insert, select
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from ..crypto import hash_ticket, new_ticket_value, ticket_matches
from ..domain import tickets as rules
from ..domain import users as user_rules
from ..errors import (
    ApiError,
    CredentialNotUsable,
    DuplicateValue,
    InvalidCredential,
    NoRecord,
    TicketExists,
)
from ..models import TICKET, TICKET_POLICY, Client, Credential, Policy, TicketCredential, User
from ..models.types import utcnow
from ..storage import Prepared, RowLayout, column_keys, detached_from_row, insert_row
from .credentials import (
    CredentialRepository,
    committed_credential,
    credential_cte,
    insert_credential_row,
    new_credential_row,
)
from .policies import PolicyRepository
from .users import UserRepository

# Security events (verifications, lock-outs, resets) are logged; ticket values never are.
log = logging.getLogger(__name__)

# The fields of a ticket PATCH beyond those every credential takes.
TICKET_FIELDS = ("identification", "context")


@cache
def _insert_credential_and_ticket(
    credential_columns: tuple[str, ...], ticket_columns: tuple[str, ...]
) -> Prepared:
    """Both rows of a ticket in one statement, for PostgreSQL (a data-modifying WITH, which
    SQLite lacks): one round trip to the server instead of two. Returns the new id."""
    return Prepared(lambda: _credential_and_ticket(credential_columns, ticket_columns))


def _credential_and_ticket(
    credential_columns: tuple[str, ...], ticket_columns: tuple[str, ...]
) -> Insert:
    tickets = TicketCredential.__table__
    credential = credential_cte(credential_columns)
    ticket_values = select(
        credential.c.id,
        *(bindparam(name, type_=tickets.c[name].type) for name in ticket_columns),
    )
    return (
        insert(tickets).from_select(["id", *ticket_columns], ticket_values).returning(tickets.c.id)
    )


_CREDENTIAL_COLUMNS = column_keys(Credential.__table__)
# The ticket's own row beyond its id, which is the credential's.
_TICKET_COLUMNS = column_keys(TicketCredential.__table__, leave_out=("id",))
# What a ticket shown needs of its user, client and policy (their extIds, and the keys that
# tie them together): the rest of their rows is not read for it.
_SHOWN_USER_COLUMNS = ("id", "ext_id", "client_id")
_SHOWN_CLIENT_COLUMNS = ("id", "ext_id")
_SHOWN_POLICY_COLUMNS = ("id", "ext_id", "client_id", "policy_type")

# Where the parts of a ticket to show are in ``_TICKET_TO_SHOW``'s row.
_SHOWN = RowLayout(
    _CREDENTIAL_COLUMNS,
    _TICKET_COLUMNS,
    _SHOWN_USER_COLUMNS,
    _SHOWN_CLIENT_COLUMNS,
    _SHOWN_POLICY_COLUMNS,
)


def _ticket_to_show() -> Select:
    """The ticket of the user a path names, with what is shown of its user, client and
    policy: one row."""
    credentials, tickets = Credential.__table__, TicketCredential.__table__
    users, clients, policies = User.__table__, Client.__table__, Policy.__table__
    return (
        select(
            *credentials.c,
            *(tickets.c[name] for name in _TICKET_COLUMNS),
            *(users.c[name] for name in _SHOWN_USER_COLUMNS),
            *(clients.c[name] for name in _SHOWN_CLIENT_COLUMNS),
            *(policies.c[name] for name in _SHOWN_POLICY_COLUMNS),
        )
        .join_from(credentials, tickets, tickets.c.id == credentials.c.id)
        .join(users, users.c.id == credentials.c.user_id)
        .join(clients, clients.c.id == users.c.client_id)
        .join(policies, policies.c.id == credentials.c.policy_id)
        .where(
            clients.c.ext_id == bindparam("client_ext_id"),
            users.c.ext_id == bindparam("user_ext_id"),
        )
    )


_TICKET_TO_SHOW = Prepared(_ticket_to_show)


def _no_ticket(client_ext_id: str, user_ext_id: str) -> NoRecord:
    """NoRecord for a user's missing ticket, or for the client or user when it is those that
    are missing."""
    UserRepository().get(client_ext_id, user_ext_id)
    return NoRecord(f"User '{user_ext_id}' in client '{client_ext_id}' has no ticket credential")


class TicketRepository(CredentialRepository):
    policy_type = TICKET_POLICY

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
        object, for this response only; the database holds its salted hash.

        The hot path of the service, so it is written at the level of its statements: the
        policy's terms (read with the user, unless another is named), then the credential's
        two rows as one write. The ticket returned is the committed row, detached from the
        session, with its user, client and policy attached for the response.
        """
        client = user.client
        user_id, user_ext_id, client_ext_id = user.id, user.ext_id, client.ext_id
        policy = PolicyRepository().terms_for_new_credential(client, policy_ext_id, TICKET_POLICY)
        value = new_ticket_value()
        now = utcnow()
        credential_row = new_credential_row(
            kind=TICKET,
            ext_id=ext_id,
            client_id=client.id,
            user_id=user_id,
            policy=policy,
            state_name=state_name,
            now=now,
        )
        ticket_row = {
            "ticket_hash": hash_ticket(value, policy.hash_algorithm),
            "identification": identification,
            "context": context,
            "failure_count": 0,
            "success_count": 0,
            "reset_count": 0,
        }
        work = self.work
        postgresql = work.dialect.name == "postgresql"

        def write() -> int:
            if postgresql:
                statement = _insert_credential_and_ticket(tuple(credential_row), tuple(ticket_row))
                (credential_id,) = statement.one_or_none(work, {**credential_row, **ticket_row})
                return credential_id
            credential_id = insert_credential_row(work, credential_row)
            insert_row(TicketCredential.__table__, ("id", *ticket_row)).execute(
                work, {"id": credential_id, **ticket_row}
            )
            return credential_id

        credential_id = self.write(
            write,
            lambda: self._explain_conflict(
                user_id, user_ext_id, client_ext_id, credential_row["ext_id"], policy
            ),
            single_statement=postgresql,
        )
        ticket = committed_credential(
            TicketCredential,
            {"id": credential_id, **credential_row, **ticket_row},
            user=user,
            client=client,
            policy=policy,
        )
        ticket.plain_ticket = value
        return ticket

    def get(self, client_ext_id: str, user_ext_id: str) -> TicketCredential:
        """The user's ticket with its user, client and policy, in one plain statement, as
        objects detached from the session (which can be shown, not changed; of the user,
        client and policy, only their ids and extIds are loaded). NoRecord names what is
        missing: the client, the user, or the ticket."""
        row = _TICKET_TO_SHOW.one_or_none(
            self.work, {"client_ext_id": client_ext_id, "user_ext_id": user_ext_id}
        )
        if row is None:
            raise _no_ticket(client_ext_id, user_ext_id)
        credential, ticket, user, client, policy = _SHOWN.split(row)
        client = detached_from_row(Client, client)
        user = detached_from_row(User, {**user, "client": client})
        policy = detached_from_row(Policy, {**policy, "client": client})
        return detached_from_row(
            TicketCredential,
            {**credential, **ticket, "user": user, "client": client, "policy": policy},
        )

    def update(self, ticket: TicketCredential, changes: dict[str, Any]) -> TicketCredential:
        """Apply a parsed PATCH body; ``changes["version"]``, when sent, must be the ticket's
        version. An administrator who moves a locked ticket back to ``active`` lifts the lock."""
        changes = dict(changes)
        expected_version = changes.pop("version", None)
        with self.saving(ticket.ext_id) as session:
            ticket = self._for_change(session, ticket)
            self.check_version(ticket, expected_version)
            previous_state = ticket.state_name
            self.apply_common_changes(ticket, changes)
            rules.unlock_by_admin(ticket, previous_state)
            for name in TICKET_FIELDS:
                if name in changes:
                    setattr(ticket, name, changes[name])
            self.touch(ticket)
        return ticket

    def delete(self, client_ext_id: str, user_ext_id: str) -> None:
        """Remove the user's ticket; the user may be issued a new one afterwards."""
        with self.changing() as session:
            ticket = self._locked(session, client_ext_id, user_ext_id)
            session.delete(ticket)
        log.info("ticket %s of user '%s' deleted", ticket.ext_id, user_ext_id)

    def reset(self, ticket: TicketCredential) -> TicketCredential:
        """Regenerate the ticket, as if issued anew (app/domain/tickets.py ``reissue``): a
        new value, returned once on ``plain_ticket``."""
        value = new_ticket_value()
        with self.saving(ticket.ext_id) as session:
            ticket = self._for_change(session, ticket)
            ticket.ticket_hash = hash_ticket(value, ticket.policy.hash_algorithm)
            rules.reissue(ticket, ticket.policy, utcnow())
            self.touch(ticket)
        log.info("ticket %s of user '%s' reset", ticket.ext_id, ticket.user.ext_id)
        ticket.plain_ticket = value
        return ticket

    def verify(self, ticket: TicketCredential, presented: str) -> TicketCredential:
        """Check ``presented`` against the ticket and record the outcome.

        A ticket that cannot be used (not active, locked, outside its validity), or whose user
        is not active or outside its own validity, is refused
        with ``errors.credentialNotUsable`` whatever the value, and its counters are left
        alone. Otherwise the value is compared in constant time; a wrong one is counted and
        committed before ``errors.invalidCredential`` is raised, and may lock the ticket.
        Every verification is a change: ``version`` and ``lastModified`` move.
        """
        with self.saving(ticket.ext_id) as session:
            ticket = self._for_change(session, ticket)
            now = utcnow()
            user_reason = user_rules.unusable_reason(ticket.user, now)
            if user_reason is not None:
                raise CredentialNotUsable(
                    f"User '{ticket.user.ext_id}' {user_reason}: its credentials cannot be used"
                )
            reason = rules.unusable_reason(ticket, ticket.policy, now)
            if reason is not None:
                raise CredentialNotUsable(
                    f"The ticket credential of user '{ticket.user.ext_id}' {reason}"
                )
            matches = ticket_matches(presented, ticket.ticket_hash)
            if matches:
                rules.record_success(ticket, now)
            else:
                rules.record_failure(ticket, ticket.policy, now)
            self.touch(ticket)
        if not matches:
            log.info(
                "ticket %s of user '%s': wrong value (%d consecutive failures), now %s",
                ticket.ext_id,
                ticket.user.ext_id,
                ticket.failed_login_count,
                ticket.state_name,
            )
            raise InvalidCredential(
                f"The ticket presented for user '{ticket.user.ext_id}' is not valid"
            )
        log.info("ticket %s of user '%s' verified", ticket.ext_id, ticket.user.ext_id)
        return ticket

    def _for_change(self, session: Session, shown: TicketCredential) -> TicketCredential:
        """The ticket ``shown`` was read as, read again in the unit of work, locked."""
        return self._locked(session, shown.client.ext_id, shown.user.ext_id)

    def _locked(self, session: Session, client_ext_id: str, user_ext_id: str) -> TicketCredential:
        """The user's ticket with its user, client and policy, in one query, its rows (not
        the user's, client's or policy's: that would serialise every verification in the
        client) locked until the unit of work ends, and read anew."""
        query = (
            select(TicketCredential)
            .join(TicketCredential.user)
            .join(User.client)
            .join(TicketCredential.policy)
            .options(
                contains_eager(TicketCredential.user).contains_eager(User.client),
                contains_eager(TicketCredential.policy),
            )
            .where(Client.ext_id == client_ext_id, User.ext_id == user_ext_id)
            .with_for_update(of=TicketCredential)
            .execution_options(populate_existing=True)
        )
        ticket = session.scalars(query).one_or_none()
        if ticket is None:
            raise _no_ticket(client_ext_id, user_ext_id)
        # The ticket's client is its user's client: known already, no second query.
        set_committed_value(ticket, "client", ticket.user.client)
        return ticket

    def _explain_conflict(
        self, user_id: int, user_ext_id: str, client_ext_id: str, ext_id: str, policy: Policy
    ) -> ApiError:
        """Which rule the create broke: one ticket per user, a taken extId, or (the user or
        the policy deleted while it ran) a row it refers to that is gone."""
        has_ticket = self.session.scalar(
            select(Credential.id).where(Credential.user_id == user_id, Credential.kind == TICKET)
        )
        if has_ticket is not None:
            return TicketExists(
                f"User '{user_ext_id}' in client '{client_ext_id}' already has a ticket credential"
            )
        taken = self.session.scalar(
            select(Credential.id).where(
                Credential.client_id
                == select(User.client_id).where(User.id == user_id).scalar_subquery(),
                Credential.ext_id == ext_id,
            )
        )
        if taken is not None:
            return DuplicateValue(
                f"A credential with extId '{ext_id}' already exists in client '{client_ext_id}'",
                field="extId",
            )
        if self.session.get(User, user_id) is None:
            return NoRecord(f"No user '{user_ext_id}' in client '{client_ext_id}'")
        return NoRecord(f"No policy '{policy.ext_id}' in client '{client_ext_id}'")
