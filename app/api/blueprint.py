"""The blueprint class every resource uses, with the request-body rules of the contract and
the error responses of each operation's OpenAPI document.

Bodies are parsed with a parser that speaks the contract (JSON bodies by
``Blueprint.arguments`` itself, query arguments by webargs, both through flask-smorest's
``@blp.arguments``): another media type is 415, a body that is not a JSON object is 400,
and a schema error is 422 with one envelope entry per problem.

The error responses an operation documents are derived here, in one place, from what the
view declares: its method's body schema, its query schema, the path's parameters and the
permissions ``require_permissions`` recorded (see ``error_statuses``).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any, NoReturn, TypeVar

import flask
import flask_smorest
from apispec import APISpec
from flask import Flask, Request
from flask_smorest.utils import (
    resolve_schema_instance,
    set_status_and_headers_in_response,
    unpack_tuple_response,
)
from marshmallow import Schema, ValidationError
from webargs.flaskparser import FlaskParser
from werkzeug.wrappers import Response

from ..errors import MalformedBody, UnsupportedMediaType, ValidationFailed, flatten_messages
from ..schemas.common import Version
from .docs import ERROR_RESPONSES, LOCATION_HEADER
from .openapi import operation_id
from .responses import json_response

F = TypeVar("F", bound=Callable[..., Any])


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# ``json.loads`` with ``parse_constant`` makes a new decoder for every document.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


# An unpaired surrogate as the body's text holds it (decoded with "surrogatepass").
_SURROGATE = re.compile("[\ud800-\udfff]")


def _loads(body: bytes) -> tuple[Any, bool]:
    """``json.loads(body, parse_constant=_reject_constant)``, with one decoder for all; and
    whether a string of the document may hold what no database stores (``unstorable_strings``):
    only a ``\\u`` escape can put a NUL in one (the decoder refuses a raw control character),
    and only an escape or a surrogate in the text itself an unpaired surrogate."""
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    suspect = "\\u" in text or _SURROGATE.search(text) is not None
    return _DECODER.decode(text), suspect


UNSTORABLE = "Must not contain NUL characters or unpaired surrogates (\\u0000, \\ud800-\\udfff)."


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_strings(document: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of a parsed body whose text no database can hold, as ``(field, message)``.

    JSON's ``\\u`` escapes can carry NUL, which PostgreSQL refuses in text, and unpaired UTF-16
    surrogates, which have no UTF-8 form: both would fail at the database as a 500. Walked
    without recursion: the document may be nested nearly as deep as the JSON parser allows.
    """
    problems = []
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if not _storable(value):
                problems.append((path or "body", UNSTORABLE))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _storable(key):
                    key = key.encode("unicode_escape").decode("ascii")
                    problems.append((f"{path}.{key}" if path else key, UNSTORABLE))
                else:
                    pending.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return sorted(problems)


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
            document, suspect = _loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedBody(f"The body is not valid JSON: {error}") from None
        except RecursionError:
            raise MalformedBody("The body is not valid JSON: it is nested too deeply") from None
        if not isinstance(document, dict):
            raise MalformedBody("The body must be a JSON object")
        problems = unstorable_strings(document) if suspect else None
        if problems:
            raise ValidationFailed(problems)
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


def markdown(docstring: str) -> str:
    """A docstring's text as Markdown: lines unindented, ``code`` as `code`."""
    return re.sub(r"\n[ \t]+", "\n", docstring).replace("``", "`")


def error_statuses(
    *,
    body: Schema | None,
    query: bool,
    path_arguments: list[str],
    secured: bool,
    permissions: list[str],
) -> list[int]:
    """The error statuses of the contract's table (API.md section 2) that an operation can
    return, from what its view declares."""
    statuses = {500}  # anything unexpected
    if secured:
        statuses |= {401, 503}  # the api key is looked up in the database
        if permissions or "client_ext_id" in path_arguments:
            statuses.add(403)  # a permission, or the client data room
    if path_arguments:
        statuses.add(404)
    if body is not None:
        statuses |= {400, 413, 415, 422}
        if any(isinstance(field, Version) for field in body.fields.values()):
            statuses.add(409)  # optimistic locking
    if query:
        statuses.add(422)
    return sorted(statuses)


