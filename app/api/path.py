"""Load the objects a URL names before the body is read.

The contract checks existence (404) before the body (422), so a view's client or user is
loaded by one of these decorators, placed under ``require_permissions`` and over
``@blp.arguments``; the view receives the object instead of the path's extIds.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from ..repositories.clients import ClientRepository
from ..repositories.tickets import TicketRepository
from ..repositories.transactions import own_connection
from ..repositories.users import UserRepository
from ..repositories.vasco import VascoRepository


def client_in_path(
    view: Callable[..., Any] | None = None, *, default_policy_type: str | None = None
) -> Any:
    """``/{client_ext_id}``: the view gets ``client``. A view that creates a credential of
    one type names its policy type (``@client_in_path(default_policy_type=...)``): the
    client's read then brings the terms of that default policy alone."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, client_ext_id: str, **kwargs: Any) -> Any:
            client = ClientRepository().get(client_ext_id, default_policy_type=default_policy_type)
            return view(*args, client=client, **kwargs)

        return wrapper

    return decorator if view is None else decorator(view)


def plain_statements(
    *, single_write: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The view's statements are all plain ones (app/repositories/statements.py): they run on
    a connection of the request's own, outside the ORM session (``own_connection``).

    ``single_write``: the view's reads need no snapshot in common with its write, if it has
    one, and the write is atomic by itself (on PostgreSQL one statement, which commits
    itself) and locks no rows. The reads then run by themselves, before the write's
    transaction, which holds SQLite's writers' queue for the writes alone; a view that only
    reads runs no transaction at all. Goes over the path's loaders, whose reads it covers."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            own_connection(single_write=single_write)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def user_in_path(
    view: Callable[..., Any] | None = None, *, default_policy_type: str | None = None
) -> Any:
    """``/{client_ext_id}/users/{user_ext_id}``: the view gets ``user``. A view that creates
    a credential of one type names its policy type (``@user_in_path(default_policy_type=
    ...)``): the user's read then brings the terms of that default policy alone."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, client_ext_id: str, user_ext_id: str, **kwargs: Any) -> Any:
            user = UserRepository().get(
                client_ext_id, user_ext_id, default_policy_type=default_policy_type
            )
            return view(*args, user=user, **kwargs)

        return wrapper

    return decorator if view is None else decorator(view)


def vasco_in_path(*, reveal: bool = True) -> Callable[[Callable[..., Any]], Any]:
    """``/{client_ext_id}/vasco/{vasco_ext_id}``: the view gets ``vasco``, its blocks
    decrypted unless ``reveal`` is false (a view that returns no blocks need not open them)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, client_ext_id: str, vasco_ext_id: str, **kwargs: Any) -> Any:
            vasco = VascoRepository().get(client_ext_id, vasco_ext_id, reveal=reveal)
            return view(*args, vasco=vasco, **kwargs)

        return wrapper

    return decorator


def user_and_vasco_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    """``/{client_ext_id}/users/{user_ext_id}/vasco/{vasco_ext_id}``: the view gets ``user``
    and ``vasco``, checked in that order (client, user, credential)."""

    @wraps(view)
    def wrapper(
        *args: Any, client_ext_id: str, user_ext_id: str, vasco_ext_id: str, **kwargs: Any
    ) -> Any:
        user = UserRepository().get(client_ext_id, user_ext_id)
        vasco = VascoRepository().get(client_ext_id, vasco_ext_id)
        return view(*args, user=user, vasco=vasco, **kwargs)

    return wrapper


def ticket_in_path(
    *, for_update: bool = False, to_show: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Load the ticket of the user the path names (404 before the body is read); the view
    receives ``ticket``. ``for_update`` locks it for a read-modify-write of its counters;
    ``to_show`` reads it for the response alone, detached from the session (a GET, under
    ``plain_statements``)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, client_ext_id: str, user_ext_id: str, **kwargs: Any) -> Any:
            if to_show:
                ticket = TicketRepository().get_to_show(client_ext_id, user_ext_id)
            else:
                ticket = TicketRepository().get(client_ext_id, user_ext_id, for_update=for_update)
            return view(*args, ticket=ticket, **kwargs)

        return wrapper

    return decorator
