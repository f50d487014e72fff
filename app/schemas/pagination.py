"""The list envelope: ``{"items": [...], "_pagination": {"continuationToken", "limit"}}``."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import OutputSchema

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class PageQuerySchema(Schema):
    """Query arguments of a list; other query arguments are ignored."""

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    continuationToken = fields.String(attribute="token", load_default=None)


class PaginationSchema(OutputSchema):
    continuationToken = fields.String(attribute="continuation_token", allow_none=True)
    limit = fields.Integer()


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """The schema of a page of ``item_schema`` items (a ``Page`` from the repositories)."""
    return type(
        f"{item_schema.__name__.removesuffix('Schema')}PageSchema",
        (OutputSchema,),
        {
            "items": fields.List(fields.Nested(item_schema)),
            "pagination": fields.Nested(PaginationSchema, data_key="_pagination"),
        },
    )
