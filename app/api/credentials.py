from ..auth import CREDENTIAL_VIEW, require_permissions
from ..repositories.user_credentials import UserCredentialsRepository
from ..schemas.pagination import PageQuerySchema
from ..schemas.user_credentials import UserCredentialPageSchema
from . import CORE_PREFIX
from .blueprint import Blueprint
from .path import user_in_path

blp = Blueprint("credentials", __name__, url_prefix=CORE_PREFIX, description="A user's credentials")


@blp.route("/<client_ext_id>/users/<user_ext_id>/credentials", methods=["GET"])
@require_permissions(CREDENTIAL_VIEW)
@user_in_path
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, UserCredentialPageSchema)
def list_user_credentials(query, user):
    """List the user's credentials of every type (ticket, assigned VASCO), a page at a time
    (``limit``, ``continuationToken``); each item has the fields of its ``type``."""
    return UserCredentialsRepository().page(user, **query)
