"""The case record of the team's process (seed section 三) and its lifecycle.

A case is created at intake (step 1), assigned (step 2), worked on (steps 3-4), resolved and
confirmed by the user (step 5), and closed and archived (step 6). Every change of state goes
through `Case.move_to`, which refuses moves the process does not allow and writes the move to the
append-only process log.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from mapping.errors import IllegalTransition

__all__ = [
    "CASE_NUMBER_PATTERN",
    "MAX_SUBJECT",
    "AttachmentInfo",
    "Case",
    "CaseSource",
    "CaseStatus",
    "Feedback",
    "FeedbackOutcome",
    "Language",
    "LogEntry",
    "LogKind",
    "Person",
    "Priority",
    "ProblemType",
    "SourceKind",
    "format_case_number",
    "status_change",
    "subject_line",
    "utc_datetime",
]

CASE_NUMBER_PATTERN = re.compile(r"^(?P<month>\d{6})-(?P<seq>\d{3,})$")


#: A time with its time zone; a naive one is refused (it is ambiguous). Checked by pydantic's
#: core, not by a Python validator: every log entry has one, and a report gets about ten.
utc_datetime = AwareDatetime


class LabelledEnum(StrEnum):
    """A string enum whose members carry a Chinese and an English label."""

    @property
    def label_zh(self) -> str:
        return type(self)._labels()[self.value][0]

    @property
    def label_en(self) -> str:
        return type(self)._labels()[self.value][1]

    def label(self, language: str) -> str:
        return self.label_zh if language == "zh" else self.label_en

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept the value, the Chinese or the English label (case-insensitive)."""
        wanted = text.strip().casefold()
        for member in cls:
            names = (member.value, member.label_zh, member.label_en)
            if wanted in (name.casefold() for name in names):
                return member
        allowed = ", ".join(f"{m.value} ({m.label_zh})" for m in cls)
        raise ValueError(f"unknown {cls.__name__} {text!r}; expected one of: {allowed}")


class ProblemType(LabelledEnum):
    SYSTEM_FAULT = "system_fault"
    HOW_TO = "how_to"
    PERMISSION = "permission"
    DATA_ANOMALY = "data_anomaly"
    IMPROVEMENT = "improvement"
    UNTRIAGED = "untriaged"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "system_fault": ("系统故障", "system fault"),
            "how_to": ("操作咨询", "how-to question"),
            "permission": ("权限问题", "permission"),
            "data_anomaly": ("数据异常", "data anomaly"),
            "improvement": ("功能优化", "improvement"),
            "untriaged": ("待分类", "untriaged"),
        }


class Priority(LabelledEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "P0": ("P0-紧急故障", "P0 urgent: core business down"),
            "P1": ("P1-重要问题", "P1 important: part of a function broken"),
            "P2": ("P2-一般咨询", "P2 question or improvement"),
        }

    def raised(self) -> Priority:
        """One level more urgent (P0 stays P0)."""
        order = [Priority.P2, Priority.P1, Priority.P0]
        return order[min(order.index(self) + 1, len(order) - 1)]


class CaseStatus(LabelledEnum):
    NEW = "new"
    TRIAGE = "triage"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    PENDING_FOLLOW_UP = "pending_follow_up"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "new": ("新建", "new"),
            "triage": ("待分诊", "triage"),
            "assigned": ("已分配", "assigned"),
            "in_progress": ("处理中", "in progress"),
            "pending_follow_up": ("待跟进", "pending follow-up"),
            "escalated": ("已升级", "escalated"),
            "resolved": ("已解决", "resolved, awaiting feedback"),
            "reopened": ("重新打开", "reopened"),
            "closed": ("已关闭", "closed"),
        }

    @property
    def is_open(self) -> bool:
        return self not in (CaseStatus.RESOLVED, CaseStatus.CLOSED)


