"""The blueprint class every resource uses, with the request-body rules of the contract.

Bodies are parsed by webargs (through flask-smorest's ``@blp.arguments``) with a parser that
speaks the contract: another media type is 415, a body that is not a JSON object is 400,
and a schema error is 422 with one envelope entry per problem.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import flask_smorest
from flask import Request
from marshmallow import Schema, ValidationError
from webargs.flaskparser import FlaskParser

from ..errors import MalformedBody, UnsupportedMediaType, ValidationFailed, flatten_messages


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class ContractParser(FlaskParser):
    def load_json(self, req: Request, schema: Schema) -> Any:
        body = req.get_data(cache=True)
        # An action with nothing to say (reset) marks its schema ``body_optional``: no body
        # at all then means ``{}``.
        if not body and getattr(schema, "body_optional", False):
            return {}
        if body and not _is_json(req.mimetype):
            raise UnsupportedMediaType(
                f"Send the body as application/json, not {req.mimetype or 'without a type'}"
            )
        if not body:
            raise MalformedBody("A JSON object body is required (it may be {})")
        try:
            document = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedBody(f"The body is not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise MalformedBody("The body must be a JSON object")
        return document

    def handle_error(
        self,
        error: ValidationError,
        req: Request,
        schema: Schema,
        *,
        error_status_code: int | None,
        error_headers: Any,
    ) -> NoReturn:
        messages = error.messages
        # webargs nests messages under the location ({"json": {...}}, {"query": {...}});
        # the field names alone are what a caller knows.
        if isinstance(messages, dict) and len(messages) == 1:
            (messages,) = messages.values()
        raise ValidationFailed(flatten_messages(messages))


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ContractParser()
