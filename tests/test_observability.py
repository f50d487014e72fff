"""JSON logs (one line per request, never a secret), metrics, request ids and the headers
every response carries."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import runpy
import secrets
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.auth import PERMISSIONS
from app.logs import JsonFormatter
from app.repositories.principals import PrincipalRepository
from tests.support import CORE, ROOT, bearer

TICKET_URL = f"{CORE}/acme/users/alice/ticket"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the app's JSON formatter writes, from every logger, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def log_entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def request_entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [entry for entry in log_entries(stream) if entry["logger"] == "app.request"]


@pytest.fixture
def named_key(app) -> Callable[[str], str]:
    """An api key of a principal with every permission, under a name of the test's choice."""

    def make(name: str) -> str:
        with app.app_context():
            _, key = PrincipalRepository().create(
                name=name, permissions=list(PERMISSIONS), client_ext_ids=None
            )
        return key

    return make


# --- the request log ----------------------------------------------------------------------


def test_each_request_is_logged_once_as_json_with_its_outcome(client, named_key, json_log):
    key = named_key("auditor")
    response = client.post(
        f"{CORE}/clients",
        json={"extId": "acme", "name": "Acme"},
        headers={**bearer(key), "X-Request-ID": "req-42"},
    )
    assert response.status_code == 201
    [entry] = request_entries(json_log)
    assert entry["request_id"] == "req-42" == response.headers["X-Request-ID"]
    assert entry["principal"] == "auditor"
    assert entry["method"] == "POST"
    assert entry["path"] == f"{CORE}/clients"
    assert entry["status"] == 201
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


@pytest.mark.parametrize(
    "created", [1795453509.042, 1795453509.0419998, 1795453509.9999996, 1795453510.0, 0.5]
)
def test_log_times_are_utc_to_the_millisecond(created):
    record = logging.LogRecord("app.test", logging.INFO, "", 0, "hello", (), None)
    record.created = created
    formatter = JsonFormatter()
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    assert json.loads(formatter.format(record))["time"] == expected
    # Again: the text of the second is reused.
    assert json.loads(formatter.format(record))["time"] == expected


def test_an_anonymous_request_is_logged_without_a_principal(client, json_log):
    assert client.get(f"{CORE}/clients/acme").status_code == 401
    [entry] = request_entries(json_log)
    assert entry["principal"] is None
    assert entry["status"] == 401


def test_the_principal_is_named_even_after_a_rollback(client, acme, named_key, json_log):
    # A second ticket trips the unique index; the rollback expires the loaded principal.
    key = named_key("ticket-issuer")
    assert client.post(TICKET_URL, json={}, headers=bearer(key)).status_code == 201
    response = client.post(TICKET_URL, json={}, headers=bearer(key))
    assert response.json["errors"][0]["code"] == "errors.ticketExists"
    assert [entry["principal"] for entry in request_entries(json_log)] == ["ticket-issuer"] * 2


def test_query_strings_are_not_logged(client, admin, acme, json_log):
    client.get(f"{CORE}/acme/vasco?limit=5&continuationToken=secret-token", headers=admin)
    [entry] = request_entries(json_log)
    assert entry["path"] == f"{CORE}/acme/vasco"
    assert "secret-token" not in json_log.getvalue()


def test_records_written_during_a_request_carry_its_id(app, client, json_log):
    @app.get("/log-something")
    def log_something():
        logging.getLogger("app.test").warning("something happened")
        return {}

    client.get("/log-something", headers={"X-Request-ID": "trace-7"})
    [entry] = [e for e in log_entries(json_log) if e["logger"] == "app.test"]
    assert entry == {
        "time": entry["time"],
        "level": "WARNING",
        "logger": "app.test",
        "message": "something happened",
        "request_id": "trace-7",
    }


def test_a_traceback_stays_inside_its_one_json_line():
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: line one\nline two" in json.loads(line)["exception"]


def test_the_log_reaches_stderr_as_json_and_caplog_still_captures(client, capsys, caplog):
    caplog.set_level(logging.INFO)
    client.get("/health/live")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert any(entry.get("path") == "/health/live" for entry in lines)
    assert any(record.name == "app.request" for record in caplog.records)


# --- request ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    ["0f8fad5b-d9cb-469f-a165-70867728950e", "lb.trace:42", "Root=1-67891233-abcdef/7+x"],
)
def test_a_sane_request_id_is_kept(client, given):
    assert (
        client.get("/health/live", headers={"X-Request-ID": given}).headers["X-Request-ID"] == given
    )


@pytest.mark.parametrize(
    "given", ["", "has space", "<script>", "x" * 129, "-starts-with-a-dash", "a\u00e9b"]
)
def test_an_insane_request_id_is_replaced(client, given):
    returned = client.get("/health/live", headers={"X-Request-ID": given}).headers["X-Request-ID"]
    assert returned != given
    assert len(returned) == 32 and int(returned, 16) >= 0


