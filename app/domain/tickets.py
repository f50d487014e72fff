"""The rules of a ticket's use: when it can be used, and what a right or a wrong value does
to its counters and state (lock-out after failures, temporary locks that run out)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from .credentials import ACTIVE, change_state, format_date, outside_validity

TMP_LOCKED = "tmp-locked"
FAIL_LOCKED = "fail-locked"
LOCKED_STATES = (TMP_LOCKED, FAIL_LOCKED)

RESET_REASON = "reset"
LOCK_OUT_REASON = "too-many-login-failures"
LOCK_EXPIRED_REASON = "tmp-lock-expired"


class TicketTerms(Protocol):
    """What a ticket's policy says about its use."""

    @property
    def max_failure_count(self) -> int: ...

    @property
    def temporary_locking(self) -> tuple[int, timedelta] | None: ...

    @property
    def credential_lifetime(self) -> timedelta: ...


class Ticket(Protocol):
    state_name: str
    state_change_reason: str | None
    state_change_detail: str | None
    valid_from: datetime
    valid_to: datetime | None
    last_failed_login_date: datetime | None
    last_successful_login_date: datetime | None
    failure_count: int
    failed_login_count: int
    success_count: int
    successful_login_count: int
    reset_count: int


def tmp_lock_end(ticket: Ticket, terms: TicketTerms) -> datetime | None:
    """When a temporary lock ends: the failure that set it plus the policy's
    ``tmpLockingDuration``. A lock set by an administrator, or under a policy without
    temporary locking, has no end of its own."""
    temporary_locking = terms.temporary_locking
    if (
        ticket.state_change_reason != LOCK_OUT_REASON
        or temporary_locking is None
        or ticket.last_failed_login_date is None
    ):
        return None
    return ticket.last_failed_login_date + temporary_locking[1]


def unusable_reason(ticket: Ticket, terms: TicketTerms, now: datetime) -> str | None:
    """Why the ticket cannot be used ``now`` (a phrase: "is fail-locked, not active"), or
    None. A temporary lock that has run out is lifted here: the ticket is active again."""
    if ticket.state_name == TMP_LOCKED:
        locked_until = tmp_lock_end(ticket, terms)
        if locked_until is None:
            return "is tmp-locked until an administrator unlocks it"
        if now < locked_until:
            return f"is tmp-locked until {format_date(locked_until)}"
        change_state(ticket, ACTIVE, LOCK_EXPIRED_REASON)
    elif ticket.state_name != ACTIVE:
        return f"is {ticket.state_name}, not active"
    return outside_validity(ticket.valid_from, ticket.valid_to, now)


def record_success(ticket: Ticket, now: datetime) -> None:
    ticket.success_count += 1
    ticket.successful_login_count += 1
    ticket.last_successful_login_date = now
    ticket.failed_login_count = 0


def record_failure(ticket: Ticket, terms: TicketTerms, now: datetime) -> None:
    """Count a wrong value; after ``maxCredFailureCount`` failures in a row the ticket is
    ``fail-locked``, after ``tmpLockingThreshold`` of them ``tmp-locked`` (every further
    failure locks again: one try per lock period)."""
    ticket.failure_count += 1
    ticket.failed_login_count += 1
    ticket.last_failed_login_date = now
    failures = ticket.failed_login_count
    temporary_locking = terms.temporary_locking
    if failures >= terms.max_failure_count:
        change_state(ticket, FAIL_LOCKED, LOCK_OUT_REASON)
    elif temporary_locking is not None and failures >= temporary_locking[0]:
        detail = f"Locked until {format_date(now + temporary_locking[1])}"
        change_state(ticket, TMP_LOCKED, LOCK_OUT_REASON, detail)


def reissue(ticket: Ticket, terms: TicketTerms, now: datetime) -> None:
    """A reset: as if issued anew, ``active``, valid from ``now`` for the policy's lifetime,
    the failure counters and ``successfulLoginCount`` at 0 (the seed: "successful logins
    with this credential since last initialization or reset"), ``resetCount`` + 1."""
    ticket.reset_count += 1
    ticket.failure_count = 0
    ticket.failed_login_count = 0
    ticket.successful_login_count = 0
    ticket.valid_from = now
    ticket.valid_to = now + terms.credential_lifetime
    change_state(ticket, ACTIVE, RESET_REASON)


def unlock_by_admin(ticket: Ticket, previous_state: str) -> None:
    """An administrator who moves a locked ticket back to ``active`` lifts the lock: the
    failures since the last success start again from 0."""
    if previous_state in LOCKED_STATES and ticket.state_name == ACTIVE:
        ticket.failed_login_count = 0
