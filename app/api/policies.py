"""Credential policies: contract sections 7 and 12, nevisIDM's policy configuration pages."""

from flask import url_for

from ..auth import (
    CLIENT_VIEW,
    POLICY_CREATE,
    POLICY_DELETE,
    POLICY_MODIFY,
    POLICY_VIEW,
    require_permissions,
)
from ..repositories.policies import PolicyRepository
from ..schemas.pagination import PageQuerySchema, page_schema
from ..schemas.policies import PolicyCreateSchema, PolicySchema, PolicyUpdateSchema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import client_in_path, policy_in_path

blp = Blueprint("policies", __name__, url_prefix=CORE_PREFIX, description="Credential policies")

POLICY_PATH = "/<client_ext_id>/policies/<policy_ext_id>"


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
    """Create a TicketPolicy or VascoPolicy. A new default replaces the old default of its type.

    ``version`` may be sent, as nevisIDM documents it; a new policy is at version 1.
    """
    policy = PolicyRepository().create(client, **fields)
    location = url_for(".get_policy", client_ext_id=client.ext_id, policy_ext_id=policy.ext_id)
    return policy, 201, {"Location": location}


@blp.route("/clients/<client_ext_id>/policies", methods=["GET"])
@require_permissions(CLIENT_VIEW, POLICY_VIEW)
@client_in_path
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, page_schema(PolicySchema))
def list_policies(query, client):
    """List the client's policies, a page at a time (``limit``, ``continuationToken``;
    ``returnTotalResultCount=true`` adds ``_pagination.totalResult``)."""
    return PolicyRepository().page(client, **query)


@blp.route(POLICY_PATH, methods=["GET"])
@require_permissions(POLICY_VIEW)
@policy_in_path
@blp.response(200, PolicySchema)
def get_policy(policy):
    """Get a policy."""
    return policy


@blp.route(POLICY_PATH, methods=["PATCH"])
@require_permissions(POLICY_VIEW, POLICY_MODIFY)
@policy_in_path
@blp.arguments(PolicyUpdateSchema)
@blp.response(200, PolicySchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is of the wrong type or value, or unknown, a known "
    "parameter has a bad value, or `defaultPolicy` is false for the default policy.",
)
@blp.error_response(409)
def update_policy(fields, policy):
    """Change a policy; fields left out are left as they are, ``parameters`` replaces every
    parameter. ``defaultPolicy: true`` makes it the default of its type in place of the old
    one. ``version``, when sent, must be the current one (409 otherwise)."""
    return PolicyRepository().update(policy, fields)


@blp.route(POLICY_PATH, methods=["DELETE"])
@require_permissions(POLICY_DELETE)
@blp.response(204)
@blp.error_response(
    422, "`errors.invalidData`: the policy is its type's default, or credentials follow it."
)
def delete_policy(client_ext_id, policy_ext_id):
    """Delete a policy that is not its type's default and that no credential follows."""
    PolicyRepository().delete(client_ext_id, policy_ext_id)
