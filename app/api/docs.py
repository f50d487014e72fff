"""What the OpenAPI document adds to flask-smorest's, and the assets of the docs page.

* The error responses of the contract (API.md section 2), as named components that every
  operation refers to (app/api/blueprint.py decides which ones an operation lists).
* The marshmallow conversion: a response schema lists every field as required (contract
  section 6: "nulls where no value exists yet, never a missing key"), and a field that holds
  one of several schemas (``AnyCredential``) is a ``oneOf``. What the document allows is
  what the server accepts (contract section 11): a nullable enum lists ``null``, a nullable
  nested object is that object or ``null`` (nothing else), a ``version`` may be a string of
  digits, a policy parameter value a whole number.
* Component names that generate clean client code: none takes a name that generators keep
  for their own classes, the enumerations several fields share are named components (one
  ``CredentialState`` class in a generated client, not one per field), and so is the map of
  parameters a policy is created with.
* Path parameters are extIds, described as in the seeds.
* ``/docs``: Swagger UI, rendered by flask-smorest (``OPENAPI_SWAGGER_UI_*`` in
  app/config.py) from the dist files that the ``flask-swagger-ui`` package ships, which the
  blueprint below serves: the page works without internet access.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter, resolver
from flask import Blueprint, Flask, Response, send_from_directory
from flask_smorest.spec.plugins import FlaskPlugin
from flask_smorest.utils import resolve_schema_instance
from marshmallow import Schema, fields
from marshmallow.fields import Field
from werkzeug.routing import Rule

from ..models import POLICY_TYPES, STATES
from ..schemas.common import ExtId, OutputSchema, UtcDateTime, Version
from ..schemas.credentials import CREDENTIAL_TYPES
from ..schemas.policies import ParameterValue

SWAGGER_UI_DIST = files("flask_swagger_ui") / "dist"


API_DESCRIPTION = """\
An open implementation of the credential part of nevisIDM's Core REST API: ticket and VASCO
(OneSpan Digipass) credentials, with the clients, users and policies they need.

**Authentication.** Every operation under `/nevisidm/api` takes an api key as
`Authorization: Bearer <api key>`. Each operation names the permissions it needs in its
description and in `x-permissions`; a principal may also be limited to some clients (its data
room).

**Conventions.** JSON in and out, field names in camelCase, dates in UTC as
`2026-11-22T10:15:30Z`. A representation always carries every field (`null` when there is no
value). Lists are paginated with `limit` and an opaque `continuationToken`. Text may not hold
a NUL character or an unpaired surrogate (`\\u0000`, `\\ud800`-`\\udfff`): no database stores
them (422).

**Errors.** Every 4xx and 5xx body is `{"errors": [{"code", "message", "field"?}]}`, one entry
per problem. Checks run in this order: authentication (401), permission (403), client data
room (403), existence (404), the body (400, 413, 415, 422).
"""

LOCATION_HEADER = {
    "description": "The URL of the created resource.",
    "schema": {"type": "string"},
}


@dataclass(frozen=True)
class ErrorResponse:
    """An error response of the contract, registered once as ``components/responses/NAME``."""

    name: str
    status: int
    description: str
    headers: dict[str, Any] | None = None


ERROR_RESPONSES = {
    response.status: response
    for response in (
        ErrorResponse(
            "MalformedBody",
            400,
            "`errors.invalidData`: the body is not JSON, or not a JSON object.",
        ),
        ErrorResponse(
            "AuthenticationRequired",
            401,
            "`errors.authenticationRequired`: no api key, or not a valid one. Send "
            "`Authorization: Bearer <api key>`.",
            headers={
                "WWW-Authenticate": {
                    "description": "The scheme to authenticate with.",
                    "schema": {"type": "string", "enum": ["Bearer"]},
                }
            },
        ),
        ErrorResponse(
            "PermissionDenied",
            403,
            "`errors.permissionDenied`: the principal lacks a permission the operation needs "
            "(`x-permissions`); `errors.dataroomPermissionDenied`: it holds them, but not "
            "for the client in the path.",
        ),
        ErrorResponse(
            "NoRecord",
            404,
            "`errors.noRecord`: the client, user or credential the path names, or a policy "
            "the body names, does not exist.",
        ),
        ErrorResponse(
            "StaleVersion",
            409,
            "`errors.pessimisticLockingFailure`: the credential has changed since it was "
            "read (its `version` is not the one sent, or a concurrent request won). Read it "
            "again and retry.",
        ),
        ErrorResponse(
            "BodyTooLarge",
            413,
            "`errors.invalidData`: the body is larger than the configured limit "
            "(`MAX_BODY_BYTES`, 1 MiB by default).",
        ),
        ErrorResponse(
            "UnsupportedMediaType",
            415,
            "`errors.invalidData`: the body is sent with another media type than "
            "`application/json`.",
        ),
        ErrorResponse(
            "InvalidData",
            422,
            "`errors.invalidData`: a field or query argument is missing, of the wrong type "
            "or value, or unknown, or breaks a rule the schema cannot state (`validity.to` "
            "before `validity.from`, text with NUL, a `continuationToken` the service did not "
            "issue, a policy of the other type); one entry per problem, naming its `field`.",
        ),
        ErrorResponse(
            "FatalError",
            500,
            "`errors.fatalError`: an unexpected error. It is logged; the body holds no details.",
        ),
        ErrorResponse(
            "ServiceUnavailable",
            503,
            "`errors.serviceUnavailable`: the database cannot be reached; try again shortly.",
        ),
    )
}


def register_error_responses(spec: APISpec, error_schema: type[Schema]) -> None:
    """Register the contract's error responses as (lazy) components of ``spec``."""
    for response in ERROR_RESPONSES.values():
        component: dict[str, Any] = {
            "description": response.description,
            "content": {"application/json": {"schema": error_schema}},
        }
        if response.headers:
            component["headers"] = response.headers
        spec.components.response(response.name, component, lazy=True)


