"""POST /{clientExtId}/users/{userExtId}/ticket (contract 4.1, seed 000)."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from app.crypto import ticket_matches
from app.extensions import db
from app.models import TicketCredential
from tests.support import CORE, NEW_CREDENTIAL_FIELDS, TICKET_URL, count_statements, parse_date

SEED_FIELDS = {
    **NEW_CREDENTIAL_FIELDS,
    "ticket": str,
    "failureCount": int,
    "successCount": int,
    "resetCount": int,
    "identification": type(None),
    "context": type(None),
    "plainTicket": str,
}


def stored_ticket(app, ext_id: str) -> TicketCredential:
    with app.app_context():
        return db.session.scalars(
            select(TicketCredential).where(TicketCredential.ext_id == ext_id)
        ).one()


def test_empty_body_creates_an_active_ticket_with_every_seed_field(client, admin, acme, app):
    before = datetime.now(UTC).replace(microsecond=0)
    response = client.post(TICKET_URL, json={}, headers=admin)

    assert response.status_code == 201, response.json
    body = response.json
    assert {name: type(body[name]) for name in SEED_FIELDS} == SEED_FIELDS
    assert set(body) == set(SEED_FIELDS)
    assert body["type"] == "Ticket Authorization"
    assert body["stateName"] == "active"
    assert body["stateChangeReason"] == "initialized"
    assert body["userExtId"] == "alice"
    assert body["version"] == 1
    assert body["failureCount"] == body["successCount"] == body["resetCount"] == 0
    assert body["successfulLoginCount"] == body["failedLoginCount"] == 0
    assert body["created"] == body["lastModified"] == body["validity"]["from"]
    valid_from = parse_date(body["validity"]["from"])
    assert before <= valid_from <= datetime.now(UTC)
    assert parse_date(body["validity"]["to"]) - valid_from == timedelta(days=5)
    assert response.headers["Location"] == TICKET_URL
    assert response.mimetype == "application/json"


def test_ticket_uses_the_clients_default_ticket_policy(client, admin, acme):
    body = client.post(TICKET_URL, json={}, headers=admin).json
    policy = client.get(f"{CORE}/acme/policies/{body['policyExtId']}", headers=admin).json
    assert policy["policyType"] == "TicketPolicy"
    assert policy["defaultPolicy"] is True


def test_every_request_field_is_honoured(client, admin, acme):
    policy = client.post(
        f"{CORE}/acme/policies",
        json={
            "extId": "tickets-1h",
            "name": "One hour",
            "policyType": "TicketPolicy",
            "parameters": {"credentialLifetime": "3600000"},
        },
        headers=admin,
    ).json
    response = client.post(
        TICKET_URL,
        json={
            "extId": "ticket-1",
            "policyExtId": policy["extId"],
            "stateName": "initial",
            "identification": "portal-login",
            "context": "https://portal.example/return",
        },
        headers=admin,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["extId"] == "ticket-1"
    assert body["policyExtId"] == "tickets-1h"
    assert body["stateName"] == "initial"
    assert body["identification"] == "portal-login"
    assert body["context"] == "https://portal.example/return"
    lifetime = parse_date(body["validity"]["to"]) - parse_date(body["validity"]["from"])
    assert lifetime == timedelta(hours=1)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("tmp_locked", "tmp-locked"),
        ("FAIL_LOCKED", "fail-locked"),
        ("admin-changed", "admin-changed"),
    ],
)
def test_state_names_may_use_underscores_and_are_returned_with_dashes(
    client, admin, acme, given, stored
):
    response = client.post(TICKET_URL, json={"stateName": given}, headers=admin)
    assert response.status_code == 201, response.json
    assert response.json["stateName"] == stored


def test_null_optional_fields_mean_the_defaults(client, admin, acme):
    response = client.post(
        TICKET_URL, json={"extId": None, "policyExtId": None, "stateName": None}, headers=admin
    )
    assert response.status_code == 201, response.json
    assert response.json["stateName"] == "active"


def test_ticket_is_stored_only_as_a_salted_sha256_hash(client, admin, acme, app):
    body = client.post(TICKET_URL, json={}, headers=admin).json
    plain = body["plainTicket"]

    assert len(plain) >= 22 and plain.replace("-", "").replace("_", "").isalnum()
    assert body["ticket"].startswith("{SSHA256}")
    raw = base64.b64decode(body["ticket"].removeprefix("{SSHA256}"))
    digest, salt = raw[:32], raw[32:]
    assert len(salt) == 16
    assert hashlib.sha256(plain.encode() + salt).digest() == digest

    stored = stored_ticket(app, body["extId"])
    assert stored.ticket_hash == body["ticket"]
    assert ticket_matches(plain, stored.ticket_hash)
    assert not ticket_matches(plain + "x", stored.ticket_hash)


def test_ssha_policy_hashes_with_sha1(client, admin, acme):
    client.post(
        f"{CORE}/acme/policies",
        json={
            "extId": "sha1",
            "name": "Legacy",
            "policyType": "TicketPolicy",
            "parameters": {"hashAlgorithm": "SSHA"},
        },
        headers=admin,
    )
    body = client.post(TICKET_URL, json={"policyExtId": "sha1"}, headers=admin).json
    raw = base64.b64decode(body["ticket"].removeprefix("{SSHA}"))
    assert body["ticket"].startswith("{SSHA}")
    assert hashlib.sha1(body["plainTicket"].encode() + raw[20:]).digest() == raw[:20]


def test_two_tickets_never_share_value_or_salt(client, admin, acme):
    client.post(f"{CORE}/acme/users", json={"extId": "bob", "loginId": "bob"}, headers=admin)
    first = client.post(TICKET_URL, json={}, headers=admin).json
    second = client.post(f"{CORE}/acme/users/bob/ticket", json={}, headers=admin).json
    assert first["plainTicket"] != second["plainTicket"]
    assert first["ticket"][-24:] != second["ticket"][-24:]


def test_plain_ticket_is_nowhere_in_the_database_or_the_log(client, admin, acme, app, caplog):
    caplog.set_level(logging.DEBUG)
    body = client.post(TICKET_URL, json={"identification": "x"}, headers=admin).json
    plain = body["plainTicket"]

    with app.app_context():
        connection = db.session.connection()
        for table in db.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                assert plain not in repr(tuple(row)), f"plain ticket stored in {table.name}"
    assert plain not in caplog.text


def test_second_ticket_for_same_user_is_rejected(client, admin, acme, app):
    first = client.post(TICKET_URL, json={}, headers=admin)
    second = client.post(TICKET_URL, json={"extId": "another"}, headers=admin)

    assert first.status_code == 201
    assert second.status_code == 422
    assert second.json["errors"][0]["code"] == "errors.ticketExists"
    with app.app_context():
        count = db.session.scalar(text("SELECT count(*) FROM credentials"))
    assert count == 1


def test_credential_ext_id_taken_in_the_client_is_a_duplicate(client, admin, acme):
    client.post(f"{CORE}/acme/users", json={"extId": "bob", "loginId": "bob"}, headers=admin)
    client.post(TICKET_URL, json={"extId": "shared"}, headers=admin)
    response = client.post(f"{CORE}/acme/users/bob/ticket", json={"extId": "shared"}, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["code"] == "errors.duplicateValue"
    assert response.json["errors"][0]["field"] == "extId"


def test_same_ext_id_may_be_used_in_another_client(client, admin, acme):
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    client.post(f"{CORE}/globex/users", json={"extId": "alice", "loginId": "alice"}, headers=admin)
    assert client.post(TICKET_URL, json={"extId": "t"}, headers=admin).status_code == 201
    response = client.post(f"{CORE}/globex/users/alice/ticket", json={"extId": "t"}, headers=admin)
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"{CORE}/nobody/users/alice/ticket", "No client 'nobody'"),
        (f"{CORE}/acme/users/nobody/ticket", "No user 'nobody' in client 'acme'"),
    ],
)
def test_missing_client_or_user_is_404(client, admin, acme, url, message):
    response = client.post(url, json={}, headers=admin)
    assert response.status_code == 404
    assert response.json == {"errors": [{"code": "errors.noRecord", "message": message}]}


def test_unknown_policy_is_404(client, admin, acme):
    response = client.post(TICKET_URL, json={"policyExtId": "nope"}, headers=admin)
    assert response.status_code == 404
    assert response.json["errors"][0]["code"] == "errors.noRecord"
    assert "nope" in response.json["errors"][0]["message"]


def test_policy_of_another_type_is_422(client, admin, acme):
    client.post(
        f"{CORE}/acme/policies",
        json={"extId": "vasco", "name": "Tokens", "policyType": "VascoPolicy"},
        headers=admin,
    )
    response = client.post(TICKET_URL, json={"policyExtId": "vasco"}, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"] == [
        {
            "code": "errors.invalidData",
            "message": "Policy 'vasco' is a VascoPolicy, not a TicketPolicy",
            "field": "policyExtId",
        }
    ]


def test_policy_of_another_client_is_404(client, admin, acme):
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    client.post(
        f"{CORE}/globex/policies",
        json={"extId": "theirs", "name": "Theirs", "policyType": "TicketPolicy"},
        headers=admin,
    )
    response = client.post(TICKET_URL, json={"policyExtId": "theirs"}, headers=admin)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"stateName": "frozen"}, ["stateName"]),
        ({"stateName": 3}, ["stateName"]),
        ({"extId": ""}, ["extId"]),
        ({"extId": "a/b"}, ["extId"]),
        ({"extId": "x" * 256}, ["extId"]),
        ({"extId": 12}, ["extId"]),
        ({"identification": ["a"]}, ["identification"]),
        ({"context": {"a": 1}}, ["context"]),
        ({"ticket": "chosen-by-caller"}, ["ticket"]),
        ({"extid": "typo", "stateName": "nope", "context": 1}, ["context", "extid", "stateName"]),
    ],
)
def test_bad_bodies_get_one_entry_per_problem_and_write_nothing(
    client, admin, acme, app, body, fields
):
    response = client.post(TICKET_URL, json=body, headers=admin)

    assert response.status_code == 422
    errors = response.json["errors"]
    assert sorted(error["field"] for error in errors) == fields
    assert {error["code"] for error in errors} == {"errors.invalidData"}
    assert all(error["field"] in error["message"] for error in errors)
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM credentials")) == 0


def test_creating_a_ticket_costs_a_fixed_number_of_statements(client, admin, acme, app):
    def create(user: str) -> None:
        client.post(f"{CORE}/acme/users", json={"extId": user, "loginId": user}, headers=admin)
        response = client.post(f"{CORE}/acme/users/{user}/ticket", json={}, headers=admin)
        assert response.status_code == 201

    def statements_for(user: str) -> int:
        client.post(f"{CORE}/acme/users", json={"extId": user, "loginId": user}, headers=admin)
        return count_statements(
            app, lambda: client.post(f"{CORE}/acme/users/{user}/ticket", json={}, headers=admin)
        )

    first = statements_for("first")
    for index in range(30):
        create(f"user-{index}")
    assert statements_for("later") == first
    # the user with its client and the client's default policies, then the credential and
    # ticket rows: two INSERTs, or one on PostgreSQL (a data-modifying WITH). The principal
    # is cached.
    with app.app_context():
        inserts = 1 if db.engine.dialect.name == "postgresql" else 2
    assert first == 1 + inserts


def test_twenty_simultaneous_creates_for_one_user_give_one_ticket(client, admin, acme, app):
    barrier = threading.Barrier(20)
    results: list[tuple[int, str | None]] = []

    def create() -> None:
        with app.test_client() as own_client:
            barrier.wait()
            response = own_client.post(TICKET_URL, json={}, headers=admin)
            code = response.json["errors"][0]["code"] if response.status_code >= 400 else None
            results.append((response.status_code, code))

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(results) == {(201, None): 1, (422, "errors.ticketExists"): 19}
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM ticket_credentials")) == 1


@pytest.mark.parametrize(
    ("deleted", "message"),
    [
        ("DELETE FROM users WHERE ext_id = 'alice'", "No user 'alice' in client 'acme'"),
        ("DELETE FROM policies WHERE ext_id = 'gone-policy'", "No policy 'gone-policy'"),
    ],
    ids=["user", "policy"],
)
def test_a_user_or_policy_deleted_while_the_ticket_is_created_is_404(
    client, admin, acme, app, monkeypatch, deleted, message
):
    from app.repositories import tickets

    created = client.post(
        f"{CORE}/acme/policies",
        json={"extId": "gone-policy", "name": "Gone", "policyType": "TicketPolicy"},
        headers=admin,
    )
    assert created.status_code == 201
    value = tickets.new_ticket_value

    def deleted_meanwhile() -> str:
        # After the user and the policy were read, before the ticket's rows are written.
        with db.engine.begin() as connection:
            connection.execute(text(deleted))
        return value()

    monkeypatch.setattr(tickets, "new_ticket_value", deleted_meanwhile)
    response = client.post(TICKET_URL, json={"policyExtId": "gone-policy"}, headers=admin)

    assert response.status_code == 404, response.json
    assert response.json["errors"][0]["code"] == "errors.noRecord"
    assert response.json["errors"][0]["message"].startswith(message)
    with app.app_context():
        assert db.session.scalar(text("SELECT count(*) FROM credentials")) == 0
