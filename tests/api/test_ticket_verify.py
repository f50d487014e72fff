"""POST .../ticket/verify (contract section 5, our extension): counters, lock-out, validity,
concurrency, and secrets kept out of the log."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text

from app.auth import CREDENTIAL_MODIFY, CREDENTIAL_VIEW, PERMISSIONS
from app.extensions import db
from tests.support import CORE, TICKET_URL, bearer, parse_date

NOW = datetime(2026, 11, 22, 10, 15, 30, tzinfo=UTC)
VERIFY_URL = f"{TICKET_URL}/verify"
WRONG = "not-the-ticket"


@pytest.fixture
def clock():
    """The clock stands still at NOW unless a test moves it."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def create_policy(client, admin, ext_id: str, **parameters) -> None:
    response = client.post(
        f"{CORE}/acme/policies",
        json={
            "extId": ext_id,
            "name": ext_id,
            "policyType": "TicketPolicy",
            "parameters": {name: str(value) for name, value in parameters.items()},
        },
        headers=admin,
    )
    assert response.status_code == 201, response.json


def create_ticket(client, admin, **fields) -> str:
    """Alice's ticket; returns its plain value."""
    response = client.post(TICKET_URL, json=fields, headers=admin)
    assert response.status_code == 201, response.json
    return response.json["plainTicket"]


@pytest.fixture
def plain(client, admin, acme) -> str:
    """The plain value of alice's ticket, under the client's default policy."""
    return create_ticket(client, admin)


def verify(client, admin, value: str):
    return client.post(VERIFY_URL, json={"ticket": value}, headers=admin)


def get_ticket(client, admin) -> dict:
    response = client.get(TICKET_URL, headers=admin)
    assert response.status_code == 200, response.json
    return response.json


def error_of(response) -> dict:
    assert len(response.json["errors"]) == 1, response.json
    return response.json["errors"][0]


def counters(body: dict) -> dict:
    names = ("successCount", "successfulLoginCount", "failureCount", "failedLoginCount")
    return {name: body[name] for name in names}


# --- right and wrong values -----------------------------------------------------------------


def test_right_value_is_200_with_the_credential_and_counts_a_success(client, admin, clock, plain):
    clock.shift(timedelta(minutes=1))
    response = verify(client, admin, plain)

    assert response.status_code == 200, response.json
    body = response.json
    assert "plainTicket" not in body
    assert counters(body) == {
        "successCount": 1,
        "successfulLoginCount": 1,
        "failureCount": 0,
        "failedLoginCount": 0,
    }
    assert parse_date(body["lastSuccessfulLoginDate"]) == NOW + timedelta(minutes=1)
    assert body["lastFailedLoginDate"] is None
    assert (body["stateName"], body["stateChangeReason"]) == ("active", "initialized")
    assert body["version"] == 2
    assert parse_date(body["lastModified"]) == NOW + timedelta(minutes=1)
    assert get_ticket(client, admin) == body


def test_wrong_value_is_422_and_the_failure_is_committed(client, admin, clock, plain):
    clock.shift(timedelta(minutes=1))
    response = verify(client, admin, WRONG)

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "errors.invalidCredential",
        "message": "The ticket presented for user 'alice' is not valid",
    }
    stored = get_ticket(client, admin)
    assert counters(stored) == {
        "successCount": 0,
        "successfulLoginCount": 0,
        "failureCount": 1,
        "failedLoginCount": 1,
    }
    assert parse_date(stored["lastFailedLoginDate"]) == NOW + timedelta(minutes=1)
    assert stored["lastSuccessfulLoginDate"] is None
    assert stored["stateName"] == "active"
    assert stored["version"] == 2


def stored_ticket_row(app) -> dict:
    """Alice's ticket as the database holds it: state, counters, dates and version."""
    with app.app_context():
        row = db.session.execute(
            text(
                "SELECT c.state_name, c.failed_login_count, c.successful_login_count,"
                " c.last_failed_login_date, c.last_successful_login_date, c.version,"
                " t.failure_count, t.success_count"
                " FROM credentials c JOIN ticket_credentials t ON t.id = c.id"
            )
        ).one()
        return row._asdict()


