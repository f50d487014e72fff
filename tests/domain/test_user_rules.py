"""The user rules alone (app/domain/users.py): plain objects, no app, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.users import unusable_reason, user_validity_problem

NOW = datetime(2026, 11, 22, 10, 15, 30, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class User:
    state: str = "active"
    valid_from: datetime | None = None
    valid_to: datetime | None = None


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        (User(), None),
        (User(valid_from=NOW - DAY, valid_to=NOW + DAY), None),
        (User(valid_from=NOW), None),
        (User(state="disabled"), "is disabled, not active"),
        (User(state="archived", valid_to=NOW + DAY), "is archived, not active"),
        (User(valid_to=NOW), "expired at 2026-11-22T10:15:30Z"),
        (User(valid_from=NOW + DAY), "is not valid before 2026-11-23T10:15:30Z"),
    ],
)
def test_only_an_active_user_within_its_validity_may_use_its_credentials(user, reason):
    assert unusable_reason(user, NOW) == reason


@pytest.mark.parametrize(
    ("valid_from", "valid_to", "problem"),
    [
        (None, None, None),
        (NOW, None, None),
        (None, NOW, None),
        (NOW, NOW + DAY, None),
        (NOW, NOW, "validity.to must be after validity.from"),
        (NOW, NOW - DAY, "validity.to must be after validity.from"),
    ],
)
def test_a_user_validity_may_be_open_at_either_end(valid_from, valid_to, problem):
    assert user_validity_problem(valid_from, valid_to) == problem