def test_every_response_gets_a_request_id(client):
    first = client.get("/health/live").headers["X-Request-ID"]
    second = client.get("/health/live").headers["X-Request-ID"]
    assert first != second


# --- headers on every response ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/health/live", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/openapi.json", None, 200),
        ("GET", "/no/such/path", None, 404),
        ("POST", f"{CORE}/clients", {"extId": "acme", "name": "Acme"}, 201),
        ("GET", f"{CORE}/clients/nobody", None, 404),
        ("GET", f"{CORE}/clients/acme", "anonymous", 401),
        ("DELETE", f"{CORE}/clients", None, 405),
        ("GET", f"{CORE}/no/such/path/at/all", None, 404),
        ("POST", f"{CORE}/clients", "x" * (1024 * 1024 + 1), 413),
        ("GET", "/nevisidm/api/principal/v1/permissions", None, 200),
    ],
)
def test_responses_carry_nosniff_and_api_responses_no_store(
    client, admin, method, path, body, status
):
    headers = {} if body == "anonymous" else admin
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, dict):
        kwargs["json"] = body
    elif isinstance(body, str) and body != "anonymous":
        kwargs.update(data=body, content_type="application/json")
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if path.startswith("/nevisidm/api/"):
        assert response.headers["Cache-Control"] == "no-store"


# --- metrics ------------------------------------------------------------------------------


