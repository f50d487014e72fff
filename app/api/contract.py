"""The service's flask-smorest ``Api``: the contract's error envelope in the OpenAPI
document, the docs page's own assets, and extIds as path parameters."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from ..ext_ids import is_ext_id
from ..schemas.errors import ErrorSchema
from .docs import (
    API_DESCRIPTION,
    ContractFlaskPlugin,
    ContractMarshmallowPlugin,
    register_docs_assets,
    register_error_responses,
)


class ExtIdConverter(BaseConverter):
    """A path segment that names an object by its extId. A segment that no body could have
    made an extId (app/ext_ids.py: ``..``, a bidi override, text not in NFC, ...) names
    nothing: the path matches no route, 404. (PostgreSQL could not even compare text that
    holds NUL.)"""

    regex = r"[^/\x00-\x1f\x7f]+"

    def to_python(self, value: str) -> str:
        # NotFound, not werkzeug's ValidationError: that one ends in 405 when another rule
        # of the same path takes other methods (GET /{c}/vasco next to POST /{c}/vasco).
        if not is_ext_id(value):
            raise NotFound()
        return value


class ContractApi(Api):
    """flask-smorest's ``Api``, documenting the contract's error envelope and serving the
    assets of the docs page (docs.py); its path parameters are extIds."""

    ERROR_SCHEMA = ErrorSchema
    # Each operation lists the error statuses it can return (blueprint.py); a
    # catch-all "default" response would make every status look documented.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app: Flask, **kwargs: Any) -> None:
        # Before the blueprints add their rules: every ``<name>`` in them is an extId.
        app.url_map.converters["default"] = ExtIdConverter
        super().init_app(app, **kwargs)

    def _init_spec(self, **options: Any) -> None:
        options.setdefault("flask_plugin", ContractFlaskPlugin())
        options.setdefault("marshmallow_plugin", ContractMarshmallowPlugin())
        options.setdefault("info", {"description": API_DESCRIPTION})
        super()._init_spec(**options)

    def _register_etag_headers(self) -> None:
        """None: this API uses no ETags (flask-smorest's headers would be unused components)."""

    def _register_pagination_header(self) -> None:
        """None: lists carry their page in the body (``_pagination``), not in flask-smorest's
        header, whose ``PaginationMetadata`` schema would be an unused component."""

    def _register_responses(self) -> None:
        register_error_responses(self.spec, self.ERROR_SCHEMA)

    def _register_doc_blueprint(self) -> None:
        super()._register_doc_blueprint()
        if self.config.get("OPENAPI_SWAGGER_UI_PATH") is not None:
            register_docs_assets(self._app)


api = ContractApi()
