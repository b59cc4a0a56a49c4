"""The rules file's schema: pydantic models that refuse a bad rule with the reason.

A rules file is a `RuleSet`: defaults, the due-time policy, named groups of people and an
ordered list of `Rule`s, each a `When` (conditions, all of which must hold) and a `Then` (what it
decides). See docs/rules.md for the format and the precedence.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from email.utils import parseaddr
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mapping.case import Priority, ProblemType, SourceKind

__all__ = [
    "AssignSpec",
    "BusinessHours",
    "DuePolicy",
    "HourRange",
    "Rule",
    "RuleSet",
    "Strategy",
    "Then",
    "Weekday",
    "When",
    "parse_duration",
]

RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# `li@example.com`, `@example.com` or `example.com`: a domain has at least two dotted labels.
SENDER = re.compile(r"(?:[^\s@]*@)?[\w-]+(?:\.[\w-]+)+")
# A person a rule names is told of their cases by mail, so it is an address the notices' mailer
# writes to (`validate_address` in mapping.outgoing_mail, not imported here: a parse worker loads
# the rules): an ASCII dot-atom local part and a dotted host name, no display name.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
PERSON = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+")
_DURATION_PART = re.compile(r"(\d+)\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """`4h`, `1d`, `3d`, `1d 4h`, `30m` -> a timedelta (days are calendar or working days)."""
    compact = text.strip().lower()
    parts = _DURATION_PART.findall(compact)
    if not parts or _DURATION_PART.sub("", compact).strip():
        raise ValueError(f"duration {text!r} is not like '4h', '1d', '3d' or '1d 4h'")
    total = timedelta()
    for amount, unit in parts:
        total += timedelta(**{_UNITS[unit]: int(amount)})
    if total <= timedelta():
        raise ValueError(f"duration {text!r} must be longer than zero")
    return total


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _as_list(value: object) -> object:
    # A single value is accepted where a list is expected: `mailbox = "support"`.
    return [value] if isinstance(value, str) else value


#: Why an empty value of a list field is refused, by field. No value in a rules file may be
#: empty or only spaces: it is refused with the reason, never silently dropped.
_WHY_NOT_EMPTY = {
    "keywords": "an empty keyword would match everything",
    "all_keywords": "an empty keyword would match everything",
    "subject_keywords": "an empty keyword would match everything",
    "not_keywords": "an empty keyword would match everything",
    "regex": "an empty regular expression would match everything",
    "subject_regex": "an empty regular expression would match everything",
    "sender": "an empty sender is no address or domain",
    "mailbox": "an empty mailbox name matches no mailbox",
    "jira_project": "an empty Jira project matches no issue",
    "jira_component": "an empty Jira component matches no issue",
    "jira_label": "an empty Jira label matches no issue",
    "jira_priority": "an empty Jira priority matches no issue",
    "attachment_types": "an empty attachment type matches no attachment",
    "tags": "an empty tag is no tag",
}


def _no_blank(values: list[str], info: ValidationInfo) -> list[str]:
    if any(not value.strip() for value in values):
        why = _WHY_NOT_EMPTY.get(info.field_name or "", "an empty value means nothing")
        raise ValueError(f"{why}; remove it")
    return values


def _is_blank(value: str | None) -> bool:
    return value is not None and not value.strip()


def _an_address(value: str) -> str:
    """`value` if it is a plain email address a notice can go to; ValueError saying why not."""
    if len(value) <= 254 and PERSON.fullmatch(value):
        return value
    if not value.strip():
        raise ValueError("an empty person names no one; remove it")
    address = parseaddr(value)[1]
    if address != value and len(address) <= 254 and PERSON.fullmatch(address):
        raise ValueError(
            f"{value!r} is not a plain email address: write the address alone, {address!r}"
        )
    raise ValueError(
        f"{value!r} is not an email address: people are told of their cases by mail, so write "
        "their address, like 'li@example.com' (ASCII, no display name)"
    )


#: Someone a rule assigns: an email address.
Person = Annotated[str, AfterValidator(_an_address)]


#: A list of non-empty strings; a single string is a list of one.
StrList = Annotated[list[str], BeforeValidator(_as_list), AfterValidator(_no_blank)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday is 0, as `datetime.weekday()` counts."""
        return list(Weekday).index(self)