def metric(client: FlaskClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_are_served_in_prometheus_format_without_authentication(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE nevisidm_http_requests_total counter" in response.get_data(as_text=True)


def test_requests_are_counted_by_url_rule_method_and_status(client, admin, acme):
    rule = f"{CORE}/clients/<client_ext_id>"
    labels = {"endpoint": rule, "method": "GET"}
    before_ok = metric(client, "nevisidm_http_requests_total", status="200", **labels)
    before_missing = metric(client, "nevisidm_http_requests_total", status="404", **labels)
    before_timed = metric(client, "nevisidm_http_request_duration_seconds_count", **labels)
    client.get(f"{CORE}/clients/acme", headers=admin)
    client.get(f"{CORE}/clients/nobody", headers=admin)
    after = client.get("/metrics").get_data(as_text=True)
    assert metric(client, "nevisidm_http_requests_total", status="200", **labels) == before_ok + 1
    assert (
        metric(client, "nevisidm_http_requests_total", status="404", **labels) == before_missing + 1
    )
    assert (
        metric(client, "nevisidm_http_request_duration_seconds_count", **labels) == before_timed + 2
    )
    # The raw path never becomes a label: extIds would make the label set unbounded.
    assert "clients/acme" not in after and "clients/nobody" not in after


def test_unmatched_paths_share_one_label(client):
    before = metric(client, "nevisidm_http_requests_total", endpoint="unmatched", status="404")
    client.get(f"/random-{secrets.token_hex(4)}")
    after = metric(client, "nevisidm_http_requests_total", endpoint="unmatched", status="404")
    assert after == before + 1


def test_unknown_methods_share_one_label(client):
    before = metric(client, "nevisidm_http_requests_total", endpoint="unmatched", method="other")
    client.open("/health/live", method="BREW")
    client.open("/health/live", method="PROPFIND")
    after = metric(client, "nevisidm_http_requests_total", endpoint="unmatched", method="other")
    assert after == before + 2
    assert 'method="BREW"' not in client.get("/metrics").get_data(as_text=True)


def test_created_tickets_are_counted_but_refused_ones_not(client, admin, acme):
    before = metric(client, "nevisidm_credentials_created_total", type="ticket")
    assert client.post(TICKET_URL, json={}, headers=admin).status_code == 201
    assert client.post(TICKET_URL, json={}, headers=admin).status_code == 422
    assert metric(client, "nevisidm_credentials_created_total", type="ticket") == before + 1


def test_created_vasco_credentials_are_counted(app, client, admin, acme):
    if "vasco.create_vasco" not in app.view_functions:
        pytest.skip("no VASCO create endpoint")
    before = metric(client, "nevisidm_credentials_created_total", type="vasco")
    body = {"vascoTokens": [{"authMode": "1", "data": base64.b64encode(b"d" * 248).decode()}]}
    assert client.post(f"{CORE}/acme/vasco", json=body, headers=admin).status_code == 201
    assert metric(client, "nevisidm_credentials_created_total", type="vasco") == before + 1


# --- no secret reaches a log --------------------------------------------------------------


def is_credential_route(rule: str) -> bool:
    return rule.startswith(CORE) and any(
        part in rule for part in ("/ticket", "/vasco", "/credentials")
    )


class SecretDriver:
    """Drives the credential endpoints with real secrets, collecting every secret it sends
    or receives: plain tickets, VASCO data blocks, the api key."""

    def __init__(self, client: FlaskClient, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin
        self.secrets = [admin["Authorization"].split()[1]]
        self.plain_ticket = ""
        self.vasco_ext_id = "token-1"

    def vasco_block(self) -> dict[str, str]:
        raw = secrets.token_bytes(248)
        data = base64.b64encode(raw).decode()
        self.secrets += [data, raw.hex(), str(raw)[2:-1]]
        return {"authMode": f"m{len(self.secrets)}", "data": data}

    def version(self, url: str) -> int:
        return self.client.get(url, headers=self.admin).json["version"]

    def body(self, endpoint: str, method: str, url: str) -> dict[str, Any] | None:
        """The body for an endpoint: a real one for those known, else one full of secrets."""
        if endpoint == "tickets.create_ticket" or endpoint == "tickets.reset_ticket":
            return {}
        if endpoint == "tickets.verify_ticket":
            return {"ticket": self.plain_ticket}
        if endpoint == "tickets.update_ticket":
            return {"version": self.version(url), "context": "changed"}
        if endpoint == "vasco.create_vasco":
            return {"extId": self.vasco_ext_id, "vascoTokens": [self.vasco_block()]}
        if endpoint == "vasco.update_vasco":
            return {"version": self.version(url), "vascoTokens": [self.vasco_block()]}
        if method in {"GET", "DELETE"}:
            return None
        return {"ticket": self.plain_ticket, "vascoTokens": [self.vasco_block()]}

    def drive(self, endpoint: str, method: str, rule: str) -> int:
        url = (
            rule.replace("<client_ext_id>", "acme")
            .replace("<user_ext_id>", "alice")
            .replace("<vasco_ext_id>", self.vasco_ext_id)
        )
        body = self.body(endpoint, method, url)
        response = self.client.open(url, method=method, json=body, headers=self.admin)
        issued = (response.get_json(silent=True) or {}).get("plainTicket")
        if issued:
            self.plain_ticket = issued
            self.secrets.append(issued)
        return response.status_code


def credential_calls(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) of every credential route: creates first, deletes last."""
    calls = []
    for rule in app.url_map.iter_rules():
        if is_credential_route(rule.rule):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                calls.append((rule.endpoint, method, rule.rule))

    def order(call: tuple[str, str, str]) -> tuple[int, str, str]:
        endpoint, method, rule = call
        phase = 0 if endpoint.endswith(".create_ticket") or "create" in endpoint else 1
        return (2 if method == "DELETE" else phase, rule, method)

    return sorted(calls, key=order)


def test_no_secret_reaches_the_log_at_debug(app, client, admin, acme, json_log, caplog, capsys):
    assert app.config["LOG_LEVEL"] == "DEBUG"  # TestConfig's; create_app applied it
    assert logging.getLogger("app").getEffectiveLevel() == logging.DEBUG
    caplog.set_level(logging.DEBUG)
    calls = credential_calls(app)
    endpoints = {endpoint for endpoint, _, _ in calls}
    assert {"tickets.create_ticket", "tickets.reset_ticket", "tickets.verify_ticket"} <= endpoints

    driver = SecretDriver(client, admin)
    statuses = {call: driver.drive(*call) for call in calls}

    assert all(status < 500 for status in statuses.values()), statuses
    for call, expected in {
        ("tickets.create_ticket", "POST"): 201,
        ("tickets.reset_ticket", "POST"): 200,
        ("tickets.verify_ticket", "POST"): 200,
        ("vasco.create_vasco", "POST"): 201,
        ("vasco.update_vasco", "PATCH"): 200,
    }.items():
        endpoint, method = call
        matching = [s for (e, m, _), s in statuses.items() if (e, m) == (endpoint, method)]
        if endpoint in endpoints:
            assert matching == [expected], (call, matching)
    assert len(request_entries(json_log)) >= len(calls)  # the log was written, at DEBUG

    outputs = {
        "JSON handler": json_log.getvalue(),
        "caplog": caplog.text,
        "caplog records": "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records),
        "stderr": capsys.readouterr().err,
    }
    assert driver.plain_ticket and len(driver.secrets) > 3
    for source, text in outputs.items():
        for secret in driver.secrets:
            assert secret not in text, f"a secret reached the log ({source})"


@pytest.fixture
def gunicorn_settings(monkeypatch, tmp_path):
    """gunicorn's settings as read from gunicorn.conf.py, with ``overrides`` on top."""
    from gunicorn.config import Config

    # Named, so that reading the file makes no directory of its own for the metrics.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    def settings(**overrides: Any) -> Config:
        config = Config()
        namespace = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
        for name, value in {**namespace, **overrides}.items():
            if name in config.settings:
                config.set(name, value)
        return config

    return settings


def test_gunicorn_builds_no_access_log_lines_unless_asked_for(gunicorn_settings, monkeypatch):
    from gunicorn.glogging import Logger

    settings = gunicorn_settings()
    built = []
    monkeypatch.setattr(Logger, "atoms", lambda *args: built.append(args) or {})
    settings.logger_class(settings).access(None, None, {}, None)
    assert built == []


def test_gunicorn_still_sends_statsd_metrics_when_asked_to(gunicorn_settings):
    from gunicorn.instrument.statsd import Statsd

    settings = gunicorn_settings(statsd_host="127.0.0.1:8125")
    assert isinstance(settings.logger_class(settings), Statsd)
