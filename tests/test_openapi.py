"""/openapi.json: a valid OpenAPI 3 document, generated from the schemas that validate the
requests, that covers every route with its error responses, its security and its
permissions, and shows the seed endpoints' fields as the seeds type them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from marshmallow import Schema
from openapi_spec_validator import validate

from app.api.docs import camel_case
from app.schemas.clients import ClientCreateSchema, ClientSchema
from app.schemas.policies import PolicyCreateSchema, PolicySchema
from app.schemas.tickets import (
    IssuedTicketSchema,
    TicketCreateSchema,
    TicketCredentialSchema,
    TicketUpdateSchema,
    TicketVerifySchema,
)
from app.schemas.users import UserCreateSchema, UserSchema
from app.schemas.vasco import VascoCreateSchema, VascoCredentialSchema, VascoUpdateSchema
from tests.support import OPENAPI_METHODS, openapi, operations, served_app

CORE = "/nevisidm/api/core/v1"
# The routes that serve the documentation itself.
DOC_ENDPOINTS = ("static", "api-docs.", "docs_assets.")

# The contract's error table (API.md section 2).
CONTRACT_ERROR_CODES = {
    "errors.invalidData",
    "errors.authenticationRequired",
    "errors.permissionDenied",
    "errors.dataroomPermissionDenied",
    "errors.noRecord",
    "errors.ticketExists",
    "errors.vascoExists",
    "errors.duplicateValue",
    "errors.invalidCredential",
    "errors.credentialNotUsable",
    "errors.pessimisticLockingFailure",
    "errors.serviceUnavailable",
    "errors.fatalError",
}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its ``$ref`` (if any) followed, within the document."""
    while "$ref" in node:
        target: Any = openapi()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


NULL_ONLY = {"type": "object", "nullable": True, "enum": [None]}


def resolve_value(node: dict[str, Any]) -> dict[str, Any]:
    """What a property's value is, past the wrappers around a named component: ``allOf`` of
    the one component (with keywords beside it), ``anyOf`` of it and null."""
    node = resolve(node)
    for wrapper in ("allOf", "anyOf"):
        alternatives = [item for item in node.get(wrapper, []) if item != NULL_ONLY]
        if len(alternatives) == 1:
            return resolve_value(alternatives[0])
    return node


def operation_ids() -> list[str]:
    return [f"{method} {path}" for path, method, _ in operations()]


def path_parameters(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def test_document_is_valid_openapi_3():
    document = openapi()
    assert document["openapi"].startswith("3.")
    validate(document)


def test_document_covers_every_route_the_app_registers():
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", lambda match: f"{{{camel_case(match[1])}}}", rule.rule), m)
        for rule in served_app().url_map.iter_rules()
        if not rule.endpoint.startswith(DOC_ENDPOINTS)
        for m in rule.methods & OPENAPI_METHODS
    }
    documented = {(path, method) for path, method, _ in operations()}
    assert routes == documented


