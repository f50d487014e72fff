"""Schemathesis hooks of `make fuzz`, loaded by test_fuzz.py through SCHEMATHESIS_HOOKS (the
api key is in FUZZ_API_KEY). They let generated requests past two checks that random values
almost never pass, so that the code behind them is fuzzed too; keep the stateful phase's
requests off policies its clients do not hold; and note the calls of that phase for
test_fuzz.py's report (in FUZZ_STATEFUL_LOG)."""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis

# The plain ticket values seen in create and reset responses, by ticket URL.
plain_tickets: dict[str, str] = {}


def ticket_url(case: Any) -> str:
    url = case.as_transport_kwargs()["url"]
    return url.removesuffix("/reset").removesuffix("/verify")


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    record_stateful_call(case, response)
    if case.method.upper() == "POST" and response.status_code in (200, 201):
        try:
            plain_ticket = response.json().get("plainTicket")
        except (ValueError, AttributeError):
            return
        if plain_ticket:
            plain_tickets[ticket_url(case)] = plain_ticket


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Three PATCH bodies in four get the credential's current ``version``, and three ticket
    verifications in four the ticket's value (as issued by create or reset).

    A credential's version moves with every change, reset and verification, so a generated
    version is hardly ever the current one, and a generated ticket is never right: without
    this, PATCH would nearly always meet 409 and a verification 422. The rest keep what was
    generated, for those paths.
    """
    body = case.body
    if not isinstance(body, dict):
        return
    if in_stateful_phase(case) and isinstance(body.get("policyExtId"), str):
        # The stateful phase works in clients it has just created, which hold their default
        # policies only: a generated policyExtId names none, and its 404 would read as the
        # created object gone missing (check ensure_resource_availability). Left out, the
        # default policy applies; the other phases send policy extIds (seed-data.toml).
        del body["policyExtId"]
    method, path = case.method.upper(), case.operation.path
    if method == "PATCH":
        version = body.get("version")
        if isinstance(version, str) and version.isascii() and version.isdigit():
            version = int(version)  # the document allows a version as a string of digits
        if isinstance(version, int) and not isinstance(version, bool) and version % 4:
            current = current_version(case.as_transport_kwargs()["url"])
            if current is not None:
                body["version"] = current
    elif method == "POST" and path.endswith("/ticket/verify"):
        presented = body.get("ticket")
        plain_ticket = plain_tickets.get(ticket_url(case))
        if isinstance(presented, str) and plain_ticket and len(presented) % 4:
            body["ticket"] = plain_ticket


def in_stateful_phase(case: Any) -> bool:
    return case.meta is not None and case.meta.phase.name == "stateful"


def record_stateful_call(case: Any, response: Any) -> None:
    """A line ``METHOD PATH STATUS`` for each call of the stateful phase, in the file named by
    FUZZ_STATEFUL_LOG: what test_fuzz.py reports as the operations that phase reached."""
    log = os.environ.get("FUZZ_STATEFUL_LOG")
    if log and in_stateful_phase(case):
        with open(log, "a") as lines:
            lines.write(f"{case.method.upper()} {case.operation.path} {response.status_code}\n")


def current_version(url: str) -> int | None:
    headers = {"Authorization": f"Bearer {os.environ['FUZZ_API_KEY']}"}
    try:
        response = requests.get(url, headers=headers, timeout=30)
    except requests.RequestException:
        return None
    return response.json()["version"] if response.status_code == 200 else None