@pytest.mark.parametrize(
    "permissions",
    [
        pytest.param((CREDENTIAL_VIEW,), id="view-only"),
        pytest.param((CREDENTIAL_MODIFY,), id="modify-only"),
        pytest.param(tuple(p for p in PERMISSIONS if p != CREDENTIAL_MODIFY), id="all-but-modify"),
    ],
)
def test_verify_needs_modify_and_view_so_a_read_only_key_cannot_lock_a_ticket(
    client, admin, app, plain, make_key, permissions
):
    before = stored_ticket_row(app)
    weak = bearer(make_key(*permissions))
    for value in [WRONG] * 6 + [plain]:
        response = verify(client, weak, value)
        assert response.status_code == 403
        assert error_of(response)["code"] == "errors.permissionDenied"
    missing = {CREDENTIAL_MODIFY, CREDENTIAL_VIEW} - set(permissions)
    assert all(name in error_of(response)["message"] for name in missing)
    # Nothing counted, nothing locked: the database holds the ticket as it was.
    assert stored_ticket_row(app) == before
    assert before["state_name"] == "active" and before["failure_count"] == 0
    # With both permissions the same key would verify.
    both = bearer(make_key(CREDENTIAL_MODIFY, CREDENTIAL_VIEW))
    assert verify(client, both, plain).status_code == 200


def test_success_clears_the_failures_since_the_last_success_but_not_the_total(client, admin, plain):
    for _ in range(3):
        verify(client, admin, WRONG)
    body = verify(client, admin, plain).json
    assert counters(body) == {
        "successCount": 1,
        "successfulLoginCount": 1,
        "failureCount": 3,
        "failedLoginCount": 0,
    }
    assert body["lastFailedLoginDate"] is not None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(lambda plain: plain + "x", id="one-more-character"),
        pytest.param(lambda plain: plain[:-1], id="one-less-character"),
        pytest.param(lambda plain: plain.upper(), id="other-case"),
        pytest.param(lambda plain: f" {plain}", id="leading-blank"),
        pytest.param(lambda plain: "é" * 43, id="non-ascii"),
    ],
)
def test_near_misses_do_not_verify(client, admin, plain, value):
    response = verify(client, admin, value(plain))
    assert error_of(response)["code"] == "errors.invalidCredential"


def test_a_ticket_hashed_with_sha1_verifies(client, admin, acme):
    create_policy(client, admin, "sha1", hashAlgorithm="SSHA")
    value = create_ticket(client, admin, policyExtId="sha1")
    assert verify(client, admin, WRONG).status_code == 422
    assert verify(client, admin, value).status_code == 200


def test_verifying_never_changes_the_stored_hash(client, admin, plain):
    before = get_ticket(client, admin)["ticket"]
    verify(client, admin, plain)
    verify(client, admin, WRONG)
    assert get_ticket(client, admin)["ticket"] == before


# --- lock-out -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "max_failures"),
    [
        pytest.param({}, 5, id="default-policy"),
        pytest.param({"maxCredFailureCount": 1}, 1, id="one-failure"),
        pytest.param({"maxCredFailureCount": 3}, 3, id="three-failures"),
    ],
)
def test_ticket_is_fail_locked_after_the_policys_max_failure_count(
    client, admin, acme, policy, max_failures
):
    create_policy(client, admin, "lockout", **policy)
    value = create_ticket(client, admin, policyExtId="lockout")
    for attempt in range(1, max_failures):
        assert error_of(verify(client, admin, WRONG))["code"] == "errors.invalidCredential"
        assert get_ticket(client, admin)["stateName"] == "active", attempt

    response = verify(client, admin, WRONG)

    assert error_of(response)["code"] == "errors.invalidCredential"
    locked = get_ticket(client, admin)
    assert (locked["stateName"], locked["stateChangeReason"]) == (
        "fail-locked",
        "too-many-login-failures",
    )
    assert (locked["failureCount"], locked["failedLoginCount"]) == (max_failures, max_failures)
    assert error_of(verify(client, admin, value))["code"] == "errors.credentialNotUsable"