_S = CaseStatus
#: The moves the team's process allows (seed steps 1-6). Anything else is an IllegalTransition.
ALLOWED_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    _S.NEW: frozenset({_S.TRIAGE, _S.ASSIGNED, _S.IN_PROGRESS, _S.RESOLVED, _S.CLOSED}),
    _S.TRIAGE: frozenset({_S.ASSIGNED, _S.IN_PROGRESS, _S.RESOLVED, _S.CLOSED}),
    _S.ASSIGNED: frozenset(
        {_S.TRIAGE, _S.IN_PROGRESS, _S.PENDING_FOLLOW_UP, _S.ESCALATED, _S.RESOLVED, _S.CLOSED}
    ),
    _S.IN_PROGRESS: frozenset(
        {_S.ASSIGNED, _S.PENDING_FOLLOW_UP, _S.ESCALATED, _S.RESOLVED, _S.CLOSED}
    ),
    _S.PENDING_FOLLOW_UP: frozenset(
        {_S.ASSIGNED, _S.IN_PROGRESS, _S.ESCALATED, _S.RESOLVED, _S.CLOSED}
    ),
    _S.ESCALATED: frozenset(
        {_S.ASSIGNED, _S.IN_PROGRESS, _S.PENDING_FOLLOW_UP, _S.RESOLVED, _S.CLOSED}
    ),
    _S.RESOLVED: frozenset({_S.CLOSED, _S.REOPENED, _S.PENDING_FOLLOW_UP}),
    _S.REOPENED: frozenset(
        {_S.ASSIGNED, _S.IN_PROGRESS, _S.ESCALATED, _S.PENDING_FOLLOW_UP, _S.RESOLVED, _S.CLOSED}
    ),
    _S.CLOSED: frozenset({_S.REOPENED}),
}


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


class SourceKind(StrEnum):
    EMAIL = "email"
    JIRA = "jira"


class FeedbackOutcome(LabelledEnum):
    RESOLVED = "resolved"
    PARTIALLY = "partially"
    UNRESOLVED = "unresolved"

    @classmethod
    def _labels(cls) -> dict[str, tuple[str, str]]:
        return {
            "resolved": ("已解决", "resolved"),
            "partially": ("部分解决", "partially resolved"),
            "unresolved": ("未解决", "unresolved"),
        }


class LogKind(StrEnum):
    INTAKE = "intake"
    RULE = "rule"
    ASSIGNMENT = "assignment"
    STATUS = "status"
    FINDING = "finding"
    PLAN = "plan"
    COMMENT = "comment"
    EMAIL_IN = "email_in"
    EMAIL_OUT = "email_out"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FEEDBACK = "feedback"
    PROGRESS = "progress"
    ESCALATION = "escalation"
    NOTE = "note"


class Person(BaseModel):
    """Who reported, shown masked (`张*`) wherever the case is displayed or exported."""

    model_config = ConfigDict(frozen=True)

    name: str = ""
    department: str | None = None
    email: str | None = None
    phone: str | None = Field(default=None, description="Internal number only.")

    @property
    def masked_name(self) -> str:
        name = self.name.strip()
        if not name:
            return "*"
        return f"{name[0]}*"

    @property
    def masked_email(self) -> str | None:
        if not self.email or "@" not in self.email:
            return None
        local, _, domain = self.email.partition("@")
        return f"{local[:1]}***@{domain}"

    @property
    def masked(self) -> str:
        """The rendering the seed asks for: `张* (销售部)`."""
        if self.department:
            return f"{self.masked_name} ({self.department})"
        return self.masked_name


class LogEntry(BaseModel):
    """One line of the process log: time, who, what kind, what, and where it came from."""

    model_config = ConfigDict(frozen=True)

    at: utc_datetime
    actor: str
    kind: LogKind
    text: str
    source_ref: str | None = None


