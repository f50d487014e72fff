"""The contract's request-body rules (API.md sections 1 and 2), as a webargs parser.

Another media type is 415, a body that is not a JSON object is 400 (``NaN``, invalid UTF-8
and text no database stores included), and a schema error is 422 with one envelope entry
per problem.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from flask import Request
from marshmallow import Schema, ValidationError
from webargs.flaskparser import FlaskParser

from ..errors import MalformedBody, UnsupportedMediaType, ValidationFailed, flatten_messages


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# ``json.loads`` with ``parse_constant`` makes a new decoder for every document.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


# An unpaired surrogate as the body's text holds it (decoded with "surrogatepass").
_SURROGATE = re.compile("[\ud800-\udfff]")


def _loads(body: bytes) -> tuple[Any, bool]:
    """``json.loads(body, parse_constant=_reject_constant)``, with one decoder for all; and
    whether a string of the document may hold what no database stores (``unstorable_strings``):
    only a ``\\u`` escape can put a NUL in one (the decoder refuses a raw control character),
    and only an escape or a surrogate in the text itself an unpaired surrogate."""
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    suspect = "\\u" in text or _SURROGATE.search(text) is not None
    return _DECODER.decode(text), suspect


UNSTORABLE = "Must not contain NUL characters or unpaired surrogates (\\u0000, \\ud800-\\udfff)."


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_strings(document: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of a parsed body whose text no database can hold, as ``(field, message)``.

    JSON's ``\\u`` escapes can carry NUL, which PostgreSQL refuses in text, and unpaired UTF-16
    surrogates, which have no UTF-8 form: both would fail at the database as a 500. Walked
    without recursion: the document may be nested nearly as deep as the JSON parser allows.
    """
    problems = []
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if not _storable(value):
                problems.append((path or "body", UNSTORABLE))
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _storable(key):
                    key = key.encode("unicode_escape").decode("ascii")
                    problems.append((f"{path}.{key}" if path else key, UNSTORABLE))
                else:
                    pending.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return sorted(problems)


class ContractParser(FlaskParser):
    def load_json(self, req: Request, schema: Schema) -> Any:
        body = req.get_data(cache=True)
        # An action with nothing to say (reset) marks its schema ``body_optional``: no body
        # at all then means ``{}``.
        if not body and getattr(schema, "body_optional", False):
            return {}
        if body and not _is_json(req.mimetype):
            raise UnsupportedMediaType(
                f"Send the body as application/json, not {req.mimetype or 'without a type'}"
            )
        if not body:
            raise MalformedBody("A JSON object body is required (it may be {})")
        try:
            document, suspect = _loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedBody(f"The body is not valid JSON: {error}") from None
        except RecursionError:
            raise MalformedBody("The body is not valid JSON: it is nested too deeply") from None
        if not isinstance(document, dict):
            raise MalformedBody("The body must be a JSON object")
        problems = unstorable_strings(document) if suspect else None
        if problems:
            raise ValidationFailed(problems)
        return document

    def handle_error(
        self,
        error: ValidationError,
        req: Request,
        schema: Schema,
        *,
        error_status_code: int | None,
        error_headers: Any,
    ) -> NoReturn:
        messages = error.messages
        # webargs nests messages under the location ({"json": {...}}, {"query": {...}});
        # the field names alone are what a caller knows.
        if isinstance(messages, dict) and len(messages) == 1:
            (messages,) = messages.values()
        raise ValidationFailed(flatten_messages(messages))