def ecma_pattern(python_pattern: str) -> str:
    r"""A marshmallow ``Regexp`` pattern (Python syntax, matched at the start of the value) as an
    OpenAPI ``pattern`` (ECMA 262 syntax, searched anywhere in the value): anchored with ``^``,
    and Python's ``\Z`` (end of the value) written ``$``, which means that in ECMA 262."""
    pattern = re.sub(r"(?<!\\)((?:\\\\)*)\\Z", r"\1$", python_pattern)
    if pattern.startswith("^"):
        return pattern
    return f"^{pattern}" if "|" not in pattern else f"^(?:{pattern})"


# What a nullable field that holds a nested object allows besides the object: ``null`` only.
# (OpenAPI 3.0 has no null type; ``nullable`` makes null valid for the ``type`` beside it,
# and the enum allows nothing else.)
NULL_ONLY = {"type": "object", "nullable": True, "enum": [None]}

# A version is a whole number from 1, or a string of its ASCII digits (API.md section 1).
VERSION_DIGITS = {"type": "string", "pattern": "^0*[1-9][0-9]*$"}


class ContractConverter(OpenAPIConverter):
    """apispec's marshmallow converter, with the contract's conventions."""

    def field2pattern(self, field: Field, **kwargs: Any) -> dict[str, Any]:
        attributes = super().field2pattern(field, **kwargs)
        if "pattern" in attributes:
            attributes["pattern"] = ecma_pattern(attributes["pattern"])
        return attributes

    def field2nullable(self, field: Field, ret: dict[str, Any]) -> dict[str, Any]:
        """``null`` as the server takes it: beside a nested object, null and nothing else
        (apispec's ``anyOf`` would allow any object); in an enum, as one of its values."""
        if not field.allow_none:
            return {}
        if "$ref" in ret:
            return {"anyOf": [{"$ref": ret.pop("$ref")}, NULL_ONLY]}
        if "allOf" in ret:
            return {"anyOf": [*ret.pop("allOf"), NULL_ONLY]}
        attributes: dict[str, Any] = {"nullable": True}
        if "enum" in ret and None not in ret["enum"]:
            attributes["enum"] = [*ret["enum"], None]
        return attributes

    def schema2jsonschema(self, schema: Schema | type[Schema]) -> dict[str, Any]:
        jsonschema = super().schema2jsonschema(schema)
        if isinstance(resolve_schema_instance(schema), OutputSchema):
            # Every key of a representation is always there (null when there is no value).
            jsonschema["required"] = sorted(jsonschema["properties"])
        return jsonschema


# Enumerations that several fields share, as named components.
NAMED_ENUMS = {
    "CredentialState": (
        STATES,
        "A credential's state. Input may also spell it with `_` for `-`, in any case.",
    ),
    "CredentialType": (
        CREDENTIAL_TYPES,
        "nevisIDM's credential types; this service holds `Ticket Authorization` and `Vasco`.",
    ),
    "PolicyType": (POLICY_TYPES, "What kind of credential a policy is for."),
}
_ENUM_NAMES = {tuple(values): name for name, (values, _) in NAMED_ENUMS.items()}

# The parameters a policy is created with, as a named component.
POLICY_PARAMETERS_INPUT = "PolicyParametersInput"


