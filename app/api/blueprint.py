"""The blueprint class every resource uses: flask-smorest's, with the contract's body
parser (parsing.py), responses sent in one step (responses.py), and each operation's
documentation completed (openapi.py: its id, its error responses).

Bodies are parsed with a parser that speaks the contract (JSON bodies by
``Blueprint.arguments`` itself, query arguments by webargs, both through flask-smorest's
``@blp.arguments``): another media type is 415, a body that is not a JSON object is 400,
and a schema error is 422 with one envelope entry per problem.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import flask
import flask_smorest
from apispec import APISpec
from flask import Flask
from flask_smorest.utils import (
    resolve_schema_instance,
    set_status_and_headers_in_response,
    unpack_tuple_response,
)
from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Response

from .docs import ERROR_RESPONSES
from .openapi import document_error_responses, markdown, operation_id
from .parsing import ContractParser
from .responses import json_response

F = TypeVar("F", bound=Callable[..., Any])


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
                request = flask.request
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
        """Document the operation's error responses (app/api/openapi.py)."""
        return document_error_responses(doc, doc_info, api.ERROR_SCHEMA)
