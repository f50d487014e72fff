"""Configuration, read from the environment in one place."""

from __future__ import annotations

import os


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
    # Seconds an SQLite writer waits for the lock before the request gets a 503.
    SQLITE_BUSY_TIMEOUT = float(os.environ.get("SQLITE_BUSY_TIMEOUT", 30))

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


class TestConfig(Config):
    """Settings for the test suite: deterministic, nothing read from the developer's shell."""

    TESTING = True
    APP_ENV = "test"
    BOOTSTRAP_API_KEY = None
    # A fixed, test-only key (Base64 of 32 bytes).
    CREDENTIAL_ENCRYPTION_KEY = "dGVzdC1vbmx5LWtleS1uZXZlci11c2UtaXQtbGl2ZSE="
    CREDENTIAL_ENCRYPTION_OLD_KEYS = None
    LOG_LEVEL = "DEBUG"
