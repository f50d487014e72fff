"""Policies as nevisIDM documents them (contract section 12): description and version on
create, PATCH, DELETE, and the list of a client's policies."""

from __future__ import annotations

import pytest

from app.auth import PERMISSIONS, POLICY_DELETE, POLICY_MODIFY
from tests.support import CORE, bearer, count_rows, create_vasco

POLICIES = f"{CORE}/acme/policies"

# The fields of nevisIDM's "Create a policy configuration" body.
DOCUMENTED_POLICY = {
    "defaultPolicy": False,
    "description": "Tickets for the partner portal",
    "name": "Portal tickets",
    "parameters": {"credentialLifetime": "3600000", "maxCredFailureCount": "3"},
    "version": 7,
    "extId": "portal",
    "policyType": "TicketPolicy",
}


@pytest.fixture
def portal(client, admin, acme) -> dict:
    response = client.post(POLICIES, json=DOCUMENTED_POLICY, headers=admin)
    assert response.status_code == 201, response.json
    return response.json


def test_the_documented_body_creates_a_policy_at_version_1(client, admin, portal):
    expected = {k: v for k, v in DOCUMENTED_POLICY.items() if k != "version"}
    assert {k: portal[k] for k in expected} == expected
    assert portal["version"] == 1 and portal["clientExtId"] == "acme"
    assert client.get(f"{POLICIES}/portal", headers=admin).json == portal


def test_the_policies_of_a_client_are_listed(client, admin, portal):
    response = client.get(
        f"{CORE}/clients/acme/policies?limit=0&returnTotalResultCount=true", headers=admin
    )
    assert response.status_code == 200, response.json
    body = response.json
    # The client's two defaults first (created together, then in extId order), then portal.
    types = [p["policyType"] for p in body["items"]]
    assert sorted(types[:2]) == ["TicketPolicy", "VascoPolicy"] and types[2] == "TicketPolicy"
    assert body["items"][2] == portal
    assert body["_pagination"] == {"continuationToken": None, "limit": 100, "totalResult": 3}
    assert body["_classifications"] == {}
    assert client.get(f"{CORE}/clients/nobody/policies", headers=admin).status_code == 404


def test_patch_changes_the_fields_sent_and_replaces_the_parameters(client, admin, portal):
    url = f"{POLICIES}/portal"
    response = client.patch(
        url,
        json={"description": "Changed", "parameters": {"maxCredFailureCount": "9"}},
        headers=admin,
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["description"] == "Changed" and body["name"] == "Portal tickets"
    assert body["parameters"] == {"maxCredFailureCount": "9"} and body["version"] == 2
    assert client.get(url, headers=admin).json == body

    stale = client.patch(url, json={"version": 1, "name": "x"}, headers=admin)
    assert stale.status_code == 409
    assert client.patch(url, json={"version": 2, "name": "x"}, headers=admin).status_code == 200


def test_patch_default_policy_moves_the_default(client, admin, portal):
    response = client.patch(f"{POLICIES}/portal", json={"defaultPolicy": True}, headers=admin)
    assert response.status_code == 200 and response.json["defaultPolicy"] is True
    listed = client.get(f"{CORE}/clients/acme/policies", headers=admin).json["items"]
    defaults = [
        p["extId"] for p in listed if p["defaultPolicy"] and p["policyType"] == "TicketPolicy"
    ]
    assert defaults == ["portal"]
    # Tickets created now follow it.
    ticket = client.post(f"{CORE}/acme/users/alice/ticket", json={}, headers=admin).json
    assert ticket["policyExtId"] == "portal"


def test_the_default_cannot_stop_being_the_default_by_itself(client, admin, portal):
    client.patch(f"{POLICIES}/portal", json={"defaultPolicy": True}, headers=admin)
    response = client.patch(f"{POLICIES}/portal", json={"defaultPolicy": False}, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "defaultPolicy"


@pytest.mark.parametrize(
    "body",
    [
        {"parameters": {"maxCredFailureCount": "many"}},
        {"policyType": "VascoPolicy"},
        {"name": ""},
        {"version": "v2"},
    ],
)
def test_bad_patch_bodies_are_422(client, admin, portal, body):
    assert client.patch(f"{POLICIES}/portal", json=body, headers=admin).status_code == 422
    assert client.get(f"{POLICIES}/portal", headers=admin).json == portal


def test_delete_an_unused_policy(client, admin, app, portal):
    assert client.delete(f"{POLICIES}/portal", headers=admin).status_code == 204
    assert client.get(f"{POLICIES}/portal", headers=admin).status_code == 404
    assert client.delete(f"{POLICIES}/portal", headers=admin).status_code == 404
    assert count_rows(app, "policies") == 2


def test_a_policy_in_use_cannot_be_deleted(client, admin, portal):
    client.post(f"{CORE}/acme/users/alice/ticket", json={"policyExtId": "portal"}, headers=admin)
    response = client.delete(f"{POLICIES}/portal", headers=admin)
    assert response.status_code == 422
    assert "in use" in response.json["errors"][0]["message"]
    assert client.get(f"{POLICIES}/portal", headers=admin).status_code == 200


def test_the_default_policy_cannot_be_deleted(client, admin, acme):
    listed = client.get(f"{CORE}/clients/acme/policies", headers=admin).json["items"]
    vasco_default = next(p for p in listed if p["policyType"] == "VascoPolicy")
    assert create_vasco(client, admin).status_code == 201
    response = client.delete(f"{POLICIES}/{vasco_default['extId']}", headers=admin)
    assert response.status_code == 422
    assert "default" in response.json["errors"][0]["message"]


@pytest.mark.parametrize(
    ("method", "needed"), [("patch", POLICY_MODIFY), ("delete", POLICY_DELETE)]
)
def test_policy_changes_need_their_permissions(client, make_key, portal, method, needed):
    headers = bearer(make_key(*(p for p in PERMISSIONS if p != needed)))
    kwargs = {"json": {}} if method == "patch" else {}
    response = getattr(client, method)(f"{POLICIES}/portal", headers=headers, **kwargs)
    assert response.status_code == 403 and needed in response.json["errors"][0]["message"]
