"""Due times by priority, in calendar time or working time in the team's time zone."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from mapping.case import Priority
from mapping.rules.calendar import due_time
from mapping.rules.model import BusinessHours, DuePolicy

ZONE = ZoneInfo("Asia/Shanghai")
CALENDAR = DuePolicy(business_hours=BusinessHours(holidays=["2024-05-22"]))


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


@pytest.mark.parametrize(
    ("received", "priority", "due"),
    [
        ("2024-05-20 14:00", Priority.P0, "2024-05-20 18:00"),
        ("2024-05-20 14:00", Priority.P1, "2024-05-21 14:00"),
        ("2024-05-20 14:00", Priority.P2, "2024-05-23 14:00"),
        ("2024-05-25 23:00", Priority.P0, "2024-05-26 03:00"),  # no calendar: nights count
    ],
)
def test_calendar_time(received: str, priority: Priority, due: str) -> None:
    assert due_time(local(received), priority, DuePolicy(), ZONE) == local(due)


@pytest.mark.parametrize(
    ("received", "priority", "due"),
    [
        ("2024-05-20 14:00", Priority.P0, "2024-05-20 18:00"),  # Monday, inside hours
        ("2024-05-20 16:00", Priority.P0, "2024-05-21 11:00"),  # 2 h today, 2 h tomorrow
        ("2024-05-20 20:00", Priority.P0, "2024-05-21 13:00"),  # after hours: from 09:00
        ("2024-05-21 10:00", Priority.P1, "2024-05-23 10:00"),  # Wednesday is a holiday
        ("2024-05-24 17:00", Priority.P0, "2024-05-27 12:00"),  # Friday -> Monday
        ("2024-05-25 10:00", Priority.P0, "2024-05-27 13:00"),  # Saturday
        ("2024-05-20 09:00", Priority.P2, "2024-05-23 18:00"),  # Mon, Tue, (holiday), Thu
    ],
)
def test_business_hours(received: str, priority: Priority, due: str) -> None:
    assert due_time(local(received), priority, CALENDAR, ZONE) == local(due)


def test_a_shorter_day() -> None:
    policy = DuePolicy(business_hours=BusinessHours(start=time(10), end=time(16)))
    # One working day is 6 working hours.
    assert due_time(local("2024-05-20 13:00"), Priority.P1, policy, ZONE) == local(
        "2024-05-21 13:00"
    )
