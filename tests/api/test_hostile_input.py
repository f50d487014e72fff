"""The work a request costs is bounded by what it may carry (contract section 8): lists over
their maximum refused before their items are looked at, at most 50 error entries, policy
parameters and pages bounded, and a chunked body held to the size limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from app.auth import PERMISSIONS
from app.errors import MAX_ERROR_ENTRIES
from tests.support import (
    CORE,
    ROOT,
    bearer,
    count_rows,
    create_vasco,
    empty_objects_body,
    make_app,
    tokens,
)

VASCO_URL = f"{CORE}/acme/vasco"
POLICIES_URL = f"{CORE}/acme/policies"
BODY_LIMIT = 1024 * 1024


def post_json(client: FlaskClient, url: str, body: bytes, headers: dict[str, str]):
    return client.post(url, data=body, content_type="application/json", headers=headers)


# --- lists over their maximum ---------------------------------------------------------------


def test_a_megabyte_of_empty_token_objects_is_one_cheap_422(app, client, admin, acme):
    body, count = empty_objects_body()
    assert count > 340_000

    started = time.process_time()
    response = post_json(client, VASCO_URL, body, admin)
    cpu_seconds = time.process_time() - started

    assert response.status_code == 422
    assert response.json == {
        "errors": [
            {
                "code": "errors.invalidData",
                "message": f"vascoTokens: Must hold at most 16 items, not {count}.",
                "field": "vascoTokens",
            }
        ]
    }
    assert len(response.data) < 16 * 1024
    assert cpu_seconds < 1.0, f"{cpu_seconds:.3f} s of CPU"
    assert count_rows(app, "credentials") == 0


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_seventeen_tokens_are_refused_before_any_is_looked_at(client, admin, acme, method):
    # Seventeen bad blocks: had they been looked at, each would be a problem of its own.
    bad = [{"authMode": "!", "data": "not base64"}] * 17
    if method == "POST":
        response = create_vasco(client, admin, vascoTokens=bad)
    else:
        assert create_vasco(client, admin, extId="dp-1").status_code == 201
        body = {"version": 1, "vascoTokens": bad}
        response = client.patch(f"{VASCO_URL}/dp-1", json=body, headers=admin)
    assert response.status_code == 422
    assert [(e["field"], e["message"]) for e in response.json["errors"]] == [
        ("vascoTokens", "vascoTokens: Must hold at most 16 items, not 17.")
    ]


def test_sixteen_tokens_are_accepted(client, admin, acme):
    response = create_vasco(client, admin, vascoTokens=tokens(*(f"M{i}" for i in range(16))))
    assert response.status_code == 201, response.json
    assert len(response.json["vascoTokens"]) == 16


# --- at most 50 error entries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("problems", "shown", "left_out"),
    [(MAX_ERROR_ENTRIES, MAX_ERROR_ENTRIES, 0), (MAX_ERROR_ENTRIES + 1, 49, 2), (5000, 49, 4951)],
)
def test_a_response_carries_at_most_50_error_entries(client, admin, problems, shown, left_out):
    # One problem per unknown field (the body has no valid name either: one problem more).
    body = {f"unknown{index:05d}": 1 for index in range(problems - 1)}
    response = client.post(f"{CORE}/clients", json=body, headers=admin)

    assert response.status_code == 422
    errors = response.json["errors"]
    assert len(errors) == min(problems, MAX_ERROR_ENTRIES)
    assert all(error["code"] == "errors.invalidData" for error in errors)
    named = [error for error in errors if "field" in error]
    assert len(named) == shown
    if left_out:
        assert errors[-1] == {
            "code": "errors.invalidData",
            "message": f"{left_out} more problems were left out; a response shows at most 50.",
        }


def test_a_megabyte_of_unstorable_strings_is_a_bounded_422(client, admin, acme):
    # Every item an unstorable string (found before the schema runs): 100,000+ problems.
    head, item, tail = b'{"vascoTokens": [', b'"\\u0000"', b"]}"
    body = head + b",".join([item] * ((BODY_LIMIT - 20) // (len(item) + 1))) + tail
    started = time.process_time()
    response = post_json(client, VASCO_URL, body, admin)
    cpu_seconds = time.process_time() - started

    assert response.status_code == 422
    assert len(response.json["errors"]) == MAX_ERROR_ENTRIES
    assert "more problems were left out" in response.json["errors"][-1]["message"]
    assert len(response.data) < 16 * 1024
    assert cpu_seconds < 1.0, f"{cpu_seconds:.3f} s of CPU"


# --- policy parameters ----------------------------------------------------------------------


def create_policy(client: FlaskClient, admin: dict[str, str], parameters: dict[str, str]):
    body = {"name": "Limits", "policyType": "TicketPolicy", "parameters": parameters}
    return client.post(POLICIES_URL, json=body, headers=admin)


def test_policy_parameters_at_their_limits_are_accepted(client, admin, acme):
    parameters = {f"p{index:02d}" + "n" * 61: "v" * 1024 for index in range(64)}
    assert all(len(name) == 64 for name in parameters)
    response = create_policy(client, admin, parameters)
    assert response.status_code == 201, response.json
    assert response.json["parameters"] == parameters


@pytest.mark.parametrize(
    ("parameters", "field", "message"),
    [
        (
            {f"p{index}": "v" for index in range(65)},
            "parameters",
            "Must hold at most 64 parameters, not 65.",
        ),
        ({"n" * 65: "v"}, "parameters." + "n" * 65 + ".key", "Length must be between 1 and 64."),
        ({"note": "v" * 1025}, "parameters.note.value", "Longer than maximum length 1024."),
    ],
    ids=["65-entries", "long-name", "long-value"],
)
def test_policy_parameters_over_a_limit_are_422(client, admin, acme, parameters, field, message):
    response = create_policy(client, admin, parameters)
    assert response.status_code == 422
    assert [(e["field"], e["message"]) for e in response.json["errors"]] == [
        (field, f"{field}: {message}")
    ]


def test_a_megabyte_of_policy_parameters_is_refused_before_any_is_looked_at(
    app, client, admin, acme
):
    # Every name and value bad too: had they been looked at, each would be a problem.
    entries = b",".join(b'"%d%s":"%s"' % (i, b"n" * 64, b"v" * 8) for i in range(12_000))
    body = b'{"name": "P", "policyType": "TicketPolicy", "parameters": {' + entries + b"}}"
    assert len(body) <= BODY_LIMIT
    started = time.process_time()
    response = post_json(client, POLICIES_URL, body, admin)
    cpu_seconds = time.process_time() - started

    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["parameters"]
    assert cpu_seconds < 1.0, f"{cpu_seconds:.3f} s of CPU"
    assert count_rows(app, "policies") == 2  # the client's two defaults


# --- pages ----------------------------------------------------------------------------------


@pytest.fixture
def many_vasco(client, admin, acme) -> None:
    """101 VASCO credentials in 'acme': one more than a page holds."""
    for index in range(101):
        body = {"extId": f"dp-{index:03d}", "vascoTokens": tokens("CR", size=8)}
        response = client.post(VASCO_URL, json=body, headers=admin)
        assert response.status_code == 201, response.json


@pytest.mark.parametrize("query", ["", "?limit=0", "?limit=100"], ids=["absent", "zero", "100"])
def test_a_page_holds_at_most_100_items(client, admin, many_vasco, query):
    page = client.get(f"{VASCO_URL}{query}", headers=admin).json
    assert len(page["items"]) == 100
    assert page["_pagination"]["limit"] == 100
    token = page["_pagination"]["continuationToken"]
    rest = client.get(VASCO_URL, query_string={"continuationToken": token}, headers=admin).json
    assert [item["extId"] for item in rest["items"]] == ["dp-100"]


@pytest.mark.parametrize("url", [VASCO_URL, f"{CORE}/acme/users/alice/credentials"])
@pytest.mark.parametrize("limit", ["101", "1000", "-1"])
def test_a_page_limit_outside_1_to_100_is_422(client, admin, acme, url, limit):
    response = client.get(url, query_string={"limit": limit}, headers=admin)
    assert response.status_code == 422
    [error] = response.json["errors"]
    assert error["field"] == "limit"


# --- chunked bodies -------------------------------------------------------------------------


def post_chunked(client: FlaskClient, url: str, body: bytes, headers: dict[str, str]):
    """POST ``body`` as a WSGI server hands over a chunked one: no ``Content-Length``, and
    ``wsgi.input_terminated`` set (gunicorn sets it; the test client cannot send this)."""
    environ = EnvironBuilder(
        path=url,
        method="POST",
        data=body,
        content_type="application/json",
        headers={**headers, "Transfer-Encoding": "chunked"},
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    return client.open(Request(environ))


def padded_client_body(name: str, size: int) -> bytes:
    """A JSON object creating client ``name``, padded with blanks to ``size`` bytes: valid
    JSON at any length, and at the limit's length too if it were cut there."""
    body = json.dumps({"extId": name, "name": name}).encode()
    return body + b" " * (size - len(body))


