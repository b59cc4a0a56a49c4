"""What the rules look at: the same small record for a report from email or from Jira."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from mapping.case import (
    AttachmentInfo,
    Case,
    Priority,
    ProblemType,
    SourceKind,
    subject_line,
    utc_datetime,
)
from mapping.email_to_case import case_texts, description_of
from mapping.parsed_email import ParsedEmail

if TYPE_CHECKING:  # not imported for real: a parse worker loads this module, and needs no Jira
    from mapping.jira_issue import MappedIssue

__all__ = [
    "ManualTriage",
    "ReportContent",
    "ReportFacts",
    "SourceTriage",
    "content_of",
    "email_content",
    "facts_from_case",
    "facts_from_email",
    "facts_from_issue",
]


class ManualTriage(BaseModel):
    """What a person already decided (in Jira); rules keep it unless they say `override_manual`."""

    model_config = ConfigDict(frozen=True)

    priority: Priority
    problem_type: ProblemType
    owner: str | None = None


class SourceTriage(BaseModel):
    """What a report's source already says of it, with nobody's judgement behind it: a new
    Jira issue's priority and the type its labels, components or issue type map to (the
    reporter's choice). Used where no rule decides; any rule that decides changes it."""

    model_config = ConfigDict(frozen=True)

    #: None when `priority_map` names not the issue's priority: the rules' defaults stand.
    priority: Priority | None
    #: `untriaged` when the mapping knows none of the issue's labels, components or type.
    problem_type: ProblemType
    #: The source's own name for the priority ("High"), for the log.
    priority_name: str | None = None


class ReportFacts(BaseModel):
    """One report as the rules see it; building it is pure, evaluating it is pure."""

    model_config = ConfigDict(frozen=True)

    subject: str = ""
    body: str = ""
    sender: str | None = None
    mailbox: str | None = None
    source: SourceKind = SourceKind.EMAIL
    jira_project: str | None = None
    jira_components: list[str] = Field(default_factory=list)
    jira_labels: list[str] = Field(default_factory=list)
    jira_priority: str | None = None
    attachment_types: list[str] = Field(
        default_factory=list,
        description="Lower-case extensions and MIME types: '.log', 'text/plain'.",
    )
    received_at: utc_datetime
    manual: ManualTriage | None = Field(
        default=None, description="Set when a person already triaged the report in Jira."
    )
    from_source: SourceTriage | None = Field(
        default=None,
        description="What a new Jira issue's own fields say (a person triaged it: `manual`).",
    )

    @property
    def triaged_by_person(self) -> bool:
        return self.manual is not None


class ReportContent(NamedTuple):
    """What the rules' content conditions read: the facts but the time and a person's triage.

    Content conditions (keywords, regular expressions, sender, mailbox, Jira fields,
    attachments) can be checked as soon as a mail is parsed, in the parse worker
    (`Conditions.prematch`); only the weekday and hour conditions wait for the time of intake.
    A plain tuple, not a model: it is made for every mail, from values already validated (a
    frozen slots dataclass took ~2 us more to build: its `__init__` sets each field through
    `object.__setattr__`).
    """

    subject: str
    body: str
    sender: str | None
    mailbox: str | None
    source: SourceKind
    jira_project: str | None
    jira_components: Sequence[str]
    jira_labels: Sequence[str]
    jira_priority: str | None
    attachment_types: Sequence[str]


def content_of(facts: ReportFacts) -> ReportContent:
    return ReportContent(
        facts.subject,
        facts.body,
        facts.sender,
        facts.mailbox,
        facts.source,
        facts.jira_project,
        facts.jira_components,
        facts.jira_labels,
        facts.jira_priority,
        facts.attachment_types,
    )


def email_content(parsed: ParsedEmail, mailbox: str) -> ReportContent:
    """The content of a new email report straight from its parse: what `content_of` gives for
    `facts_from_email(case_from_email(parsed, mailbox=mailbox, ...), parsed)` (tested over the
    corpus), without building the case, so the parse worker can check the rules' content."""
    case_subject, description = case_texts(subject_line(parsed.subject), description_of(parsed))
    return ReportContent(
        parsed.subject or case_subject,
        description,
        parsed.from_address,
        mailbox,
        SourceKind.EMAIL,
        None,
        [],
        [],
        None,
        _attachment_types([attachment.info for attachment in parsed.attachments])
        if parsed.attachments
        else [],
    )


def _attachment_types(attachments: Iterable[AttachmentInfo]) -> list[str]:
    types: list[str] = []
    for attachment in attachments:
        suffix = PurePosixPath(attachment.filename).suffix.lower()
        types.extend(t for t in (suffix, attachment.content_type.lower()) if t)
    return types


def facts_from_email(case: Case, parsed: ParsedEmail) -> ReportFacts:
    """Facts of a new email report (its case not stored yet)."""
    return ReportFacts(
        subject=parsed.subject or case.subject,
        body=case.description,
        sender=parsed.from_address or case.submitter.email,
        mailbox=case.source.mailbox,
        source=SourceKind.EMAIL,
        attachment_types=_attachment_types(case.attachments),
        received_at=case.created_at,
    )


def facts_from_case(
    case: Case,
    *,
    jira_components: Sequence[str] = (),
    jira_labels: Sequence[str] = (),
    jira_priority: str | None = None,
    triaged_by_person: bool = False,
) -> ReportFacts:
    """Facts of a case from any source; the Jira mapping passes the issue's fields it knows.

    `triaged_by_person`: the case's priority, type and owner are a person's (`manual`)."""
    jira_key = case.source.jira_key
    return ReportFacts(
        subject=case.subject,
        body=case.description,
        sender=case.submitter.email,
        mailbox=case.source.mailbox,
        source=case.source.kind,
        jira_project=jira_key.rsplit("-", 1)[0] if jira_key and "-" in jira_key else None,
        jira_components=list(jira_components),
        jira_labels=list(jira_labels),
        jira_priority=jira_priority,
        attachment_types=_attachment_types(case.attachments),
        received_at=case.created_at,
        manual=ManualTriage(
            priority=case.priority, problem_type=case.problem_type, owner=case.owner
        )
        if triaged_by_person
        else None,
    )


def facts_from_issue(case: Case, issue: MappedIssue) -> ReportFacts:
    """Facts of a case new from a Jira issue (`new_case_from_issue`): the case's, with the
    issue's components, labels, priority and whether a person triaged it already. The priority
    and type the issue's fields map to stand where no rule decides (not the rules' defaults)."""
    facts = facts_from_case(
        case,
        jira_components=issue.components,
        jira_labels=issue.labels,
        jira_priority=issue.priority_name,
        triaged_by_person=issue.triaged_by_person,
    )
    if issue.triaged_by_person:
        return facts
    given = SourceTriage(
        priority=issue.mapped_priority,
        problem_type=case.problem_type,
        priority_name=issue.priority_name,
    )
    return facts.model_copy(update={"from_source": given})
