"""/openapi.json as a client contract (API.md section 11): stable operation ids, component
names that generate clean code, no unused component, links from every create to the
operations on what it created, and the document and the server agreeing both ways."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from tests.support import CORE, openapi, operations

# Every operation's id: stable, so that the functions of generated clients keep their names.
OPERATION_IDS = {
    ("POST", f"{CORE}/clients"): "createClient",
    ("GET", f"{CORE}/clients/{{clientExtId}}"): "getClient",
    ("POST", f"{CORE}/{{clientExtId}}/users"): "createUser",
    ("GET", f"{CORE}/clients"): "listClients",
    ("PATCH", f"{CORE}/clients/{{clientExtId}}"): "updateClient",
    ("DELETE", f"{CORE}/clients/{{clientExtId}}"): "deleteClient",
    ("GET", f"{CORE}/clients/{{clientExtId}}/users"): "listUsers",
    ("GET", f"{CORE}/clients/{{clientExtId}}/policies"): "listPolicies",
    ("GET", f"{CORE}/{{clientExtId}}/users/{{userExtId}}"): "getUser",
    ("PATCH", f"{CORE}/{{clientExtId}}/users/{{userExtId}}"): "updateUser",
    ("DELETE", f"{CORE}/{{clientExtId}}/users/{{userExtId}}"): "deleteUser",
    ("POST", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/archive"): "archiveUser",
    ("POST", f"{CORE}/{{clientExtId}}/policies"): "createPolicy",
    ("GET", f"{CORE}/{{clientExtId}}/policies/{{policyExtId}}"): "getPolicy",
    ("PATCH", f"{CORE}/{{clientExtId}}/policies/{{policyExtId}}"): "updatePolicy",
    ("DELETE", f"{CORE}/{{clientExtId}}/policies/{{policyExtId}}"): "deletePolicy",
    ("POST", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/ticket"): "createTicket",
    ("GET", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/ticket"): "getTicket",
    ("PATCH", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/ticket"): "updateTicket",
    ("DELETE", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/ticket"): "deleteTicket",
    ("POST", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/ticket/reset"): "resetTicket",
    ("POST", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/ticket/verify"): "verifyTicket",
    ("POST", f"{CORE}/{{clientExtId}}/vasco"): "createVascoCredential",
    ("GET", f"{CORE}/{{clientExtId}}/vasco"): "listVascoCredentials",
    ("GET", f"{CORE}/{{clientExtId}}/vasco/{{vascoExtId}}"): "getVascoCredential",
    ("PATCH", f"{CORE}/{{clientExtId}}/vasco/{{vascoExtId}}"): "updateVascoCredential",
    ("DELETE", f"{CORE}/{{clientExtId}}/vasco/{{vascoExtId}}"): "deleteVascoCredential",
    ("PUT", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/vasco/{{vascoExtId}}"): (
        "assignVascoCredential"
    ),
    ("PUT", f"{CORE}/{{clientExtId}}/vasco/{{vascoExtId}}/unassign"): "unassignVascoCredential",
    ("GET", f"{CORE}/{{clientExtId}}/users/{{userExtId}}/credentials"): "listUserCredentials",
    ("GET", "/nevisidm/api/principal/v1/permissions"): "getPermissions",
    ("GET", "/health/live"): "checkLiveness",
    ("GET", "/health/ready"): "checkReadiness",
    ("GET", "/metrics"): "getMetrics",
}

# The links of each create: target operation -> its path parameters, from the create's
# request path or from the created object's extId in the response body.
BODY = "$response.body#/extId"
CLIENT, USER = "$request.path.clientExtId", "$request.path.userExtId"
CREATED_LINKS = {
    "createClient": {
        target: {"clientExtId": BODY}
        for target in (
            "getClient",
            "updateClient",
            "createUser",
            "listUsers",
            "createPolicy",
            "listPolicies",
            "listVascoCredentials",
            "createVascoCredential",
        )
    },
    "createUser": {
        target: {"clientExtId": CLIENT, "userExtId": BODY}
        for target in (
            "getUser",
            "updateUser",
            "createTicket",
            "listUserCredentials",
        )
    },
    "createPolicy": {
        target: {"clientExtId": CLIENT, "policyExtId": BODY}
        for target in ("getPolicy", "updatePolicy", "deletePolicy")
    },
    "createTicket": {
        target: {"clientExtId": CLIENT, "userExtId": USER}
        for target in ("getTicket", "updateTicket", "deleteTicket", "resetTicket", "verifyTicket")
    },
    "createVascoCredential": {
        target: {"clientExtId": CLIENT, "vascoExtId": BODY}
        for target in (
            "getVascoCredential",
            "updateVascoCredential",
            "deleteVascoCredential",
            "unassignVascoCredential",
        )
    },
}

# Class names that generated clients keep for themselves (openapi-python-client's HTTP
# clients and the helpers of its ``types`` module).
GENERATOR_NAMES = {"Client", "AuthenticatedClient", "Response", "File", "Unset"}


def references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(references(item) for item in node))
    return set()


def test_every_operation_has_its_stable_camel_case_operation_id():
    documented = {
        (method, path): operation["operationId"] for path, method, operation in operations()
    }
    assert documented == OPERATION_IDS
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", name) for name in documented.values())


def test_no_component_takes_a_name_generated_clients_keep_for_themselves():
    assert not GENERATOR_NAMES & set(openapi()["components"]["schemas"])


def test_every_component_is_used():
    document = openapi()
    used: set[str] = set()
    pending = references(document["paths"])
    while pending:
        ref = pending.pop()
        used.add(ref)
        kind, name = ref.removeprefix("#/components/").split("/")
        pending |= references(document["components"][kind][name]) - used
    defined = {
        f"#/components/{kind}/{name}"
        for kind, components in document["components"].items()
        if kind != "securitySchemes"
        for name in components
    }
    assert defined == used  # flask-smorest's PaginationMetadata, for one, is not there


def test_creates_link_to_the_operations_on_what_they_created():
    linked = {}
    for _, _, operation in operations():
        for status, response in operation["responses"].items():
            if "links" in response:
                assert status == "201", operation["operationId"]
                linked[operation["operationId"]] = {
                    name: link["parameters"] for name, link in response["links"].items()
                }
                assert all(name == link["operationId"] for name, link in response["links"].items())
    assert linked == CREATED_LINKS
    # Each link gives exactly the path parameters of its target.
    by_id = {operation["operationId"]: path for path, _, operation in operations()}
    for links in linked.values():
        for target, parameters in links.items():
            assert set(parameters) == set(re.findall(r"\{(\w+)\}", by_id[target])), target


def walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def test_a_nullable_enum_lists_null():
    nullable_enums = [
        schema for schema in walk(openapi()) if schema.get("nullable") and "enum" in schema
    ]
    assert nullable_enums and all(None in schema["enum"] for schema in nullable_enums)


def test_the_uniqueness_of_auth_modes_is_stated():
    schemas = openapi()["components"]["schemas"]
    for body in ("VascoCreate", "VascoUpdate"):
        description = schemas[body]["properties"]["vascoTokens"]["description"]
        assert "unique" in description and "case-insensitively" in description


def test_the_seed_states_are_one_named_enumeration():
    schemas = openapi()["components"]["schemas"]
    state = {"$ref": "#/components/schemas/CredentialState"}
    assert schemas["TicketCredential"]["properties"]["stateName"] == state
    assert schemas["TicketCreate"]["properties"]["stateName"]["anyOf"][0] == state
    assert schemas["VascoUpdate"]["properties"]["stateName"] == state


TOKEN = {"authMode": "CR", "data": "AAECAwQFBgc="}

# (what, method, URL, request body component, body, status the server answers): for each,
# the document allows the body exactly when the server takes it.
BOTH_WAYS = [
    ("null state, ticket", "POST", "/acme/users/alice/ticket", "TicketCreate",
     {"stateName": None}, 201),
    ("unknown state", "POST", "/acme/users/alice/ticket", "TicketCreate",
     {"stateName": "locked"}, 422),
    ("null state, VASCO", "POST", "/acme/vasco", "VascoCreate",
     {"stateName": None, "vascoTokens": [TOKEN]}, 201),
    ("null name", "POST", "/acme/users", "UserCreate", {"loginId": "bob", "name": None}, 201),
    ("name object", "POST", "/acme/users", "UserCreate",
     {"loginId": "bob", "name": {"firstName": "Bob"}}, 201),
    ("any other object as name", "POST", "/acme/users", "UserCreate",
     {"loginId": "bob", "name": {"nickname": "Bob"}}, 422),
    ("whole number parameter", "POST", "/acme/policies", "PolicyCreate",
     {"name": "p", "policyType": "TicketPolicy", "parameters": {"maxCredFailureCount": 3}}, 201),
    ("string parameter", "POST", "/acme/policies", "PolicyCreate",
     {"name": "p", "policyType": "TicketPolicy", "parameters": {"maxCredFailureCount": "3"}}, 201),
    ("fraction parameter", "POST", "/acme/policies", "PolicyCreate",
     {"name": "p", "policyType": "TicketPolicy", "parameters": {"custom": 1.5}}, 422),
    ("boolean parameter", "POST", "/acme/policies", "PolicyCreate",
     {"name": "p", "policyType": "TicketPolicy", "parameters": {"custom": True}}, 422),
    ("null parameter", "POST", "/acme/policies", "PolicyCreate",
     {"name": "p", "policyType": "TicketPolicy", "parameters": {"custom": None}}, 422),
    ("version as digits", "PATCH", "/acme/users/alice/ticket", "TicketUpdate",
     {"version": "1"}, 200),
    ("version as a number", "PATCH", "/acme/users/alice/ticket", "TicketUpdate",
     {"version": 1}, 200),
    ("version as a fraction", "PATCH", "/acme/users/alice/ticket", "TicketUpdate",
     {"version": "1.0"}, 422),
    ("version zero", "PATCH", "/acme/users/alice/ticket", "TicketUpdate", {"version": "0"}, 422),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "url", "component", "body", "status"),
    [case[1:] for case in BOTH_WAYS],
    ids=[case[0] for case in BOTH_WAYS],
)
def test_document_and_server_agree_both_ways(
    client, admin, acme, method, url, component, body, status
):
    if method == "PATCH":  # alice's ticket, at version 1
        created = client.post(f"{CORE}/acme/users/alice/ticket", json={}, headers=admin)
        assert created.status_code == 201
    document = openapi()
    validator = OAS30Validator(
        {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    )
    response = client.open(f"{CORE}{url}", method=method, json=body, headers=admin)
    assert response.status_code == status, response.json
    assert validator.is_valid(body) == (status < 400)
    if status == 201 and "stateName" in body:
        assert response.json["stateName"] == ("active" if "ticket" in url else "initial")
    if status == 201 and "parameters" in body:
        assert response.json["parameters"] == {"maxCredFailureCount": "3"}
