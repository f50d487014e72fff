"""Users as nevisIDM documents them (contract section 12): the full "Create a user" body,
GET, PATCH, DELETE and archive of a user, the list of a client's users, and a user who is not
active cannot verify a credential."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.auth import PERMISSIONS, USER_ARCHIVE, USER_DELETE, USER_MODIFY, USER_VIEW
from app.extensions import db
from tests.support import CORE, bearer, count_rows, create_vasco

USERS = f"{CORE}/acme/users"
ALICE = f"{USERS}/alice"

# The body of nevisIDM's "Create a user" page, every documented field.
DOCUMENTED_USER = {
    "extId": "carol",
    "userState": "active",
    "loginId": "carol.jones",
    "languageCode": "de",
    "isTechnicalUser": False,
    "name": {"title": "Dr.", "firstName": "Carol", "familyName": "Jones"},
    "properties": {},
    "sex": "female",
    "gender": "female",
    "birthDate": "1984-02-29",
    "address": {
        "addressline1": "c/o Acme",
        "addressline2": "Floor 3",
        "postalCode": "8005",
        "city": "Zurich",
        "street": "Hardstrasse",
        "houseNumber": "201",
        "dwellingNumber": "12",
        "postOfficeBoxText": "Postfach",
        "postOfficeBoxNumber": "1234",
        "locality": "Kreis 5",
        "countryCode": "CH",
    },
    "contacts": {
        "email": "carol@acme.example",
        "mobile": "+41791234567",
        "telephone": "+41441234567",
        "telefax": "+41441234568",
    },
    "validity": {"from": "2026-01-01T00:00:00Z", "to": "2036-01-01T00:00:00Z"},
    "remarks": "Imported from the HR system",
    "modificationComment": "created by the onboarding script",
}


def create(client, admin, **body: Any) -> dict[str, Any]:
    response = client.post(USERS, json=body, headers=admin)
    assert response.status_code == 201, response.json
    return response.json


def errors(response, status: int = 422) -> list[dict[str, str]]:
    assert response.status_code == status, response.json
    return response.json["errors"]


# -- create and get -------------------------------------------------------------------------


def test_the_documented_create_body_is_stored_and_returned(client, admin, acme):
    body = create(client, admin, **DOCUMENTED_USER)

    expected = {k: v for k, v in DOCUMENTED_USER.items() if k != "properties"}
    assert {k: body[k] for k in expected} == expected
    assert body["clientExtId"] == "acme" and body["version"] == 1
    assert client.get(f"{USERS}/carol", headers=admin).json == body


def test_a_user_created_with_its_login_id_only_takes_the_defaults(client, admin, acme):
    body = create(client, admin, loginId="dave")
    assert body["userState"] == "active"
    assert body["languageCode"] == "en"
    assert body["isTechnicalUser"] is False
    assert body["address"] is None
    partial = create(client, admin, loginId="erin", address={"city": "Bern"})["address"]
    assert partial["city"] == "Bern" and partial["street"] is None and len(partial) == 11
    assert body["validity"] == {"from": None, "to": None}


def test_custom_properties_are_refused_saying_why(client, admin, acme):
    response = client.post(
        USERS, json={"loginId": "erin", "properties": {"department": "sales"}}, headers=admin
    )
    [error] = errors(response)
    assert error["field"] == "properties"
    assert "property definitions" in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contacts": {"mobile": "+41 79 123 45 67"}}, "contacts.mobile"),
        ({"contacts": {"telephone": "0441234567"}}, "contacts.telephone"),
        ({"contacts": {"telefax": "+0441234567"}}, "contacts.telefax"),
        ({"userState": "inexistent"}, "userState"),
        ({"gender": "unknown"}, "gender"),
        ({"birthDate": "29.02.1984"}, "birthDate"),
        ({"address": {"countryCode": "Switzerland"}}, "address.countryCode"),
        ({"address": {"floor": "3"}}, "address.floor"),
        ({"languageCode": "english"}, "languageCode"),
        ({"isTechnicalUser": "maybe"}, "isTechnicalUser"),
        ({"validity": {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}, "validity"),
        ({"email": "erin@acme.example"}, "email"),
    ],
)
def test_bad_documented_fields_are_422(client, admin, acme, body, field):
    response = client.post(USERS, json={"loginId": "erin", **body}, headers=admin)
    assert [error["field"] for error in errors(response)] == [field]
    assert count_rows(client.application, "users") == 1  # alice alone


# -- list -----------------------------------------------------------------------------------


def test_users_of_a_client_are_listed_with_limit_0_and_their_total(client, admin, acme):
    for login in ("bob", "carol", "dave"):
        create(client, admin, extId=login, loginId=login)

    response = client.get(
        f"{CORE}/clients/acme/users?limit=0&returnTotalResultCount=true", headers=admin
    )

    assert response.status_code == 200, response.json
    body = response.json
    assert [user["extId"] for user in body["items"]] == ["alice", "bob", "carol", "dave"]
    assert body["_pagination"] == {"continuationToken": None, "limit": 100, "totalResult": 4}
    assert body["_classifications"] == {}
    assert body["items"][0] == client.get(ALICE, headers=admin).json


def test_the_users_list_is_paged_and_counts_only_when_asked(client, admin, acme):
    for login in ("bob", "carol"):
        create(client, admin, extId=login, loginId=login)
    first = client.get(f"{CORE}/clients/acme/users?limit=2", headers=admin).json
    assert first["_pagination"]["totalResult"] is None
    token = first["_pagination"]["continuationToken"]
    second = client.get(
        f"{CORE}/clients/acme/users?limit=2&continuationToken={token}&returnTotalResultCount=true",
        headers=admin,
    ).json
    assert [u["extId"] for u in first["items"] + second["items"]] == ["alice", "bob", "carol"]
    assert second["_pagination"]["totalResult"] == 3


def test_the_users_of_an_unknown_client_are_404(client, admin):
    assert client.get(f"{CORE}/clients/nobody/users", headers=admin).status_code == 404


def test_the_users_list_keeps_to_the_data_room(client, admin, acme, make_key):
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    headers = bearer(make_key(*PERMISSIONS, clients=["globex"]))
    [error] = errors(client.get(f"{CORE}/clients/acme/users", headers=headers), 403)
    assert error["code"] == "errors.dataroomPermissionDenied"
    assert client.get(f"{CORE}/clients/globex/users", headers=headers).status_code == 200


# -- PATCH ----------------------------------------------------------------------------------


def test_patch_without_version_applies_to_the_current_version(client, admin, acme):
    response = client.patch(
        ALICE, json={"name": {"firstName": "Alice"}, "languageCode": "fr"}, headers=admin
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["version"] == 2 and body["languageCode"] == "fr"
    assert body["name"] == {"title": None, "firstName": "Alice", "familyName": None}
    assert body["lastModified"] >= body["created"]
    assert client.get(ALICE, headers=admin).json == body


def test_patch_with_a_stale_version_is_409_and_changes_nothing(client, admin, acme):
    client.patch(ALICE, json={"remarks": "first"}, headers=admin)
    [error] = errors(client.patch(ALICE, json={"version": 1, "remarks": "x"}, headers=admin), 409)
    assert error["code"] == "errors.pessimisticLockingFailure"
    assert client.get(ALICE, headers=admin).json["remarks"] == "first"


def test_patch_with_the_current_version_applies(client, admin, acme):
    response = client.patch(ALICE, json={"version": "1", "userState": "disabled"}, headers=admin)
    assert response.status_code == 200 and response.json["userState"] == "disabled"


def test_patch_changes_the_fields_sent_and_keeps_the_others(client, admin, acme):
    create(client, admin, **DOCUMENTED_USER)
    response = client.patch(
        f"{USERS}/carol",
        json={
            "contacts": {"mobile": "+41790000000"},
            "address": {"city": "Bern", "locality": None},
            "name": None,
        },
        headers=admin,
    )
    body = response.json
    assert body["contacts"] == {**DOCUMENTED_USER["contacts"], "mobile": "+41790000000"}
    address = {**DOCUMENTED_USER["address"], "city": "Bern", "locality": None}
    assert body["address"] == address
    assert body["name"] == {"title": None, "firstName": None, "familyName": None}
    assert body["birthDate"] == "1984-02-29"


def test_patch_to_a_taken_login_id_is_a_duplicate(client, admin, acme):
    create(client, admin, extId="bob", loginId="bob")
    [error] = errors(client.patch(f"{USERS}/bob", json={"loginId": "alice"}, headers=admin))
    assert error["code"] == "errors.duplicateValue" and error["field"] == "loginId"
    assert client.get(f"{USERS}/bob", headers=admin).json["version"] == 1


def test_patch_validity_ending_before_it_starts_is_422(client, admin, acme):
    client.patch(ALICE, json={"validity": {"from": "2030-01-01T00:00:00Z"}}, headers=admin)
    response = client.patch(ALICE, json={"validity": {"to": "2029-01-01T00:00:00Z"}}, headers=admin)
    assert [error["field"] for error in errors(response)] == ["validity"]


@pytest.mark.parametrize(
    "body", [{"extId": "alice2"}, {"properties": {"x": "y"}}, {"version": 0}, {"email": "a@b.c"}]
)
def test_bad_patch_bodies_are_422(client, admin, acme, body):
    errors(client.patch(ALICE, json=body, headers=admin))
    assert client.get(ALICE, headers=admin).json["version"] == 1


def test_patch_of_an_unknown_user_is_404(client, admin, acme):
    assert client.patch(f"{USERS}/nobody", json={}, headers=admin).status_code == 404


# -- DELETE and archive ------------------------------------------------------------------


@pytest.fixture
def alice_with_credentials(client, admin, acme) -> None:
    """alice with a ticket and a VASCO credential 'token-1' (active), and a VASCO credential
    'token-2' in the pool."""
    assert client.post(f"{ALICE}/ticket", json={}, headers=admin).status_code == 201
    for ext_id in ("token-1", "token-2"):
        assert create_vasco(client, admin, extId=ext_id).status_code == 201
    assert client.put(f"{ALICE}/vasco/token-1", headers=admin).status_code == 200
    response = client.patch(
        f"{CORE}/acme/vasco/token-1", json={"stateName": "active"}, headers=admin
    )
    assert response.status_code == 200, response.json


def credential_rows(app) -> list[tuple]:
    with app.app_context(), db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT ext_id, kind, user_id, state_name, state_change_reason, version"
                " FROM credentials ORDER BY ext_id"
            )
        )
        return [tuple(row) for row in rows]


def test_delete_user_deletes_its_ticket_and_returns_its_vasco_to_the_pool(
    client, admin, app, alice_with_credentials
):
    response = client.delete(ALICE, headers=admin)

    assert response.status_code == 204 and response.data == b""
    assert client.get(ALICE, headers=admin).status_code == 404
    assert count_rows(app, "ticket_credentials") == 0
    assert credential_rows(app) == [
        ("token-1", "VASCO", None, "initial", "unassigned", 4),
        ("token-2", "VASCO", None, "initial", "initialized", 1),
    ]
    token = client.get(f"{CORE}/acme/vasco/token-1", headers=admin).json
    assert token["userExtId"] is None and token["stateName"] == "initial"
    assert count_rows(app, "vasco_token_blocks") == 4


def test_a_failed_delete_leaves_everything_in_place(
    client, admin, app, alice_with_credentials, monkeypatch
):
    from app.repositories import users

    def fail(session, user_id):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(users, "_release_credentials", fail)
    assert client.delete(ALICE, headers=admin).status_code == 500
    assert client.get(ALICE, headers=admin).status_code == 200
    assert count_rows(app, "ticket_credentials") == 1


def test_delete_of_an_unknown_user_is_404(client, admin, acme):
    assert client.delete(f"{USERS}/nobody", headers=admin).status_code == 404


def test_archive_sets_the_state_and_releases_the_credentials(
    client, admin, app, alice_with_credentials
):
    response = client.post(f"{ALICE}/archive", headers=admin)

    assert response.status_code == 204
    user = client.get(ALICE, headers=admin).json
    assert user["userState"] == "archived" and user["version"] == 2
    assert client.get(f"{ALICE}/ticket", headers=admin).status_code == 404
    assert [row[:4] for row in credential_rows(app)] == [
        ("token-1", "VASCO", None, "initial"),
        ("token-2", "VASCO", None, "initial"),
    ]
    # Archiving again changes nothing more.
    assert client.post(f"{ALICE}/archive", json={}, headers=admin).status_code == 204
    assert client.get(ALICE, headers=admin).json["version"] == 2


@pytest.mark.parametrize(
    ("method", "url", "needed"),
    [
        ("patch", ALICE, USER_MODIFY),
        ("patch", ALICE, USER_VIEW),
        ("delete", ALICE, USER_DELETE),
        ("post", f"{ALICE}/archive", USER_ARCHIVE),
    ],
)
def test_user_changes_need_their_permissions(client, make_key, acme, method, url, needed):
    headers = bearer(make_key(*(p for p in PERMISSIONS if p != needed)))
    kwargs = {"json": {}} if method == "patch" else {}
    [error] = errors(getattr(client, method)(url, headers=headers, **kwargs), 403)
    assert needed in error["message"]


# -- a user who is not active cannot verify ------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"userState": "disabled"}, "is disabled, not active"),
        ({"userState": "archived"}, "is archived, not active"),
        ({"validity": {"to": "2020-01-01T00:00:00Z"}}, "expired at 2020-01-01T00:00:00Z"),
        ({"validity": {"from": "2999-01-01T00:00:00Z"}}, "is not valid before 2999-01-01"),
    ],
)
def test_a_user_not_active_or_outside_its_validity_cannot_verify(
    client, admin, acme, change, reason
):
    issued = client.post(f"{ALICE}/ticket", json={}, headers=admin).json
    assert client.patch(ALICE, json=change, headers=admin).status_code == 200

    response = client.post(
        f"{ALICE}/ticket/verify", json={"ticket": issued["plainTicket"]}, headers=admin
    )

    [error] = errors(response)
    assert error["code"] == "errors.credentialNotUsable"
    assert reason in error["message"]
    ticket = client.get(f"{ALICE}/ticket", headers=admin).json
    assert ticket["successCount"] == 0 and ticket["version"] == issued["version"]

    # Active again: the same value verifies.
    client.patch(ALICE, json={"userState": "active", "validity": None}, headers=admin)
    response = client.post(
        f"{ALICE}/ticket/verify", json={"ticket": issued["plainTicket"]}, headers=admin
    )
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("sent", [0, 1, "true", "yes"])
@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("PATCH", "/acme/users/alice", "isTechnicalUser"),
        ("POST", "/acme/users", "isTechnicalUser"),
        ("POST", "/acme/policies", "defaultPolicy"),
    ],
)
def test_a_boolean_field_takes_true_or_false_alone(client, admin, acme, method, path, field, sent):
    body = {"loginId": "bob", "name": "P", "policyType": "TicketPolicy"} if method == "POST" else {}
    if path.endswith("/users"):
        body = {"loginId": "bob"}
    elif path.endswith("/policies"):
        body = {"name": "P", "policyType": "TicketPolicy"}
    response = client.open(
        f"{CORE}{path}", method=method, json={**body, field: sent}, headers=admin
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["field"] == field
    assert count_rows(client.application, "users") == 1
