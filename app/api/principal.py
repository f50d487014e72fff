from ..auth import authenticated_principal, require_permissions
from ..schemas.principals import PermissionsSchema
from .blueprint import Blueprint

blp = Blueprint(
    "principal",
    __name__,
    url_prefix="/nevisidm/api/principal/v1",
    description="The calling principal",
)


@blp.route("/permissions", methods=["GET"])
@require_permissions()
@blp.response(200, PermissionsSchema)
def get_permissions():
    """The elementary permissions the caller holds."""
    return authenticated_principal()