def _reference(name: str, ret: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    """The named component ``name`` in place of what ``ret`` held, keeping the keywords left
    in ``ret`` beside it (a ``$ref`` takes none in OpenAPI 3.0: ``allOf`` holds it then)."""
    ref = {"$ref": f"#/components/schemas/{name}"}
    if nullable:
        return {"anyOf": [ref, NULL_ONLY]}
    return {"allOf": [ref]} if ret else ref


def named2properties(
    self: OpenAPIConverter, field: Field, ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """A shared enumeration, or a policy's parameters, as a reference to its component."""
    enum = ret.get("enum")
    name = _ENUM_NAMES.get(tuple(value for value in enum if value is not None)) if enum else None
    if name is not None:
        for key in ("type", "enum"):
            ret.pop(key)
        return _reference(name, ret, nullable=ret.pop("nullable", False))
    if isinstance(field, fields.Dict) and isinstance(field.value_field, ParameterValue):
        component = {key: ret.pop(key) for key in ("type", "additionalProperties")}
        component["description"] = (
            "Parameter names and values. A value is a string, or a whole number (stored as its "
            "digits). The parameters the service acts on (`credentialLifetime`, "
            "`hashAlgorithm`, `maxCredFailureCount`, ...) are checked; others are stored as "
            "given."
        )
        if POLICY_PARAMETERS_INPUT not in self.spec.components.schemas:
            self.spec.components.schema(POLICY_PARAMETERS_INPUT, component)
        return _reference(POLICY_PARAMETERS_INPUT, ret, nullable=ret.pop("nullable", False))
    return {}


def alternatives2properties(
    self: OpenAPIConverter, field: Field, ret: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """The fields that take a second JSON type, as ``anyOf`` the two: a ``version`` sent as
    a string of digits, a policy parameter value sent as a whole number (stored as its
    digits)."""
    if isinstance(field, Version):
        number = {key: ret.pop(key) for key in ("type", "format", "minimum") if key in ret}
        return {"anyOf": [number, VERSION_DIGITS]}
    if isinstance(field, ParameterValue):
        text = {key: ret.pop(key) for key in ("type", "minLength", "maxLength") if key in ret}
        return {"anyOf": [text, {"type": "integer"}]}
    return {}


def one_of2properties(self: OpenAPIConverter, field: Field, **kwargs: Any) -> dict[str, Any]:
    """A field with ``alternatives`` (``{discriminator value: schema}``) and ``discriminator``
    (a property name) is one of those schemas, told apart by that property."""
    alternatives: dict[str, Schema] | None = getattr(field, "alternatives", None)
    if not alternatives:
        return {}
    refs = {value: self.resolve_nested_schema(schema) for value, schema in alternatives.items()}
    return {
        "oneOf": list(refs.values()),
        "discriminator": {
            "propertyName": field.discriminator,  # type: ignore[attr-defined]
            "mapping": {value: ref["$ref"] for value, ref in refs.items()},
        },
    }


# Component names that generated clients keep for their own classes (openapi-python-client
# has a ``Client``, the HTTP client, beside the models), and what the schema is called instead.
RENAMED_COMPONENTS = {"Client": "ClientDetails"}


def component_name(schema: type[Schema] | Schema) -> str:
    """A schema's component name: its class name without ``Schema``, unless generators keep
    that name for themselves."""
    name = resolver(schema)
    return RENAMED_COMPONENTS.get(name, name)


class ContractMarshmallowPlugin(MarshmallowPlugin):
    Converter = ContractConverter

    def __init__(self) -> None:
        super().__init__(schema_name_resolver=component_name)

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        self.map_to_openapi_type(UtcDateTime, "string", "date-time")
        # The seeds type every whole number int32 (and the database columns hold that).
        self.map_to_openapi_type(fields.Integer, "integer", "int32")
        self.converter.add_attribute_function(one_of2properties)
        self.converter.add_attribute_function(alternatives2properties)
        # Last: it takes the place of what the others made.
        self.converter.add_attribute_function(named2properties)
        for name, (values, description) in NAMED_ENUMS.items():
            spec.components.schema(
                name, {"type": "string", "enum": list(values), "description": description}
            )


# The path parameters: every one is an extId. Their names in the document are camelCase, and
# their descriptions and examples those of the seeds (the URL rules name them in snake_case).
PATH_PARAMETERS = {
    "client_ext_id": ("External ID of the client.", "client-123"),
    "user_ext_id": ("External ID of the user.", "user-123"),
    "policy_ext_id": ("External ID of the policy.", "policy-123"),
    "vasco_ext_id": ("External ID of the VASCO credential.", "vasco-123"),
}


def camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


class ContractFlaskPlugin(FlaskPlugin):
    """flask-smorest's Flask plugin, documenting path parameters as camelCase extIds."""

    def rule_to_params(self, rule: Rule) -> list[dict[str, Any]]:
        parameters = super().rule_to_params(rule)
        for parameter in parameters:
            description, example = PATH_PARAMETERS.get(parameter["name"], ("An external ID.", None))
            parameter["name"] = camel_case(parameter["name"])
            parameter["description"] = description
            parameter["schema"] = {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "pattern": ecma_pattern(ExtId.format_rule.regex.pattern),
            }
            if example is not None:
                parameter["example"] = example
        return parameters

    def path_helper(self, rule: Rule, **kwargs: Any) -> str:
        path = super().path_helper(rule, **kwargs)
        return re.sub(r"\{(\w+)\}", lambda match: f"{{{camel_case(match[1])}}}", path)


blp = Blueprint("docs_assets", __name__)


@blp.route("/<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    """The Swagger UI dist files, from the installed ``flask-swagger-ui`` package."""
    return send_from_directory(str(SWAGGER_UI_DIST), filename, max_age=3600)


def register_docs_assets(app: Flask) -> None:
    """Serve the Swagger UI files at ``OPENAPI_SWAGGER_UI_URL``, where the page loads them."""
    app.register_blueprint(blp, url_prefix=app.config["OPENAPI_SWAGGER_UI_URL"].rstrip("/"))
