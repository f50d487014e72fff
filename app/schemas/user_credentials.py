"""A page of a user's credentials: each item in the representation of its own type."""

from __future__ import annotations

from typing import Any

from marshmallow import fields

from ..models import TICKET, VASCO, Credential
from .common import OutputSchema
from .pagination import PaginationSchema
from .tickets import TicketCredentialSchema
from .vasco import VascoCredentialSchema


class AnyCredential(fields.Field):
    """A credential dumped with the schema of its type (``type`` tells which)."""

    schemas = {TICKET: TicketCredentialSchema(), VASCO: VascoCredentialSchema()}

    def _serialize(self, value: Credential, attr: Any, obj: Any, **kwargs: Any) -> dict:
        return self.schemas[value.kind].dump(value)


class UserCredentialPageSchema(OutputSchema):
    items = fields.List(AnyCredential())
    pagination = fields.Nested(PaginationSchema, data_key="_pagination")
