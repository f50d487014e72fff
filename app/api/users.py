from flask import url_for

from ..auth import USER_CREATE, USER_VIEW, require_permissions
from ..repositories.users import UserRepository
from ..schemas.users import UserCreateSchema, UserSchema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import client_in_path, user_in_path

blp = Blueprint("users", __name__, url_prefix=CORE_PREFIX, description="Users of a client")


@blp.route("/<client_ext_id>/users", methods=["POST"])
@require_permissions(USER_CREATE)
@client_in_path
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema)
@blp.error_response(
    422,
    "`errors.invalidData`: a field is missing, of the wrong type or value, or unknown; "
    "`errors.duplicateValue`: the extId or the loginId is taken in the client.",
)
def create_user(fields, client):
    """Create a user in the client; ``loginId`` is unique in the client."""
    user = UserRepository().create(client, **fields)
    location = url_for(".get_user", client_ext_id=client.ext_id, user_ext_id=user.ext_id)
    return user, 201, {"Location": location}


@blp.route("/<client_ext_id>/users/<user_ext_id>", methods=["GET"])
@require_permissions(USER_VIEW)
@user_in_path
@blp.response(200, UserSchema)
def get_user(user):
    """Get a user."""
    return user
