"""Response bodies dumped in one pass over a schema's fields, as marshmallow dumps them.

``Schema.dump`` asks every field to serialize itself: for each field a chain of calls finds
the value (``Field.serialize``, ``get_value``, the schema's accessor, ``utils.get_value``)
before the field converts it, which is most of what dumping a credential costs. A
``Dumper`` makes that plan once per schema: for each field, its output key, the path of its
attribute and its conversion, with the conversion of the common fields inlined (a string
that is a ``str`` already, an integer that is an ``int``, ``None``). Every other case goes
to the field itself, and a value the object does not have (for which marshmallow applies
``dump_default`` or leaves the key out) to ``Field.serialize``: the result is marshmallow's
in every case. The test suite checks that on every response it makes (tests/conftest.py).

Schemas the plan would not do justice to are dumped by marshmallow (``Dumper.applies_to``):
those with dump hooks or their own accessor, and those with a field that takes no value
from the object or finds or serializes its value in its own way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP

Convert = Callable[[Any, str, Any], Any]


def _value_for_key(obj: Any, key: str) -> Any:
    """marshmallow's ``utils._get_value_for_key``: ``obj[key]``, else ``obj.key``."""
    if not hasattr(obj, "__getitem__"):
        return getattr(obj, key, missing)
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, key, missing)


def _conversion(field: fields.Field) -> Convert:
    """How a found value becomes output: the field's own ``_serialize``, except where the
    value is already what it would return."""
    serialize = field._serialize
    if type(field) is fields.Integer and not field.as_string:

        def integer(value: Any, attr: str, obj: Any) -> Any:
            # bool is an int too, but dumps as 0 or 1.
            return value if value is None or type(value) is int else serialize(value, attr, obj)

        return integer
    if isinstance(field, fields.String) and type(field)._serialize is fields.String._serialize:

        def string(value: Any, attr: str, obj: Any) -> Any:
            return value if value is None or type(value) is str else serialize(value, attr, obj)

        return string
    return serialize


class Dumper:
    """``schema.dump(obj)`` for one object, planned once for ``schema``."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._plan = tuple(
            (
                name,
                field,
                field.data_key if field.data_key is not None else name,
                tuple((name if field.attribute is None else field.attribute).split(".")),
                _conversion(field),
            )
            for name, field in schema.dump_fields.items()
        )

    @staticmethod
    def applies_to(schema: Schema) -> bool:
        """Not for a schema with dump hooks, its own accessor or result class, nor one with
        a field that takes no value from the object (a ``Constant``) or finds its value or
        serializes in its own way: the plan would bypass them."""
        if schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP]:
            return False
        if type(schema).get_attribute is not Schema.get_attribute or schema.dict_class is not dict:
            return False
        return all(
            field._CHECK_ATTRIBUTE
            and type(field).get_value is fields.Field.get_value
            and type(field).serialize is fields.Field.serialize
            for field in schema.dump_fields.values()
        )

    def __call__(self, obj: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        # An object without item access (a model) gives its values as attributes, which is
        # what ``_value_for_key`` finds for it after asking, field by field.
        by_attribute = not hasattr(obj, "__getitem__")
        for name, field, key, path, convert in self._plan:
            if by_attribute and len(path) == 1:
                value = getattr(obj, path[0], missing)
            else:
                value = obj
                for part in path:
                    value = _value_for_key(value, part)
            if value is missing:
                value = field.serialize(name, obj, accessor=self.schema.get_attribute)
                if value is missing:
                    continue
            else:
                value = convert(value, name, obj)
            result[key] = value
        return result
