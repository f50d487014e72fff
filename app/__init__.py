"""The application factory, built from named steps."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.orm import configure_mappers

from . import (
    logs,
    models,  # noqa: F401  (registers every table on the metadata)
    observability,
)
from .api.contract import api
from .auth import BootstrapPrincipal, check_bootstrap_key
from .config import Config
from .crypto import (
    KeyConfigurationError,
    SecretBox,
    decode_key,
    decode_old_keys,
    load_or_create_key_file,
)
from .errors import register_error_handlers
from .extensions import db
from .request_limits import register_request_limits
from .storage.engine import configure_database, configure_engine
from .storage.work import end_work


def create_app(config: type | dict[str, Any] | None = None) -> Flask:
    """Build the service. ``config`` is a class or mapping overriding ``Config``."""
    app = Flask(__name__, instance_relative_config=True)
    app.json.sort_keys = False  # fields in the seeds' order
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    configure_logging(app)
    configure_database(app)
    configure_secrets(app)
    configure_bootstrap(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_observability(app)
    register_request_limits(app)
    register_commands(app)
    return app


def configure_logging(app: Flask) -> None:
    """JSON lines on stderr at ``LOG_LEVEL`` (app/logs.py)."""
    level = getattr(logging, str(app.config["LOG_LEVEL"]).upper(), logging.INFO)
    logs.configure_logging(level)
    app.logger.setLevel(level)
    # SQL echo would show statement parameters; keep it off unless asked for by name.
    logging.getLogger("sqlalchemy.engine").setLevel(max(level, logging.WARNING))


def configure_secrets(app: Flask) -> None:
    """The AES-GCM box for credential secrets. A bad key stops start-up with a clear error.

    It seals under ``CREDENTIAL_ENCRYPTION_KEY`` and also opens what the keys of
    ``CREDENTIAL_ENCRYPTION_OLD_KEYS`` sealed, while a rotation is under way.
    """
    encoded = app.config["CREDENTIAL_ENCRYPTION_KEY"]
    if encoded:
        key = decode_key(encoded)
    elif app.config["APP_ENV"] == "production":
        raise KeyConfigurationError(
            "CREDENTIAL_ENCRYPTION_KEY must be set when APP_ENV=production "
            "(Base64 of 32 random bytes)"
        )
    else:
        key = load_or_create_key_file(Path(app.instance_path) / "credential-encryption.key")
    old_keys = decode_old_keys(app.config["CREDENTIAL_ENCRYPTION_OLD_KEYS"])
    app.extensions["nevisidm.secret_box"] = SecretBox(key, old_keys)


def configure_bootstrap(app: Flask) -> None:
    """The ``bootstrap`` principal, while ``BOOTSTRAP_API_KEY`` is set (app/auth.py). A key
    too short for production stops start-up with a clear error."""
    key = app.config["BOOTSTRAP_API_KEY"]
    check_bootstrap_key(key, app.config["APP_ENV"])
    if key:
        BootstrapPrincipal(app)


def register_extensions(app: Flask) -> None:
    # The mappers are complete now, not at a worker's first query: objects built from plain
    # rows (app/storage/rows.py) need them before any query has run.
    configure_mappers()
    db.init_app(app)
    configure_engine(app)
    # The database work of a request or command gives its connection back (app/storage/work.py).
    app.teardown_appcontext(end_work)
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An api key"}
    )


def register_blueprints(app: Flask) -> None:
    from .api import register_blueprints as register

    register(api)


def register_errorhandlers(app: Flask) -> None:
    # After api.init_app, so that these replace flask-smorest's own handler.
    register_error_handlers(app)


def register_observability(app: Flask) -> None:
    """The request id, the request log line, metrics and the security headers of every
    response (app/observability.py)."""
    observability.register_request_hooks(app)


def register_commands(app: Flask) -> None:
    from .cli import api_key, credential_key
    from .migrations import migration_commands

    app.cli.add_command(migration_commands)
    app.cli.add_command(api_key)
    app.cli.add_command(credential_key)
