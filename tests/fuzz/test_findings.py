"""What schema-driven fuzzing (`make fuzz`) and its follow-up found, pinned as plain tests that
`make test` runs on every database: each was a 500, or a response that broke its schema."""

from __future__ import annotations

import base64

import pytest

from tests.support import CORE

TICKET = f"{CORE}/acme/users/alice/ticket"


@pytest.fixture
def ticket(client, admin, acme) -> dict:
    response = client.post(TICKET, json={}, headers=admin)
    assert response.status_code == 201
    return response.json


def post_raw(client, headers, url: str, body: str):
    return client.post(url, data=body, headers={**headers, "Content-Type": "application/json"})


def test_a_body_nested_too_deeply_is_400(client, admin):
    response = post_raw(client, admin, f"{CORE}/clients", "[" * 100_000)
    assert response.status_code == 400
    assert response.json["errors"][0]["code"] == "errors.invalidData"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"extId": "nul", "name": "a\\u0000b"}', "name"),  # PostgreSQL refuses NUL in text
        ('{"extId": "half", "name": "\\ud800"}', "name"),  # no UTF-8 for an unpaired surrogate
        ('{"name": "n", "policyType": "TicketPolicy", "parameters": {"k\\u0000": "v"}}', None),
    ],
)
def test_text_no_database_can_hold_is_422_naming_the_field(client, admin, acme, body, field):
    url = f"{CORE}/acme/policies" if "policyType" in body else f"{CORE}/clients"
    response = post_raw(client, admin, url, body)
    assert response.status_code == 422, response.json
    (error,) = response.json["errors"]
    assert error["code"] == "errors.invalidData"
    assert error["field"] == (field or "parameters.k\\x00")


@pytest.mark.parametrize(
    "body",
    [
        b'{"extId": "raw", "name": "a\xed\xa0\x80b"}',  # a surrogate encoded as UTF-8 bytes
        '{"extId": "wide", "name": "a\ud800b"}'.encode("utf-16-le", "surrogatepass"),  # UTF-16
    ],
    ids=["utf-8", "utf-16"],
)
def test_an_unpaired_surrogate_sent_as_it_is_not_escaped_is_422(client, admin, body):
    # Decoded with "surrogatepass", the body's text holds the surrogate itself, no escape.
    response = client.post(
        f"{CORE}/clients", data=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["field"] == "name"


def test_escapes_that_make_storable_text_pass(client, admin):
    body = '{"extId": "esc", "name": "caf\\u00e9 \\\\u0000 \\ud83d\\ude00"}'
    response = post_raw(client, admin, f"{CORE}/clients", body)
    assert response.status_code == 201, response.json
    assert response.json["name"] == "caf\u00e9 \\u0000 \U0001f600"


def test_a_path_segment_with_a_control_character_names_nothing(client, admin, acme):
    for url in (f"{CORE}/clients/acme%00", f"{CORE}/acme/users/%00", f"{CORE}/acme%01/vasco"):
        response = client.get(url, headers=admin)
        assert response.status_code == 404, url
        assert response.json["errors"][0]["code"] == "errors.noRecord"


@pytest.mark.parametrize(
    "token_json",
    ["[" * 3000, '["2026-11-22T10:15:30+00:00", "a\\u0000"]', '["2026-11-22", "\\ud800"]'],
    ids=["nested-too-deeply", "nul", "unpaired-surrogate"],
)
def test_a_forged_continuation_token_is_422(client, admin, acme, token_json):
    token = base64.urlsafe_b64encode(token_json.encode()).decode()
    response = client.get(
        f"{CORE}/acme/vasco", query_string={"continuationToken": token}, headers=admin
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "continuationToken"


def test_a_date_that_leaves_the_calendar_when_made_utc_is_422(client, admin, ticket):
    response = client.patch(
        TICKET,
        json={"version": ticket["version"], "validity": {"from": "0001-01-01T00:00:00+01:00"}},
        headers=admin,
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "validity.from"


def test_a_year_before_1000_is_written_with_four_digits(client, admin, ticket):
    response = client.patch(
        TICKET,
        json={"version": ticket["version"], "validity": {"from": "0083-07-11T15:48:41Z"}},
        headers=admin,
    )
    assert response.status_code == 200, response.json
    assert response.json["validity"]["from"] == "0083-07-11T15:48:41Z"
    stored = client.get(TICKET, headers=admin).json
    assert stored["validity"]["from"] == "0083-07-11T15:48:41Z"


def test_a_user_without_name_or_email_shows_nulls(client, admin, acme):
    response = client.get(f"{CORE}/acme/users/alice", headers=admin)
    assert response.json["name"] == {"title": None, "firstName": None, "familyName": None}
    assert response.json["contacts"]["email"] is None
