from ..auth import (
    CREDENTIAL_CREATE,
    CREDENTIAL_DELETE,
    CREDENTIAL_MODIFY,
    CREDENTIAL_VIEW,
    require_permissions,
)
from ..repositories.vasco import VascoRepository
from ..schemas.pagination import PageQuerySchema, page_schema
from ..schemas.vasco import VascoCreateSchema, VascoCredentialSchema, VascoUpdateSchema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import client_in_path, pool_in_path, vasco_in_path
from .responses import resource_location

blp = Blueprint(
    "vasco", __name__, url_prefix=CORE_PREFIX, description="VASCO (OneSpan Digipass) credentials"
)

VASCO_PATH = "/<client_ext_id>/vasco/<vasco_ext_id>"


@blp.route("/<client_ext_id>/vasco", methods=["POST"])
@require_permissions(CREDENTIAL_CREATE, CREDENTIAL_VIEW)
@pool_in_path
@blp.arguments(VascoCreateSchema)
@blp.response(201, VascoCredentialSchema, description="VASCO credential created successfully")
@blp.error_response(
    422,
    "`errors.invalidData`: a field is missing, of the wrong type or value, or unknown "
    "(one entry per problem, e.g. `vascoTokens[0].data`), or the policy is not a "
    "VascoPolicy; `errors.vascoExists`: a VASCO credential with that extId exists.",
)
def create_vasco(fields, client):
    """Create a VASCO Digipass token credential in the client, unassigned.

    ``vascoTokens`` holds 1 to 16 Digipass data blocks, each with a unique ``authMode``.
    The blocks are encrypted at rest and returned decrypted. Without ``policyExtId`` the
    client's default VascoPolicy applies.
    """
    vasco = VascoRepository().create(client, **fields)
    # url_for(".get_vasco", ...), built directly: a create's response is frequent.
    return vasco, 201, {"Location": resource_location(client.ext_id, "vasco", vasco.ext_id)}


@blp.route("/<client_ext_id>/vasco", methods=["GET"])
@require_permissions(CREDENTIAL_VIEW)
@client_in_path
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, page_schema(VascoCredentialSchema))
def list_vasco(query, client):
    """List the client's VASCO credentials, a page at a time (``limit``, ``continuationToken``)."""
    return VascoRepository().page(client, **query)


@blp.route(VASCO_PATH, methods=["GET"])
@require_permissions(CREDENTIAL_VIEW)
@vasco_in_path
@blp.response(200, VascoCredentialSchema)
def get_vasco(vasco):
    """Get a VASCO credential."""
    return vasco


@blp.route(VASCO_PATH, methods=["PATCH"])
@require_permissions(CREDENTIAL_MODIFY, CREDENTIAL_VIEW)
@vasco_in_path
@blp.arguments(VascoUpdateSchema)
@blp.response(200, VascoCredentialSchema)
def update_vasco(fields, vasco):
    """Change a VASCO credential. ``version`` must be the current one (else 409).

    ``vascoTokens``, when given, replaces every data block.
    """
    return VascoRepository().update(vasco, fields)


@blp.route(VASCO_PATH, methods=["DELETE"])
@require_permissions(CREDENTIAL_DELETE)
@blp.response(204)
@blp.error_response(409)
def delete_vasco(client_ext_id, vasco_ext_id):
    """Delete a VASCO credential and its data blocks."""
    VascoRepository().delete(client_ext_id, vasco_ext_id)


@blp.route("/<client_ext_id>/users/<user_ext_id>/vasco/<vasco_ext_id>", methods=["PUT"])
@require_permissions(CREDENTIAL_MODIFY, CREDENTIAL_VIEW)
@blp.response(200, VascoCredentialSchema)
@blp.error_response(
    422, "`errors.invalidData`: the credential is assigned to another user; unassign it first."
)
@blp.error_response(409)
def assign_vasco(client_ext_id, user_ext_id, vasco_ext_id):
    """Assign a VASCO credential to the user; its state stays as it is.

    A credential already held by another user must be unassigned first.
    """
    return VascoRepository().assign(client_ext_id, user_ext_id, vasco_ext_id)


@blp.route(f"{VASCO_PATH}/unassign", methods=["PUT"])
@require_permissions(CREDENTIAL_MODIFY, CREDENTIAL_VIEW)
@blp.response(200, VascoCredentialSchema)
@blp.error_response(409)
def unassign_vasco(client_ext_id, vasco_ext_id):
    """Take a VASCO credential from its user; its state returns to ``initial``."""
    return VascoRepository().unassign(client_ext_id, vasco_ext_id)
