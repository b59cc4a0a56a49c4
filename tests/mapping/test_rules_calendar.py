"""Due times by priority, in calendar time or working time in the team's time zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from mapping.case import Priority
from mapping.rules import parse_rules
from mapping.rules.calendar import due_time
from mapping.rules.model import BusinessHours, DuePolicy
from tests.mapping.test_rules_loader import refusal

ZONE = ZoneInfo("Asia/Shanghai")
#: Business hours with every priority in working time, P0 too (`around_the_clock = []`).
CALENDAR = DuePolicy(business_hours=BusinessHours(holidays=["2024-05-22"]), around_the_clock=[])


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
def test_business_hours_count_working_time(received: str, priority: Priority, due: str) -> None:
    assert due_time(local(received), priority, CALENDAR, ZONE) == local(due)


def test_a_shorter_day() -> None:
    policy = DuePolicy(business_hours=BusinessHours(start=time(10), end=time(16)))
    # One working day is 6 working hours.
    assert due_time(local("2024-05-20 13:00"), Priority.P1, policy, ZONE) == local(
        "2024-05-21 13:00"
    )


# Priorities worked around the clock ---------------------------------------------------------
#: Monday 2024-05-27 is a holiday; 2024-05-25 is a Saturday.
LONG_WEEKEND = BusinessHours(holidays=["2024-05-27"])
SATURDAY_NIGHT = "2024-05-25 22:30"


def test_p0_counts_calendar_time_even_with_business_hours_by_default() -> None:
    policy = DuePolicy(business_hours=LONG_WEEKEND)
    assert policy.around_the_clock == [Priority.P0]
    assert due_time(local(SATURDAY_NIGHT), Priority.P0, policy, ZONE) == local("2024-05-26 02:30")


@pytest.mark.parametrize(
    ("priority", "due"),
    [
        (Priority.P1, "2024-05-28 18:00"),  # one working day: Tuesday, after the holiday
        (Priority.P2, "2024-05-30 18:00"),  # three: Tuesday to Thursday
    ],
)
def test_other_priorities_still_count_working_time(priority: Priority, due: str) -> None:
    policy = DuePolicy(business_hours=LONG_WEEKEND)
    assert due_time(local(SATURDAY_NIGHT), priority, policy, ZONE) == local(due)


def test_no_priority_around_the_clock_gives_p0_working_time_again() -> None:
    # 4 working hours from Tuesday 09:00, Monday being a holiday.
    policy = DuePolicy(business_hours=LONG_WEEKEND, around_the_clock=[])
    assert due_time(local(SATURDAY_NIGHT), Priority.P0, policy, ZONE) == local("2024-05-28 13:00")


def test_a_rules_own_due_time_follows_the_cases_priority() -> None:
    policy = DuePolicy(business_hours=LONG_WEEKEND)
    two_hours = timedelta(hours=2)
    p0 = due_time(local(SATURDAY_NIGHT), Priority.P0, policy, ZONE, duration=two_hours)
    p1 = due_time(local(SATURDAY_NIGHT), Priority.P1, policy, ZONE, duration=two_hours)
    assert p0 == local("2024-05-26 00:30")
    assert p1 == local("2024-05-28 11:00")


def test_more_priorities_around_the_clock() -> None:
    policy = DuePolicy(business_hours=LONG_WEEKEND, around_the_clock=[Priority.P0, Priority.P1])
    assert due_time(local(SATURDAY_NIGHT), Priority.P1, policy, ZONE) == local("2024-05-26 22:30")
    assert due_time(local(SATURDAY_NIGHT), Priority.P2, policy, ZONE) == local("2024-05-30 18:00")


def test_which_priorities_count_working_time() -> None:
    assert not any(DuePolicy().in_working_time(p) for p in Priority)  # no business hours
    policy = DuePolicy(business_hours=LONG_WEEKEND)
    assert [p for p in Priority if policy.in_working_time(p)] == [Priority.P1, Priority.P2]


def test_around_the_clock_in_a_rules_file() -> None:
    rules = parse_rules(
        '[due]\naround_the_clock = ["P0", "P1"]\n[due.business_hours]\nstart = "09:00"\n',
        source="rules.toml",
    )
    assert rules.due.around_the_clock == [Priority.P0, Priority.P1]
    assert parse_rules('[due]\naround_the_clock = "P1"\n', source="r").due.around_the_clock == [
        Priority.P1
    ]
    assert parse_rules("[due]\naround_the_clock = []\n", source="r").due.around_the_clock == []
    assert parse_rules("", source="r").due.around_the_clock == [Priority.P0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[due]\nP0 = "2h"\naround_the_clock = ["P0", "P3"]\n',
            "rules.toml:3: due.around_the_clock.1: Input should be 'P0', 'P1' or 'P2'",
        ),
        (
            '[due]\naround_the_clock = ["P0", "P1", "P0"]\n',
            "rules.toml:2: due.around_the_clock: P0 is listed twice; list each priority once",
        ),
        (
            "[due]\naround_the_clock = true\n",
            "rules.toml:2: due.around_the_clock: Input should be a valid list",
        ),
    ],
)
def test_a_bad_around_the_clock_is_refused(text: str, message: str) -> None:
    assert refusal(text) == message


def test_the_log_says_working_time_only_for_priorities_counted_so() -> None:
    from datetime import UTC

    from mapping.rules import RuleEngine
    from mapping.rules.facts import ReportFacts

    rules = parse_rules(
        '[due.business_hours]\nstart = "09:00"\nend = "18:00"\n\n'
        '[[rule]]\nid = "outage"\nwhen.keywords = ["宕机"]\nthen.priority = "P0"\n\n'
        '[[rule]]\nid = "slow"\nwhen.keywords = ["慢"]\nthen.priority = "P1"\n'
        'then.due_in = "2h"\n',
        source="rules.toml",
    )
    engine = RuleEngine(rules, ZONE)
    saturday_night = local("2024-05-25 22:30").astimezone(UTC)

    def due_text(text: str) -> str:
        verdict = engine.decide(ReportFacts(subject=text, received_at=saturday_night))
        [due] = [d.text for d in verdict.decisions if d.attribute == "due"]
        return due

    assert due_text("宕机") == "due 2024-05-26 02:30 CST (P0: 4h)"
    assert due_text("很慢") == (
        "due 2024-05-27 11:00 CST (2h, working time) by rule slow: matched '慢'"
    )
