"""Configuration, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def normalise_database_url(url: str) -> str:
    """Let operators write the usual ``postgresql://`` URL; we drive it with psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    """Settings for a running service. Every value can be set from the environment."""

    APP_ENV = os.environ.get("APP_ENV", "development")
    DATABASE_URL = os.environ.get("DATABASE_URL")  # None: an SQLite file in the instance folder
    BOOTSTRAP_API_KEY = os.environ.get("BOOTSTRAP_API_KEY")
    CREDENTIAL_ENCRYPTION_KEY = os.environ.get("CREDENTIAL_ENCRYPTION_KEY")
    # Earlier keys (Base64, comma-separated): they open stored secrets, never seal new ones.
    CREDENTIAL_ENCRYPTION_OLD_KEYS = os.environ.get("CREDENTIAL_ENCRYPTION_OLD_KEYS")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_BODY_BYTES", 1024 * 1024))
    # Seconds a worker keeps an authenticated principal: revoking a key takes effect within
    # this long. 0 turns the cache off.
    PRINCIPAL_CACHE_SECONDS = float(os.environ.get("PRINCIPAL_CACHE_SECONDS", 10))
    # Time limits on the database, in seconds (docs/deployment.md, "Time limits"). Each
    # ends in 503 errors.serviceUnavailable; gunicorn's worker timeout must be longer
    # (``check_time_limits``).
    # SQLite: how long a writer waits for the write lock (the writers' queue and SQLite's
    # own lock together).
    SQLITE_BUSY_TIMEOUT = float(os.environ.get("SQLITE_BUSY_TIMEOUT", 10))
    # PostgreSQL: establishing a connection, running a statement, waiting for a lock.
    POSTGRES_CONNECT_TIMEOUT = float(os.environ.get("POSTGRES_CONNECT_TIMEOUT", 5))
    POSTGRES_STATEMENT_TIMEOUT = float(os.environ.get("POSTGRES_STATEMENT_TIMEOUT", 5))
    POSTGRES_LOCK_TIMEOUT = float(os.environ.get("POSTGRES_LOCK_TIMEOUT", 5))
    # Connections each process may hold: a request holds at most two at once, and a gunicorn
    # worker serves GUNICORN_THREADS requests at once (gunicorn.conf.py).
    DATABASE_POOL_SIZE = 2 * int(os.environ.get("GUNICORN_THREADS", 10))

    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS = {
        # Never echo statement parameters into exceptions or logs.
        "hide_parameters": True,
    }

    # flask-smorest / OpenAPI
    API_TITLE = "nevisIDM Core REST API: credentials"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    # /docs: Swagger UI, its files served by the service itself (app/api/docs.py), so that the
    # page needs no internet access; and no call to the public validator either.
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/docs/assets/"
    OPENAPI_SWAGGER_UI_CONFIG = {
        "validatorUrl": None,
        "deepLinking": True,
        "docExpansion": "list",
        "defaultModelsExpandDepth": 0,
    }


TIME_LIMITS = (
    "SQLITE_BUSY_TIMEOUT",
    "POSTGRES_CONNECT_TIMEOUT",
    "POSTGRES_STATEMENT_TIMEOUT",
    "POSTGRES_LOCK_TIMEOUT",
)

# The client gives up on a PostgreSQL statement this long after the server's own limit
# (app/storage/postgresql.py): a server that answers cancels the statement first.
ANSWER_GRACE_SECONDS = 1.0


class TimeLimitError(RuntimeError):
    """A time limit is not a positive number, or not below gunicorn's worker timeout: the
    service refuses to start."""


def check_time_limits(config: Mapping[str, Any], worker_timeout: float | None = None) -> None:
    """Each database time limit is a positive number of seconds and, given gunicorn's
    ``worker_timeout`` (checked as a worker starts, gunicorn.conf.py), below it: a request
    that reaches a limit answers 503 before gunicorn would give up on its worker."""
    for name in TIME_LIMITS:
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise TimeLimitError(f"{name} must be a positive number of seconds, not {value!r}")
    if worker_timeout is None:
        return
    # The longest wait each setting of the database in use allows (PostgreSQL's statement:
    # the client's deadline).
    url = config.get("SQLALCHEMY_DATABASE_URI") or config.get("DATABASE_URL") or ""
    if url.startswith("postgres"):
        longest = {
            "POSTGRES_CONNECT_TIMEOUT": config["POSTGRES_CONNECT_TIMEOUT"],
            "POSTGRES_STATEMENT_TIMEOUT": config["POSTGRES_STATEMENT_TIMEOUT"]
            + ANSWER_GRACE_SECONDS,
            "POSTGRES_LOCK_TIMEOUT": config["POSTGRES_LOCK_TIMEOUT"],
        }
    else:
        longest = {"SQLITE_BUSY_TIMEOUT": config["SQLITE_BUSY_TIMEOUT"]}
    for name, seconds in longest.items():
        if seconds >= worker_timeout:
            raise TimeLimitError(
                f"{name} lets a request wait {seconds:g} s; it must be below gunicorn's "
                f"worker timeout (GUNICORN_TIMEOUT, {worker_timeout:g} s)"
            )


class TestConfig(Config):
    """Settings for the test suite: deterministic, nothing read from the developer's shell."""

    TESTING = True
    APP_ENV = "test"
    BOOTSTRAP_API_KEY = None
    # A fixed, test-only key (Base64 of 32 bytes).
    CREDENTIAL_ENCRYPTION_KEY = "dGVzdC1vbmx5LWtleS1uZXZlci11c2UtaXQtbGl2ZSE="
    CREDENTIAL_ENCRYPTION_OLD_KEYS = None
    LOG_LEVEL = "DEBUG"
    SQLITE_BUSY_TIMEOUT = 10.0
    POSTGRES_CONNECT_TIMEOUT = 5.0
    POSTGRES_STATEMENT_TIMEOUT = 5.0
    POSTGRES_LOCK_TIMEOUT = 5.0
    DATABASE_POOL_SIZE = 20
