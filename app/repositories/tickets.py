"""Ticket credentials: issue, read, change, reset, verify, delete.

The rule "one ticket per user" lives in the database (a partial unique index); this
repository turns its violation into ``errors.ticketExists``. The rules of verification
(counters, lock-out, temporary locks) live here too, in ``verify``.

Verification is a read-modify-write of counters, so the ticket is read with a row lock
(``get(..., for_update=True)``: ``SELECT .. FOR UPDATE`` on PostgreSQL; SQLite write requests
hold the database's write lock from their first statement, see app/sqlite.py). Concurrent
verifications therefore queue up and no counter update is lost.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache
from itertools import accumulate
from typing import Any

from sqlalchemy import Insert, Select, bindparam, insert, select
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from ..crypto import hash_ticket, new_ticket_value, ticket_matches
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
from .clients import CLIENT_COLUMNS
from .credentials import (
    CredentialRepository,
    committed_credential,
    credential_cte,
    insert_credential_row,
    new_credential_row,
)
from .policies import PolicyRepository, detached_from_row
from .statements import Prepared, insert_row
from .transactions import Statements
from .users import USER_COLUMNS, UserRepository

# Security events (verifications, lock-outs, resets) are logged; ticket values never are.
log = logging.getLogger(__name__)

ACTIVE = "active"
TMP_LOCKED = "tmp-locked"
FAIL_LOCKED = "fail-locked"
LOCKED_STATES = (TMP_LOCKED, FAIL_LOCKED)

RESET_REASON = "reset"
LOCK_OUT_REASON = "too-many-login-failures"
LOCK_EXPIRED_REASON = "tmp-lock-expired"

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


_CREDENTIAL_COLUMNS = tuple(column.key for column in Credential.__table__.c)
# The ticket's own row beyond its id, which is the credential's.
_TICKET_COLUMNS = tuple(column.key for column in TicketCredential.__table__.c if column.key != "id")
_POLICY_COLUMNS = tuple(column.key for column in Policy.__table__.c)


def _slices(*groups: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], int, int], ...]:
    """Each group of columns with where it starts and ends in a row that holds them all."""
    ends = list(accumulate(len(columns) for columns in groups))
    return tuple(zip(groups, [0, *ends[:-1]], ends, strict=True))


# The columns of a ticket to show, where they are in ``_TICKET_TO_SHOW``'s row.
_SHOWN = _slices(
    _CREDENTIAL_COLUMNS, _TICKET_COLUMNS, USER_COLUMNS, CLIENT_COLUMNS, _POLICY_COLUMNS
)


def _ticket_to_show() -> Select:
    """The ticket of the user a path names, with its user, client and policy: one row."""
    credentials, tickets = Credential.__table__, TicketCredential.__table__
    users, clients, policies = User.__table__, Client.__table__, Policy.__table__
    return (
        select(
            *credentials.c,
            *(tickets.c[name] for name in _TICKET_COLUMNS),
            *users.c,
            *clients.c,
            *policies.c,
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


def _date(moment: datetime) -> str:
    """A date as the API shows it, for messages."""
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


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
        policy's terms (one row), then the credential's two rows as plain INSERTs, not
        through the unit of work. The ticket returned is the committed row, detached from
        the session, with its user, client and policy attached for the response.
        """
        client = user.client
        user_id, user_ext_id, client_ext_id = user.id, user.ext_id, client.ext_id
        policy = PolicyRepository().terms_for_new_credential(
            user.client_id, client_ext_id, policy_ext_id, TICKET_POLICY
        )
        value = new_ticket_value()
        now = utcnow()
        credential_row = new_credential_row(
            kind=TICKET,
            ext_id=ext_id,
            client_id=user.client_id,
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

        def write(statements: Statements) -> int:
            if statements.dialect.name == "postgresql":
                # One statement, atomic by itself: the view runs it in autocommit
                # (``single_write``, app/api/path.py).
                statement = _insert_credential_and_ticket(tuple(credential_row), tuple(ticket_row))
                (credential_id,) = statement.one_or_none(
                    statements, {**credential_row, **ticket_row}
                )
                return credential_id
            credential_id = insert_credential_row(statements, credential_row)
            insert_row(TicketCredential.__table__, ("id", *ticket_row)).execute(
                statements, {"id": credential_id, **ticket_row}
            )
            return credential_id

        credential_id = self.write_new(
            write,
            lambda: self._explain_conflict(
                user_id, user_ext_id, client_ext_id, credential_row["ext_id"]
            ),
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

    def get(
        self, client_ext_id: str, user_ext_id: str, *, for_update: bool = False
    ) -> TicketCredential:
        """The user's ticket with its user, client and policy, in one query.

        ``for_update`` locks the ticket's rows until the transaction ends (and rereads them,
        in case the session holds an older copy). NoRecord names what is missing: the
        client, the user, or the ticket.
        """
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
        )
        if for_update:
            # Only the ticket's rows: locking the user, client or policy would serialise
            # every verification in the client.
            query = query.with_for_update(of=TicketCredential).execution_options(
                populate_existing=True
            )
        ticket = self.session.scalars(query).one_or_none()
        if ticket is None:
            UserRepository().get(client_ext_id, user_ext_id)  # NoRecord for client or user
            raise NoRecord(
                f"User '{user_ext_id}' in client '{client_ext_id}' has no ticket credential"
            )
        # The ticket's client is its user's client: known already, no second query.
        set_committed_value(ticket, "client", ticket.user.client)
        return ticket

    def get_to_show(self, client_ext_id: str, user_ext_id: str) -> TicketCredential:
        """The user's ticket with its user, client and policy, for a response alone (GET):
        one plain statement, and objects detached from the session, which can be shown but
        not changed. NoRecord names what is missing, as ``get``'s does."""
        row = _TICKET_TO_SHOW.one_or_none(
            self.statements, {"client_ext_id": client_ext_id, "user_ext_id": user_ext_id}
        )
        if row is None:
            UserRepository().get(client_ext_id, user_ext_id)  # NoRecord for client or user
            raise NoRecord(
                f"User '{user_ext_id}' in client '{client_ext_id}' has no ticket credential"
            )
        credential, ticket, user, client, policy = (
            dict(zip(columns, row[start:end], strict=True)) for columns, start, end in _SHOWN
        )
        client = detached_from_row(Client, client)
        user = detached_from_row(User, {**user, "client": client})
        policy = detached_from_row(Policy, {**policy, "client": client})
        return detached_from_row(
            TicketCredential,
            {**credential, **ticket, "user": user, "client": client, "policy": policy},
        )

    def update(self, ticket: TicketCredential, changes: dict[str, Any]) -> TicketCredential:
        """Apply a parsed PATCH body; ``changes["version"]`` must be the ticket's version.

        An administrator who moves a locked ticket back to ``active`` lifts the lock: the
        failures since the last success (``failedLoginCount``) start again from 0.
        """
        changes = dict(changes)
        expected_version = changes.pop("version")
        was_locked = ticket.state_name in LOCKED_STATES
        self.apply_common_changes(ticket, changes)
        if was_locked and ticket.state_name == ACTIVE:
            ticket.failed_login_count = 0
        for name in TICKET_FIELDS:
            if name in changes:
                setattr(ticket, name, changes[name])
        self.save_changes(ticket, expected_version)
        return ticket

    def delete(self, ticket: TicketCredential) -> None:
        """Remove the ticket; the user may be issued a new one afterwards."""
        self.session.delete(ticket)
        self.commit_guarded(ticket)
        log.info("ticket %s of user '%s' deleted", ticket.ext_id, ticket.user.ext_id)

    def reset(self, ticket: TicketCredential) -> TicketCredential:
        """Regenerate the ticket, as if issued anew: a new value (returned once, on
        ``plain_ticket``), a new validity period from now, ``active``, the failure counters
        and ``successfulLoginCount`` at 0, ``resetCount`` + 1.

        Read ``ticket`` with ``for_update=True`` so that a verification running at the same
        time cannot overwrite the new counters.
        """
        value = new_ticket_value()
        now = utcnow()
        ticket.ticket_hash = hash_ticket(value, ticket.policy.hash_algorithm)
        ticket.reset_count += 1
        ticket.failure_count = 0
        ticket.failed_login_count = 0
        # The seed: "successful logins with this credential since last initialization or reset".
        ticket.successful_login_count = 0
        ticket.valid_from = now
        ticket.valid_to = now + ticket.policy.credential_lifetime
        self._change_state(ticket, ACTIVE, RESET_REASON)
        self.save_changes(ticket, ticket.version)
        log.info("ticket %s of user '%s' reset", ticket.ext_id, ticket.user.ext_id)
        ticket.plain_ticket = value
        return ticket

    def verify(self, ticket: TicketCredential, presented: str) -> TicketCredential:
        """Check ``presented`` against the ticket and record the outcome.

        A ticket that cannot be used (not active, temporarily or finally locked, outside its
        validity) is refused with ``errors.credentialNotUsable`` whatever the value, and its
        counters are left alone. Otherwise the value is compared in constant time; a wrong
        one is counted and committed before ``errors.invalidCredential`` is raised, and may
        lock the ticket: ``tmp-locked`` after the policy's ``tmpLockingThreshold``
        consecutive failures, ``fail-locked`` after ``maxCredFailureCount``.

        Read ``ticket`` with ``for_update=True``. Every verification is a change: ``version``
        and ``lastModified`` move.
        """
        now = utcnow()
        self._ensure_usable(ticket, now)
        if not ticket_matches(presented, ticket.ticket_hash):
            self._record_failure(ticket, now)
            self.save_changes(ticket, ticket.version)
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
        self._record_success(ticket, now)
        self.save_changes(ticket, ticket.version)
        log.info("ticket %s of user '%s' verified", ticket.ext_id, ticket.user.ext_id)
        return ticket

    def _ensure_usable(self, ticket: TicketCredential, now: datetime) -> None:
        owner = f"The ticket credential of user '{ticket.user.ext_id}'"
        if ticket.state_name == TMP_LOCKED:
            locked_until = self._tmp_lock_end(ticket)
            if locked_until is None:
                raise CredentialNotUsable(
                    f"{owner} is tmp-locked until an administrator unlocks it"
                )
            if now < locked_until:
                raise CredentialNotUsable(f"{owner} is tmp-locked until {_date(locked_until)}")
            # The lock has run out: the ticket is active again, for this and later requests.
            self._change_state(ticket, ACTIVE, LOCK_EXPIRED_REASON)
        elif ticket.state_name != ACTIVE:
            raise CredentialNotUsable(f"{owner} is {ticket.state_name}, not active")
        if now < ticket.valid_from:
            raise CredentialNotUsable(f"{owner} is not valid before {_date(ticket.valid_from)}")
        if ticket.valid_to is not None and now >= ticket.valid_to:
            raise CredentialNotUsable(f"{owner} expired at {_date(ticket.valid_to)}")

    def _tmp_lock_end(self, ticket: TicketCredential) -> datetime | None:
        """When a temporary lock ends: the failure that set it plus the policy's
        ``tmpLockingDuration``. A lock set by an administrator, or under a policy without
        temporary locking, has no end of its own."""
        temporary_locking = ticket.policy.temporary_locking
        if (
            ticket.state_change_reason != LOCK_OUT_REASON
            or temporary_locking is None
            or ticket.last_failed_login_date is None
        ):
            return None
        _, duration = temporary_locking
        return ticket.last_failed_login_date + duration

    def _record_success(self, ticket: TicketCredential, now: datetime) -> None:
        ticket.success_count += 1
        ticket.successful_login_count += 1
        ticket.last_successful_login_date = now
        ticket.failed_login_count = 0

    def _record_failure(self, ticket: TicketCredential, now: datetime) -> None:
        ticket.failure_count += 1
        ticket.failed_login_count += 1
        ticket.last_failed_login_date = now
        failures = ticket.failed_login_count
        temporary_locking = ticket.policy.temporary_locking
        if failures >= ticket.policy.max_failure_count:
            self._change_state(ticket, FAIL_LOCKED, LOCK_OUT_REASON)
        elif temporary_locking is not None and failures >= temporary_locking[0]:
            # Past the threshold, every further failure locks again: one try per lock period.
            self._change_state(ticket, TMP_LOCKED, LOCK_OUT_REASON)
            ticket.state_change_detail = f"Locked until {_date(now + temporary_locking[1])}"

    @staticmethod
    def _change_state(ticket: Credential, state_name: str, reason: str) -> None:
        ticket.state_name = state_name
        ticket.state_change_reason = reason
        ticket.state_change_detail = None

    def _explain_conflict(
        self, user_id: int, user_ext_id: str, client_ext_id: str, ext_id: str
    ) -> ApiError:
        has_ticket = self.session.scalar(
            select(Credential.id).where(Credential.user_id == user_id, Credential.kind == TICKET)
        )
        if has_ticket is not None:
            return TicketExists(
                f"User '{user_ext_id}' in client '{client_ext_id}' already has a ticket credential"
            )
        return DuplicateValue(
            f"A credential with extId '{ext_id}' already exists in client '{client_ext_id}'",
            field="extId",
        )
