"""Clients as nevisIDM documents them (contract section 12): name, displayName and remarks,
the list of clients in the caller's data room, PATCH and DELETE."""

from __future__ import annotations

import pytest

from app.auth import CLIENT_DELETE, CLIENT_MODIFY, PERMISSIONS
from tests.support import CORE, bearer, count_rows, create_vasco

CLIENTS = f"{CORE}/clients"

# The client of nevisIDM's "List all clients" response example.
DOCUMENTED_CLIENT = {
    "extId": "1000",
    "name": "MyClient",
    "displayName": {
        "EN": "Client Name in English",
        "DE": "Client Name in German",
        "FR": "Client Name in French",
        "IT": "Client Name in Italian",
    },
}


def create(client, admin, **body):
    response = client.post(CLIENTS, json=body, headers=admin)
    assert response.status_code == 201, response.json
    return response.json


def test_the_documented_client_is_listed_as_in_the_documentation(client, admin):
    created = create(client, admin, **DOCUMENTED_CLIENT)

    response = client.get(f"{CLIENTS}?limit=0&returnTotalResultCount=true", headers=admin)

    assert response.status_code == 200, response.json
    body = response.json
    assert list(body) == ["items", "_pagination", "_classifications"]
    [item] = body["items"]
    assert list(item)[:6] == ["created", "lastModified", "version", "extId", "name", "displayName"]
    assert {key: item[key] for key in DOCUMENTED_CLIENT} == DOCUMENTED_CLIENT
    assert item == created and item["version"] == 1
    assert body["_pagination"] == {"continuationToken": None, "limit": 100, "totalResult": 1}
    assert body["_classifications"] == {}


def test_create_with_remarks_and_get(client, admin):
    created = create(client, admin, extId="acme", name="Acme", remarks="Pilot customer")
    assert created["remarks"] == "Pilot customer" and created["displayName"] == {}
    assert client.get(f"{CLIENTS}/acme", headers=admin).json == created


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"displayName": {"ES": "Acme"}}, "displayName"),
        ({"displayName": {"EN": ""}}, "displayName"),
        ({"displayName": "Acme"}, "displayName"),
        ({"remarks": 5}, "remarks"),
    ],
)
def test_bad_client_fields_are_422(client, admin, body, field):
    response = client.post(CLIENTS, json={"name": "Acme", **body}, headers=admin)
    assert response.status_code == 422
    assert [error["field"].split(".")[0] for error in response.json["errors"]] == [field]


def test_the_list_holds_only_the_callers_data_room_a_page_at_a_time(client, admin, make_key):
    for ext_id in ("a", "b", "c", "d"):
        create(client, admin, extId=ext_id, name=ext_id.upper())
    headers = bearer(make_key(*PERMISSIONS, clients=["b", "c", "d", "nowhere"]))

    first = client.get(f"{CLIENTS}?limit=2&returnTotalResultCount=true", headers=headers).json
    token = first["_pagination"]["continuationToken"]
    second = client.get(f"{CLIENTS}?limit=2&continuationToken={token}", headers=headers).json

    assert [c["extId"] for c in first["items"] + second["items"]] == ["b", "c", "d"]
    assert first["_pagination"]["totalResult"] == 3
    assert second["_pagination"] == {"continuationToken": None, "limit": 2, "totalResult": None}


def test_limit_over_100_is_422(client, admin):
    response = client.get(f"{CLIENTS}?limit=101", headers=admin)
    assert response.status_code == 422


def test_patch_changes_the_fields_sent_with_or_without_version(client, admin):
    create(client, admin, **DOCUMENTED_CLIENT)
    url = f"{CLIENTS}/1000"

    response = client.patch(url, json={"displayName": {"EN": "Mine"}}, headers=admin)
    assert response.status_code == 200, response.json
    assert response.json["displayName"] == {"EN": "Mine"} and response.json["version"] == 2
    response = client.patch(url, json={"version": 2, "remarks": "r", "name": "Mine"}, headers=admin)
    assert response.status_code == 200, response.json
    assert (response.json["name"], response.json["remarks"]) == ("Mine", "r")
    assert client.get(url, headers=admin).json == response.json

    stale = client.patch(url, json={"version": 2, "remarks": "late"}, headers=admin)
    assert stale.status_code == 409
    assert stale.json["errors"][0]["code"] == "errors.pessimisticLockingFailure"


def test_patch_to_a_taken_name_is_a_duplicate(client, admin):
    create(client, admin, extId="acme", name="Acme")
    create(client, admin, extId="globex", name="Globex")
    response = client.patch(f"{CLIENTS}/globex", json={"name": "Acme"}, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["code"] == "errors.duplicateValue"
    assert client.get(f"{CLIENTS}/globex", headers=admin).json["name"] == "Globex"


@pytest.mark.parametrize("body", [{"extId": "other"}, {"name": ""}, {"version": "x"}])
def test_bad_patch_bodies_are_422(client, admin, body):
    create(client, admin, extId="acme", name="Acme")
    assert client.patch(f"{CLIENTS}/acme", json=body, headers=admin).status_code == 422


def test_delete_of_a_client_with_users_is_422_saying_so(client, admin, acme, app):
    response = client.delete(f"{CLIENTS}/acme", headers=admin)
    assert response.status_code == 422
    assert "still has users" in response.json["errors"][0]["message"]
    assert client.get(f"{CLIENTS}/acme", headers=admin).status_code == 200


def test_delete_removes_the_client_its_policies_and_its_vasco_pool(client, admin, app):
    create(client, admin, extId="acme", name="Acme")
    create(client, admin, extId="globex", name="Globex")
    assert create_vasco(client, admin, extId="token-1").status_code == 201

    response = client.delete(f"{CLIENTS}/acme", headers=admin)

    assert response.status_code == 204
    assert client.get(f"{CLIENTS}/acme", headers=admin).status_code == 404
    assert count_rows(app, "credentials") == 0 and count_rows(app, "vasco_token_blocks") == 0
    assert count_rows(app, "policies") == 2  # globex's defaults
    assert client.delete(f"{CLIENTS}/acme", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("method", "needed"), [("patch", CLIENT_MODIFY), ("delete", CLIENT_DELETE)]
)
def test_client_changes_need_their_permissions(client, admin, make_key, method, needed):
    create(client, admin, extId="acme", name="Acme")
    headers = bearer(make_key(*(p for p in PERMISSIONS if p != needed)))
    kwargs = {"json": {}} if method == "patch" else {}
    response = getattr(client, method)(f"{CLIENTS}/acme", headers=headers, **kwargs)
    assert response.status_code == 403 and needed in response.json["errors"][0]["message"]


def test_client_changes_keep_to_the_data_room(client, admin, make_key):
    create(client, admin, extId="acme", name="Acme")
    headers = bearer(make_key(*PERMISSIONS, clients=["globex"]))
    for response in (
        client.patch(f"{CLIENTS}/acme", json={}, headers=headers),
        client.delete(f"{CLIENTS}/acme", headers=headers),
    ):
        assert response.status_code == 403
        assert response.json["errors"][0]["code"] == "errors.dataroomPermissionDenied"
