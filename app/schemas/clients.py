from marshmallow import fields, validate

from .common import CreateSchema, ExtId, TrackedSchema


class ClientCreateSchema(CreateSchema):
    extId = ExtId(
        attribute="ext_id",
        # /clients/{extId} and /{clientExtId}/... share a prefix: this one name is taken.
        extra_rules=[validate.NoneOf(["clients"], error="'clients' is reserved.")],
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))


class ClientSchema(TrackedSchema):
    name = fields.String(required=True)
