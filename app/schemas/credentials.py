"""The representation every credential shares (contract section 6)."""

from marshmallow import fields, validate

from ..models import STATES
from .common import (
    ExtId,
    InputSchema,
    OutputSchema,
    StateName,
    TrackedSchema,
    UtcDateTime,
    Version,
)

# nevisIDM's credential types, as the seeds list them. This service holds two of them
# (TYPE_NAMES in app/models); the document lists them all, so that it types the field as
# nevisIDM does.
CREDENTIAL_TYPES = (
    "Password",
    "Certificate",
    "SecurID User Mapping",
    "Ticket Authorization",
    "Safeword User Mapping",
    "OTP Card",
    "Temporary Strong Password",
    "Generic Credential",
    "Kerberos",
    "mTan",
    "Vasco",
    "PUK",
    "URL Ticket",
    "DevicePassword",
    "MobileSignature",
    "SAML Federation",
    "Security Questions",
    "Context Password",
    "OATH",
    "FIDO UAF Authenticator",
    "Recovery Code",
    "FIDO2 Authenticator",
)


class ValiditySchema(OutputSchema):
    valid_from = UtcDateTime(data_key="from", attribute="from", allow_none=True)
    to = UtcDateTime(allow_none=True)


class CredentialSchema(TrackedSchema):
    userExtId = fields.String(attribute="user_ext_id", allow_none=True)
    policyExtId = fields.String(attribute="policy.ext_id")
    stateName = fields.String(attribute="state_name", metadata={"enum": list(STATES)})
    stateChangeReason = fields.String(attribute="state_change_reason", allow_none=True)
    stateChangeDetail = fields.String(attribute="state_change_detail", allow_none=True)
    lastSuccessfulLoginDate = UtcDateTime(attribute="last_successful_login_date", allow_none=True)
    successfulLoginCount = fields.Integer(attribute="successful_login_count")
    lastFailedLoginDate = UtcDateTime(attribute="last_failed_login_date", allow_none=True)
    failedLoginCount = fields.Integer(attribute="failed_login_count")
    modificationComment = fields.String(attribute="modification_comment", allow_none=True)
    type = fields.String(
        attribute="type_name",
        metadata={
            "enum": list(CREDENTIAL_TYPES),
            "description": "Type of credential: `Ticket Authorization` or `Vasco` here.",
        },
    )
    validity = fields.Nested(ValiditySchema)


class ValidityInputSchema(InputSchema):
    valid_from = UtcDateTime(data_key="from", attribute="from")
    to = UtcDateTime(allow_none=True)


class CredentialUpdateSchema(InputSchema):
    """The PATCH fields every credential takes. ``version``, when sent, is the one read
    (optimistic locking: 409 when stale); left out, the change applies to the current version,
    as nevisIDM documents. A field left out is left as it is."""

    version = Version()
    stateName = StateName(attribute="state_name")
    modificationComment = fields.String(
        attribute="modification_comment", allow_none=True, validate=validate.Length(max=1024)
    )
    policyExtId = ExtId(attribute="policy_ext_id")
    validity = fields.Nested(ValidityInputSchema)
