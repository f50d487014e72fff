"""A client script written for nevisIDM, run against this service unchanged (contract
section 12; tests/test_nevisidm_script.py runs it against gunicorn).

It uses only what nevisIDM's REST documentation gives: its routes, its fields, its defaults
(``limit=0``, ``returnTotalResultCount``, PATCH without ``version``), and checks every
response. Apart from how it authenticates (``NEVISIDM_API_KEY`` as a bearer token), nothing
in it is particular to this service. Standard library only, so that it runs anywhere.

    NEVISIDM_URL=http://127.0.0.1:8080 NEVISIDM_API_KEY=... python nevisidm_script.py
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

BASE = os.environ["NEVISIDM_URL"].rstrip("/") + "/nevisidm/api/core/v1"
HEADERS = {
    "Authorization": f"Bearer {os.environ['NEVISIDM_API_KEY']}",
    "Content-Type": "application/json",
    "Accept": "application/json",
}
# A Digipass data block, as a token import file would give it.
DIGIPASS_BLOCK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

checks = 0


def call(method: str, path: str, body: dict[str, Any] | None = None, expect: int = 200) -> Any:
    """One request; its JSON body (None when there is none). Stops the script when the
    status is not the one expected."""
    global checks
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), error.headers
    if status != expect:
        sys.exit(f"{method} {path}: expected {expect}, got {status}: {raw.decode()[:500]}")
    checks += 1
    if not raw:
        return None
    if not headers.get("Content-Type", "").startswith("application/json"):
        sys.exit(f"{method} {path}: not JSON: {headers.get('Content-Type')}")
    return json.loads(raw)


def check(condition: bool, what: str) -> None:
    global checks
    if not condition:
        sys.exit(f"check failed: {what}")
    checks += 1


def main() -> None:
    # -- a client, as "Create a client" documents it ---------------------------------------
    client = call(
        "POST",
        "/clients",
        {
            "extId": "script-client",
            "name": "ScriptClient",
            "displayName": {"EN": "Script client", "DE": "Skript-Mandant"},
            "remarks": "created by a nevisIDM script",
        },
        expect=201,
    )
    check(client["displayName"]["DE"] == "Skript-Mandant", "client displayName")
    listed = call("GET", "/clients?limit=0&returnTotalResultCount=true")
    check("script-client" in [item["extId"] for item in listed["items"]], "client listed")
    check(listed["_pagination"]["totalResult"] >= 1, "clients totalResult")
    check(listed["_classifications"] == {}, "clients _classifications")
    client = call("PATCH", "/clients/script-client", {"remarks": "renamed"})
    check(client["remarks"] == "renamed" and client["version"] == 2, "client PATCH")

    # -- users, as "Create a user" documents them -----------------------------------------
    for ext_id, first_name in (("script-anna", "Anna"), ("script-ben", "Ben")):
        user = call(
            "POST",
            "/script-client/users",
            {
                "extId": ext_id,
                "userState": "active",
                "loginId": ext_id,
                "languageCode": "de",
                "isTechnicalUser": False,
                "name": {"title": "Dr.", "firstName": first_name, "familyName": "Muster"},
                "gender": "other",
                "birthDate": "1990-05-17",
                "address": {"street": "Bahnhofstrasse", "city": "Zurich", "countryCode": "CH"},
                "contacts": {"email": f"{ext_id}@example.com", "mobile": "+41791234567"},
                "validity": {"from": "2020-01-01T00:00:00Z"},
                "remarks": "script user",
            },
            expect=201,
        )
        check(user["contacts"]["email"] == f"{ext_id}@example.com", "user contacts.email")
        check(user["languageCode"] == "de" and user["name"]["title"] == "Dr.", "user fields")
    users = call("GET", "/clients/script-client/users?limit=0&returnTotalResultCount=true")
    check([u["extId"] for u in users["items"]] == ["script-anna", "script-ben"], "users listed")
    check(users["_pagination"]["totalResult"] == 2, "users totalResult")
    check(users["_classifications"] == {}, "users _classifications")
    anna = call(
        "PATCH", "/script-client/users/script-anna", {"contacts": {"telephone": "+41441234567"}}
    )
    check(anna["version"] == 2 and anna["contacts"]["mobile"] == "+41791234567", "user PATCH")
    stale = call("PATCH", "/script-client/users/script-anna", {"version": 1, "remarks": "x"}, 409)
    check(stale["errors"][0]["code"] == "errors.pessimisticLockingFailure", "stale version")

    # -- a policy, as "Create a policy configuration" documents it ------------------------
    policy = call(
        "POST",
        "/script-client/policies",
        {
            "extId": "script-tickets",
            "name": "Script tickets",
            "description": "short-lived tickets",
            "policyType": "TicketPolicy",
            "defaultPolicy": False,
            "parameters": {"credentialLifetime": "3600000"},
            "version": 1,
        },
        expect=201,
    )
    check(policy["description"] == "short-lived tickets", "policy description")
    policies = call("GET", "/clients/script-client/policies?limit=0&returnTotalResultCount=true")
    check(policies["_pagination"]["totalResult"] == 3, "policies totalResult")
    policy = call("PATCH", "/script-client/policies/script-tickets", {"description": "changed"})
    check(policy["version"] == 2 and policy["description"] == "changed", "policy PATCH")

    # -- a ticket and a VASCO credential --------------------------------------------------
    ticket_path = "/script-client/users/script-anna/ticket"
    ticket = call("POST", ticket_path, {"policyExtId": "script-tickets"}, expect=201)
    plain = ticket["plainTicket"]
    call("POST", f"{ticket_path}/verify", {"ticket": plain})
    ticket = call("PATCH", ticket_path, {"identification": "portal"})
    check(ticket["identification"] == "portal" and ticket["successCount"] == 1, "ticket PATCH")
    vasco = call(
        "POST",
        "/script-client/vasco",
        {"extId": "script-dp", "vascoTokens": [{"authMode": "CR", "data": DIGIPASS_BLOCK}]},
        expect=201,
    )
    check(vasco["stateName"] == "initial" and vasco["userExtId"] is None, "VASCO created")
    call("PUT", "/script-client/users/script-anna/vasco/script-dp")
    vasco = call("PATCH", "/script-client/vasco/script-dp", {"stateName": "active"})
    check(vasco["userExtId"] == "script-anna" and vasco["stateName"] == "active", "VASCO")
    pool = call("GET", "/script-client/vasco?limit=0&returnTotalResultCount=true")
    check(pool["_pagination"]["totalResult"] == 1, "VASCO totalResult")
    credentials = call("GET", "/script-client/users/script-anna/credentials?limit=0")
    check(len(credentials["items"]) == 2, "user's credentials")

    # -- a disabled user cannot log in ----------------------------------------------------
    call("PATCH", "/script-client/users/script-anna", {"userState": "disabled"})
    refused = call("POST", f"{ticket_path}/verify", {"ticket": plain}, expect=422)
    check(refused["errors"][0]["code"] == "errors.credentialNotUsable", "disabled user")
    call("PATCH", "/script-client/users/script-anna", {"userState": "active"})
    call("POST", f"{ticket_path}/verify", {"ticket": plain})

    # -- archive and delete ---------------------------------------------------------------
    call("POST", "/script-client/users/script-ben/archive", expect=204)
    ben = call("GET", "/script-client/users/script-ben")
    check(ben["userState"] == "archived", "user archived")
    refused = call("DELETE", "/clients/script-client", expect=422)
    check("users" in refused["errors"][0]["message"], "client with users kept")
    call("DELETE", "/script-client/users/script-anna", expect=204)
    call("GET", "/script-client/users/script-anna", expect=404)
    call("GET", ticket_path, expect=404)
    vasco = call("GET", "/script-client/vasco/script-dp")
    check(vasco["userExtId"] is None and vasco["stateName"] == "initial", "VASCO back in pool")
    # The ticket that followed it went with its user: the policy may go now.
    call("DELETE", "/script-client/policies/script-tickets", expect=204)
    call("DELETE", "/script-client/users/script-ben", expect=204)
    call("DELETE", "/clients/script-client", expect=204)
    call("GET", "/clients/script-client", expect=404)
    print(f"OK: {checks} checks")


if __name__ == "__main__":
    main()
