"""Fields and base schemas shared by every resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from ..ext_ids import MAX_LENGTH, SHAPE, ext_id_problem
from ..models import STATES
from .dumping import Dumper


class InputSchema(Schema):
    """A request body: unknown fields are an error, so that a typo never passes silently."""

    class Meta:
        unknown = RAISE

    def load(self, data: Any, **kwargs: Any) -> Any:
        try:
            return super().load(data, **kwargs)
        except ValidationError as error:
            # marshmallow raises the error from a frame that holds it, and the error holds
            # that frame (its traceback): a cycle, keeping the body's objects (a megabyte of
            # JSON can be tens of megabytes of them) until the cycle collector runs. Raised
            # again without that frame, they go as soon as the request is done with them.
            error.__traceback__ = None
            raise


class CreateSchema(InputSchema):
    """A create body: an optional field sent as ``null`` means the same as leaving it out."""

    @post_load
    def drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if value is not None}


class OutputSchema(Schema):
    """A response body; fields are dumped in declaration order, by a ``Dumper`` planned on
    the first dump (app/schemas/dumping.py): what marshmallow would dump, at a fraction of
    the cost."""

    # The schema's Dumper; False when marshmallow must dump it (``Dumper.applies_to``).
    _dumper: Dumper | bool | None = None

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        many = self.many if many is None else bool(many)
        dumper = self._dumper
        if dumper is None:
            dumper = self._dumper = Dumper(self) if Dumper.applies_to(self) else False
        if dumper is False or (many and obj is None):
            return super().dump(obj, many=many)
        if many:
            return [dumper(item) for item in obj]
        return dumper(obj)


_API_DATETIME = "%04d-%02d-%02dT%02d:%02d:%02dZ"


class UtcDateTime(fields.Field):
    """ISO 8601 in UTC at second precision with a ``Z`` (``2026-11-22T10:15:30Z``).

    Input may carry any offset (or none, meaning UTC) and is normalised to UTC.
    """

    default_error_messages = {
        "invalid": "Not a valid ISO 8601 date-time, e.g. 2026-11-22T10:15:30Z.",
    }

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        # Not strftime("%Y"): the C library writes the year 83 as "83", not "0083".
        # Nor isoformat, which does more for the same text.
        utc = value.astimezone(UTC)
        return _API_DATETIME % (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            # OverflowError: an offset that takes 0001-01-01 or 9999-12-31 out of range.
            return parsed.astimezone(UTC).replace(microsecond=0)
        except (ValueError, OverflowError) as error:
            raise self.make_error("invalid") from error


class ExtIdRule(validate.Regexp):
    """The rule of app/ext_ids.py: usable as a URL path segment, shown safely to people. A
    ``Regexp`` for the OpenAPI document, whose pattern is the rule's ASCII part."""

    def __init__(self) -> None:
        super().__init__(SHAPE)

    def __call__(self, value: str) -> str:
        problem = ext_id_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return value


class ExtId(fields.String):
    """An external id (app/ext_ids.py): 1 to 255 characters, usable as a URL path segment."""

    format_rule = ExtIdRule()

    def __init__(self, *, extra_rules: list[validate.Validator] = (), **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).update(minLength=1, maxLength=MAX_LENGTH)
        kwargs.setdefault("allow_none", True)
        super().__init__(validate=[self.format_rule, *extra_rules], **kwargs)


class BoundedList(fields.List):
    """A list of ``min_items`` to ``max_items`` items, its length checked before any item is
    looked at: the work a body costs stays bounded by what it may carry (contract section 8),
    and an over-long list is one problem, not one per item."""

    def __init__(self, inner: fields.Field, *, min_items: int, max_items: int, **kwargs: Any):
        # The Length validator states the bounds in the OpenAPI document (minItems, maxItems).
        super().__init__(inner, validate=validate.Length(min=min_items, max=max_items), **kwargs)
        self.max_items = max_items

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, list) and len(value) > self.max_items:
            raise ValidationError(f"Must hold at most {self.max_items} items, not {len(value)}.")
        return super()._deserialize(value, attr, data, **kwargs)


class StateName(fields.String):
    """A credential state. Input may use ``_`` for ``-`` and any case; output uses ``-``."""

    default_error_messages = {"state": f"Must be one of: {', '.join(STATES)}."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("enum", list(STATES))
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        state = text.strip().lower().replace("_", "-")
        if state not in STATES:
            raise self.make_error("state")
        return state


class JsonBoolean(fields.Boolean):
    """A JSON boolean of a body: ``true`` or ``false``, nothing else (marshmallow's own takes
    0, 1, "yes" and the like, which the OpenAPI document does not allow)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        # Not "in truthy": 1 == True and 0 == False.
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class Version(fields.Integer):
    """An entity version: a positive whole number, as a JSON number or a string of ASCII
    digits (the seeds' sibling pages type it both ways). ``5.5`` is refused."""

    default_error_messages = {"invalid": 'Must be a whole number, e.g. 3 or "3".'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=1), **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> int:
        digits = isinstance(value, str) and value.isascii() and value.isdigit()
        if isinstance(value, bool) or not (isinstance(value, int) or digits):
            raise self.make_error("invalid")
        return super()._deserialize(int(value), attr, data, **kwargs)


class TrackedSchema(OutputSchema):
    """What every entity shows: its dates, version and extId."""

    created = UtcDateTime(required=True)
    lastModified = UtcDateTime(attribute="last_modified", required=True)
    version = fields.Integer(required=True)
    extId = fields.String(attribute="ext_id", required=True)
