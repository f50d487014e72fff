"""Rules every credential follows: state changes, validity, and what unassigning does."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

ACTIVE = "active"
INITIAL = "initial"

INITIALIZED_REASON = "initialized"
ADMIN_CHANGE_REASON = "changed-by-admin"
UNASSIGNED_REASON = "unassigned"


class StatefulCredential(Protocol):
    state_name: str
    state_change_reason: str | None
    state_change_detail: str | None


def format_date(moment: datetime) -> str:
    """A date as the API shows it, for messages."""
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def change_state(
    credential: StatefulCredential, state_name: str, reason: str, detail: str | None = None
) -> None:
    credential.state_name = state_name
    credential.state_change_reason = reason
    credential.state_change_detail = detail


def change_state_by_admin(credential: StatefulCredential, state_name: str) -> bool:
    """An administrator's new state (a PATCH): recorded as ``changed-by-admin``. Whether the
    state changed."""
    if state_name == credential.state_name:
        return False
    change_state(credential, state_name, ADMIN_CHANGE_REASON)
    return True


def validity_problem(valid_from: datetime, valid_to: datetime | None) -> str | None:
    """What is wrong with a validity period, or None."""
    if valid_to is not None and valid_to <= valid_from:
        return "validity.to must be after validity.from"
    return None


def outside_validity(valid_from: datetime, valid_to: datetime | None, now: datetime) -> str | None:
    """Why a credential valid from ``valid_from`` to ``valid_to`` cannot be used ``now``,
    or None when it can."""
    if now < valid_from:
        return f"is not valid before {format_date(valid_from)}"
    if valid_to is not None and now >= valid_to:
        return f"expired at {format_date(valid_to)}"
    return None


def unassign(credential: Any) -> bool:
    """Take a credential from its user: unassigned and ``initial`` again. Whether anything
    changed."""
    if credential.user_id is None and credential.state_name == INITIAL:
        return False
    credential.user_id = None
    if credential.state_name != INITIAL:
        change_state(credential, INITIAL, UNASSIGNED_REASON)
    return True
