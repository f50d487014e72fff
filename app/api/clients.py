from flask import url_for

from ..auth import CLIENT_CREATE, CLIENT_VIEW, require_permissions
from ..repositories.clients import ClientRepository
from ..schemas.clients import ClientCreateSchema, ClientSchema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import client_in_path

blp = Blueprint("clients", __name__, url_prefix=CORE_PREFIX, description="Clients (tenants)")


@blp.route("/clients", methods=["POST"])
@require_permissions(CLIENT_CREATE, every_client=True)
@blp.arguments(ClientCreateSchema)
@blp.response(201, ClientSchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is missing, of the wrong type or value, or unknown; "
    "`errors.duplicateValue`: the extId is taken.",
)
def create_client(fields):
    """Create a client, with its default TicketPolicy and VascoPolicy."""
    client = ClientRepository().create(**fields)
    return client, 201, {"Location": url_for(".get_client", client_ext_id=client.ext_id)}


@blp.route("/clients/<client_ext_id>", methods=["GET"])
@require_permissions(CLIENT_VIEW)
@client_in_path
@blp.response(200, ClientSchema)
def get_client(client):
    """Get a client."""
    return client
