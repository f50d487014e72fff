"""Marshmallow schemas: request bodies (``*CreateSchema``) and responses, kept apart."""
