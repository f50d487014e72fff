from marshmallow import fields, validate

from .common import CreateSchema, ExtId, InputSchema, StateName
from .credentials import CredentialSchema, CredentialUpdateSchema

IDENTIFICATION_MAX = 255
CONTEXT_MAX = 4000
# Far above any ticket this service issues (43 characters); bounds the work of a bad request.
PRESENTED_TICKET_MAX = 1024


class TicketCreateSchema(CreateSchema):
    extId = ExtId(attribute="ext_id")
    policyExtId = ExtId(attribute="policy_ext_id")
    stateName = StateName(attribute="state_name", allow_none=True, metadata={"default": "active"})
    identification = fields.String(
        allow_none=True, validate=validate.Length(max=IDENTIFICATION_MAX)
    )
    context = fields.String(allow_none=True, validate=validate.Length(max=CONTEXT_MAX))


class TicketUpdateSchema(CredentialUpdateSchema):
    """A ticket PATCH: the common fields plus ``identification`` and ``context`` (``null``
    clears them)."""

    identification = fields.String(
        allow_none=True, validate=validate.Length(max=IDENTIFICATION_MAX)
    )
    context = fields.String(allow_none=True, validate=validate.Length(max=CONTEXT_MAX))


class TicketResetSchema(InputSchema):
    """A reset takes no fields; the body may be ``{}`` or left out."""

    #: Read by the tickets blueprint's parser: no body means ``{}``.
    body_optional = True


class TicketVerifySchema(InputSchema):
    """The ticket value to check. It is a secret: never logged, never echoed in errors."""

    ticket = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=PRESENTED_TICKET_MAX),
        metadata={"description": "The plain ticket value, as issued by create or reset."},
    )


class TicketCredentialSchema(CredentialSchema):
    ticket = fields.String(
        attribute="ticket_hash",
        metadata={"description": "Hashed ticket value with message digest algorithm prefix."},
    )
    failureCount = fields.Integer(attribute="failure_count")
    successCount = fields.Integer(attribute="success_count")
    resetCount = fields.Integer(attribute="reset_count")
    identification = fields.String(allow_none=True)
    context = fields.String(allow_none=True)


class IssuedTicketSchema(TicketCredentialSchema):
    """A ticket as returned when it is created or reset: the only time its value is shown."""

    plainTicket = fields.String(
        attribute="plain_ticket",
        metadata={"description": "The ticket value. Shown once; only its hash is stored."},
    )
