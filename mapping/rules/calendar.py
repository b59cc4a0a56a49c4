"""Expected resolution time: the priority's duration, in calendar time or working time.

With business hours, a priority in the policy's `around_the_clock` (P0 by default: support works
it at night and on holidays) still counts calendar time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from mapping.case import Priority
from mapping.rules.model import BusinessHours, DuePolicy

__all__ = ["due_time", "working_duration"]

#: A calendar with no working day for this long is a mistake in the rules file, not a plan.
MAX_DAYS_AHEAD = 3660


def working_duration(duration: timedelta, hours: BusinessHours) -> timedelta:
    """`1d` is one working day (start to end), hours and minutes are working hours."""
    day = _on(date(2000, 1, 3), hours.end, UTC) - _on(date(2000, 1, 3), hours.start, UTC)
    return duration.days * day + timedelta(seconds=duration.seconds)


def due_time(
    received_at: datetime,
    priority: Priority,
    policy: DuePolicy,
    zone: ZoneInfo,
    *,
    duration: timedelta | None = None,
) -> datetime:
    """When a case received at `received_at` is due (UTC).

    `duration` (a rule's `due_in`) replaces the priority's time; either counts working time
    when the policy has business hours, unless the priority is one worked around the clock.
    """
    wanted = duration if duration is not None else policy.for_priority(priority)
    hours = policy.business_hours
    if hours is None or not policy.in_working_time(priority):
        return (received_at + wanted).astimezone(UTC)
    return _add_working_time(received_at, working_duration(wanted, hours), hours, zone)


def _on(day: date, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)


def _add_working_time(
    start: datetime, remaining: timedelta, hours: BusinessHours, zone: ZoneInfo
) -> datetime:
    holidays = {date.fromisoformat(day) for day in hours.holidays}
    workdays = {weekday.number for weekday in hours.workdays}
    moment = start.astimezone(zone)
    for _ in range(MAX_DAYS_AHEAD):
        day = moment.date()
        opens, closes = _on(day, hours.start, zone), _on(day, hours.end, zone)
        if day.weekday() in workdays and day not in holidays and moment < closes:
            # Arithmetic in UTC, so a daylight-saving change inside the day counts correctly.
            begin = max(moment, opens).astimezone(UTC)
            available = closes.astimezone(UTC) - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        moment = _on(day + timedelta(days=1), hours.start, zone)
    raise ValueError(f"no working time within {MAX_DAYS_AHEAD} days of {start.isoformat()}")
