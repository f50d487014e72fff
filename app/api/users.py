"""Users of a client (contract sections 7 and 12; nevisIDM's User Management pages)."""

from flask import url_for

from ..auth import (
    CLIENT_VIEW,
    USER_ARCHIVE,
    USER_CREATE,
    USER_DELETE,
    USER_MODIFY,
    USER_VIEW,
    require_permissions,
)
from ..repositories.users import UserRepository
from ..schemas.pagination import PageQuerySchema, page_schema
from ..schemas.users import UserCreateSchema, UserSchema, UserUpdateSchema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import client_in_path, user_in_path

blp = Blueprint("users", __name__, url_prefix=CORE_PREFIX, description="Users of a client")

USER_PATH = "/<client_ext_id>/users/<user_ext_id>"


@blp.route("/<client_ext_id>/users", methods=["POST"])
@require_permissions(USER_CREATE)
@client_in_path
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is missing, of the wrong type or value, or unknown, or "
    "custom `properties` are sent (this service has no property definitions); "
    "`errors.duplicateValue`: the extId or the loginId is taken in the client.",
)
def create_user(fields, client):
    """Create a user in the client; ``loginId`` is unique in the client."""
    user = UserRepository().create(client, **fields)
    location = url_for(".get_user", client_ext_id=client.ext_id, user_ext_id=user.ext_id)
    return user, 201, {"Location": location}


@blp.route("/clients/<client_ext_id>/users", methods=["GET"])
@require_permissions(CLIENT_VIEW, USER_VIEW)
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, page_schema(UserSchema))
def list_users(query, client_ext_id):
    """List the client's users, a page at a time (``limit``, ``continuationToken``;
    ``returnTotalResultCount=true`` adds ``_pagination.totalResult``)."""
    return UserRepository().page(client_ext_id, **query)


@blp.route(USER_PATH, methods=["GET"])
@require_permissions(USER_VIEW)
@user_in_path
@blp.response(200, UserSchema)
def get_user(user):
    """Get a user."""
    return user


@blp.route(USER_PATH, methods=["PATCH"])
@require_permissions(USER_VIEW, USER_MODIFY)
@user_in_path
@blp.arguments(UserUpdateSchema)
@blp.response(200, UserSchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is of the wrong type or value, or unknown; "
    "`errors.duplicateValue`: the loginId is taken in the client.",
)
@blp.error_response(409)
def update_user(fields, user):
    """Change a user; fields left out are left as they are.

    ``version``, when sent, must be the current one (409 otherwise); left out, the change
    applies to the current version. A user who is not ``active``, or outside its
    ``validity``, cannot use its credentials.
    """
    return UserRepository().update(user, fields)


@blp.route(USER_PATH, methods=["DELETE"])
@require_permissions(USER_DELETE)
@blp.response(204)
def delete_user(client_ext_id, user_ext_id):
    """Delete a user: its ticket is deleted and its VASCO credentials return to the client's
    pool (unassigned, ``initial``), all in one transaction."""
    UserRepository().delete(client_ext_id, user_ext_id)


@blp.route(f"{USER_PATH}/archive", methods=["POST"])
@require_permissions(USER_VIEW, USER_ARCHIVE)
@blp.response(204)
def archive_user(client_ext_id, user_ext_id):
    """Archive a user: its state becomes ``archived``, its ticket is deleted and its VASCO
    credentials return to the client's pool (unassigned, ``initial``), in one transaction."""
    UserRepository().archive(client_ext_id, user_ext_id)
