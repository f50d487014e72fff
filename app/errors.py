"""Domain exceptions and the one place that renders them as the contract's error envelope.

Every 4xx and 5xx body has the same shape::

    {"errors": [{"code": "errors.noRecord", "message": "...", "field": "..."}]}

Repositories and the request parser raise the exceptions below; ``register_error_handlers``
turns them, Werkzeug's HTTP errors and anything unexpected into that envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# A response carries at most this many error entries (contract section 8): the last one
# says how many more problems there were.
MAX_ERROR_ENTRIES = 50


class ApiError(Exception):
    """An error with a status and a contract error code. ``entries`` may hold several."""

    status = 500
    code = "errors.fatalError"
    headers: Mapping[str, str] = {}

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def entries(self) -> list[dict[str, str]]:
        entry = {"code": self.code, "message": self.message}
        if self.field:
            entry["field"] = self.field
        return [entry]


class MalformedBody(ApiError):
    """The body is not JSON, or not a JSON object."""

    status = 400
    code = "errors.invalidData"


class AuthenticationRequired(ApiError):
    status = 401
    code = "errors.authenticationRequired"
    headers = {"WWW-Authenticate": "Bearer"}


class PermissionDenied(ApiError):
    status = 403
    code = "errors.permissionDenied"


class DataroomPermissionDenied(ApiError):
    status = 403
    code = "errors.dataroomPermissionDenied"


class NoRecord(ApiError):
    status = 404
    code = "errors.noRecord"


class StaleVersion(ApiError):
    status = 409
    code = "errors.pessimisticLockingFailure"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "errors.invalidData"


class InvalidData(ApiError):
    """A field is missing, of the wrong type or value, or unknown; or a reference is unfit."""

    status = 422
    code = "errors.invalidData"


class ValidationFailed(InvalidData):
    """Several field problems at once: one envelope entry per problem, up to
    ``MAX_ERROR_ENTRIES`` (``capped_entries``)."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = list(problems)
        shown = self.problems[:MAX_ERROR_ENTRIES]
        super().__init__("; ".join(f"{field}: {message}" for field, message in shown))

    def entries(self) -> list[dict[str, str]]:
        entries = [
            {"code": self.code, "message": f"{field}: {message}", "field": field}
            for field, message in self.problems[:MAX_ERROR_ENTRIES]
        ]
        return capped_entries(entries, total=len(self.problems))


class TicketExists(ApiError):
    status = 422
    code = "errors.ticketExists"


class VascoExists(ApiError):
    status = 422
    code = "errors.vascoExists"


class DuplicateValue(ApiError):
    status = 422
    code = "errors.duplicateValue"


class InvalidCredential(ApiError):
    status = 422
    code = "errors.invalidCredential"


class CredentialNotUsable(ApiError):
    status = 422
    code = "errors.credentialNotUsable"


class ServiceUnavailable(ApiError):
    status = 503
    code = "errors.serviceUnavailable"


# Werkzeug's own errors (routing, body size, ...) mapped onto contract codes.
_HTTP_CODES = {
    400: "errors.invalidData",
    401: "errors.authenticationRequired",
    403: "errors.permissionDenied",
    404: "errors.noRecord",
    405: "errors.methodNotAllowed",
    413: "errors.invalidData",
    415: "errors.invalidData",
    422: "errors.invalidData",
}

_HTTP_MESSAGES = {
    404: "No resource at {path}",
    405: "Method {method} is not allowed on {path}",
    413: "The request body is larger than the configured limit of {limit} bytes",
}


def flatten_messages(messages: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Turn marshmallow's nested message dict into ``(field path, message)`` pairs.

    ``{"vascoTokens": {0: {"data": ["Not valid."]}}}`` becomes
    ``[("vascoTokens[0].data", "Not valid.")]``; schema-level errors name the body.
    """
    if isinstance(messages, str):
        return [(prefix or "body", messages)]
    if isinstance(messages, list):
        pairs: list[tuple[str, str]] = []
        for item in messages:
            pairs.extend(flatten_messages(item, prefix))
        return pairs
    pairs = []
    for key, value in messages.items():
        if key == "_schema":
            path = prefix or "body"
        elif isinstance(key, int):
            path = f"{prefix}[{key}]"
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        pairs.extend(flatten_messages(value, path))
    return pairs


def capped_entries(entries: list[dict[str, str]], total: int | None = None) -> list[dict[str, str]]:
    """At most ``MAX_ERROR_ENTRIES`` entries: past that, the first ones and a last entry that
    says how many of the ``total`` problems (by default, the entries given) were left out."""
    total = len(entries) if total is None else total
    if total <= MAX_ERROR_ENTRIES:
        return entries
    kept = entries[: MAX_ERROR_ENTRIES - 1]
    left_out = total - len(kept)
    return [
        *kept,
        {
            "code": kept[-1]["code"] if kept else "errors.invalidData",
            "message": f"{left_out} more problems were left out; "
            f"a response shows at most {MAX_ERROR_ENTRIES}.",
        },
    ]


def envelope(status: int, entries: list[dict[str, str]], headers: Mapping[str, str] = {}):
    response = jsonify({"errors": capped_entries(entries)})
    response.status_code = status
    response.headers.update(headers)
    return response


def handle_api_error(error: ApiError):
    if error.status >= 500:
        log.error("request failed: %s %s: %s", request.method, request.path, error.message)
    return envelope(error.status, error.entries(), error.headers)


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    template = _HTTP_MESSAGES.get(status)
    if template:
        message = template.format(
            path=request.path,
            method=request.method,
            limit=request.max_content_length,
        )
    else:
        message = error.description or error.name
    code = _HTTP_CODES.get(status, "errors.fatalError")
    headers = {k: v for k, v in error.get_headers() if k.lower() in {"allow", "www-authenticate"}}
    return envelope(status, [{"code": code, "message": message}], headers)


def handle_database_unavailable(error: OperationalError | PoolTimeout):
    # The message may hold SQL or connection details: log it, never return it.
    cause = getattr(error, "orig", None) or error
    log.error("database unavailable: %s", cause.__class__.__name__)
    return handle_api_error(ServiceUnavailable("The database is not reachable; try again shortly"))


def handle_unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return handle_api_error(ApiError("An unexpected error occurred; it has been logged"))


def register_error_handlers(app: Flask) -> None:
    """One set of handlers for the whole app; blueprints register none of their own."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    # Every pooled connection busy for longer than the pool timeout: the database is the
    # bottleneck, so say "try again" rather than "fatal".
    app.register_error_handler(PoolTimeout, handle_database_unavailable)
    app.register_error_handler(DBAPIError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
