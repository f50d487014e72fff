"""POST /{clientExtId}/vasco (contract 4.2, seed 003)."""

from __future__ import annotations

import base64
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from app.crypto import SecretBox
from tests.support import (
    CORE,
    NEW_CREDENTIAL_FIELDS,
    block,
    count_rows,
    create_vasco,
    fail_writing_the_blocks,
    parse_date,
    tokens,
)

VASCO_URL = f"{CORE}/acme/vasco"

CONTRACT_FIELDS = {**NEW_CREDENTIAL_FIELDS, "userExtId": type(None), "vascoTokens": list}


def test_create_returns_an_unassigned_vasco_credential_with_every_contract_field(
    client, admin, acme
):
    sent = tokens("CR", "RO")
    before = datetime.now(UTC).replace(microsecond=0)
    response = create_vasco(client, admin, extId="token-1", vascoTokens=sent)

    assert response.status_code == 201, response.json
    body = response.json
    assert {name: type(body.get(name, "missing")) for name in CONTRACT_FIELDS} == CONTRACT_FIELDS
    assert set(body) == set(CONTRACT_FIELDS)
    assert body["extId"] == "token-1"
    assert body["userExtId"] is None
    assert body["type"] == "Vasco"
    assert body["stateName"] == "initial"
    assert body["stateChangeReason"] == "initialized"
    assert body["version"] == 1
    assert body["successfulLoginCount"] == body["failedLoginCount"] == 0
    assert body["vascoTokens"] == sent
    assert body["created"] == body["lastModified"] == body["validity"]["from"]
    valid_from = parse_date(body["validity"]["from"])
    assert before <= valid_from <= datetime.now(UTC)
    assert parse_date(body["validity"]["to"]) - valid_from == timedelta(days=3650)
    assert response.headers["Location"] == f"{VASCO_URL}/token-1"
    assert response.mimetype == "application/json"


def test_location_header_points_at_the_created_credential(client, admin, acme):
    response = create_vasco(client, admin, extId="with space")
    location = response.headers["Location"]
    assert location == f"{VASCO_URL}/with%20space"
    assert client.get(location, headers=admin).json == response.json


def test_generated_ext_id_is_a_uuid4(client, admin, acme):
    body = create_vasco(client, admin).json
    assert uuid.UUID(body["extId"]).version == 4


def test_credential_follows_the_clients_default_vasco_policy(client, admin, acme):
    body = create_vasco(client, admin).json
    policy = client.get(f"{CORE}/acme/policies/{body['policyExtId']}", headers=admin).json
    assert policy["policyType"] == "VascoPolicy"
    assert policy["defaultPolicy"] is True


def test_named_policy_and_state_are_honoured(client, admin, acme):
    client.post(
        f"{CORE}/acme/policies",
        json={
            "extId": "tokens-1y",
            "name": "One year",
            "policyType": "VascoPolicy",
            "parameters": {"credentialLifetime": str(365 * 24 * 3600 * 1000)},
        },
        headers=admin,
    )
    response = create_vasco(client, admin, policyExtId="tokens-1y", stateName="active")

    assert response.status_code == 201, response.json
    body = response.json
    assert body["policyExtId"] == "tokens-1y"
    assert body["stateName"] == "active"
    lifetime = parse_date(body["validity"]["to"]) - parse_date(body["validity"]["from"])
    assert lifetime == timedelta(days=365)


@pytest.mark.parametrize(("given", "stored"), [("tmp_locked", "tmp-locked"), ("ACTIVE", "active")])
def test_state_names_may_use_underscores_and_any_case(client, admin, acme, given, stored):
    response = create_vasco(client, admin, stateName=given)
    assert response.status_code == 201, response.json
    assert response.json["stateName"] == stored


def test_null_optional_fields_mean_the_defaults(client, admin, acme):
    response = create_vasco(client, admin, extId=None, policyExtId=None, stateName=None)
    assert response.status_code == 201, response.json
    assert response.json["stateName"] == "initial"


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(tokens("1", size=1), id="one-byte-block-one-char-mode"),
        pytest.param(tokens("ABCDEFGH", size=4096), id="4096-byte-block-eight-char-mode"),
        pytest.param(tokens(*(f"M{index}" for index in range(16))), id="sixteen-blocks"),
        pytest.param(tokens("cr", "Ro", "SG9"), id="mixed-case-modes"),
    ],
)
def test_blocks_at_the_limits_are_accepted_and_returned_as_sent(client, admin, acme, sent):
    response = create_vasco(client, admin, vascoTokens=sent)
    assert response.status_code == 201, response.json
    assert response.json["vascoTokens"] == sent


