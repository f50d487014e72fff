"""The error envelope, as the OpenAPI document shows it.

Error bodies are built by app/errors.py; these schemas only describe them (flask-smorest's
``Api.ERROR_SCHEMA``), so that every error response in the document has the one shape::

    {"errors": [{"code": "errors.noRecord", "message": "...", "field": "..."}]}

This module imports nothing of the app but app/errors.py: app/extensions.py uses it.
"""

from __future__ import annotations

from marshmallow import Schema, fields

from ..errors import _HTTP_CODES, ApiError


def _subclasses(cls: type) -> list[type]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


def error_codes() -> list[str]:
    """Every code an error body can carry: the domain exceptions' and Werkzeug's."""
    codes = {error.code for error in _subclasses(ApiError)} | set(_HTTP_CODES.values())
    return sorted(codes)


class ErrorEntrySchema(Schema):
    """One problem."""

    code = fields.String(
        required=True,
        metadata={
            "description": "What kind of problem it is: one of "
            + ", ".join(f"`{code}`" for code in error_codes())
            + ", or a code added in a later version (the status says what kind it is).",
            # An open list (Zalando's API guidelines): clients must accept other values.
            "x-extensible-enum": error_codes(),
            "example": "errors.noRecord",
        },
    )
    message = fields.String(
        required=True,
        metadata={"description": "For people: names the offending field or object."},
    )
    field = fields.String(
        metadata={
            "description": "The body or query field at fault, as a path "
            "(`vascoTokens[0].data`), when the problem is one field's."
        },
    )


class ErrorSchema(Schema):
    """The body of every 4xx and 5xx response: one entry per problem."""

    errors = fields.List(fields.Nested(ErrorEntrySchema), required=True)
