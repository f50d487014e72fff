"""Clients (tenants): contract sections 7 and 12, nevisIDM's Client Management pages."""

from flask import url_for

from ..auth import (
    CLIENT_CREATE,
    CLIENT_DELETE,
    CLIENT_MODIFY,
    CLIENT_VIEW,
    authenticated_principal,
    require_permissions,
)
from ..repositories.clients import ClientRepository
from ..schemas.clients import ClientCreateSchema, ClientSchema, ClientUpdateSchema
from ..schemas.pagination import PageQuerySchema, page_schema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import client_in_path

blp = Blueprint("clients", __name__, url_prefix=CORE_PREFIX, description="Clients (tenants)")

CLIENT_PATH = "/clients/<client_ext_id>"


@blp.route("/clients", methods=["POST"])
@require_permissions(CLIENT_CREATE, every_client=True)
@blp.arguments(ClientCreateSchema)
@blp.response(201, ClientSchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is missing, of the wrong type or value, or unknown; "
    "`errors.duplicateValue`: the extId or the name is taken.",
)
def create_client(fields):
    """Create a client, with its default TicketPolicy and VascoPolicy."""
    client = ClientRepository().create(**fields)
    return client, 201, {"Location": url_for(".get_client", client_ext_id=client.ext_id)}


@blp.route("/clients", methods=["GET"])
@require_permissions(CLIENT_VIEW)
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, page_schema(ClientSchema))
def list_clients(query):
    """List the clients of the caller's data room, a page at a time (``limit``,
    ``continuationToken``; ``returnTotalResultCount=true`` adds ``_pagination.totalResult``)."""
    return ClientRepository().page(authenticated_principal().client_ext_ids, **query)


@blp.route(CLIENT_PATH, methods=["GET"])
@require_permissions(CLIENT_VIEW)
@client_in_path
@blp.response(200, ClientSchema)
def get_client(client):
    """Get a client."""
    return client


@blp.route(CLIENT_PATH, methods=["PATCH"])
@require_permissions(CLIENT_VIEW, CLIENT_MODIFY)
@client_in_path
@blp.arguments(ClientUpdateSchema)
@blp.response(200, ClientSchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is of the wrong type or value, or unknown; "
    "`errors.duplicateValue`: the name is taken.",
)
@blp.error_response(409)
def update_client(fields, client):
    """Change a client's ``name``, ``displayName`` or ``remarks``; fields left out are left
    as they are. ``version``, when sent, must be the current one (409 otherwise)."""
    return ClientRepository().update(client, fields)


@blp.route(CLIENT_PATH, methods=["DELETE"])
@require_permissions(CLIENT_DELETE)
@blp.response(204)
@blp.error_response(422, "`errors.invalidData`: the client still has users.")
def delete_client(client_ext_id):
    """Delete a client without users, with its policies and its unassigned VASCO
    credentials. A client that still has users is refused (422): delete them first."""
    ClientRepository().delete(client_ext_id)