# What webargs' use_args takes beyond the documentation: a view using any of them is parsed
# by webargs itself.
_PARSING_OPTIONS = frozenset(
    {"unknown", "validate", "error_status_code", "error_headers", "as_kwargs", "arg_name"}
)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ContractParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_error_responses_doc)

    def arguments(
        self, schema: type[Schema] | Schema, *args: Any, location: str = "json", **kwargs: Any
    ) -> Any:
        """flask-smorest's ``arguments``, with the schema made once (given a class, webargs
        would make a new instance, copying every field, for each request it parses).

        A JSON body is parsed here, as webargs parses it with this blueprint's parser
        (``ContractParser.load_json``, then the schema's ``load``, its errors through
        ``handle_error``) but without webargs' generic steps around them; flask-smorest
        still documents it."""
        schema = resolve_schema_instance(schema)
        documented = super().arguments(schema, *args, location=location, **kwargs)
        if location != "json" or _PARSING_OPTIONS.intersection(kwargs):
            return documented
        parser = self.ARGUMENTS_PARSER

        def decorator(view: F) -> F:
            documented_view = documented(view)

            @wraps(view)
            def wrapper(*view_args: Any, **view_kwargs: Any) -> Any:
                request = flask.request._get_current_object()  # type: ignore[attr-defined]
                document = parser.load_json(request, schema)
                try:
                    fields = schema.load(document)
                except ValidationError as error:
                    parser.handle_error(
                        ValidationError({location: error.messages}),
                        request,
                        schema,
                        error_status_code=None,
                        error_headers=None,
                    )
                return view(*view_args, fields, **view_kwargs)

            wrapper._apidoc = documented_view._apidoc  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def response(
        self, status_code: int, schema: type[Schema] | Schema | None = None, **kwargs: Any
    ) -> Callable[[F], F]:
        """flask-smorest's ``response``, documented by flask-smorest, run here: the view's
        result (or ``(result, status, headers)``) dumped by ``schema`` and sent as JSON by
        ``json_response``. flask-smorest's own run keeps the dump in the app context for
        ETags, which this API does not use, and goes through ``jsonify``."""
        documented = super().response(status_code, schema, **kwargs)
        schema = resolve_schema_instance(schema) if schema is not None else None

        def decorator(view: F) -> F:
            # Called as it is, not through ``ensure_sync``: the service's views are plain.
            if inspect.iscoroutinefunction(view):
                raise TypeError(f"{view.__qualname__}: async views are not supported")
            documented_view = documented(view)

            @wraps(view)
            def wrapper(*view_args: Any, **view_kwargs: Any) -> Any:
                result, status, headers = unpack_tuple_response(view(*view_args, **view_kwargs))
                if isinstance(result, Response):
                    set_status_and_headers_in_response(result, status, headers)
                    return result
                document = result if schema is None else schema.dump(result)
                return json_response(document, status_code if status is None else status, headers)

            wrapper._apidoc = documented_view._apidoc  # type: ignore[attr-defined]
            return wrapper  # type: ignore[return-value]

        return decorator

    def alt_response(self, status_code: int, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's ``alt_response`` documents a response the view may give; it also
        wraps the view in a call that does nothing more. Only the document is kept."""
        documented = super().alt_response(status_code, *args, **kwargs)

        def decorator(view: F) -> F:
            view._apidoc = documented(view)._apidoc  # type: ignore[attr-defined]
            return view

        return decorator

    def error_response(self, status: int, description: str | None = None) -> Callable[[F], F]:
        """Document an error status that ``error_statuses`` cannot tell from the view:
        with ``description``, to name the codes this operation returns with it."""
        if description is None:
            return self.alt_response(status, response=ERROR_RESPONSES[status].name)
        return self.alt_response(status, description=description)

    def register_views_in_doc(
        self, api: flask_smorest.Api, app: Flask, spec: APISpec, *, name: str, parameters: Any
    ) -> None:
        # The path's parameters are known from the app's URL rules only: note them for
        # _prepare_error_responses_doc.
        for endpoint, endpoint_doc in self._docs.items():
            rule = next(app.url_map.iter_rules(f"{name}.{endpoint}"))
            for method, operation_doc in endpoint_doc.items():
                if method == "parameters":
                    continue
                operation_doc["path_arguments"] = sorted(rule.arguments)
                # Every operation's id, derived from the view's name (app/api/openapi.py).
                operation_doc.setdefault("manual_doc", {}).setdefault(
                    "operationId", operation_id(f"{name}.{endpoint}")
                )
                # Docstrings are reStructuredText; the document's descriptions are Markdown,
                # where indented lines would be code blocks, and its summaries plain text.
                manual = operation_doc.get("manual_doc", {})
                if "description" in manual:
                    manual["description"] = markdown(manual["description"])
                docstring = operation_doc.get("docstring", {})
                if docstring.get("summary"):
                    docstring["summary"] = docstring["summary"].replace("``", "")
                if docstring.get("description"):
                    docstring["description"] = markdown(docstring["description"])
        super().register_views_in_doc(api, app, spec, name=name, parameters=parameters)

    @staticmethod
    def _prepare_error_responses_doc(
        doc: dict[str, Any], doc_info: dict[str, Any], *, api: flask_smorest.Api, **kwargs: Any
    ) -> dict[str, Any]:
        """Document the operation's error responses (the components of app/api/docs.py), and
        the ``Location`` of what a 201 created.

        A view may document an error status itself, to say more (``@blp.error_response(422,
        "...")``); it then gets the error envelope as its schema.
        """
        manual = doc_info.get("manual_doc", {})
        # What _prepare_arguments_doc made of @blp.arguments: a requestBody, query parameters.
        body = doc.get("requestBody", {}).get("content", {}).get("application/json")
        statuses = error_statuses(
            body=resolve_schema_instance(body["schema"]) if body else None,
            query=any(parameter.get("in") == "query" for parameter in doc.get("parameters", [])),
            path_arguments=doc_info.get("path_arguments", []),
            secured=bool(manual.get("security")),
            permissions=manual.get("x-permissions", []),
        )
        responses = doc.setdefault("responses", {})
        for status in statuses:
            if not isinstance(responses.get(status), Mapping):
                # Nothing yet, or flask-smorest's generic reference for a parser error.
                responses[status] = ERROR_RESPONSES[status].name
        for status, response in responses.items():
            if int(status) >= 400 and isinstance(response, Mapping):
                response.setdefault("content", {"application/json": {"schema": api.ERROR_SCHEMA}})
            elif int(status) == 201 and isinstance(response, Mapping):
                response.setdefault("headers", {}).setdefault("Location", LOCATION_HEADER)
        return doc
