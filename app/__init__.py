"""The application factory, built from named steps."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import FunctionType
from typing import Any

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.orm import configure_mappers

from . import (
    extensions,
    models,  # noqa: F401  (registers every table on the metadata)
    observability,
)
from .auth import BootstrapPrincipal
from .config import Config, normalise_database_url
from .crypto import (
    KeyConfigurationError,
    SecretBox,
    decode_key,
    decode_old_keys,
    load_or_create_key_file,
)
from .database import configure_engines
from .errors import register_error_handlers
from .repositories.transactions import release_own_connection
from .request_limits import register_request_limits

# libpq settings that bound how long a request can wait on an unreachable database.
POSTGRESQL_CONNECT_ARGS = {
    "connect_timeout": 5,  # seconds to establish a connection
    # A connection whose sent data stays unacknowledged this long is dead (a black-holed
    # network): the request gets its 503 instead of waiting for the kernel's retries.
    "tcp_user_timeout": 10_000,  # milliseconds
    # An idle connection (waiting for a reply) probes its peer: silent after 5 s, then
    # every 2 s, dead after 3 missed probes.
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


class App(Flask):
    """The service's Flask app.

    ``ensure_sync`` is Flask's, remembered for plain functions: Flask and flask-smorest ask
    it about every view, wrapper and hook on every request, and each time it asks
    ``inspect`` whether the function is a coroutine function."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: dict[FunctionType, Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if type(func) is not FunctionType:
            return super().ensure_sync(func)
        sync = self._sync_functions.get(func)
        if sync is None:
            sync = self._sync_functions[func] = super().ensure_sync(func)
        return sync


def create_app(config: type | dict[str, Any] | None = None) -> Flask:
    """Build the service. ``config`` is a class or mapping overriding ``Config``."""
    app = App(__name__, instance_relative_config=True)
    app.json.sort_keys = False  # fields in the seeds' order
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    configure_logging(app)
    configure_database(app)
    configure_secrets(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_observability(app)
    register_request_limits(app)
    register_commands(app)
    if app.config["BOOTSTRAP_API_KEY"]:
        BootstrapPrincipal(app)
    return app


def configure_logging(app: Flask) -> None:
    """JSON lines on stderr at ``LOG_LEVEL`` (app/observability.py)."""
    level = getattr(logging, str(app.config["LOG_LEVEL"]).upper(), logging.INFO)
    observability.configure_logging(level)
    app.logger.setLevel(level)
    # SQL echo would show statement parameters; keep it off unless asked for by name.
    logging.getLogger("sqlalchemy.engine").setLevel(max(level, logging.WARNING))


def configure_database(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'nevisidm.db'}"
    url = normalise_database_url(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
    if url.startswith("postgresql"):
        # Fail fast (503) instead of hanging when the database cannot be reached. Each
        # setting can be overridden by a parameter of the same name in DATABASE_URL.
        given = make_url(url).query
        connect_args = dict(options.get("connect_args", {}))
        for name, value in POSTGRESQL_CONNECT_ARGS.items():
            if name not in given:
                connect_args.setdefault(name, value)
        options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


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


def register_extensions(app: Flask) -> None:
    # The mappers are complete now, not at a worker's first query: objects built from plain
    # rows (app/repositories/statements.py) need them before any query has run.
    configure_mappers()
    # ``extensions.api``, not ``api``: the name ``app.api`` is the package of blueprints.
    extensions.db.init_app(app)
    configure_engines(app)
    # A request that ran on a connection of its own gives it back (repositories/transactions.py).
    app.teardown_request(release_own_connection)
    extensions.api.init_app(app)
    extensions.api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An api key"}
    )


def register_blueprints(app: Flask) -> None:
    from .api import register_blueprints as register

    register(extensions.api)


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
