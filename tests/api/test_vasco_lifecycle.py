"""The rest of the VASCO life cycle (contract 5): get, list, change, assign, unassign, delete."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import CORE, count_rows, count_statements, create_vasco, tokens

VASCO_URL = f"{CORE}/acme/vasco"
TOKEN_URL = f"{VASCO_URL}/token-1"


@pytest.fixture
def vasco(client, admin, acme) -> dict[str, Any]:
    """A VASCO credential 'token-1' in 'acme', unassigned, with blocks CR and RO."""
    response = create_vasco(client, admin, extId="token-1")
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def bob(client, admin, acme) -> None:
    response = client.post(
        f"{CORE}/acme/users", json={"extId": "bob", "loginId": "bob"}, headers=admin
    )
    assert response.status_code == 201, response.json


def patch(client, admin, body: dict[str, Any], url: str = TOKEN_URL):
    return client.patch(url, json=body, headers=admin)


# --- GET ---------------------------------------------------------------------------------


def test_get_returns_what_create_returned(client, admin, vasco):
    response = client.get(TOKEN_URL, headers=admin)
    assert response.status_code == 200
    assert response.json == vasco


def test_a_ticket_is_not_found_as_a_vasco_credential(client, admin, acme):
    client.post(f"{CORE}/acme/users/alice/ticket", json={"extId": "a-ticket"}, headers=admin)
    response = client.get(f"{VASCO_URL}/a-ticket", headers=admin)
    assert response.status_code == 404
    assert response.json == {
        "errors": [
            {
                "code": "errors.noRecord",
                "message": "No VASCO credential 'a-ticket' in client 'acme'",
            }
        ]
    }


# --- list ----------------------------------------------------------------------------------


def test_paginated_walk_returns_each_of_120_credentials_exactly_once(client, admin, acme):
    created = {}
    for index in range(120):
        body = create_vasco(client, admin, extId=f"token-{index:03}").json
        created[body["extId"]] = body
    seen: list[str] = []
    tokens_seen: list[str] = []
    url = f"{VASCO_URL}?limit=7"
    while True:
        response = client.get(url, headers=admin)
        assert response.status_code == 200, response.json
        page = response.json
        assert page["_pagination"]["limit"] == 7
        assert len(page["items"]) <= 7
        for item in page["items"]:
            assert item == created[item["extId"]]
        seen.extend(item["extId"] for item in page["items"])
        token = page["_pagination"]["continuationToken"]
        if token is None:
            break
        tokens_seen.append(token)
        url = f"{VASCO_URL}?limit=7&continuationToken={token}"

    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen)) == 120
    assert len(tokens_seen) == 120 // 7
    # Opaque: no extId, no offset, nothing a client could build itself.
    for token in tokens_seen:
        assert "token-" not in token and not token.isdigit()
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_walk_is_not_disturbed_by_credentials_created_during_it(client, admin, acme):
    for index in range(5):
        create_vasco(client, admin, extId=f"early-{index}")
    first = client.get(f"{VASCO_URL}?limit=3", headers=admin).json
    create_vasco(client, admin, extId="late")
    token = first["_pagination"]["continuationToken"]
    rest = client.get(f"{VASCO_URL}?limit=10&continuationToken={token}", headers=admin).json
    walked = [item["extId"] for item in first["items"] + rest["items"]]
    assert walked == [f"early-{index}" for index in range(5)] + ["late"]


def test_list_holds_only_this_clients_vasco_credentials(client, admin, vasco):
    client.post(f"{CORE}/acme/users/alice/ticket", json={"extId": "a-ticket"}, headers=admin)
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    create_vasco(client, admin, "globex", extId="theirs")

    page = client.get(VASCO_URL, headers=admin).json
    assert page == {
        "items": [vasco],
        "_pagination": {"continuationToken": None, "limit": 100, "totalResult": None},
        "_classifications": {},
    }


def test_a_client_without_vasco_credentials_lists_an_empty_page(client, admin, acme):
    page = client.get(VASCO_URL, headers=admin).json
    assert page == {
        "items": [],
        "_pagination": {"continuationToken": None, "limit": 100, "totalResult": None},
        "_classifications": {},
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=-1", "limit"),
        ("limit=101", "limit"),
        ("limit=many", "limit"),
        ("continuationToken=not-ours", "continuationToken"),
        ("continuationToken=WyJ4Il0", "continuationToken"),
    ],
)
def test_bad_list_arguments_are_422(client, admin, acme, query, field):
    response = client.get(f"{VASCO_URL}?{query}", headers=admin)
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert error["code"] == "errors.invalidData"
    assert field in error["message"]


def test_a_page_costs_the_same_statements_however_many_items_it_holds(client, admin, acme, app):
    def list_page() -> None:
        assert client.get(f"{VASCO_URL}?limit=50", headers=admin).status_code == 200

    create_vasco(client, admin)
    one = count_statements(app, list_page)
    for _ in range(20):
        create_vasco(client, admin)
    assert count_statements(app, list_page) == one
    # client, the page (with user and policy joined), its blocks (the principal is cached)
    assert one == 3


# --- PATCH ---------------------------------------------------------------------------------


def test_patch_changes_the_common_fields_and_moves_the_version(client, admin, vasco):
    client.post(
        f"{CORE}/acme/policies",
        json={"extId": "other", "name": "Other", "policyType": "VascoPolicy"},
        headers=admin,
    )
    response = patch(
        client,
        admin,
        {
            "version": 1,
            "stateName": "active",
            "modificationComment": "handed out at the desk",
            "policyExtId": "other",
            "validity": {"from": "2030-01-01T01:00:00+01:00", "to": "2031-01-01T00:00:00Z"},
        },
    )

    assert response.status_code == 200, response.json
    body = response.json
    assert body["version"] == 2
    assert body["stateName"] == "active"
    assert body["stateChangeReason"] == "changed-by-admin"
    assert body["modificationComment"] == "handed out at the desk"
    assert body["policyExtId"] == "other"
    assert body["validity"] == {"from": "2030-01-01T00:00:00Z", "to": "2031-01-01T00:00:00Z"}
    assert body["vascoTokens"] == vasco["vascoTokens"]
    assert client.get(TOKEN_URL, headers=admin).json == body


def test_version_may_be_sent_as_a_string_of_digits(client, admin, vasco):
    response = patch(client, admin, {"version": "1", "modificationComment": "x"})
    assert response.status_code == 200, response.json
    assert response.json["version"] == 2


def test_patch_with_vasco_tokens_replaces_every_block(client, admin, vasco, app):
    replacement = tokens("ro", "SG")
    response = patch(client, admin, {"version": 1, "vascoTokens": replacement})

    assert response.status_code == 200, response.json
    assert response.json["vascoTokens"] == replacement
    assert response.json["version"] == 2
    assert client.get(TOKEN_URL, headers=admin).json["vascoTokens"] == replacement
    assert count_rows(app, "vasco_token_blocks") == 2


def test_stale_version_is_409_and_changes_nothing(client, admin, vasco, app):
    assert patch(client, admin, {"version": 1, "modificationComment": "first"}).status_code == 200
    before = client.get(TOKEN_URL, headers=admin).json

    response = patch(
        client,
        admin,
        {
            "version": 1,
            "stateName": "disabled",
            "vascoTokens": tokens("XX"),
            "modificationComment": "late",
        },
    )

    assert response.status_code == 409
    assert response.json["errors"] == [
        {
            "code": "errors.pessimisticLockingFailure",
            "message": "Credential 'token-1' is at version 2, not 1: read it again and retry",
        }
    ]
    assert client.get(TOKEN_URL, headers=admin).json == before
    assert count_rows(app, "vasco_token_blocks") == 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"version": 0}, 422, "version"),
        ({"version": 1, "vascoTokens": []}, 422, "vascoTokens"),
        ({"version": 1, "vascoTokens": None}, 422, "vascoTokens"),
        (
            {"version": 1, "vascoTokens": [{"authMode": "CR", "data": "QQ"}]},
            422,
            "vascoTokens[0].data",
        ),
        ({"version": 1, "userExtId": "alice"}, 422, "userExtId"),
        ({"version": 1, "extId": "renamed"}, 422, "extId"),
        ({"version": 1, "validity": {"to": "2000-01-01T00:00:00Z"}}, 422, "validity.to"),
        ({"version": 1, "policyExtId": "nope"}, 404, None),
    ],
)
def test_bad_patches_change_nothing(client, admin, vasco, body, status, field):
    response = patch(client, admin, body)
    assert response.status_code == status, response.json
    if field:
        assert [error["field"] for error in response.json["errors"]] == [field]
    assert client.get(TOKEN_URL, headers=admin).json == vasco


def test_patch_to_a_ticket_policy_is_422(client, admin, vasco):
    client.post(
        f"{CORE}/acme/policies",
        json={"extId": "tickets", "name": "Tickets", "policyType": "TicketPolicy"},
        headers=admin,
    )
    response = patch(client, admin, {"version": 1, "policyExtId": "tickets"})
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "policyExtId"


def race(app, requests: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each request at the same moment, each with its own test client."""
    barrier = threading.Barrier(len(requests))
    responses: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        with app.test_client() as own_client:
            barrier.wait()
            responses[index] = requests[index](own_client)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_simultaneous_patches_of_one_version_let_exactly_one_win(client, admin, vasco, app):
    replacements = [tokens("CR", f"M{index}") for index in range(10)]
    responses = race(
        app,
        [
            lambda own, sent=sent: own.patch(
                TOKEN_URL, json={"version": 1, "vascoTokens": sent}, headers=admin
            )
            for sent in replacements
        ],
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * 9
    [winner] = [response.json for response in responses if response.status_code == 200]
    assert client.get(TOKEN_URL, headers=admin).json == winner
    assert count_rows(app, "vasco_token_blocks") == 2


# --- assign and unassign -------------------------------------------------------------------


def test_assign_sets_the_user_and_keeps_the_state(client, admin, acme):
    create_vasco(client, admin, extId="token-1", stateName="active")
    response = client.put(f"{CORE}/acme/users/alice/vasco/token-1", headers=admin)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["userExtId"] == "alice"
    assert body["stateName"] == "active"
    assert body["stateChangeReason"] == "initialized"
    assert body["version"] == 2
    assert client.get(TOKEN_URL, headers=admin).json == body


def test_assigning_to_the_same_user_again_changes_nothing(client, admin, vasco):
    first = client.put(f"{CORE}/acme/users/alice/vasco/token-1", headers=admin).json
    again = client.put(f"{CORE}/acme/users/alice/vasco/token-1", headers=admin)
    assert again.status_code == 200
    assert again.json == first


def test_a_credential_held_by_one_user_is_not_moved_to_another(client, admin, vasco, bob):
    client.put(f"{CORE}/acme/users/alice/vasco/token-1", headers=admin)
    response = client.put(f"{CORE}/acme/users/bob/vasco/token-1", headers=admin)

    assert response.status_code == 422
    assert response.json["errors"] == [
        {
            "code": "errors.invalidData",
            "message": "VASCO credential 'token-1' is assigned to user 'alice'; unassign it first",
        }
    ]
    assert client.get(TOKEN_URL, headers=admin).json["userExtId"] == "alice"


def test_simultaneous_assigns_to_two_users_give_it_to_one(client, admin, vasco, bob, app):
    responses = race(
        app,
        [
            lambda own, user=user: own.put(f"{CORE}/acme/users/{user}/vasco/token-1", headers=admin)
            for user in ("alice", "bob") * 5
        ],
    )

    winners = {response.json["userExtId"] for response in responses if response.status_code == 200}
    assert len(winners) == 1
    losers = [response for response in responses if response.json.get("userExtId") not in winners]
    # A loser either saw the credential taken (422) or lost the version race (409).
    assert {response.status_code for response in losers} <= {409, 422}
    assert client.get(TOKEN_URL, headers=admin).json["userExtId"] in winners


def test_unassign_clears_the_user_and_returns_to_initial(client, admin, vasco, bob):
    client.put(f"{CORE}/acme/users/alice/vasco/token-1", headers=admin)
    patch(client, admin, {"version": 2, "stateName": "active"})

    response = client.put(f"{TOKEN_URL}/unassign", headers=admin)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["userExtId"] is None
    assert body["stateName"] == "initial"
    assert body["stateChangeReason"] == "unassigned"
    assert body["version"] == 4
    assert body["vascoTokens"] == vasco["vascoTokens"]
    assert client.get(TOKEN_URL, headers=admin).json == body
    # Free again: another user may have it now.
    assert client.put(f"{CORE}/acme/users/bob/vasco/token-1", headers=admin).status_code == 200


def test_unassigning_an_unassigned_initial_credential_changes_nothing(client, admin, vasco):
    response = client.put(f"{TOKEN_URL}/unassign", headers=admin)
    assert response.status_code == 200
    assert response.json == vasco


def test_unassign_returns_an_unassigned_active_credential_to_initial(client, admin, acme):
    create_vasco(client, admin, extId="token-1", stateName="active")
    body = client.put(f"{TOKEN_URL}/unassign", headers=admin).json
    assert (body["stateName"], body["version"]) == ("initial", 2)


def test_assign_and_unassign_ignore_any_body(client, admin, vasco):
    response = client.put(
        f"{CORE}/acme/users/alice/vasco/token-1",
        data="ignored",
        content_type="text/plain",
        headers=admin,
    )
    assert response.status_code == 200


# --- DELETE --------------------------------------------------------------------------------


def test_delete_removes_the_credential_and_its_blocks(client, admin, vasco, app):
    create_vasco(client, admin, extId="token-2")
    response = client.delete(TOKEN_URL, headers=admin)

    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get(TOKEN_URL, headers=admin).status_code == 404
    assert client.delete(TOKEN_URL, headers=admin).status_code == 404
    assert count_rows(app, "credentials") == 1
    assert count_rows(app, "vasco_token_blocks") == 2


def test_an_assigned_credential_may_be_deleted_and_its_ext_id_reused(client, admin, vasco):
    client.put(f"{CORE}/acme/users/alice/vasco/token-1", headers=admin)
    assert client.delete(TOKEN_URL, headers=admin).status_code == 204
    again = create_vasco(client, admin, extId="token-1")
    assert again.status_code == 201
    assert again.json["userExtId"] is None


def test_returned_blocks_decode_to_what_was_sent(client, admin, acme):
    raw = bytes(range(256))
    sent = [{"authMode": "CR", "data": base64.b64encode(raw).decode()}]
    create_vasco(client, admin, extId="token-1", vascoTokens=sent)
    returned = client.get(TOKEN_URL, headers=admin).json["vascoTokens"]
    assert base64.b64decode(returned[0]["data"]) == raw


def test_patch_without_version_applies_to_the_current_version(client, admin, vasco):
    assert patch(client, admin, {"modificationComment": "first"}).status_code == 200
    response = patch(client, admin, {"stateName": "active"})

    assert response.status_code == 200, response.json
    assert response.json["version"] == 3
    assert response.json["modificationComment"] == "first"
    assert response.json["stateName"] == "active"


def test_list_with_limit_0_and_total_result_count(client, admin, vasco):
    create_vasco(client, admin, extId="token-2")
    page = client.get(f"{VASCO_URL}?limit=0&returnTotalResultCount=true", headers=admin).json
    assert [item["extId"] for item in page["items"]] == ["token-1", "token-2"]
    assert page["_pagination"] == {"continuationToken": None, "limit": 100, "totalResult": 2}
    first = client.get(f"{VASCO_URL}?limit=1&returnTotalResultCount=true", headers=admin).json
    assert [item["extId"] for item in first["items"]] == ["token-1"]
    assert first["_pagination"]["totalResult"] == 2
