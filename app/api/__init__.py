"""One blueprint per resource, all registered with the OpenAPI-aware ``Api``."""

from __future__ import annotations

from flask_smorest import Api

CORE_PREFIX = "/nevisidm/api/core/v1"


def register_blueprints(api: Api) -> None:
    from . import clients, policies, principal, tickets, users

    for module in (clients, users, policies, tickets, principal):
        api.register_blueprint(module.blp)
