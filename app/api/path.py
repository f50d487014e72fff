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
from ..repositories.users import UserRepository


def client_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, **kwargs: Any) -> Any:
        return view(*args, client=ClientRepository().get(client_ext_id), **kwargs)

    return wrapper


def user_in_path(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, client_ext_id: str, user_ext_id: str, **kwargs: Any) -> Any:
        return view(*args, user=UserRepository().get(client_ext_id, user_ext_id), **kwargs)

    return wrapper
