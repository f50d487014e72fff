"""A user: the body of nevisIDM's "Create a user", its PATCH and its representation.

Input is loaded into the users table's columns: ``name``, ``contacts`` and ``validity`` are
groups of columns (an object sent as ``null`` clears every field of its group); ``address``
is one value, stored as given.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from ..domain.users import USER_STATES, user_validity_problem
from .common import (
    ExtId,
    InputSchema,
    JsonBoolean,
    OutputSchema,
    TrackedSchema,
    UtcDateTime,
    Version,
)

SHORT_TEXT = validate.Length(max=255)
TEXT_MAX = 4000
GENDERS = ("female", "male", "other")
# E.164, as nevisIDM documents it: '+', then up to 15 digits, no spaces.
E164 = validate.Regexp(
    r"\+[1-9][0-9]{1,14}\Z", error="Must be an E.164 number: '+' then 2 to 15 digits, no spaces."
)


def _text(**kwargs: Any) -> fields.String:
    return fields.String(allow_none=True, validate=SHORT_TEXT, **kwargs)


class UserNameInputSchema(InputSchema):
    title = _text()
    firstName = _text(attribute="first_name")
    familyName = _text(attribute="family_name")


class AddressSchema(InputSchema):
    """nevisIDM's address fields, all optional."""

    addressline1 = _text()
    addressline2 = _text()
    postalCode = _text()
    city = _text()
    street = _text()
    houseNumber = _text()
    dwellingNumber = _text()
    postOfficeBoxText = _text()
    postOfficeBoxNumber = _text()
    locality = _text()
    countryCode = fields.String(
        allow_none=True,
        validate=validate.Regexp(r"[A-Z]{2}\Z", error="Must be an ISO 3166-1 code, e.g. CH."),
    )


class ContactsInputSchema(InputSchema):
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    mobile = fields.String(allow_none=True, validate=E164)
    telephone = fields.String(allow_none=True, validate=E164)
    telefax = fields.String(allow_none=True, validate=E164)


class UserValidityInputSchema(InputSchema):
    valid_from = UtcDateTime(data_key="from", attribute="valid_from", allow_none=True)
    to = UtcDateTime(attribute="valid_to", allow_none=True)


class CustomProperties(fields.Dict):
    """nevisIDM's custom ``properties`` need property definitions, which this service does
    not have: any property is refused, saying so (``{}`` is accepted and means none)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, Any]:
        properties = super()._deserialize(value, attr, data, **kwargs)
        if properties:
            raise ValidationError(
                "Custom properties need property definitions, which this service does not "
                "support: leave 'properties' out."
            )
        return properties


# The groups of columns that an object of the body fills, by field.
_GROUPS = {
    "name": UserNameInputSchema,
    "contacts": ContactsInputSchema,
    "validity": UserValidityInputSchema,
}


def _group_columns(schema: type[InputSchema]) -> list[str]:
    return [field.attribute or name for name, field in schema._declared_fields.items()]


class UserFieldsSchema(InputSchema):
    """The fields a user's create and PATCH bodies share."""

    userState = fields.String(
        attribute="state", validate=validate.OneOf(USER_STATES), metadata={"default": "active"}
    )
    languageCode = fields.String(
        attribute="language_code",
        validate=validate.Regexp(r"[a-z]{2}\Z", error="Must be an ISO 639-1 code, e.g. en."),
        metadata={"default": "en"},
    )
    isTechnicalUser = JsonBoolean(attribute="is_technical_user", metadata={"default": False})
    name = fields.Nested(UserNameInputSchema, allow_none=True)
    properties = CustomProperties(allow_none=True, load_only=True)
    sex = fields.String(allow_none=True, validate=validate.OneOf(GENDERS))
    gender = fields.String(allow_none=True, validate=validate.OneOf(GENDERS))
    birthDate = fields.Date(attribute="birth_date", allow_none=True)
    address = fields.Nested(AddressSchema, allow_none=True)
    contacts = fields.Nested(ContactsInputSchema, allow_none=True)
    validity = fields.Nested(UserValidityInputSchema, allow_none=True)
    remarks = fields.String(allow_none=True, validate=validate.Length(max=TEXT_MAX))
    modificationComment = fields.String(
        attribute="modification_comment", allow_none=True, validate=validate.Length(max=1024)
    )

    @validates_schema
    def check_validity(self, data: dict[str, Any], **kwargs: Any) -> None:
        validity = data.get("validity") or {}
        problem = user_validity_problem(validity.get("valid_from"), validity.get("valid_to"))
        if problem is not None:
            raise ValidationError(problem, field_name="validity")

    @post_load
    def to_columns(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The users table's columns that the body sets."""
        data.pop("properties", None)
        for group, schema in _GROUPS.items():
            if group in data:
                values = data.pop(group)
                data.update(values if values is not None else dict.fromkeys(_group_columns(schema)))
        return self.finish(data)

    def finish(self, columns: dict[str, Any]) -> dict[str, Any]:
        return columns


class UserCreateSchema(UserFieldsSchema):
    extId = ExtId(attribute="ext_id")
    loginId = fields.String(
        attribute="login_id", required=True, validate=validate.Length(min=1, max=255)
    )

    def finish(self, columns: dict[str, Any]) -> dict[str, Any]:
        """A field sent as ``null`` means the same as leaving it out."""
        return {name: value for name, value in columns.items() if value is not None}


class UserUpdateSchema(UserFieldsSchema):
    """A user's PATCH: fields left out are left as they are; ``version``, when sent, must be
    the current one (409 otherwise)."""

    version = Version()
    loginId = fields.String(attribute="login_id", validate=validate.Length(min=1, max=255))


class UserNameSchema(OutputSchema):
    title = fields.String(allow_none=True)
    firstName = fields.String(attribute="first_name", allow_none=True)
    familyName = fields.String(attribute="family_name", allow_none=True)


class AddressOutputSchema(OutputSchema):
    addressline1 = fields.String(allow_none=True)
    addressline2 = fields.String(allow_none=True)
    postalCode = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    street = fields.String(allow_none=True)
    houseNumber = fields.String(allow_none=True)
    dwellingNumber = fields.String(allow_none=True)
    postOfficeBoxText = fields.String(allow_none=True)
    postOfficeBoxNumber = fields.String(allow_none=True)
    locality = fields.String(allow_none=True)
    countryCode = fields.String(allow_none=True)


class ContactsSchema(OutputSchema):
    email = fields.String(allow_none=True)
    mobile = fields.String(allow_none=True)
    telephone = fields.String(allow_none=True)
    telefax = fields.String(allow_none=True)


class UserValiditySchema(OutputSchema):
    valid_from = UtcDateTime(data_key="from", attribute="from", allow_none=True)
    to = UtcDateTime(allow_none=True)


class UserSchema(TrackedSchema):
    clientExtId = fields.String(attribute="client.ext_id")
    userState = fields.String(attribute="state", metadata={"enum": list(USER_STATES)})
    loginId = fields.String(attribute="login_id")
    languageCode = fields.String(attribute="language_code")
    isTechnicalUser = fields.Boolean(attribute="is_technical_user")
    name = fields.Nested(UserNameSchema)
    sex = fields.String(allow_none=True)
    gender = fields.String(allow_none=True)
    birthDate = fields.Date(attribute="birth_date", allow_none=True)
    address = fields.Nested(AddressOutputSchema, attribute="address_shown", allow_none=True)
    contacts = fields.Nested(ContactsSchema)
    validity = fields.Nested(UserValiditySchema)
    remarks = fields.String(allow_none=True)
    modificationComment = fields.String(attribute="modification_comment", allow_none=True)
