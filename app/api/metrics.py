"""Prometheus metrics. No authentication, like the health probes: serve ``/metrics`` and
``/health`` to the monitoring network only, never publicly (docs/deployment.md)."""

from __future__ import annotations

from flask import Response

from ..observability import metrics_text
from .blueprint import Blueprint

blp = Blueprint("metrics", __name__, description="Prometheus metrics")


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    responses={
        "200": {
            "description": "The metrics in Prometheus' text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }
)
def get_metrics():
    """Request counts and latencies by endpoint, and credentials created by type."""
    body, content_type = metrics_text()
    return Response(body, content_type=content_type)
