"""Load the objects a URL names before the body is read.

The contract checks existence (404) before the body (422), so a view whose request has a
body gets its client, user or credential from one of these decorators, placed under
``require_permissions`` and over ``@blp.arguments``: the view receives the object instead of
the path's extIds. What they load is what the view shows or acts on; how it is read is the
repository's business. A view without a body needs none of them: it hands the path's
extIds to its repository.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from ..repositories.clients import ClientRepository
from ..repositories.policies import PolicyRepository
from ..repositories.tickets import TicketRepository
from ..repositories.users import UserRepository
from ..repositories.vasco import VascoRepository


def client_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}``: the view gets ``client``, with its default policies."""

    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, **kwargs: Any) -> Any:
        return view(*args, client=ClientRepository().get(client_ext_id), **kwargs)

    return wrapper


def policy_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}/policies/{policy_ext_id}``: the view gets ``policy``, with its
    client."""

    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, policy_ext_id: str, **kwargs: Any) -> Any:
        client = ClientRepository().get(client_ext_id)
        return view(*args, policy=PolicyRepository().get(client, policy_ext_id), **kwargs)

    return wrapper


def pool_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}``, for a new VASCO credential in the client's pool: the view gets
    ``client``, its id, extId and default policies."""

    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, **kwargs: Any) -> Any:
        return view(*args, client=ClientRepository().of_new_credential(client_ext_id), **kwargs)

    return wrapper


def owner_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}/users/{user_ext_id}``, for a new credential of the user: the view
    gets ``user``, its id and extId, with its client's id, extId and default policies."""

    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, user_ext_id: str, **kwargs: Any) -> Any:
        return view(*args, user=UserRepository().owner(client_ext_id, user_ext_id), **kwargs)

    return wrapper


def user_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}/users/{user_ext_id}``: the view gets ``user``, with its client and
    the client's default policies."""

    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, user_ext_id: str, **kwargs: Any) -> Any:
        return view(*args, user=UserRepository().get(client_ext_id, user_ext_id), **kwargs)

    return wrapper


def ticket_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}/users/{user_ext_id}/ticket``: the view gets the user's ``ticket``."""

    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, user_ext_id: str, **kwargs: Any) -> Any:
        ticket = TicketRepository().get(client_ext_id, user_ext_id)
        return view(*args, ticket=ticket, **kwargs)

    return wrapper


def vasco_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}/vasco/{vasco_ext_id}``: the view gets ``vasco``."""

    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, vasco_ext_id: str, **kwargs: Any) -> Any:
        return view(*args, vasco=VascoRepository().get(client_ext_id, vasco_ext_id), **kwargs)

    return wrapper
