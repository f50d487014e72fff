from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates

from ..crypto import HASH_ALGORITHMS
from ..models import POLICY_TYPES
from .common import CreateSchema, ExtId, InputSchema, JsonBoolean, TrackedSchema, Version

MAX_MILLISECONDS = 100 * 365 * 24 * 3600 * 1000  # a hundred years
# What a policy's parameters may hold (contract section 8).
MAX_PARAMETERS = 64
MAX_PARAMETER_NAME = 64
MAX_PARAMETER_VALUE = 1024
DESCRIPTION_MAX = 4000


def _whole_number(low: int, high: int) -> Callable[[str], None]:
    def check(value: str) -> None:
        if not value.isdigit() or not low <= int(value) <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")

    return check


def _one_of(*choices: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}")

    return check


# The parameters the service acts on, and what each accepts. Others are stored as given.
KNOWN_PARAMETERS: dict[str, Callable[[str], None]] = {
    "credentialLifetime": _whole_number(1, MAX_MILLISECONDS),
    "hashAlgorithm": _one_of(*HASH_ALGORITHMS),
    "maxCredFailureCount": _whole_number(1, 1000),
    "tmpLockingThreshold": _whole_number(1, 1000),
    "tmpLockingDuration": _whole_number(1, MAX_MILLISECONDS),
}


class ParameterValue(fields.String):
    """A parameter value is a string; a JSON number is taken as its digits."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class PolicyParameters(fields.Dict):
    """At most 64 parameters, their names 1 to 64 characters, their values up to 1024; the
    count is checked before any entry is looked at."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=fields.String(validate=validate.Length(min=1, max=MAX_PARAMETER_NAME)),
            values=ParameterValue(validate=validate.Length(max=MAX_PARAMETER_VALUE)),
            metadata={"maxProperties": MAX_PARAMETERS},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> dict[str, str]:
        if isinstance(value, dict) and len(value) > MAX_PARAMETERS:
            raise ValidationError(
                f"Must hold at most {MAX_PARAMETERS} parameters, not {len(value)}."
            )
        return super()._deserialize(value, attr, data, **kwargs)


class KnownParameters:
    """Mixin: the parameters the service acts on hold values it can act on."""

    @validates("parameters")
    def check_known_parameters(self, parameters: dict[str, str] | None, **kwargs: Any) -> None:
        problems = {}
        for name, value in (parameters or {}).items():
            check = KNOWN_PARAMETERS.get(name)
            if check is None:
                continue
            try:
                check(value)
            except ValueError as error:
                problems[name] = [f"{name} {error}."]
        if problems:
            raise ValidationError(problems)


class PolicyCreateSchema(KnownParameters, CreateSchema):
    extId = ExtId(attribute="ext_id")
    name = fields.String(required=True, validate=validate.Length(min=1, max=255))
    description = fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX))
    policyType = fields.String(
        attribute="policy_type", required=True, validate=validate.OneOf(POLICY_TYPES)
    )
    defaultPolicy = JsonBoolean(attribute="default_policy", allow_none=True)
    parameters = PolicyParameters(allow_none=True)
    # nevisIDM's create body has it; a new policy starts at version 1 whatever is sent.
    version = Version(load_only=True, allow_none=True)

    @post_load
    def ignore_version(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data.pop("version", None)
        return data


class PolicyUpdateSchema(KnownParameters, InputSchema):
    """A policy's PATCH: fields left out are left as they are; ``parameters`` replaces every
    parameter; ``version``, when sent, must be the current one (409 otherwise)."""

    version = Version()
    name = fields.String(validate=validate.Length(min=1, max=255))
    description = fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX))
    defaultPolicy = JsonBoolean(attribute="default_policy")
    parameters = PolicyParameters()


class PolicySchema(TrackedSchema):
    clientExtId = fields.String(attribute="client.ext_id")
    name = fields.String()
    description = fields.String(allow_none=True)
    policyType = fields.String(attribute="policy_type", metadata={"enum": list(POLICY_TYPES)})
    defaultPolicy = fields.Boolean(attribute="is_default")
    parameters = fields.Dict(keys=fields.String(), values=fields.String())
