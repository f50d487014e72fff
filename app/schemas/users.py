from marshmallow import fields, validate

from .common import CreateSchema, ExtId, InputSchema, OutputSchema, TrackedSchema


class UserNameSchema(InputSchema):
    firstName = fields.String(
        attribute="first_name", allow_none=True, validate=validate.Length(max=255)
    )
    familyName = fields.String(
        attribute="family_name", allow_none=True, validate=validate.Length(max=255)
    )


class UserCreateSchema(CreateSchema):
    extId = ExtId(attribute="ext_id")
    loginId = fields.String(
        attribute="login_id", required=True, validate=validate.Length(min=1, max=255)
    )
    name = fields.Nested(UserNameSchema, allow_none=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))


class UserNameOutputSchema(OutputSchema):
    firstName = fields.String(attribute="first_name", allow_none=True)
    familyName = fields.String(attribute="family_name", allow_none=True)


class UserSchema(TrackedSchema):
    clientExtId = fields.String(attribute="client.ext_id")
    loginId = fields.String(attribute="login_id")
    name = fields.Nested(UserNameOutputSchema)
    email = fields.String(allow_none=True)