def test_fail_locked_ticket_refuses_even_the_right_value_and_counts_nothing(client, admin, plain):
    for _ in range(5):
        verify(client, admin, WRONG)
    locked = get_ticket(client, admin)

    for value in (plain, WRONG):
        response = verify(client, admin, value)
        assert response.status_code == 422
        assert error_of(response) == {
            "code": "errors.credentialNotUsable",
            "message": "The ticket credential of user 'alice' is fail-locked, not active",
        }
    assert get_ticket(client, admin) == locked


def test_failures_broken_by_a_success_do_not_lock(client, admin, plain):
    for _ in range(4):
        verify(client, admin, WRONG)
    verify(client, admin, plain)
    for _ in range(4):
        verify(client, admin, WRONG)
    body = get_ticket(client, admin)
    assert (body["stateName"], body["failureCount"], body["failedLoginCount"]) == ("active", 8, 4)


@pytest.fixture
def tmp_locking(client, admin, acme, clock) -> str:
    """Alice's ticket under a policy that locks for a minute after 2 failures, for good
    after 5; returns its plain value."""
    create_policy(
        client,
        admin,
        "tmp-lock",
        tmpLockingThreshold=2,
        tmpLockingDuration=60_000,
        maxCredFailureCount=5,
    )
    return create_ticket(client, admin, policyExtId="tmp-lock")


def test_ticket_is_tmp_locked_after_the_threshold(client, admin, clock, tmp_locking):
    verify(client, admin, WRONG)
    assert get_ticket(client, admin)["stateName"] == "active"
    clock.shift(timedelta(seconds=10))

    verify(client, admin, WRONG)

    locked = get_ticket(client, admin)
    assert (locked["stateName"], locked["stateChangeReason"]) == (
        "tmp-locked",
        "too-many-login-failures",
    )
    assert locked["stateChangeDetail"] == "Locked until 2026-11-22T10:16:40Z"
    assert parse_date(locked["lastFailedLoginDate"]) == NOW + timedelta(seconds=10)


@pytest.mark.parametrize("elapsed_seconds", [0, 30, 59])
def test_tmp_locked_ticket_refuses_the_right_value_until_the_lock_ends(
    client, admin, clock, tmp_locking, elapsed_seconds
):
    verify(client, admin, WRONG)
    verify(client, admin, WRONG)
    locked = get_ticket(client, admin)
    clock.shift(timedelta(seconds=elapsed_seconds))

    response = verify(client, admin, tmp_locking)

    assert response.status_code == 422
    assert error_of(response) == {
        "code": "errors.credentialNotUsable",
        "message": "The ticket credential of user 'alice' is tmp-locked until 2026-11-22T10:16:30Z",
    }
    assert get_ticket(client, admin) == locked


@pytest.mark.parametrize("elapsed_seconds", [60, 3600])
def test_once_the_lock_ends_the_right_value_verifies_and_the_ticket_is_active(
    client, admin, clock, tmp_locking, elapsed_seconds
):
    verify(client, admin, WRONG)
    verify(client, admin, WRONG)
    clock.shift(timedelta(seconds=elapsed_seconds))

    response = verify(client, admin, tmp_locking)

    assert response.status_code == 200, response.json
    body = response.json
    assert (body["stateName"], body["stateChangeReason"]) == ("active", "tmp-lock-expired")
    assert body["stateChangeDetail"] is None
    assert (body["failureCount"], body["failedLoginCount"], body["successCount"]) == (2, 0, 1)


