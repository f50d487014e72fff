"""The list envelope: ``{"items": [...], "_pagination": {"continuationToken", "limit"}}``."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from .common import OutputSchema

# A page holds at most 100 items (contract section 8): a page of VASCO credentials with 16
# blocks of 4 KiB each is then under 9 MB.
DEFAULT_LIMIT = 100
MAX_LIMIT = 100


class PageQuerySchema(Schema):
    """Query arguments of a list; other query arguments are ignored. ``limit`` absent or 0
    means the default page size, as in nevisIDM."""

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=0, max=MAX_LIMIT)
    )
    continuationToken = fields.String(attribute="token", load_default=None)
    returnTotalResultCount = fields.Boolean(
        attribute="total_result",
        load_default=False,
        metadata={"description": "true: `_pagination.totalResult` counts every item."},
    )

    @post_load
    def default_page_size(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data["limit"] == 0:
            data["limit"] = DEFAULT_LIMIT
        return data


class PaginationSchema(OutputSchema):
    continuationToken = fields.String(attribute="continuation_token", allow_none=True)
    limit = fields.Integer()
    totalResult = fields.Integer(
        attribute="total_result",
        allow_none=True,
        metadata={
            "description": "Every item of the list; null unless `returnTotalResultCount=true`."
        },
    )


def classifications_field() -> fields.Field:
    """nevisIDM's ``_classifications`` of a list: ``{}`` here, nothing to classify."""
    return fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), data_key="_classifications"
    )


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """The schema of a page of ``item_schema`` items (a ``Page`` from the repositories)."""
    return type(
        f"{item_schema.__name__.removesuffix('Schema')}PageSchema",
        (OutputSchema,),
        {
            "items": fields.List(fields.Nested(item_schema)),
            "pagination": fields.Nested(PaginationSchema, data_key="_pagination"),
            "classifications": classifications_field(),
        },
    )