class HourRange(_Strict):
    """`"18-9"`: from 18:00 up to 09:00 the next morning (the end hour is not included).

    A whole day is `"0-24"`; a range that starts and ends at the same hour is refused (it would
    match every hour, which is rarely what was meant by `"9-9"`).
    """

    start: int
    end: int

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        if isinstance(value, dict | HourRange):
            return value
        if not isinstance(value, str):
            raise ValueError(f"hours {value!r} is not like '9-18' or '18-9' (a string)")
        match = re.fullmatch(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*", value)
        if match is None:
            raise ValueError(f"hours {value!r} is not like '9-18' or '18-9'")
        return {"start": int(match[1]), "end": int(match[2])}

    @model_validator(mode="after")
    def _a_range(self) -> Self:
        text = f"{self.start}-{self.end}"
        if not (0 <= self.start <= 23 and 0 <= self.end <= 24):
            raise ValueError(
                f"hours {text!r}: a range starts at an hour from 0 to 23 and ends at one from "
                "0 to 24 ('18-9', '9-18', '0-24')"
            )
        if self.start == self.end:
            raise ValueError(
                f"hours {text!r} starts and ends at {self.start}:00, so whether it means no hour "
                f"or every hour cannot be told: write '0-24' for the whole day (or leave hours "
                f"out), '{self.start}-{self.start + 1}' for the hour from {self.start}:00"
            )
        return self

    def contains(self, hour: int) -> bool:
        if self.start < self.end:
            return self.start <= hour < self.end
        return hour >= self.start or hour < self.end


class When(_Strict):
    """Conditions of one rule: every condition given must hold; within a list, any one will do.

    Keywords match case-insensitively: Chinese (and any CJK) text as a substring, since it has
    no spaces between words; Latin letters and digits only at word boundaries, so `log` does not
    match `login`.
    """

    keywords: StrList = Field(default_factory=list, description="Any of these, subject or body.")
    all_keywords: list[str | list[str]] = Field(
        default_factory=list,
        description="All of these; an entry that is a list holds alternatives, any one of "
        'which will do: `[["所有用户", "全公司"], ["宕机", "无法访问"]]`.',
    )
    subject_keywords: StrList = Field(default_factory=list, description="Any, subject only.")
    not_keywords: StrList = Field(default_factory=list, description="None of these.")
    regex: StrList = Field(default_factory=list, description="Any matches subject or body.")
    subject_regex: StrList = Field(default_factory=list)
    sender: StrList = Field(
        default_factory=list, description="Addresses, or domains: `@example.com`, `example.com`."
    )
    mailbox: StrList = Field(default_factory=list)
    source: list[SourceKind] = Field(default_factory=list)
    jira_project: StrList = Field(default_factory=list)
    jira_component: StrList = Field(default_factory=list)
    jira_label: StrList = Field(default_factory=list)
    jira_priority: StrList = Field(default_factory=list)
    attachment_types: StrList = Field(
        default_factory=list, description="Extensions (`.log`) or MIME types (`image/*`)."
    )
    weekdays: list[Weekday] = Field(default_factory=list)
    hours: list[HourRange] = Field(default_factory=list, description="In the team's time zone.")

    @field_validator("source", "weekdays", "hours", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return _as_list(value)

    @field_validator("all_keywords", mode="before")
    @classmethod
    def _keyword_groups(cls, value: object) -> object:
        # Checked here, before the union type would report each of its branches.
        values = _as_list(value)
        if not isinstance(values, list):
            return values  # pydantic says it is not a list
        for item in values:
            group = [item] if isinstance(item, str) else item
            if not isinstance(group, list) or not all(isinstance(k, str) for k in group):
                raise ValueError(
                    f"{item!r} is neither a keyword nor a list of keywords (alternatives)"
                )
            if not group:
                raise ValueError("an empty list of alternatives can never match; remove it")
            if any(not keyword.strip() for keyword in group):
                raise ValueError(f"{_WHY_NOT_EMPTY['all_keywords']}; remove it")
        return values

    @property
    def keyword_groups(self) -> list[list[str]]:
        """`all_keywords` as groups of alternatives: a plain keyword is a group of one."""
        return [[value] if isinstance(value, str) else list(value) for value in self.all_keywords]

    @property
    def is_empty(self) -> bool:
        """No condition at all: the rule matches every report."""
        return not any(getattr(self, name) for name in type(self).model_fields)

    @field_validator("sender")
    @classmethod
    def _sender_form(cls, values: list[str]) -> list[str]:
        for value in values:
            if not SENDER.fullmatch(value):
                raise ValueError(
                    f"sender {value!r} must be an address ('li@example.com'), a domain with a "
                    "leading '@' ('@example.com') or a bare domain ('example.com')"
                )
        return values

    @field_validator("regex", "subject_regex")
    @classmethod
    def _compiles(cls, values: list[str]) -> list[str]:
        for pattern in values:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(
                    f"regular expression {pattern!r} does not compile: {error}"
                ) from error
        return values

    @field_validator("attachment_types")
    @classmethod
    def _attachment_type(cls, values: list[str]) -> list[str]:
        for value in values:
            if not (value.startswith(".") or "/" in value):
                raise ValueError(
                    f"attachment type {value!r} must be an extension ('.log') "
                    "or a MIME type ('image/png', 'image/*')"
                )
        return [value.lower() for value in values]


class Strategy(StrEnum):
    FIXED = "fixed"
    ROUND_ROBIN = "round_robin"
    FEWEST_OPEN = "fewest_open"


class AssignSpec(_Strict):
    """Who: `{ person = "li@example.com" }` or `{ group = "l1", strategy = "round_robin" }`."""

    person: str | None = None
    group: str | None = None
    strategy: Strategy | None = None

    @field_validator("person")
    @classmethod
    def _someone(cls, value: str | None) -> str | None:
        if _is_blank(value):
            raise ValueError(
                "an empty person names no one; give an address ('li@example.com') or remove it"
            )
        return value if value is None else _an_address(value)

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.person is None) == (self.group is None):
            raise ValueError("give either person or group (with a strategy), not both or neither")
        if self.person is not None and self.strategy not in (None, Strategy.FIXED):
            raise ValueError("a fixed person takes no strategy")
        if self.group is not None and self.strategy in (None, Strategy.FIXED):
            raise ValueError("a group needs strategy 'round_robin' or 'fewest_open'")
        return self

    def describe(self) -> str:
        if self.person is not None:
            return self.person
        assert self.strategy is not None
        how = {Strategy.ROUND_ROBIN: "round robin", Strategy.FEWEST_OPEN: "fewest open cases"}
        return f"{how[self.strategy]} in group {self.group}"


class Then(_Strict):
    """What a matching rule decides; anything left out is left to other rules or the defaults."""

    problem_type: ProblemType | None = None
    priority: Priority | None = None
    raise_priority: bool = Field(default=False, description="One level more urgent (P0 stays).")
    tags: StrList = Field(default_factory=list)
    related_system: str | None = None
    owner: AssignSpec | None = None
    collaborators: list[AssignSpec] = Field(default_factory=list)
    due_in: Duration | None = Field(default=None, description="Instead of the priority's time.")

    @field_validator("problem_type", mode="before")
    @classmethod
    def _type_label(cls, value: object) -> object:
        # Accept the Chinese and English labels too: `problem_type = "系统故障"`.
        return ProblemType.parse(value) if isinstance(value, str) else value

    @field_validator("collaborators", mode="before")
    @classmethod
    def _people(cls, value: object) -> object:
        # A plain string is a fixed person: `collaborators = ["ops@example.com"]`.
        items = _as_list(value)
        if isinstance(items, list):
            return [{"person": item} if isinstance(item, str) else item for item in items]
        return items

    @field_validator("owner", mode="before")
    @classmethod
    def _owner(cls, value: object) -> object:
        return {"person": value} if isinstance(value, str) else value

    @field_validator("raise_priority")
    @classmethod
    def _raise_or_set(cls, value: bool, info: ValidationInfo) -> bool:
        priority = info.data.get("priority")
        if value and priority is not None:
            raise ValueError(
                f'the rule sets both priority = "{priority.value}" and raise_priority = true: '
                f"keep priority to set {priority.value}, or raise_priority to raise the "
                "priority the other rules decide by one level; not both"
            )
        return value

    @field_validator("related_system")
    @classmethod
    def _system_named(cls, value: str | None) -> str | None:
        if _is_blank(value):
            raise ValueError("an empty related system names nothing; remove it")
        return value

    @property
    def is_empty(self) -> bool:
        return self == Then()


class Rule(_Strict):
    """One rule: a stable id (shown in every explanation), conditions, decisions."""

    id: str
    description: str = ""
    when: When = Field(default_factory=When)
    then: Then
    override: bool = Field(
        default=False, description="Replace what an earlier rule already decided."
    )
    override_manual: bool = Field(
        default=False, description="Also apply to a case a person already triaged in Jira."
    )
    enabled: bool = True

    @field_validator("override")
    @classmethod
    def _override_needs_conditions(cls, value: bool, info: ValidationInfo) -> bool:
        when = info.data.get("when")
        if value and isinstance(when, When) and when.is_empty:
            raise ValueError(
                "override = true on a rule with no conditions replaces what every earlier rule "
                "decided, for every report: remove override (a rule without conditions then "
                "decides only what no earlier rule did), or give the rule a condition under "
                "[rule.when]"
            )
        return value

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError(
                f"rule id {value!r} must be lower-case letters, digits, '-', '_' or '.'"
            )
        return value

    @model_validator(mode="after")
    def _decides_something(self) -> Self:
        if self.then.is_empty:
            raise ValueError("the rule decides nothing: give [rule.then] at least one action")
        return self


class BusinessHours(_Strict):
    """Working time in the team's time zone; due times then count working time only."""

    start: time = time(9, 0)
    end: time = time(18, 0)
    workdays: list[Weekday] = Field(
        default_factory=lambda: [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]
    )
    holidays: list[str] = Field(default_factory=list, description="ISO dates: 2024-10-01.")

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"business hours end ({self.end}) must be after start ({self.start})")
        if not self.workdays:
            raise ValueError("business hours need at least one workday")
        return self

    @field_validator("holidays")
    @classmethod
    def _iso_dates(cls, values: list[str]) -> list[str]:
        from datetime import date

        for value in values:
            try:
                date.fromisoformat(value)
            except ValueError as error:
                raise ValueError(f"holiday {value!r} is not an ISO date (2024-10-01)") from error
        return values


