"""A page of a user's credentials: each item in the representation of its own type."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from ..models import TICKET, TYPE_NAMES, VASCO, Credential
from .common import OutputSchema
from .pagination import PaginationSchema, classifications_field
from .tickets import TicketCredentialSchema
from .vasco import VascoCredentialSchema


class AnyCredential(fields.Field):
    """A credential dumped with the schema of its type (``type`` tells which)."""

    schemas = {TICKET: TicketCredentialSchema(), VASCO: VascoCredentialSchema()}
    # The OpenAPI document shows the item as oneOf these schemas (app/api/docs.py), told
    # apart by the value of their ``type``.
    discriminator = "type"
    alternatives = {TYPE_NAMES[kind]: schema for kind, schema in schemas.items()}

    def _serialize(self, value: Credential, attr: Any, obj: Any, **kwargs: Any) -> dict:
        return self.schemas[value.kind].dump(value)


class UserCredentialPageSchema(OutputSchema):
    items = fields.List(AnyCredential())
    pagination = fields.Nested(PaginationSchema, data_key="_pagination")
    classifications = classifications_field()
