"""Extension singletons, created here uninitialised and bound to the app in ``create_app``."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from werkzeug.routing import BaseConverter

from .schemas.errors import ErrorSchema


class Base(DeclarativeBase):
    pass


class ExtIdConverter(BaseConverter):
    """A path segment that names an object by its extId. An extId holds no control characters
    (and PostgreSQL cannot even compare text that holds NUL), so a path segment with one
    names nothing: the path matches no route, 404."""

    regex = r"[^/\x00-\x1f\x7f]+"


class ContractApi(Api):
    """flask-smorest's ``Api``, documenting the contract's error envelope and serving the
    assets of the docs page (app/api/docs.py); its path parameters are extIds."""

    ERROR_SCHEMA = ErrorSchema
    # Each operation lists the error statuses it can return (app/api/blueprint.py); a
    # catch-all "default" response would make every status look documented.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app: Flask, **kwargs: Any) -> None:
        # Before the blueprints add their rules: every ``<name>`` in them is an extId.
        app.url_map.converters["default"] = ExtIdConverter
        super().init_app(app, **kwargs)

    def _init_spec(self, **options: Any) -> None:
        # Imported here: the schemas import the models, and the models import this module.
        from .api.docs import API_DESCRIPTION, ContractFlaskPlugin, ContractMarshmallowPlugin

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
        from .api.docs import register_error_responses

        register_error_responses(self.spec, self.ERROR_SCHEMA)

    def _register_doc_blueprint(self) -> None:
        from .api.docs import register_docs_assets

        super()._register_doc_blueprint()
        if self.config.get("OPENAPI_SWAGGER_UI_PATH") is not None:
            register_docs_assets(self._app)


# Objects stay readable after commit: responses are dumped from them without a reload.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
api = ContractApi()
