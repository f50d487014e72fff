from flask import url_for

from ..auth import POLICY_CREATE, POLICY_VIEW, require_permissions
from ..repositories.policies import PolicyRepository
from ..schemas.policies import PolicyCreateSchema, PolicySchema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import client_in_path

blp = Blueprint("policies", __name__, url_prefix=CORE_PREFIX, description="Credential policies")


@blp.route("/<client_ext_id>/policies", methods=["POST"])
@require_permissions(POLICY_CREATE)
@client_in_path
@blp.arguments(PolicyCreateSchema)
@blp.response(201, PolicySchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is missing, of the wrong type or value, or unknown, "
    "or a known parameter has a bad value; "
    "`errors.duplicateValue`: the extId is taken in the client.",
)
def create_policy(fields, client):
    """Create a TicketPolicy or VascoPolicy. A new default replaces the old default of its type."""
    policy = PolicyRepository().create(client, **fields)
    location = url_for(".get_policy", client_ext_id=client.ext_id, policy_ext_id=policy.ext_id)
    return policy, 201, {"Location": location}


@blp.route("/<client_ext_id>/policies/<policy_ext_id>", methods=["GET"])
@require_permissions(POLICY_VIEW)
@client_in_path
@blp.response(200, PolicySchema)
def get_policy(client, policy_ext_id):
    """Get a policy."""
    return PolicyRepository().get(client, policy_ext_id)
