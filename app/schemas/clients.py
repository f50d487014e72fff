from __future__ import annotations

from marshmallow import fields, validate

from .common import CreateSchema, ExtId, InputSchema, TrackedSchema, Version

LANGUAGES = ("EN", "DE", "FR", "IT")
TEXT_MAX = 4000


def _display_name() -> fields.Dict:
    """nevisIDM's ``displayName``: a name by language, keys ``EN``, ``DE``, ``FR``, ``IT``."""
    return fields.Dict(
        attribute="display_name",
        keys=fields.String(validate=validate.OneOf(LANGUAGES)),
        values=fields.String(validate=validate.Length(min=1, max=255)),
        allow_none=True,
    )


class ClientCreateSchema(CreateSchema):
    extId = ExtId(
        attribute="ext_id",
        # /clients/{extId} and /{clientExtId}/... share a prefix: this one name is taken.
        extra_rules=[validate.NoneOf(["clients"], error="'clients' is reserved.")],
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    displayName = _display_name()
    remarks = fields.String(allow_none=True, validate=validate.Length(max=TEXT_MAX))


class ClientUpdateSchema(InputSchema):
    """A client's PATCH: fields left out are left as they are; ``version``, when sent, must
    be the current one (409 otherwise). ``displayName`` replaces every language's name."""

    version = Version()
    name = fields.String(validate=validate.Length(min=1, max=255))
    displayName = _display_name()
    remarks = fields.String(allow_none=True, validate=validate.Length(max=TEXT_MAX))


class ClientSchema(TrackedSchema):
    name = fields.String(required=True)
    displayName = fields.Dict(
        attribute="display_names", keys=fields.String(), values=fields.String()
    )
    remarks = fields.String(allow_none=True)