class Feedback(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: FeedbackOutcome
    words: str = ""
    at: utc_datetime


class CaseSource(BaseModel):
    """Where the report came from, with the ids the source uses."""

    kind: SourceKind
    mailbox: str | None = None
    message_id: str | None = None
    jira_key: str | None = None
    jira_id: str | None = None


class AttachmentInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool = False


class Case(BaseModel):
    """One support case: every field of the team's case record, plus priority and routing."""

    model_config = ConfigDict(validate_assignment=True)

    number: str | None = Field(default=None, description="YYYYMM-NNN, set by the store.")
    subject: str
    problem_type: ProblemType = ProblemType.UNTRIAGED
    priority: Priority = Priority.P2
    status: CaseStatus = CaseStatus.NEW
    submitter: Person
    description: str
    environment: dict[str, str] = Field(default_factory=dict)
    initial_analysis: str | None = None
    owner: str | None = None
    collaborators: list[str] = Field(default_factory=list)
    process_log: list[LogEntry] = Field(default_factory=list)
    solution: str | None = None
    feedback: Feedback | None = None
    archive_date: date | None = None
    related_knowledge: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    related_system: str | None = None
    due_at: utc_datetime | None = None
    language: Language = Language.ZH
    source: CaseSource
    attachments: list[AttachmentInfo] = Field(default_factory=list)
    created_at: utc_datetime
    updated_at: utc_datetime
    version: int = Field(default=0, description="Store revision, for optimistic locking.")

    @field_validator("number")
    @classmethod
    def _check_number(cls, value: str | None) -> str | None:
        if value is not None and not CASE_NUMBER_PATTERN.match(value):
            raise ValueError(f"case number {value!r} is not of the form YYYYMM-NNN")
        return value

    @property
    def initial_analysis_text(self) -> str:
        return self.initial_analysis or "待排查 / to be investigated"

    def log(
        self,
        kind: LogKind,
        text: str,
        *,
        at: datetime,
        actor: str = "casedesk",
        source_ref: str | None = None,
    ) -> LogEntry:
        """Append one entry to the process log (the log is never rewritten)."""
        entry = LogEntry(at=at, actor=actor, kind=kind, text=text, source_ref=source_ref)
        # Not through validated assignment: that re-validates every earlier entry on each append
        # (a case's log is read and written many times a run), and the entry was just validated.
        # A new list rather than an in-place append, so that a shallow copy of the case (e.g.
        # the masked copy for team mail) never shares, and never grows, this case's log.
        self.__dict__["process_log"] = [*self.process_log, entry]
        if entry.at > self.updated_at:
            self.updated_at = entry.at
        return entry

    def can_move_to(self, target: CaseStatus) -> bool:
        return target == self.status or target in ALLOWED_TRANSITIONS[self.status]

    def move_to(
        self, target: CaseStatus, *, at: datetime, actor: str = "casedesk", reason: str = ""
    ) -> bool:
        """Change status if the process allows it; False when already there."""
        if target == self.status:
            return False
        if target not in ALLOWED_TRANSITIONS[self.status]:
            raise IllegalTransition(self.number, self.status.value, target.value)
        text = status_change(self.status, target, reason)
        self.status = target
        self.log(LogKind.STATUS, text, at=at, actor=actor)
        return True

    def summary_row(self) -> dict[str, Any]:
        """The columns of `casedesk cases list`."""
        return {
            "number": self.number or "-",
            "status": self.status.label_zh,
            "priority": self.priority.value,
            "type": self.problem_type.label_zh,
            "owner": self.owner or "-",
            "submitter": self.submitter.masked,
            "subject": self.subject,
        }


def status_change(previous: CaseStatus, target: CaseStatus, reason: str = "") -> str:
    """How the process log says a status changed: `new -> triage: why`."""
    text = f"{previous.value} -> {target.value}"
    return f"{text}: {reason}" if reason else text


#: A case's subject is at most this long (longer ones are cut).
MAX_SUBJECT = 200


def subject_line(text: str) -> str:
    """A case's subject from a mail's subject or an issue's summary: one line (white space runs,
    line breaks included, as single spaces), at most MAX_SUBJECT characters."""
    return " ".join(text.split())[:MAX_SUBJECT]


def format_case_number(month: date, sequence: int) -> str:
    """`202405-001`: the month, then the case's place in that month (three digits or more)."""
    if sequence < 1:
        raise ValueError(f"case sequence starts at 1, got {sequence}")
    return f"{month.year:04d}{month.month:02d}-{sequence:03d}"
