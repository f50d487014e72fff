from marshmallow import fields

from .common import OutputSchema


class HealthSchema(OutputSchema):
    """What a health probe answers when it passes."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})
