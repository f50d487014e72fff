"""One blueprint per resource, all registered with the OpenAPI-aware ``Api``."""

from __future__ import annotations

from flask_smorest import Api

CORE_PREFIX = "/nevisidm/api/core/v1"


def register_blueprints(api: Api) -> None:
    from . import (
        clients,
        credentials,
        health,
        metrics,
        policies,
        principal,
        tickets,
        users,
        vasco,
    )
    from .openapi import created_links

    modules = (clients, users, policies, tickets, vasco, credentials, principal, health, metrics)
    for module in modules:
        api.register_blueprint(module.blp)
    # Links between operations of different blueprints: once every blueprint is in.
    created_links(api.spec)