GOOD = base64.b64encode(b"digipass").decode()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({}, ["vascoTokens"], id="vascoTokens-missing"),
        pytest.param({"vascoTokens": None}, ["vascoTokens"], id="vascoTokens-null"),
        pytest.param({"vascoTokens": []}, ["vascoTokens"], id="vascoTokens-empty"),
        pytest.param(
            {"vascoTokens": tokens(*(f"M{index}" for index in range(17)), size=8)},
            ["vascoTokens"],
            id="seventeen-blocks",
        ),
        pytest.param({"vascoTokens": {"authMode": "CR"}}, ["vascoTokens"], id="not-a-list"),
        pytest.param({"vascoTokens": ["CR"]}, ["vascoTokens[0]"], id="token-not-an-object"),
        pytest.param(
            {"vascoTokens": [{"data": GOOD}]}, ["vascoTokens[0].authMode"], id="authMode-missing"
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "", "data": GOOD}]},
            ["vascoTokens[0].authMode"],
            id="authMode-empty",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "ABCDEFGHI", "data": GOOD}]},
            ["vascoTokens[0].authMode"],
            id="authMode-nine-chars",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "C-R", "data": GOOD}]},
            ["vascoTokens[0].authMode"],
            id="authMode-punctuation",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR ", "data": GOOD}]},
            ["vascoTokens[0].authMode"],
            id="authMode-blank",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": 7, "data": GOOD}]},
            ["vascoTokens[0].authMode"],
            id="authMode-number",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": GOOD}, {"authMode": "cr", "data": GOOD}]},
            ["vascoTokens[1].authMode"],
            id="authMode-repeated-in-another-case",
        ),
        pytest.param(
            {
                "vascoTokens": [
                    None,
                    {"authMode": "CR", "data": GOOD},
                    {"authMode": "cR", "data": GOOD},
                ]
            },
            ["vascoTokens[0]", "vascoTokens[2].authMode"],
            id="repeat-named-at-its-own-index-after-a-bad-entry",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR"}]}, ["vascoTokens[0].data"], id="data-missing"
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": ""}]},
            ["vascoTokens[0].data"],
            id="data-empty",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": None}]},
            ["vascoTokens[0].data"],
            id="data-null",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": 1234}]},
            ["vascoTokens[0].data"],
            id="data-number",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": "not*base64!"}]},
            ["vascoTokens[0].data"],
            id="data-not-base64",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": GOOD.rstrip("=")}]},
            ["vascoTokens[0].data"],
            id="data-unpadded",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": GOOD[:4] + " " + GOOD[4:]}]},
            ["vascoTokens[0].data"],
            id="data-with-space",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": GOOD + "\n"}]},
            ["vascoTokens[0].data"],
            id="data-with-newline",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": "ZGlnaXBhc3M-_w=="}]},
            ["vascoTokens[0].data"],
            id="data-url-safe-alphabet",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": "QR=="}]},
            ["vascoTokens[0].data"],
            id="data-non-canonical",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": block(4097)}]},
            ["vascoTokens[0].data"],
            id="data-4097-bytes",
        ),
        pytest.param(
            {"vascoTokens": [{"authMode": "CR", "data": GOOD, "serial": "123"}]},
            ["vascoTokens[0].serial"],
            id="unknown-field-in-token",
        ),
        pytest.param(
            {"vascoTokens": tokens("CR"), "userExtId": "alice"},
            ["userExtId"],
            id="unknown-top-level-field",
        ),
        pytest.param(
            {"vascoTokens": tokens("CR"), "stateName": "frozen"}, ["stateName"], id="bad-state"
        ),
        pytest.param({"vascoTokens": tokens("CR"), "extId": "a/b"}, ["extId"], id="bad-extId"),
        pytest.param(
            {
                "vascoTokens": [
                    {"authMode": "CR", "data": "QQ"},
                    {"authMode": "toolongmode", "data": GOOD},
                ],
                "extid": "typo",
            },
            ["extid", "vascoTokens[0].data", "vascoTokens[1].authMode"],
            id="three-problems-three-entries",
        ),
    ],
)
def test_bad_bodies_get_one_entry_per_problem_and_write_nothing(
    client, admin, acme, app, body, fields
):
    response = client.post(VASCO_URL, json=body, headers=admin)

    assert response.status_code == 422, response.json
    errors = response.json["errors"]
    assert sorted(error["field"] for error in errors) == fields
    assert {error["code"] for error in errors} == {"errors.invalidData"}
    assert all(error["field"] in error["message"] for error in errors)
    for token in body.get("vascoTokens") or []:
        data = token.get("data") if isinstance(token, dict) else None
        if isinstance(data, str) and len(data) > 4:
            assert data.strip() not in response.get_data(as_text=True), "data echoed back"
    assert count_rows(app, "credentials") == 0
    assert count_rows(app, "vasco_token_blocks") == 0


