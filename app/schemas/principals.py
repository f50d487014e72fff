from marshmallow import fields

from .common import OutputSchema


class PermissionsSchema(OutputSchema):
    elementaryPermissions = fields.List(fields.String(), attribute="permissions")
