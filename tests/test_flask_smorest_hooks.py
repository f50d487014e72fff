"""flask-smorest's private hooks that the service overrides or relies on
(app/api/contract.py, app/api/blueprint.py). flask-smorest is pinned to one minor release
(setup.cfg); when an upgrade moves a hook, this test names it, rather than the docs page or
the OpenAPI document silently losing what the hook added."""

from __future__ import annotations

import inspect

import flask_smorest
import pytest
from flask_smorest import utils

HOOKS = [
    (flask_smorest.Api, "_init_spec"),
    (flask_smorest.Api, "_register_responses"),
    (flask_smorest.Api, "_register_doc_blueprint"),
    (flask_smorest.Api, "_register_etag_headers"),
    (flask_smorest.Api, "_register_pagination_header"),
    (flask_smorest.Blueprint, "register_views_in_doc"),
    (flask_smorest.Blueprint, "arguments"),
    (flask_smorest.Blueprint, "response"),
    (flask_smorest.Blueprint, "alt_response"),
    (utils, "resolve_schema_instance"),
    (utils, "unpack_tuple_response"),
    (utils, "set_status_and_headers_in_response"),
]


@pytest.mark.parametrize(("owner", "name"), HOOKS, ids=[name for _, name in HOOKS])
def test_the_hook_is_where_the_service_expects_it(owner, name):
    assert callable(getattr(owner, name, None)), f"flask-smorest has no {owner.__name__}.{name}"


def test_blueprints_keep_their_documentation_callbacks():
    blueprint = flask_smorest.Blueprint("probe", __name__)
    assert isinstance(blueprint._prepare_doc_cbks, list)
    assert isinstance(blueprint._docs, dict)


def test_register_views_in_doc_takes_what_the_service_passes():
    parameters = inspect.signature(flask_smorest.Blueprint.register_views_in_doc).parameters
    assert list(parameters)[:4] == ["self", "api", "app", "spec"]
    assert {"name", "parameters"} <= set(parameters)