def test_unknown_policy_is_404(client, admin, acme):
    response = create_vasco(client, admin, policyExtId="nope")
    assert response.status_code == 404
    assert response.json == {
        "errors": [{"code": "errors.noRecord", "message": "No policy 'nope' in client 'acme'"}]
    }


def test_policy_of_another_client_is_404(client, admin, acme):
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    client.post(
        f"{CORE}/globex/policies",
        json={"extId": "theirs", "name": "Theirs", "policyType": "VascoPolicy"},
        headers=admin,
    )
    assert create_vasco(client, admin, policyExtId="theirs").status_code == 404


def test_ticket_policy_is_the_wrong_type(client, admin, acme, app):
    client.post(
        f"{CORE}/acme/policies",
        json={"extId": "tickets", "name": "Tickets", "policyType": "TicketPolicy"},
        headers=admin,
    )
    response = create_vasco(client, admin, policyExtId="tickets")
    assert response.status_code == 422
    assert response.json["errors"] == [
        {
            "code": "errors.invalidData",
            "message": "Policy 'tickets' is a TicketPolicy, not a VascoPolicy",
            "field": "policyExtId",
        }
    ]
    assert count_rows(app, "credentials") == 0


def test_second_vasco_credential_with_the_same_ext_id_is_vasco_exists(client, admin, acme, app):
    assert create_vasco(client, admin, extId="token-1").status_code == 201
    response = create_vasco(client, admin, extId="token-1")

    assert response.status_code == 422
    assert response.json["errors"] == [
        {
            "code": "errors.vascoExists",
            "message": "A VASCO credential with extId 'token-1' already exists in client 'acme'",
            "field": "extId",
        }
    ]
    assert count_rows(app, "credentials") == 1
    assert count_rows(app, "vasco_token_blocks") == 2


def test_ext_id_held_by_a_ticket_is_a_duplicate_value(client, admin, acme, app):
    ticket = client.post(f"{CORE}/acme/users/alice/ticket", json={"extId": "shared"}, headers=admin)
    assert ticket.status_code == 201, ticket.json
    response = create_vasco(client, admin, extId="shared")

    assert response.status_code == 422
    assert response.json["errors"][0]["code"] == "errors.duplicateValue"
    assert response.json["errors"][0]["field"] == "extId"
    assert count_rows(app, "vasco_token_blocks") == 0


def test_same_ext_id_may_be_used_in_another_client(client, admin, acme):
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    assert create_vasco(client, admin, extId="token-1").status_code == 201
    assert create_vasco(client, admin, "globex", extId="token-1").status_code == 201


def test_twenty_simultaneous_creates_with_one_ext_id_give_one_credential(client, admin, acme, app):
    barrier = threading.Barrier(20)
    results: list[tuple[int, str | None]] = []

    def create() -> None:
        with app.test_client() as own_client:
            barrier.wait()
            response = create_vasco(own_client, admin, extId="contested")
            code = response.json["errors"][0]["code"] if response.status_code >= 400 else None
            results.append((response.status_code, code))

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(results) == {(201, None): 1, (422, "errors.vascoExists"): 19}
    assert count_rows(app, "credentials") == 1
    assert count_rows(app, "vasco_token_blocks") == 2


def fail_sealing_the_second_block(monkeypatch, app) -> Callable[[], None]:
    seal = SecretBox.seal
    calls = []

    def failing_seal(self: SecretBox, plaintext: bytes, associated_data: bytes) -> str:
        calls.append(associated_data)
        if len(calls) == 2:
            raise RuntimeError("cipher failure in the middle of a create")
        return seal(self, plaintext, associated_data)

    monkeypatch.setattr(SecretBox, "seal", failing_seal)
    return monkeypatch.undo


@pytest.mark.parametrize("failure", [fail_sealing_the_second_block, fail_writing_the_blocks])
def test_failure_half_way_through_a_create_leaves_nothing(
    client, admin, acme, app, failure, monkeypatch
):
    undo = failure(monkeypatch, app)
    try:
        response = create_vasco(client, admin, vascoTokens=tokens("CR", "RO", "SG"))
    finally:
        undo()

    assert response.status_code == 500
    assert response.json == {
        "errors": [
            {
                "code": "errors.fatalError",
                "message": "An unexpected error occurred; it has been logged",
            }
        ]
    }
    assert count_rows(app, "credentials") == 0
    assert count_rows(app, "vasco_token_blocks") == 0
    # The service is still healthy afterwards.
    assert create_vasco(client, admin).status_code == 201
