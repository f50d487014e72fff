"""The credential rules alone (app/domain): plain objects, no app, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.domain import credentials, tickets

NOW = datetime(2026, 11, 22, 10, 15, 30, tzinfo=UTC)


@dataclass
class Terms:
    max_failure_count: int = 5
    temporary_locking: tuple[int, timedelta] | None = None
    credential_lifetime: timedelta = timedelta(days=5)


@dataclass
class Ticket:
    state_name: str = "active"
    state_change_reason: str | None = "initialized"
    state_change_detail: str | None = None
    valid_from: datetime = NOW - timedelta(days=1)
    valid_to: datetime | None = NOW + timedelta(days=1)
    last_failed_login_date: datetime | None = None
    last_successful_login_date: datetime | None = None
    failure_count: int = 0
    failed_login_count: int = 0
    success_count: int = 0
    successful_login_count: int = 0
    reset_count: int = 0
    user_id: int | None = 7


def test_an_active_ticket_within_its_validity_is_usable():
    assert tickets.unusable_reason(Ticket(), Terms(), NOW) is None


@pytest.mark.parametrize(
    ("ticket", "reason"),
    [
        (Ticket(state_name="disabled"), "is disabled, not active"),
        (Ticket(state_name="fail-locked"), "is fail-locked, not active"),
        (Ticket(valid_from=NOW + timedelta(seconds=1)), "is not valid before 2026-11-22T10:15:31Z"),
        (Ticket(valid_to=NOW), "expired at 2026-11-22T10:15:30Z"),
        (
            Ticket(state_name="tmp-locked", state_change_reason="changed-by-admin"),
            "is tmp-locked until an administrator unlocks it",
        ),
    ],
)
def test_unusable_tickets_say_why(ticket, reason):
    assert tickets.unusable_reason(ticket, Terms(), NOW) == reason


def test_a_ticket_without_an_end_never_expires():
    assert tickets.unusable_reason(Ticket(valid_to=None), Terms(), NOW) is None


def test_failures_in_a_row_fail_lock_at_the_policy_maximum():
    ticket, terms = Ticket(), Terms(max_failure_count=3)
    for _ in range(2):
        tickets.record_failure(ticket, terms, NOW)
    assert (ticket.state_name, ticket.failed_login_count) == ("active", 2)
    tickets.record_failure(ticket, terms, NOW)
    assert ticket.state_name == "fail-locked"
    assert ticket.state_change_reason == tickets.LOCK_OUT_REASON
    assert (ticket.failure_count, ticket.last_failed_login_date) == (3, NOW)


def test_a_success_clears_the_failures_in_a_row_but_not_the_total():
    ticket = Ticket(failure_count=4, failed_login_count=2)
    tickets.record_success(ticket, NOW)
    assert (ticket.failed_login_count, ticket.failure_count) == (0, 4)
    assert (ticket.success_count, ticket.successful_login_count) == (1, 1)
    assert ticket.last_successful_login_date == NOW


def test_a_temporary_lock_holds_for_its_duration_then_lifts_itself():
    terms = Terms(temporary_locking=(2, timedelta(minutes=10)))
    ticket = Ticket()
    tickets.record_failure(ticket, terms, NOW)
    tickets.record_failure(ticket, terms, NOW)
    assert ticket.state_name == "tmp-locked"
    assert ticket.state_change_detail == "Locked until 2026-11-22T10:25:30Z"
    later = NOW + timedelta(minutes=9)
    assert tickets.unusable_reason(ticket, terms, later) == (
        "is tmp-locked until 2026-11-22T10:25:30Z"
    )
    assert tickets.unusable_reason(ticket, terms, NOW + timedelta(minutes=10)) is None
    assert (ticket.state_name, ticket.state_change_reason) == (
        "active",
        tickets.LOCK_EXPIRED_REASON,
    )


def test_past_the_threshold_every_failure_locks_again_until_the_maximum():
    terms = Terms(max_failure_count=4, temporary_locking=(2, timedelta(minutes=1)))
    ticket = Ticket(failed_login_count=2, state_name="active")
    tickets.record_failure(ticket, terms, NOW)
    assert ticket.state_name == "tmp-locked"
    tickets.record_failure(ticket, terms, NOW)
    assert ticket.state_name == "fail-locked"


def test_a_reset_issues_the_ticket_anew():
    ticket = Ticket(
        state_name="fail-locked", failure_count=5, failed_login_count=5, successful_login_count=3
    )
    tickets.reissue(ticket, Terms(credential_lifetime=timedelta(hours=2)), NOW)
    assert (ticket.state_name, ticket.state_change_reason) == ("active", tickets.RESET_REASON)
    assert (ticket.failure_count, ticket.failed_login_count, ticket.successful_login_count) == (
        0,
        0,
        0,
    )
    assert (ticket.valid_from, ticket.valid_to, ticket.reset_count) == (
        NOW,
        NOW + timedelta(hours=2),
        1,
    )


@pytest.mark.parametrize(("before", "cleared"), [("fail-locked", True), ("disabled", False)])
def test_an_administrator_unlocking_clears_the_failures_in_a_row(before, cleared):
    ticket = Ticket(state_name=before, failed_login_count=5)
    assert credentials.change_state_by_admin(ticket, "active")
    tickets.unlock_by_admin(ticket, before)
    assert ticket.failed_login_count == (0 if cleared else 5)
    assert ticket.state_change_reason == credentials.ADMIN_CHANGE_REASON


def test_the_same_state_again_is_no_change():
    ticket = Ticket(state_change_reason="initialized")
    assert not credentials.change_state_by_admin(ticket, "active")
    assert ticket.state_change_reason == "initialized"


@pytest.mark.parametrize(
    ("user_id", "state", "changed"),
    [(7, "active", True), (None, "active", True), (7, "initial", True), (None, "initial", False)],
)
def test_unassigning_returns_a_credential_to_the_pool(user_id, state, changed):
    ticket = Ticket(user_id=user_id, state_name=state)
    assert credentials.unassign(ticket) is changed
    assert (ticket.user_id, ticket.state_name) == (None, "initial")
    if state != "initial":
        assert ticket.state_change_reason == credentials.UNASSIGNED_REASON


def test_validity_must_end_after_it_begins():
    assert credentials.validity_problem(NOW, NOW) == "validity.to must be after validity.from"
    assert credentials.validity_problem(NOW, None) is None
