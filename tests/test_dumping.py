"""The Dumper dumps what marshmallow dumps (app/schemas/dumping.py), in the corners the API's
own responses do not reach; every response of the suite is checked too (tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from marshmallow import Schema, fields, missing, post_dump

from app.schemas.common import OutputSchema, UtcDateTime
from app.schemas.dumping import Dumper


class Inner(OutputSchema):
    code = fields.String()
    count = fields.Integer()


class Outer(OutputSchema):
    name = fields.String()
    renamed = fields.String(data_key="shownAs", attribute="hidden")
    number = fields.Integer()
    text_number = fields.Integer(as_string=True)
    flag = fields.Boolean()
    when = UtcDateTime(allow_none=True)
    through = fields.String(attribute="inner.code")
    defaulted = fields.String(dump_default="fallback")
    inner = fields.Nested(Inner, allow_none=True)
    inners = fields.List(fields.Nested(Inner))
    mapping = fields.Dict(keys=fields.String(), values=fields.String())
    numbers = fields.List(fields.Integer())


@dataclass
class Holder:
    code: Any


OBJECTS = [
    SimpleNamespace(
        name="plain",
        hidden="kept",
        number=3,
        text_number=4,
        flag=True,
        when=datetime(2026, 11, 23, 10, 15, 30, 999, tzinfo=UTC),
        inner=SimpleNamespace(code="c", count=2),
        inners=[SimpleNamespace(code="a", count=1), {"code": "b", "count": "7"}],
        mapping={"k": "v"},
        numbers=[1, True, "2"],
        defaulted="given",
    ),
    # Values of another type than the field's: the field converts them.
    SimpleNamespace(name=b"bytes", hidden=12, number=True, text_number=2.0, inner=Holder(5)),
    SimpleNamespace(name=None, number=None, when=None, inner=None, inners=None, mapping=None),
    # Attributes missing (a key left out, or dump_default), through a missing or None parent.
    SimpleNamespace(),
    {"name": "a dict", "number": 1, "inner": {"code": "x", "count": 0}, "hidden": "h"},
    {},
]


@pytest.mark.parametrize("obj", OBJECTS)
def test_a_dump_is_marshmallows(obj):
    schema = Outer()
    dumped = schema.dump(obj)
    assert list(dumped.items()) == list(Schema.dump(Outer(), obj).items())
    assert isinstance(schema._dumper, Dumper)


def test_many_and_none():
    schema = Outer()
    assert schema.dump(OBJECTS[:3], many=True) == Schema.dump(Outer(), OBJECTS[:3], many=True)
    assert schema.dump(None, many=True) == Schema.dump(Outer(), None, many=True)
    assert schema.dump(None) == Schema.dump(Outer(), None)


def test_a_schema_with_hooks_or_constants_is_left_to_marshmallow():
    class Hooked(OutputSchema):
        name = fields.String()

        @post_dump
        def shout(self, data, **kwargs):
            return {key: value.upper() for key, value in data.items()}

    class Constant(OutputSchema):
        kind = fields.Constant("fixed")

    class OwnAccessor(OutputSchema):
        name = fields.String()

        def get_attribute(self, obj, attr, default):
            return f"<{obj[attr]}>"

    class OwnValue(fields.String):
        def get_value(self, obj, attr, accessor=None, default=missing):
            return "own"

    class OwnFieldAccess(OutputSchema):
        name = OwnValue()

    hooked, constant, accessor, access = Hooked(), Constant(), OwnAccessor(), OwnFieldAccess()
    assert hooked.dump({"name": "x"}) == {"name": "X"}
    assert constant.dump({}) == {"kind": "fixed"}
    assert accessor.dump({"name": "x"}) == {"name": "<x>"}
    assert access.dump({"name": "x"}) == {"name": "own"}
    assert [schema._dumper for schema in (hooked, constant, accessor, access)] == [False] * 4
