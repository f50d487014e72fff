"""The operations of the OpenAPI document as a client sees them (contract section 11): their
``operationId``, the links from each create to the operations on what it created, and the
error responses each can give (derived from what its view declares: ``error_statuses``).

Both are derived here, in one place, from what the views already say: the operation id from
the view's name, the links from the paths and their parameters. Generated clients name their
functions after the operation ids (``create_ticket.sync(...)``), and stateful testing
(schemathesis) follows the links from a create to the calls on its result.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from flask_smorest.utils import resolve_schema_instance
from marshmallow import Schema

from ..schemas.common import Version
from .docs import ERROR_RESPONSES, LOCATION_HEADER, camel_case

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# A view's operation id is its name in camelCase (``tickets.create_ticket``: ``createTicket``).
# The VASCO views are named short for the credential they act on; their operations say it.
RENAMED_OPERATIONS = {
    "vasco.create_vasco": "create_vasco_credential",
    "vasco.list_vasco": "list_vasco_credentials",
    "vasco.get_vasco": "get_vasco_credential",
    "vasco.update_vasco": "update_vasco_credential",
    "vasco.delete_vasco": "delete_vasco_credential",
    "vasco.assign_vasco": "assign_vasco_credential",
    "vasco.unassign_vasco": "unassign_vasco_credential",
}


def operation_id(endpoint: str) -> str:
    """The operation id of the view registered as ``endpoint`` (``blueprint.view_name``)."""
    view_name = RENAMED_OPERATIONS.get(endpoint, endpoint.rpartition(".")[2])
    return camel_case(view_name)


def _operations(paths: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, path_item in paths.items():
        for method in HTTP_METHODS:
            if method in path_item:
                yield path, method, path_item[method]


def _parameters(path: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", path))


@dataclass(frozen=True)
class Create:
    """A create operation, and where what it creates is read."""

    operation: dict[str, Any]
    response: dict[str, Any]  # its 201 response
    path: str
    created_path: str
    # The path parameter that names the new object; None for what a parent holds one of.
    new_parameter: str | None


def _creates(paths: dict[str, Any]) -> list[Create]:
    """Every POST with a 201 response, where a GET reads what it created: ``path/{name}``
    for a member of a collection, ``path`` itself for what a parent holds one of (a user's
    ticket)."""
    creates = []
    for path, method, operation in _operations(paths):
        responses = operation.get("responses", {})
        response = responses.get(201, responses.get("201"))
        if method != "post" or not isinstance(response, dict):
            continue
        member = re.compile(re.escape(path) + r"/\{(\w+)\}")
        for candidate, path_item in paths.items():
            match = member.fullmatch(candidate)
            if match and "get" in path_item:
                creates.append(Create(operation, response, path, candidate, match[1]))
                break
        else:
            if "get" in paths[path]:
                creates.append(Create(operation, response, path, path, None))
    return creates


def _at_or_under(path: str, ancestor: str) -> bool:
    return path == ancestor or path.startswith(f"{ancestor}/")


def created_links(spec: APISpec) -> None:
    """Give every create (a 201 response) links to the operations on what it created.

    An operation is on what was created when its path names the new object's parameter (a
    client's extId names it in ``/clients/{clientExtId}`` and ``/{clientExtId}/users``
    alike) or, for what a parent holds one of, lies at or under its path; and when every other
    parameter of its path is one of the create's own. Left out: what another create makes
    there (a new user has no ticket until one is created for it, so only that create is
    linked), and what removes an object other creates make things in (deleting a client or a
    user, archiving a user). The new object's extId comes from the response body, the other
    parameters from the create's path.
    """
    paths: dict[str, Any] = spec._paths  # apispec has no public read of the paths it holds
    ids = [operation["operationId"] for _, _, operation in _operations(paths)]
    duplicates = sorted({name for name in ids if ids.count(name) > 1})
    if duplicates:
        raise ValueError(f"Operation ids must be unique: {', '.join(duplicates)}")
    creates = _creates(paths)
    for create in creates:
        # Made by other creates: not there yet when this one is done.
        deeper = [
            other.created_path
            for other in creates
            if other.created_path.startswith(f"{create.created_path}/")
        ]
        known = _parameters(create.path) | {create.new_parameter}
        # What other creates make in it (a client's users, a user's ticket).
        holds_others = any(
            create.new_parameter in _parameters(other.path)
            for other in creates
            if other is not create
        )
        links = {}
        for target_path, method, target in _operations(paths):
            needed = _parameters(target_path)
            if target is create.operation or not needed <= known:
                continue
            if holds_others and (method == "delete" or target_path.endswith("/archive")):
                # Removing it removes what was made in it since: a follower of the links
                # would then find the objects of later creates gone.
                continue
            is_create = any(target is other.operation for other in creates)
            if not is_create and any(_at_or_under(target_path, path) for path in deeper):
                continue
            if create.new_parameter not in needed and not _at_or_under(
                target_path, create.created_path
            ):
                continue
            links[target["operationId"]] = {
                "operationId": target["operationId"],
                "parameters": {
                    name: "$response.body#/extId"
                    if name == create.new_parameter
                    else f"$request.path.{name}"
                    for name in sorted(needed)
                },
            }
        if links:
            create.response["links"] = links


def markdown(docstring: str) -> str:
    """A docstring's text as Markdown: lines unindented, ``code`` as `code`."""
    return re.sub(r"\n[ \t]+", "\n", docstring).replace("``", "`")


