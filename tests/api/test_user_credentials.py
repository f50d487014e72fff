"""GET /{clientExtId}/users/{userExtId}/credentials: a user's credentials of every type."""

from __future__ import annotations

import pytest

from app.auth import CREDENTIAL_VIEW, PERMISSIONS
from tests.support import CORE, bearer, count_statements, create_vasco, tokens

LIST_URL = f"{CORE}/acme/users/alice/credentials"


@pytest.fixture
def wallet(client, admin, acme) -> dict[str, dict]:
    """alice holds a ticket and two assigned VASCO credentials; a third VASCO is unassigned."""
    ticket = client.post(f"{CORE}/acme/users/alice/ticket", json={}, headers=admin).json
    held = {"ticket": ticket}
    for ext_id in ("dp-1", "dp-2", "dp-spare"):
        assert create_vasco(client, admin, extId=ext_id).status_code == 201
    for ext_id in ("dp-1", "dp-2"):
        response = client.put(f"{CORE}/acme/users/alice/vasco/{ext_id}", headers=admin)
        assert response.status_code == 200, response.json
        held[ext_id] = response.json
    return held


def test_lists_every_credential_of_the_user_in_its_own_representation(client, admin, wallet):
    response = client.get(LIST_URL, headers=admin)

    assert response.status_code == 200
    body = response.json
    assert body["_pagination"] == {"continuationToken": None, "limit": 100, "totalResult": None}
    by_ext_id = {item["extId"]: item for item in body["items"]}
    assert set(by_ext_id) == {wallet["ticket"]["extId"], "dp-1", "dp-2"}
    ticket = by_ext_id[wallet["ticket"]["extId"]]
    assert ticket["type"] == "Ticket Authorization"
    assert "plainTicket" not in ticket
    assert {k: v for k, v in wallet["ticket"].items() if k != "plainTicket"} == ticket
    assert by_ext_id["dp-1"] == wallet["dp-1"]
    assert by_ext_id["dp-1"]["type"] == "Vasco" and by_ext_id["dp-1"]["userExtId"] == "alice"


def test_a_paged_walk_returns_each_credential_once(client, admin, wallet):
    seen, token = [], None
    while True:
        query = {"limit": 1, **({"continuationToken": token} if token else {})}
        body = client.get(LIST_URL, query_string=query, headers=admin).json
        assert len(body["items"]) <= 1 and body["_pagination"]["limit"] == 1
        seen += [item["extId"] for item in body["items"]]
        token = body["_pagination"]["continuationToken"]
        if token is None:
            break
    assert sorted(seen) == sorted([wallet["ticket"]["extId"], "dp-1", "dp-2"])


def test_a_user_without_credentials_has_an_empty_list(client, admin, acme):
    body = client.get(LIST_URL, headers=admin).json
    assert body == {
        "items": [],
        "_pagination": {"continuationToken": None, "limit": 100, "totalResult": None},
        "_classifications": {},
    }


def test_unassigned_credentials_leave_the_list(client, admin, wallet):
    client.put(f"{CORE}/acme/vasco/dp-2/unassign", headers=admin)
    items = client.get(LIST_URL, headers=admin).json["items"]
    assert "dp-2" not in {item["extId"] for item in items}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": -1}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"continuationToken": "not-a-token"}, "continuationToken"),
    ],
)
def test_bad_paging_arguments_are_422(client, admin, acme, query, field):
    response = client.get(LIST_URL, query_string=query, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == field


def test_listing_needs_credential_view(client, acme, make_key):
    denied = client.get(
        LIST_URL, headers=bearer(make_key(*(p for p in PERMISSIONS if p != CREDENTIAL_VIEW)))
    )
    allowed = client.get(LIST_URL, headers=bearer(make_key(CREDENTIAL_VIEW)))
    outside = client.get(LIST_URL, headers=bearer(make_key(CREDENTIAL_VIEW, clients=["globex"])))
    assert denied.json["errors"][0]["code"] == "errors.permissionDenied"
    assert allowed.status_code == 200
    assert outside.json["errors"][0]["code"] == "errors.dataroomPermissionDenied"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"{CORE}/acme/users/nobody/credentials", "No user 'nobody' in client 'acme'"),
        (f"{CORE}/nobody/users/alice/credentials", "No client 'nobody'"),
    ],
)
def test_unknown_user_or_client_is_404(client, admin, acme, url, message):
    response = client.get(url, headers=admin)
    assert response.status_code == 404
    assert response.json["errors"][0]["message"] == message


def test_listing_costs_a_fixed_number_of_statements(client, admin, wallet, app):
    first = count_statements(app, lambda: client.get(LIST_URL, headers=admin))
    for index in range(5):
        create_vasco(client, admin, extId=f"more-{index}", vascoTokens=tokens("CR"))
        client.put(f"{CORE}/acme/users/alice/vasco/more-{index}", headers=admin)
    assert count_statements(app, lambda: client.get(LIST_URL, headers=admin)) == first
    # the user with its client, the page, its VASCO blocks (the principal is cached)
    assert first == 3


def test_the_total_is_counted_when_asked(client, admin, acme):
    client.post(f"{CORE}/acme/users/alice/ticket", json={}, headers=admin)
    url = f"{CORE}/acme/users/alice/credentials?limit=0&returnTotalResultCount=true"
    body = client.get(url, headers=admin).json
    assert body["_pagination"] == {"continuationToken": None, "limit": 100, "totalResult": 1}
    assert body["_classifications"] == {}