def test_past_the_threshold_each_failure_locks_again_until_the_ticket_is_fail_locked(
    client, admin, clock, tmp_locking
):
    verify(client, admin, WRONG)
    verify(client, admin, WRONG)
    for failures in (3, 4):
        clock.shift(timedelta(minutes=1))
        assert error_of(verify(client, admin, WRONG))["code"] == "errors.invalidCredential"
        body = get_ticket(client, admin)
        assert (body["stateName"], body["failedLoginCount"]) == ("tmp-locked", failures)

    clock.shift(timedelta(minutes=1))
    verify(client, admin, WRONG)

    body = get_ticket(client, admin)
    assert (body["stateName"], body["failedLoginCount"]) == ("fail-locked", 5)
    clock.shift(timedelta(days=1))
    assert error_of(verify(client, admin, tmp_locking))["code"] == "errors.credentialNotUsable"


def test_a_tmp_lock_set_by_an_administrator_does_not_end_by_itself(
    client, admin, clock, tmp_locking
):
    client.patch(TICKET_URL, json={"version": 1, "stateName": "tmp-locked"}, headers=admin)
    clock.shift(timedelta(days=1))

    response = verify(client, admin, tmp_locking)

    assert error_of(response) == {
        "code": "errors.credentialNotUsable",
        "message": "The ticket credential of user 'alice' is tmp-locked until an administrator "
        "unlocks it",
    }


# --- states and validity --------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    ["initial", "tmp-locked", "fail-locked", "reset-code", "admin-changed", "disabled", "archived"],
)
def test_a_ticket_that_is_not_active_never_verifies(client, admin, acme, state):
    value = create_ticket(client, admin, stateName=state)
    before = get_ticket(client, admin)

    response = verify(client, admin, value)

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "errors.credentialNotUsable"
    assert state in error["message"]
    assert get_ticket(client, admin) == before


@pytest.mark.parametrize(
    ("elapsed", "usable"),
    [
        pytest.param(timedelta(days=5) - timedelta(seconds=1), True, id="last-second"),
        pytest.param(timedelta(days=5), False, id="at-the-end"),
        pytest.param(timedelta(days=30), False, id="long-after"),
    ],
)
def test_a_ticket_verifies_only_until_its_validity_ends(
    client, admin, clock, plain, elapsed, usable
):
    clock.shift(elapsed)
    response = verify(client, admin, plain)
    if usable:
        assert response.status_code == 200, response.json
        return
    assert error_of(response) == {
        "code": "errors.credentialNotUsable",
        "message": "The ticket credential of user 'alice' expired at 2026-11-27T10:15:30Z",
    }
    assert get_ticket(client, admin)["successCount"] == 0


def test_an_expired_ticket_does_not_count_wrong_values(client, admin, clock, plain):
    clock.shift(timedelta(days=6))
    assert error_of(verify(client, admin, WRONG))["code"] == "errors.credentialNotUsable"
    assert get_ticket(client, admin)["failureCount"] == 0


def test_a_ticket_does_not_verify_before_its_validity_starts(client, admin, clock, plain):
    validity = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}
    patched = client.patch(TICKET_URL, json={"version": 1, "validity": validity}, headers=admin)
    assert patched.status_code == 200, patched.json
    response = verify(client, admin, plain)
    assert error_of(response) == {
        "code": "errors.credentialNotUsable",
        "message": "The ticket credential of user 'alice' is not valid before 2026-12-01T00:00:00Z",
    }

    clock.move_to(datetime(2026, 12, 1, tzinfo=UTC))
    assert verify(client, admin, plain).status_code == 200


def test_a_ticket_without_an_end_of_validity_keeps_verifying(client, admin, clock, plain):
    patched = client.patch(TICKET_URL, json={"version": 1, "validity": {"to": None}}, headers=admin)
    assert patched.status_code == 200, patched.json
    clock.shift(timedelta(days=3650))
    assert verify(client, admin, plain).status_code == 200