@pytest.mark.parametrize(
    ("size", "status"),
    [(BODY_LIMIT, 201), (BODY_LIMIT + 1, 413), (1_200_000, 413)],
    ids=["at-the-limit", "one-byte-over", "1.2MB"],
)
def test_a_chunked_body_is_held_to_the_size_limit(app, client, admin, size, status):
    response = post_chunked(client, f"{CORE}/clients", padded_client_body("chunky", size), admin)
    assert response.status_code == status, response.json
    if status == 413:
        assert response.json["errors"][0]["code"] == "errors.invalidData"
        assert str(BODY_LIMIT) in response.json["errors"][0]["message"]
    assert count_rows(app, "clients") == (1 if status == 201 else 0)


def test_a_chunked_body_is_held_to_a_configured_limit(database_url, make_key):
    app = make_app(database_url, MAX_CONTENT_LENGTH=100)
    headers = bearer(make_key(*PERMISSIONS))
    client = app.test_client()
    assert (
        post_chunked(client, f"{CORE}/clients", padded_client_body("a", 101), headers).status_code
        == 413
    )
    assert (
        post_chunked(client, f"{CORE}/clients", padded_client_body("a", 100), headers).status_code
        == 201
    )


# --- memory ---------------------------------------------------------------------------------

MEMORY_PROBE = """
import json, sys, tracemalloc
from app.auth import PERMISSIONS
from app.repositories.principals import PrincipalRepository
from tests.support import CORE, empty_objects_body, make_app

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

app = make_app(sys.argv[1], LOG_LEVEL="WARNING")
with app.app_context():
    _, key = PrincipalRepository().create("memory-probe", list(PERMISSIONS), None)
client = app.test_client()
headers = {"Authorization": f"Bearer {key}"}
body, _ = empty_objects_body()
url = f"{CORE}/memory-probe/vasco"

def send():
    response = client.post(url, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 422, response.status_code

client.post(f"{CORE}/clients", json={"extId": "memory-probe", "name": "m"}, headers=headers)
send()  # warm: every module, schema and statement the request needs is loaded
rss_before = rss_kib()
for _ in range(3):
    send()
rss_after = rss_kib()
# Last: tracemalloc's own tables would count in the RSS.
tracemalloc.start()
traced_before, _ = tracemalloc.get_traced_memory()
send()
traced_after, traced_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
print(json.dumps({
    "rss_before_kib": rss_before,
    "rss_after_kib": rss_after,
    "traced_peak_bytes": traced_peak - traced_before,
    "traced_retained_bytes": traced_after - traced_before,
}))
"""


def test_a_megabyte_of_empty_token_objects_leaves_memory_as_it_was(app, database_url):
    """In a process of its own: the peak of what the request allocates stays bounded, and
    what it allocated is given back (tracemalloc, steady on a shared machine; the RSS is
    checked with the contract's 20 MB margin)."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, database_url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout.splitlines()[-1])
    # The parsed body alone is ~350,000 dicts: about 30 MB while the request runs.
    assert measured["traced_peak_bytes"] < 64 * 1024 * 1024, measured
    assert measured["traced_retained_bytes"] < 1024 * 1024, measured
    assert measured["rss_after_kib"] - measured["rss_before_kib"] < 20 * 1024, measured