def test_document_and_docs_page_are_served_without_authentication():
    client = served_app().test_client()
    assert client.get("/openapi.json").status_code == 200
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    # Every script and stylesheet comes from the service itself: no CDN.
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(asset.startswith("/docs/assets/") for asset in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.mimetype in ("text/css", "text/javascript", "application/javascript")


def test_error_envelope_is_the_contracts():
    document = openapi()
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["errors"]
    assert error["properties"]["errors"]["type"] == "array"
    entry = resolve(error["properties"]["errors"]["items"])
    assert set(entry["properties"]) == {"code", "message", "field"}
    assert sorted(entry["required"]) == ["code", "message"]
    code = entry["properties"]["code"]
    # An open string: a code added later must not break a client built from this document.
    assert code["type"] == "string" and "enum" not in code
    assert set(code["x-extensible-enum"]) >= CONTRACT_ERROR_CODES
    assert all(f"`{known}`" in code["description"] for known in code["x-extensible-enum"])


def test_bearer_security_scheme():
    schemes = openapi()["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.parametrize(("path", "method", "operation"), operations(), ids=operation_ids())
def test_operation_documents_its_security_and_permissions(path, method, operation):
    if path.startswith("/nevisidm/api/"):
        assert operation["security"] == [{"bearerAuth": []}]
        permissions = operation["x-permissions"]
        assert all(permission in operation["description"] for permission in permissions)
    else:  # health probes and metrics
        assert "security" not in operation and "x-permissions" not in operation


@pytest.mark.parametrize(("path", "method", "operation"), operations(), ids=operation_ids())
def test_operation_documents_the_errors_it_can_return(path, method, operation):
    responses = operation["responses"]
    assert "default" not in responses  # it would make any status look documented
    expected = {"500"}
    if "security" in operation:
        expected |= {"401", "503"}
        unauthorized = resolve(responses["401"])
        assert unauthorized["headers"]["WWW-Authenticate"]["schema"]["enum"] == ["Bearer"]
        if operation["x-permissions"] or "clientExtId" in path_parameters(path):
            expected.add("403")
    if path_parameters(path):
        expected.add("404")
    if "requestBody" in operation:
        expected |= {"400", "413", "415", "422"}
    if any(parameter["in"] == "query" for parameter in operation.get("parameters", [])):
        expected.add("422")
    if method == "PATCH":
        expected.add("409")
    assert expected <= set(responses)
    for status, response in responses.items():
        response = resolve(response)
        if int(status) >= 400:
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, status
        if status == "201":
            assert "Location" in response["headers"]


@pytest.mark.parametrize(
    ("component", "schema", "output"),
    [
        ("ClientCreate", ClientCreateSchema, False),
        ("UserCreate", UserCreateSchema, False),
        ("PolicyCreate", PolicyCreateSchema, False),
        ("TicketCreate", TicketCreateSchema, False),
        ("TicketUpdate", TicketUpdateSchema, False),
        ("TicketVerify", TicketVerifySchema, False),
        ("VascoCreate", VascoCreateSchema, False),
        ("VascoUpdate", VascoUpdateSchema, False),
        ("ClientDetails", ClientSchema, True),
        ("User", UserSchema, True),
        ("Policy", PolicySchema, True),
        ("IssuedTicket", IssuedTicketSchema, True),
        ("TicketCredential", TicketCredentialSchema, True),
        ("VascoCredential", VascoCredentialSchema, True),
    ],
)
def test_body_schemas_are_the_marshmallow_schemas(component, schema: type[Schema], output):
    documented = openapi()["components"]["schemas"][component]
    fields = schema().fields.values()
    names = {field.data_key or field.name for field in fields}
    assert set(documented["properties"]) == names
    required = names if output else {f.data_key or f.name for f in fields if f.required}
    assert set(documented.get("required", [])) == required
    # Input: an unknown field is refused (422), so the document allows none.
    assert documented["additionalProperties"] is False


def test_user_credentials_are_one_of_ticket_or_vasco():
    get = openapi()["paths"][f"{CORE}/{{clientExtId}}/users/{{userExtId}}/credentials"]["get"]
    page = resolve(get["responses"]["200"]["content"]["application/json"]["schema"])
    items = page["properties"]["items"]["items"]
    assert items["oneOf"] == [
        {"$ref": "#/components/schemas/TicketCredential"},
        {"$ref": "#/components/schemas/VascoCredential"},
    ]
    assert items["discriminator"] == {
        "propertyName": "type",
        "mapping": {
            "Ticket Authorization": "#/components/schemas/TicketCredential",
            "Vasco": "#/components/schemas/VascoCredential",
        },
    }


# The two seed documents (shared/seeds/000_*: POST ticket, 003_*: POST vasco), transcribed:
# every field with the seed's type; "int32" is an OpenAPI integer.
SEED_STATES = [
    "initial",
    "active",
    "tmp-locked",
    "fail-locked",
    "reset-code",
    "admin-changed",
    "disabled",
    "archived",
]
SEED_TYPES = [
    "Password",
    "Certificate",
    "SecurID User Mapping",
    "Ticket Authorization",
    "Safeword User Mapping",
    "OTP Card",
    "Temporary Strong Password",
    "Generic Credential",
    "Kerberos",
    "mTan",
    "Vasco",
    "PUK",
    "URL Ticket",
    "DevicePassword",
    "MobileSignature",
    "SAML Federation",
    "Security Questions",
    "Context Password",
    "OATH",
    "FIDO UAF Authenticator",
    "Recovery Code",
    "FIDO2 Authenticator",
]
VALIDITY = {"from": "string", "to": "string"}
VASCO_TOKEN = {"authMode": "string", "data": "string"}
SEED_CREDENTIAL = {
    "created": "string",
    "lastModified": "string",
    "version": "int32",
    "extId": "string",
    "userExtId": "string",
    "policyExtId": "string",
    "stateName": "string",
    "stateChangeReason": "string",
    "stateChangeDetail": "string",
    "lastSuccessfulLoginDate": "string",
    "successfulLoginCount": "int32",
    "lastFailedLoginDate": "string",
    "failedLoginCount": "int32",
    "modificationComment": "string",
    "type": "string",
    "validity": ("object", VALIDITY),
}
SEEDS = {
    "ticket": {
        "path": f"{CORE}/{{clientExtId}}/users/{{userExtId}}/ticket",
        "parameters": ["clientExtId", "userExtId"],
        "request": {
            "extId": "string",
            "policyExtId": "string",
            "stateName": "string",
            "identification": "string",
            "context": "string",
        },
        "required": set(),
        "response": {
            **SEED_CREDENTIAL,
            "ticket": "string",
            "failureCount": "int32",
            "successCount": "int32",
            "resetCount": "int32",
        },
    },
    "vasco": {
        "path": f"{CORE}/{{clientExtId}}/vasco",
        "parameters": ["clientExtId"],
        "request": {
            "extId": "string",
            "policyExtId": "string",
            "stateName": "string",
            "vascoTokens": ("array", VASCO_TOKEN),
        },
        "required": {"vascoTokens"},
        "response": {**SEED_CREDENTIAL, "vascoTokens": ("array", VASCO_TOKEN)},
    },
}
OPENAPI_TYPES = {"string": "string", "int32": "integer", "object": "object", "array": "array"}


def assert_fields_typed_as_in_seed(schema: dict[str, Any], fields: dict[str, Any], where: str):
    schema = resolve(schema)
    for name, seed_type in fields.items():
        nested = None
        if isinstance(seed_type, tuple):
            seed_type, nested = seed_type
        assert name in schema["properties"], f"{where}.{name} is not documented"
        documented = resolve_value(schema["properties"][name])
        assert documented.get("type") == OPENAPI_TYPES[seed_type], f"{where}.{name}"
        if seed_type == "int32":
            assert documented.get("format") == "int32", f"{where}.{name}"
        if name == "stateName":
            assert documented["enum"] == SEED_STATES, f"{where}.{name}"
        if name == "type":
            # Decision: the seeds' whole list, of which this service holds two types.
            assert documented["enum"] == SEED_TYPES, f"{where}.{name}"
        if seed_type == "object":
            assert_fields_typed_as_in_seed(documented, nested, f"{where}.{name}")
        if seed_type == "array":
            assert_fields_typed_as_in_seed(documented["items"], nested, f"{where}.{name}[]")


@pytest.mark.parametrize("seed", SEEDS.values(), ids=SEEDS.keys())
def test_seed_endpoint_fields_are_documented_with_the_seeds_types(seed):
    operation = openapi()["paths"][seed["path"]]["post"]
    assert operation["requestBody"]["required"] is True  # the seeds: "Body required"
    body = resolve(operation["requestBody"]["content"]["application/json"]["schema"])
    assert_fields_typed_as_in_seed(body, seed["request"], "request")
    assert set(body.get("required", [])) == seed["required"]
    created = resolve(operation["responses"]["201"])
    assert "Location" in created["headers"]
    assert_fields_typed_as_in_seed(
        created["content"]["application/json"]["schema"], seed["response"], "response"
    )
    parameters = openapi()["paths"][seed["path"]]["parameters"]
    assert [parameter["name"] for parameter in parameters] == seed["parameters"]
    assert all(parameter["schema"]["type"] == "string" for parameter in parameters)


def test_seed_defaults_are_documented():
    schemas = openapi()["components"]["schemas"]
    assert schemas["TicketCreate"]["properties"]["stateName"]["default"] == "active"
    assert schemas["VascoCreate"]["properties"]["stateName"]["default"] == "initial"


def test_credential_types_this_service_holds_are_in_the_documented_enum():
    from app.models import TYPE_NAMES

    properties = openapi()["components"]["schemas"]["TicketCredential"]["properties"]
    assert set(TYPE_NAMES.values()) <= set(resolve_value(properties["type"])["enum"])