class DuePolicy(_Strict):
    """Expected resolution time by priority; with business hours, a day is a working day,
    except for the priorities worked around the clock (`around_the_clock`, P0 by default)."""

    P0: Duration = timedelta(hours=4)
    P1: Duration = timedelta(days=1)
    P2: Duration = timedelta(days=3)
    business_hours: BusinessHours | None = None
    around_the_clock: Annotated[list[Priority], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: [Priority.P0],
        description="Priorities counted in calendar time even with business hours.",
    )

    @field_validator("around_the_clock")
    @classmethod
    def _each_once(cls, priorities: list[Priority]) -> list[Priority]:
        for priority in set(priorities):
            if priorities.count(priority) > 1:
                raise ValueError(f"{priority.value} is listed twice; list each priority once")
        return priorities

    def for_priority(self, priority: Priority) -> timedelta:
        duration: timedelta = getattr(self, priority.value)
        return duration

    def in_working_time(self, priority: Priority) -> bool:
        """Whether a case of this priority is due after working time (else calendar time)."""
        return self.business_hours is not None and priority not in self.around_the_clock


def _members(members: list[str]) -> list[str]:
    """A group's members: at least one, each once (an address's case does not matter)."""
    if not members:
        raise ValueError("the group has no members; list at least one address")
    seen: set[str] = set()
    for member in members:
        if member.lower() in seen:
            raise ValueError(f"the group lists {member!r} twice; list each person once")
        seen.add(member.lower())
    return members


class Defaults(_Strict):
    """What an unmatched report gets (seed step 1: P2 and untriaged, then the lead judges)."""

    priority: Priority = Priority.P2
    problem_type: ProblemType = ProblemType.UNTRIAGED


class RuleSet(_Strict):
    """A whole rules file."""

    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    due: DuePolicy = Field(default_factory=DuePolicy)
    groups: dict[str, Annotated[list[Person], AfterValidator(_members)]] = Field(
        default_factory=dict
    )
    rules: list[Rule] = Field(default_factory=list, alias="rule")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("groups")
    @classmethod
    def _groups_named(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        if any(not name.strip() for name in groups):
            raise ValueError("a group needs a name: one of [groups] has an empty one")
        return groups
