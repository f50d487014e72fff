from marshmallow import fields, validate

from .common import CreateSchema, ExtId, StateName
from .credentials import CredentialSchema


class TicketCreateSchema(CreateSchema):
    extId = ExtId(attribute="ext_id")
    policyExtId = ExtId(attribute="policy_ext_id")
    stateName = StateName(attribute="state_name", allow_none=True)
    identification = fields.String(allow_none=True, validate=validate.Length(max=255))
    context = fields.String(allow_none=True, validate=validate.Length(max=4000))


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
