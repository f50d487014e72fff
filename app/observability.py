"""What the service tells its operators about each request: its id, one log line, metrics.
(Log records themselves are JSON lines: app/logs.py.)

* Every request is logged once, when it completes: request id, principal, method, path,
  status and duration. Never bodies, headers or query strings: bodies carry ``plainTicket``
  and VASCO data, headers carry api keys.
* Prometheus metrics count requests by endpoint (the URL rule, so that extIds do not become
  label values), method and status, time them, and count the credentials created by type.
  Under gunicorn the workers share them through ``PROMETHEUS_MULTIPROC_DIR``.
* Every response says ``X-Content-Type-Options: nosniff``; API responses also say
  ``Cache-Control: no-store``, since their bodies may hold secrets.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

API_PREFIX = "/nevisidm/api/"
REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is kept when it is short and made of characters that are safe in
# any log pipeline; anything else is replaced by a generated one.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")

# The endpoints that create credentials, and the type each creates.
CREDENTIAL_CREATE_ENDPOINTS = {
    "tickets.create_ticket": "ticket",
    "vasco.create_vasco": "vasco",
}

# Label values must come from a small set: a method outside it is counted as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

request_log = logging.getLogger("app.request")

HTTP_REQUESTS = Counter(
    "nevisidm_http_requests",
    "HTTP requests answered, by endpoint (URL rule), method and status.",
    ["endpoint", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "nevisidm_http_request_duration_seconds",
    "Time from the start of request handling to the response, by endpoint and method.",
    ["endpoint", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CREDENTIALS_CREATED = Counter(
    "nevisidm_credentials_created",
    "Credentials created, by type.",
    ["type"],
)


class LabelledChildren:
    """A metric's children by their label values, remembered: ``labels()`` checks and
    converts its arguments under a lock on every call. The label values come from small
    sets (see above), so the dict stays small."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


_REQUESTS_BY_LABELS = LabelledChildren(HTTP_REQUESTS)
_DURATION_BY_LABELS = LabelledChildren(HTTP_REQUEST_DURATION)
_CREATED_BY_TYPE = LabelledChildren(CREDENTIALS_CREATED)


class RequestGlobals(Flask.app_ctx_globals_class):
    """``flask.g`` that notes the authenticated principal's name as ``g.principal`` is set.

    A rollback later in the request (a unique constraint that fired) expires the loaded
    principal; the request log must name it without going back to the database.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "principal" and value is not None:
            super().__setattr__("principal_name", value.name)
        super().__setattr__(name, value)


def request_id_from(header: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


def start_request() -> None:
    state = g._get_current_object()
    header = request.headers.get(REQUEST_ID_HEADER)
    state.request_id = request_id_from(header)
    state.request_started = time.perf_counter()


def finish_request(response: Response) -> Response:
    """Headers every response carries, the metrics, and the one log line of the request."""
    # The request and its globals, looked up once: each use of a proxy looks them up.
    current, state = request._get_current_object(), g._get_current_object()
    path, status = current.path, response.status_code
    headers = response.headers
    # Nothing else sets these two: added, not set (which would look for them first).
    headers.add("X-Content-Type-Options", "nosniff")
    if status == 204:
        del headers["Content-Type"]  # no content, so no type
    if path.startswith(API_PREFIX):
        headers["Cache-Control"] = "no-store"
    request_id = state.get("request_id") or request_id_from(None)
    headers.add(REQUEST_ID_HEADER, request_id)

    started = state.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    rule = current.url_rule
    endpoint = rule.rule if rule is not None else "unmatched"
    method = current.method if current.method in HTTP_METHODS else "other"
    _REQUESTS_BY_LABELS(endpoint, method, str(status)).inc()
    _DURATION_BY_LABELS(endpoint, method).observe(seconds)
    credential_type = CREDENTIAL_CREATE_ENDPOINTS.get(current.endpoint or "")
    if credential_type and status == 201:
        _CREATED_BY_TYPE(credential_type).inc()

    # The path only: query strings and bodies stay out of the log.
    request_log.info(
        "%s %s %s",
        current.method,
        path,
        status,
        extra={
            "request_id": request_id,
            "principal": state.get("principal_name"),
            "method": current.method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
        },
    )
    return response


def metrics_text() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type.

    With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn.conf.py sets it), every worker writes its
    values to files there and this reads them all, whichever worker answers the scrape.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def register_request_hooks(app: Flask) -> None:
    app.app_ctx_globals_class = RequestGlobals
    app.before_request(start_request)
    app.after_request(finish_request)
