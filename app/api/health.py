"""Health probes for load balancers and orchestrators. No authentication: they say nothing
about the data, and a probe holds no api key."""

from __future__ import annotations

from ..readiness import check_database_ready
from ..schemas.health import HealthSchema
from .blueprint import Blueprint

blp = Blueprint("health", __name__, url_prefix="/health", description="Health probes")

OK = {"status": "ok"}


@blp.route("/live", methods=["GET"])
@blp.response(200, HealthSchema, description="The process answers requests")
def check_liveness():
    """Liveness: the process answers. It does not touch the database, so a database outage
    does not get healthy instances restarted."""
    return OK


@blp.route("/ready", methods=["GET"])
@blp.response(200, HealthSchema, description="The database answers and its schema is migrated")
@blp.alt_response(503, description="errors.serviceUnavailable: not ready, the message says why")
def check_readiness():
    """Readiness: the database answers and its schema is at the newest migration this release
    ships (or newer, during a rolling upgrade). 503 ``errors.serviceUnavailable`` otherwise."""
    check_database_ready()
    return OK
