"""Clients, users and policies: the set-up a caller needs (contract section 7)."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Client, Policy
from tests.support import CORE

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def field_errors(response) -> list[str]:
    assert response.status_code == 422, response.json
    return sorted(error["field"] for error in response.json["errors"])


# -- clients -------------------------------------------------------------------------------


def test_create_client_returns_it_with_location(client, admin):
    response = client.post(f"{CORE}/clients", json={"extId": "acme", "name": "Acme"}, headers=admin)

    assert response.status_code == 201
    body = response.json
    assert body["extId"] == "acme" and body["name"] == "Acme" and body["version"] == 1
    assert DATE.match(body["created"]) and body["created"] == body["lastModified"]
    assert response.headers["Location"] == f"{CORE}/clients/acme"
    assert client.get(f"{CORE}/clients/acme", headers=admin).json == body


def test_client_without_ext_id_gets_a_uuid(client, admin):
    body = client.post(f"{CORE}/clients", json={"name": "Acme"}, headers=admin).json
    assert str(uuid.UUID(body["extId"])) == body["extId"]


def test_new_client_gets_a_default_ticket_and_vasco_policy(client, admin, app):
    client.post(f"{CORE}/clients", json={"extId": "acme", "name": "Acme"}, headers=admin)
    with app.app_context():
        policies = db.session.scalars(
            select(Policy).join(Client).where(Client.ext_id == "acme", Policy.is_default)
        ).all()
    assert sorted(p.policy_type for p in policies) == ["TicketPolicy", "VascoPolicy"]


@pytest.mark.parametrize(
    ("second", "field"),
    [({"extId": "acme", "name": "Other"}, "extId"), ({"extId": "other", "name": "Acme"}, "name")],
)
def test_taken_client_ext_id_or_name_is_a_duplicate(client, admin, second, field):
    client.post(f"{CORE}/clients", json={"extId": "acme", "name": "Acme"}, headers=admin)
    response = client.post(f"{CORE}/clients", json=second, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["code"] == "errors.duplicateValue"
    assert response.json["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["name"]),
        ({"name": ""}, ["name"]),
        ({"name": 5}, ["name"]),
        ({"name": "A", "extId": "clients"}, ["extId"]),
        ({"name": "A", "extId": " padded"}, ["extId"]),
        ({"name": "A", "displayName": "typo"}, ["displayName"]),
    ],
)
def test_bad_client_bodies_are_422(client, admin, body, fields):
    assert field_errors(client.post(f"{CORE}/clients", json=body, headers=admin)) == fields


def test_unknown_client_is_404(client, admin):
    response = client.get(f"{CORE}/clients/nobody", headers=admin)
    assert response.status_code == 404
    assert response.json["errors"][0]["message"] == "No client 'nobody'"


# -- users ---------------------------------------------------------------------------------


def test_create_user_returns_it_with_location(client, admin, acme):
    response = client.post(
        f"{CORE}/acme/users",
        json={
            "extId": "carol",
            "loginId": "carol@acme",
            "name": {"firstName": "Carol", "familyName": "Jones"},
            "contacts": {"email": "carol@acme.example"},
        },
        headers=admin,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["extId"] == "carol" and body["clientExtId"] == "acme"
    assert body["name"] == {"title": None, "firstName": "Carol", "familyName": "Jones"}
    assert body["contacts"]["email"] == "carol@acme.example" and body["version"] == 1
    assert response.headers["Location"] == f"{CORE}/acme/users/carol"
    assert client.get(f"{CORE}/acme/users/carol", headers=admin).json == body


def test_user_without_optional_fields_shows_nulls(client, admin, acme):
    body = client.post(f"{CORE}/acme/users", json={"loginId": "dave"}, headers=admin).json
    assert body["name"] == {"title": None, "firstName": None, "familyName": None}
    assert body["contacts"] == dict.fromkeys(["email", "mobile", "telephone", "telefax"])
    assert str(uuid.UUID(body["extId"])) == body["extId"]


@pytest.mark.parametrize(
    ("second", "field"),
    [({"extId": "alice", "loginId": "other"}, "extId"), ({"loginId": "alice"}, "loginId")],
)
def test_taken_user_ext_id_or_login_id_is_a_duplicate(client, admin, acme, second, field):
    response = client.post(f"{CORE}/acme/users", json=second, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["code"] == "errors.duplicateValue"
    assert response.json["errors"][0]["field"] == field


def test_login_id_is_unique_per_client_only(client, admin, acme):
    client.post(f"{CORE}/clients", json={"extId": "globex", "name": "Globex"}, headers=admin)
    response = client.post(f"{CORE}/globex/users", json={"loginId": "alice"}, headers=admin)
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["loginId"]),
        ({"loginId": "x", "contacts": {"email": "not-an-email"}}, ["contacts.email"]),
        ({"loginId": "x", "email": "carol@acme.example"}, ["email"]),
        ({"loginId": "x", "name": {"middleName": "Q"}}, ["name.middleName"]),
        ({"loginId": "x", "name": "Carol"}, ["name"]),
        ({"loginId": ["x"]}, ["loginId"]),
    ],
)
def test_bad_user_bodies_are_422(client, admin, acme, body, fields):
    assert field_errors(client.post(f"{CORE}/acme/users", json=body, headers=admin)) == fields


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"{CORE}/nobody/users/alice", "No client 'nobody'"),
        (f"{CORE}/acme/users/nobody", "No user 'nobody' in client 'acme'"),
    ],
)
def test_unknown_user_or_client_is_404(client, admin, acme, url, message):
    response = client.get(url, headers=admin)
    assert response.status_code == 404
    assert response.json["errors"][0]["message"] == message


def test_creating_a_user_in_an_unknown_client_is_404(client, admin):
    response = client.post(f"{CORE}/nobody/users", json={"loginId": "x"}, headers=admin)
    assert response.status_code == 404


# -- policies ------------------------------------------------------------------------------


def test_create_policy_returns_it_with_location(client, admin, acme):
    response = client.post(
        f"{CORE}/acme/policies",
        json={
            "extId": "short",
            "name": "Short tickets",
            "policyType": "TicketPolicy",
            "parameters": {"credentialLifetime": 60000, "maxCredFailureCount": "3", "x-note": "y"},
        },
        headers=admin,
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["policyType"] == "TicketPolicy" and body["defaultPolicy"] is False
    assert body["parameters"] == {
        "credentialLifetime": "60000",
        "maxCredFailureCount": "3",
        "x-note": "y",
    }
    assert response.headers["Location"] == f"{CORE}/acme/policies/short"
    assert client.get(f"{CORE}/acme/policies/short", headers=admin).json == body


def test_a_new_default_replaces_the_old_default_of_its_type(client, admin, acme):
    old = client.post(f"{CORE}/acme/users/alice/ticket", json={}, headers=admin).json["policyExtId"]
    client.post(
        f"{CORE}/acme/policies",
        json={
            "extId": "new-default",
            "name": "New",
            "policyType": "TicketPolicy",
            "defaultPolicy": True,
        },
        headers=admin,
    )
    client.post(f"{CORE}/acme/users", json={"extId": "bob", "loginId": "bob"}, headers=admin)
    ticket = client.post(f"{CORE}/acme/users/bob/ticket", json={}, headers=admin).json

    assert ticket["policyExtId"] == "new-default"
    old_policy = client.get(f"{CORE}/acme/policies/{old}", headers=admin).json
    assert old_policy["defaultPolicy"] is False and old_policy["version"] == 2


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"policyType": "TicketPolicy"}, ["name"]),
        ({"name": "P"}, ["policyType"]),
        ({"name": "P", "policyType": "PasswordPolicy"}, ["policyType"]),
        (
            {"name": "P", "policyType": "TicketPolicy", "parameters": {"credentialLifetime": "-1"}},
            ["parameters.credentialLifetime"],
        ),
        (
            {"name": "P", "policyType": "TicketPolicy", "parameters": {"hashAlgorithm": "MD5"}},
            ["parameters.hashAlgorithm"],
        ),
        (
            {"name": "P", "policyType": "TicketPolicy", "parameters": {"maxCredFailureCount": "0"}},
            ["parameters.maxCredFailureCount"],
        ),
        ({"name": "P", "policyType": "TicketPolicy", "parameters": ["a"]}, ["parameters"]),
        ({"name": "P", "policyType": "TicketPolicy", "defaultPolicy": "maybe"}, ["defaultPolicy"]),
    ],
)
def test_bad_policy_bodies_are_422(client, admin, acme, body, fields):
    assert field_errors(client.post(f"{CORE}/acme/policies", json=body, headers=admin)) == fields


def test_taken_policy_ext_id_is_a_duplicate(client, admin, acme):
    body = {"extId": "p", "name": "P", "policyType": "TicketPolicy"}
    client.post(f"{CORE}/acme/policies", json=body, headers=admin)
    response = client.post(f"{CORE}/acme/policies", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json["errors"][0]["code"] == "errors.duplicateValue"


def test_unknown_policy_is_404(client, admin, acme):
    response = client.get(f"{CORE}/acme/policies/nope", headers=admin)
    assert response.status_code == 404
    assert response.json["errors"][0]["message"] == "No policy 'nope' in client 'acme'"
