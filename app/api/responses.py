"""The service's responses: JSON bodies built in one step, and ``Location`` paths.

Every JSON body a view returns goes through ``json_response`` (``Blueprint.response``,
app/api/blueprint.py): the text ``jsonify`` would make, with the app's JSON settings, from
one encoder made once per app, and the response made with its status, type and headers in
one call.

The credential creates' ``Location`` is the path of what they made (``resource_location``):
what ``url_for`` builds, without the routing map's search for the rule and building from it.
The other creates (clients, users, policies) use ``url_for``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, current_app, request

from . import CORE_PREFIX

# What werkzeug's converters leave unquoted in a path argument (BaseConverter.to_url).
_SEGMENT_SAFE = "!$&'()*+,/:;=@"

# Where the app keeps its encoder (``json_response``).
_ENCODER = "nevisidm.json_encoder"


def resource_location(*segments: str) -> str:
    """The path of a resource of this API, from its segments after the API's prefix:
    ``resource_location("c1", "users", "u1", "ticket")``. Each segment is quoted as
    ``url_for`` quotes a path argument, under the app's script root as ``url_for`` puts it
    (werkzeug converts the whole ``Location`` to a URI as the response is sent)."""
    path = "/".join(quote(segment, safe=_SEGMENT_SAFE) for segment in segments)
    script_root = request._get_current_object().script_root  # type: ignore[attr-defined]
    return f"{script_root}{CORE_PREFIX}/{path}"


def _encoder(app: Flask) -> json.JSONEncoder:
    """The encoder of ``app.json``'s ``response``: its ``default``, ``ensure_ascii`` and
    ``sort_keys``; compact, or indented in debug mode, as its ``compact`` says."""
    provider = app.json
    compact = getattr(provider, "compact", None)
    indented = compact is False or (compact is None and app.debug)
    return json.JSONEncoder(
        default=getattr(provider, "default", None),
        ensure_ascii=getattr(provider, "ensure_ascii", True),
        sort_keys=getattr(provider, "sort_keys", False),
        indent=2 if indented else None,
        separators=None if indented else (",", ":"),
    )


def json_response(
    document: Any, status: int | str, headers: Iterable[tuple[str, str]] | dict | None = None
) -> Response:
    """``jsonify(document)`` with ``status`` and ``headers``, made in one step.

    The encoder is made on the app's first response: JSON settings changed later (debug
    mode switched on) are not followed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    encoder = app.extensions.get(_ENCODER)
    if encoder is None:
        encoder = app.extensions[_ENCODER] = _encoder(app)
    return app.response_class(
        f"{encoder.encode(document)}\n",
        status=status,
        headers=headers,
        mimetype=getattr(app.json, "mimetype", "application/json"),
    )
