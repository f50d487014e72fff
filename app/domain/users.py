"""The rules of a user: its states, and when its credentials may be used."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from .credentials import format_date

ACTIVE_USER = "active"
DISABLED_USER = "disabled"
ARCHIVED_USER = "archived"
USER_STATES = (ACTIVE_USER, DISABLED_USER, ARCHIVED_USER)


class UserStanding(Protocol):
    state: str
    valid_from: datetime | None
    valid_to: datetime | None


def user_validity_problem(valid_from: datetime | None, valid_to: datetime | None) -> str | None:
    """What is wrong with a user's validity period (either end may be open), or None."""
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        return "validity.to must be after validity.from"
    return None


def unusable_reason(user: UserStanding, now: datetime) -> str | None:
    """Why none of the user's credentials may be used ``now`` (a phrase: "is disabled, not
    active"), or None: a user who is not active, or outside its validity, cannot log in."""
    if user.state != ACTIVE_USER:
        return f"is {user.state}, not active"
    if user.valid_from is not None and now < user.valid_from:
        return f"is not valid before {format_date(user.valid_from)}"
    if user.valid_to is not None and now >= user.valid_to:
        return f"expired at {format_date(user.valid_to)}"
    return None
