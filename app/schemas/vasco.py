"""VASCO (OneSpan Digipass) credentials: the create and PATCH bodies and the representation.

A token's ``data`` is a secret. Validation messages describe what is wrong with it but never
repeat it, so that it cannot reach a response or a log line by that way.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from .common import BoundedList, CreateSchema, ExtId, InputSchema, OutputSchema, StateName
from .credentials import CredentialSchema, CredentialUpdateSchema

MAX_TOKENS = 16
MAX_BLOCK_BYTES = 4096
AUTH_MODE_PATTERN = re.compile(r"[A-Za-z0-9]{1,8}\Z")
MAX_BASE64_LENGTH = 4 * -(-MAX_BLOCK_BYTES // 3)  # 4 characters carry 3 bytes


class Base64Block(fields.Field):
    """A Digipass data block: strict Base64 in JSON, bytes in Python.

    Strict means the standard alphabet, padding required, no whitespace and the canonical
    encoding (the text round-trips), so that what is returned is exactly what was sent.
    """

    default_error_messages = {
        "type": "Not a string.",
        "empty": "Must not be empty.",
        "invalid": "Not strict Base64 (standard alphabet, '=' padding, no whitespace).",
        "too_long": f"Must decode to at most {MAX_BLOCK_BYTES} bytes.",
    }

    def __init__(self, **kwargs: Any) -> None:
        # 1 to MAX_BLOCK_BYTES bytes: 4 to 5464 characters of Base64.
        kwargs.setdefault("metadata", {}).update(
            type="string", format="byte", minLength=4, maxLength=MAX_BASE64_LENGTH
        )
        super().__init__(**kwargs)

    def _serialize(self, value: bytes | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else base64.b64encode(value).decode("ascii")

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bytes:
        if not isinstance(value, str):
            raise self.make_error("type")
        if not value:
            raise self.make_error("empty")
        # Bound the work before decoding.
        if len(value) > MAX_BASE64_LENGTH:
            raise self.make_error("too_long")
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self.make_error("invalid") from None
        if base64.b64encode(decoded).decode("ascii") != value:
            raise self.make_error("invalid")
        if not decoded:
            raise self.make_error("empty")
        if len(decoded) > MAX_BLOCK_BYTES:
            raise self.make_error("too_long")
        return decoded


class VascoTokenInputSchema(InputSchema):
    authMode = fields.String(
        attribute="auth_mode",
        required=True,
        validate=validate.Regexp(AUTH_MODE_PATTERN, error="Must be 1 to 8 letters or digits."),
    )
    data = Base64Block(required=True)


# What JSON Schema cannot say (``uniqueItems`` compares whole items, case-sensitively).
AUTH_MODES_UNIQUE = (
    "The token's data blocks. Their `authMode`s are unique in the list, compared "
    "case-insensitively (`CR` and `cr` are the same); a repeat is 422 `errors.invalidData` "
    "naming it (`vascoTokens[1].authMode`)."
)


class VascoTokensField(BoundedList):
    """1 to 16 token blocks (``UniqueAuthModes`` checks that their authModes differ); more
    are refused before any block is looked at."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("description", AUTH_MODES_UNIQUE)
        super().__init__(
            fields.Nested(VascoTokenInputSchema), min_items=1, max_items=MAX_TOKENS, **kwargs
        )


class UniqueAuthModes:
    """Mixin: the authModes in ``vascoTokens`` are unique, compared case-insensitively.

    Checked on the raw input, so that a repeat is named at its own index
    (``vascoTokens[2].authMode``) even when an earlier entry failed to load.
    """

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def check_unique_auth_modes(
        self, data: dict[str, Any], original_data: dict[str, Any], **kwargs: Any
    ) -> None:
        raw_tokens = original_data.get("vascoTokens") if isinstance(original_data, dict) else None
        if not isinstance(raw_tokens, list) or len(raw_tokens) > MAX_TOKENS:
            return  # not a list, or too long: that one problem is reported already
        seen: dict[str, int] = {}
        problems: dict[int, dict[str, list[str]]] = {}
        for index, token in enumerate(raw_tokens):
            auth_mode = token.get("authMode") if isinstance(token, dict) else None
            if not isinstance(auth_mode, str) or not AUTH_MODE_PATTERN.match(auth_mode):
                continue  # reported by the field itself
            first = seen.setdefault(auth_mode.lower(), index)
            if first != index:
                problems[index] = {
                    "authMode": [
                        f"authMode '{auth_mode}' is already used by vascoTokens[{first}] "
                        "(authModes are compared case-insensitively)."
                    ]
                }
        if problems:
            raise ValidationError(problems, field_name="vascoTokens")


class VascoCreateSchema(UniqueAuthModes, CreateSchema):
    extId = ExtId(attribute="ext_id")
    policyExtId = ExtId(attribute="policy_ext_id")
    stateName = StateName(attribute="state_name", allow_none=True, metadata={"default": "initial"})
    vascoTokens = VascoTokensField(attribute="vasco_tokens", required=True)


class VascoUpdateSchema(UniqueAuthModes, CredentialUpdateSchema):
    """The common PATCH fields, plus ``vascoTokens``: when given, it replaces every block
    (the Digipass blob changes when the token is re-imported or resynchronised)."""

    vascoTokens = VascoTokensField(attribute="vasco_tokens")


class VascoTokenSchema(OutputSchema):
    authMode = fields.String(attribute="auth_mode")
    data = Base64Block(
        metadata={"description": "The Base64-encoded VASCO Digipass proprietary data block."}
    )


class VascoCredentialSchema(CredentialSchema):
    vascoTokens = fields.List(fields.Nested(VascoTokenSchema), attribute="vasco_tokens")