def error_statuses(
    *,
    body: Schema | None,
    query: bool,
    path_arguments: list[str],
    secured: bool,
    permissions: list[str],
) -> list[int]:
    """The error statuses of the contract's table (API.md section 2) that an operation can
    return, from what its view declares."""
    statuses = {500}  # anything unexpected
    if secured:
        statuses |= {401, 503}  # the api key is looked up in the database
        if permissions or "client_ext_id" in path_arguments:
            statuses.add(403)  # a permission, or the client data room
    if path_arguments:
        statuses.add(404)
    if body is not None:
        statuses |= {400, 413, 415, 422}
        if any(isinstance(field, Version) for field in body.fields.values()):
            statuses.add(409)  # optimistic locking
    if query:
        statuses.add(422)
    return sorted(statuses)


def document_error_responses(
    doc: dict[str, Any], doc_info: dict[str, Any], error_schema: Any
) -> dict[str, Any]:
    """Document an operation's error responses (the components of docs.py), from what its
    view declares (``error_statuses``), and the ``Location`` of what a 201 created.

    A view may document an error status itself, to say more (``@blp.error_response(422,
    "...")``); it then gets the error envelope as its schema.
    """
    manual = doc_info.get("manual_doc", {})
    # What _prepare_arguments_doc made of @blp.arguments: a requestBody, query parameters.
    body = doc.get("requestBody", {}).get("content", {}).get("application/json")
    statuses = error_statuses(
        body=resolve_schema_instance(body["schema"]) if body else None,
        query=any(parameter.get("in") == "query" for parameter in doc.get("parameters", [])),
        path_arguments=doc_info.get("path_arguments", []),
        secured=bool(manual.get("security")),
        permissions=manual.get("x-permissions", []),
    )
    responses = doc.setdefault("responses", {})
    for status in statuses:
        if not isinstance(responses.get(status), Mapping):
            # Nothing yet, or flask-smorest's generic reference for a parser error.
            responses[status] = ERROR_RESPONSES[status].name
    for status, response in responses.items():
        if int(status) >= 400 and isinstance(response, Mapping):
            response.setdefault("content", {"application/json": {"schema": error_schema}})
        elif int(status) == 201 and isinstance(response, Mapping):
            response.setdefault("headers", {}).setdefault("Location", LOCATION_HEADER)
    return doc
