"""What an extId may be (contract section 8), in every body that names one, and path segments
that no extId can match."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from tests.support import CORE, count_rows, tokens

# Each refused for its own reason: a dot segment, not NFC, or a character of a category an
# extId never holds (Cc, Cf, Co, Zl, Zp).
REFUSED = {
    "dot": ".",
    "dot-dot": "..",
    "nfd": "e\u0301",  # 'é' decomposed: NFC is '\u00e9'
    "bidi-override": "invoice\u202e\u0034\u0036\u0070\u0064\u0066",  # U+202E, Cf
    "zero-width-space": "ac\u200bme",  # Cf
    "byte-order-mark": "\ufeffacme",  # Cf
    "tag-character": "acme\U000e0041",  # Cf, outside the BMP
    "line-separator": "a\u2028b",  # Zl
    "paragraph-separator": "a\u2029b",  # Zp
    "private-use": "a\ue000b",  # Co
    "c1-control": "a\x85b",  # Cc
}
ACCEPTED = ["...", ".hidden", "a.b", "\u00e9", "\u65e5\u672c", "emoji-\U0001f600", "a b"]


def create_bodies() -> dict[str, tuple[str, dict]]:
    """Per kind of entity: the URL that creates one and a body, without ``extId``."""
    return {
        "client": (f"{CORE}/clients", {"name": "Globex"}),
        "user": (f"{CORE}/acme/users", {"loginId": "bob"}),
        "policy": (f"{CORE}/acme/policies", {"name": "P", "policyType": "TicketPolicy"}),
        "ticket": (f"{CORE}/acme/users/alice/ticket", {}),
        "vasco": (f"{CORE}/acme/vasco", {"vascoTokens": tokens("CR")}),
    }


ENTITY_TABLES = {
    "client": "clients",
    "user": "users",
    "policy": "policies",
    "ticket": "credentials",
    "vasco": "credentials",
}


@pytest.mark.parametrize("entity", list(ENTITY_TABLES))
@pytest.mark.parametrize("ext_id", list(REFUSED.values()), ids=list(REFUSED))
def test_an_ext_id_that_breaks_a_rule_is_422(app, client, admin, acme, entity, ext_id):
    url, body = create_bodies()[entity]
    before = count_rows(app, ENTITY_TABLES[entity])

    response = client.post(url, json={**body, "extId": ext_id}, headers=admin)

    assert response.status_code == 422, response.json
    [error] = response.json["errors"]
    assert (error["code"], error["field"]) == ("errors.invalidData", "extId")
    assert count_rows(app, ENTITY_TABLES[entity]) == before


@pytest.mark.parametrize("ext_id", ACCEPTED)
@pytest.mark.parametrize("entity", list(ENTITY_TABLES))
def test_an_ext_id_within_the_rules_is_kept_as_sent(client, admin, acme, entity, ext_id):
    url, body = create_bodies()[entity]
    response = client.post(url, json={**body, "extId": ext_id}, headers=admin)
    assert response.status_code == 201, response.json
    assert response.json["extId"] == ext_id


@pytest.mark.parametrize("ext_id", list(REFUSED.values()), ids=list(REFUSED))
@pytest.mark.parametrize("where", ["ticket-create", "vasco-create", "ticket-patch", "vasco-patch"])
def test_a_policy_reference_that_breaks_a_rule_is_422(client, admin, acme, ext_id, where):
    ticket_url, vasco_url = f"{CORE}/acme/users/alice/ticket", f"{CORE}/acme/vasco"
    if where == "ticket-patch":
        assert client.post(ticket_url, json={}, headers=admin).status_code == 201
        response = client.patch(
            ticket_url, json={"version": 1, "policyExtId": ext_id}, headers=admin
        )
    elif where == "vasco-patch":
        body = {"extId": "dp-1", "vascoTokens": tokens("CR")}
        assert client.post(vasco_url, json=body, headers=admin).status_code == 201
        body = {"version": 1, "policyExtId": ext_id}
        response = client.patch(f"{vasco_url}/dp-1", json=body, headers=admin)
    elif where == "ticket-create":
        response = client.post(ticket_url, json={"policyExtId": ext_id}, headers=admin)
    else:
        body = {"policyExtId": ext_id, "vascoTokens": tokens("CR")}
        response = client.post(vasco_url, json=body, headers=admin)
    assert response.status_code == 422, response.json
    assert [error["field"] for error in response.json["errors"]] == ["policyExtId"]


def test_nfc_and_nfd_spellings_never_make_two_clients(client, admin):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert (
        client.post(
            f"{CORE}/clients", json={"extId": composed, "name": "One"}, headers=admin
        ).status_code
        == 201
    )
    twin = client.post(f"{CORE}/clients", json={"extId": decomposed, "name": "Two"}, headers=admin)
    assert twin.status_code == 422
    assert "NFC" in twin.json["errors"][0]["message"]
    assert client.get(f"{CORE}/clients/caf%C3%A9", headers=admin).status_code == 200


def test_the_message_names_an_invisible_character_by_its_code_point(client, admin):
    response = client.post(
        f"{CORE}/clients", json={"extId": "a\u202eb", "name": "N"}, headers=admin
    )
    message = response.json["errors"][0]["message"]
    assert "U+202E" in message and "\u202e" not in message


# --- path segments --------------------------------------------------------------------------

PATH_SEGMENTS = {
    "dot": ".",
    "dot-dot": "..",
    "nfd": "e%CC%81",
    "bidi-override": "a%E2%80%AEb",
    "zero-width-space": "ac%E2%80%8Bme",
    "line-separator": "a%E2%80%A8b",
    "private-use": "a%EE%80%80b",
    "leading-blank": "%20acme",
    "too-long": "a" * 256,
}


@pytest.mark.parametrize("segment", list(PATH_SEGMENTS.values()), ids=list(PATH_SEGMENTS))
@pytest.mark.parametrize(
    "template",
    [
        "/clients/{}",
        "/{}/vasco",
        "/acme/users/{}",
        "/acme/users/{}/ticket",
        "/acme/policies/{}",
        "/acme/vasco/{}",
    ],
)
def test_a_path_segment_no_ext_id_can_match_names_nothing(client, template, segment):
    # No credentials: a path that names nothing is 404 before authentication is asked for.
    response = client.get(CORE + template.format(segment))
    assert response.status_code == 404, response.json
    assert response.json["errors"][0]["code"] == "errors.noRecord"


def get_raw_path(client: FlaskClient, path: str, headers: dict[str, str]):
    """GET ``path``, a text of bytes as Latin-1 (the WSGI form), as a server hands it over;
    the test client would decode a percent-encoded path itself, replacing bad UTF-8."""
    environ = EnvironBuilder(path="/", headers=headers).get_environ()
    environ["PATH_INFO"] = path
    return client.open(Request(environ))


def test_a_path_that_is_not_utf8_names_nothing(client, admin):
    # U+FFFD may be in an extId; a path whose bytes are not UTF-8 would decode to it.
    body = {"extId": "acme\ufffd", "name": "Replacement"}
    assert client.post(f"{CORE}/clients", json=body, headers=admin).status_code == 201
    assert client.get(f"{CORE}/clients/acme%EF%BF%BD", headers=admin).status_code == 200

    response = get_raw_path(client, f"{CORE}/clients/acme\xff", admin)
    assert response.status_code == 404
    assert response.json["errors"][0]["code"] == "errors.noRecord"


def test_a_utf8_path_still_names_its_object(client, admin):
    body = {"extId": "caf\u00e9", "name": "Cafe"}
    assert client.post(f"{CORE}/clients", json=body, headers=admin).status_code == 201
    path = f"{CORE}/clients/caf\u00e9".encode().decode("latin-1")
    assert get_raw_path(client, path, admin).status_code == 200