# --- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["ticket"]),
        ({"ticket": None}, ["ticket"]),
        ({"ticket": ""}, ["ticket"]),
        ({"ticket": 12345}, ["ticket"]),
        ({"ticket": "x" * 1025}, ["ticket"]),
        ({"ticket": "value", "userExtId": "bob"}, ["userExtId"]),
        ({"tikcet": "value"}, ["ticket", "tikcet"]),
    ],
)
def test_bad_verify_bodies_are_422_naming_each_field_and_count_nothing(
    client, admin, plain, body, fields
):
    before = get_ticket(client, admin)
    response = client.post(VERIFY_URL, json=body, headers=admin)

    assert response.status_code == 422
    errors = response.json["errors"]
    assert sorted(error["field"] for error in errors) == fields
    assert all(error["field"] in error["message"] for error in errors)
    assert "value" not in str(errors)  # the presented value is never echoed
    assert get_ticket(client, admin) == before


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({}, 400),
        ({"json": [WRONG]}, 400),
        ({"data": f"ticket={WRONG}", "content_type": "application/x-www-form-urlencoded"}, 415),
    ],
)
def test_verify_needs_a_json_object_body(client, admin, plain, kwargs, status):
    response = client.post(VERIFY_URL, headers=admin, **kwargs)
    assert response.status_code == status
    assert WRONG not in response.get_data(as_text=True)


# --- secrets stay out of the log ------------------------------------------------------------


def test_plain_and_presented_values_never_reach_the_log(client, admin, acme, caplog):
    caplog.set_level(logging.DEBUG)
    # Even with SQL logged: statement parameters are hidden (hide_parameters).
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    presented = "presented-but-wrong-0123456789abcdef"
    issued = create_ticket(client, admin)
    verify(client, admin, issued)
    verify(client, admin, presented)
    client.post(VERIFY_URL, json={"ticket": presented, "extra": presented}, headers=admin)
    reset = client.post(f"{TICKET_URL}/reset", headers=admin).json["plainTicket"]
    verify(client, admin, reset)
    client.patch(TICKET_URL, json={"version": 1}, headers=admin)  # a 409

    assert "wrong value" in caplog.text and "SELECT" in caplog.text  # the log is on
    for secret in (issued, presented, reset):
        assert secret not in caplog.text


# --- concurrency ----------------------------------------------------------------------------


def verify_concurrently(app, headers: dict[str, str], value: str, threads: int = 20) -> Counter:
    """``threads`` simultaneous verifications, each through its own test client; returns
    how many got each (status, error code)."""
    barrier = threading.Barrier(threads)
    results: list[tuple[int, str | None]] = []

    def attempt() -> None:
        with app.test_client() as own_client:
            barrier.wait()
            response = own_client.post(VERIFY_URL, json={"ticket": value}, headers=headers)
            code = response.json["errors"][0]["code"] if response.status_code >= 400 else None
            results.append((response.status_code, code))

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Counter(results)


def test_twenty_simultaneous_wrong_values_are_all_counted(client, admin, acme, app):
    create_policy(client, admin, "lenient", maxCredFailureCount=100)
    create_ticket(client, admin, policyExtId="lenient")

    results = verify_concurrently(app, admin, WRONG)

    assert results == {(422, "errors.invalidCredential"): 20}
    body = get_ticket(client, admin)
    assert (body["failureCount"], body["failedLoginCount"]) == (20, 20)
    assert (body["stateName"], body["version"]) == ("active", 21)


def test_twenty_simultaneous_wrong_values_lock_after_exactly_the_max(client, admin, plain, app):
    results = verify_concurrently(app, admin, WRONG)

    assert results == {
        (422, "errors.invalidCredential"): 5,
        (422, "errors.credentialNotUsable"): 15,
    }
    body = get_ticket(client, admin)
    assert (body["failureCount"], body["failedLoginCount"]) == (5, 5)
    assert (body["stateName"], body["version"]) == ("fail-locked", 6)


def test_twenty_simultaneous_right_values_are_all_counted(client, admin, plain, app):
    results = verify_concurrently(app, admin, plain)

    assert results == {(200, None): 20}
    body = get_ticket(client, admin)
    assert (body["successCount"], body["successfulLoginCount"], body["version"]) == (20, 20, 21)
