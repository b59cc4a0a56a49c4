"""What the rules look at: the same small record for a report from email or from Jira."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from mapping.case import Case, Priority, ProblemType, SourceKind, utc_datetime
from mapping.parsed_email import ParsedEmail

__all__ = ["ManualTriage", "ReportFacts", "facts_from_case", "facts_from_email"]


class ManualTriage(BaseModel):
    """What a person already decided (in Jira); rules keep it unless they say `override_manual`."""

    model_config = ConfigDict(frozen=True)

    priority: Priority
    problem_type: ProblemType
    owner: str | None = None


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

    @property
    def triaged_by_person(self) -> bool:
        return self.manual is not None


def _attachment_types(case: Case) -> list[str]:
    types: list[str] = []
    for attachment in case.attachments:
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
        attachment_types=_attachment_types(case),
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
    """Facts of a case from any source; the Jira mapping passes the issue's fields it knows."""
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
        attachment_types=_attachment_types(case),
        received_at=case.created_at,
        manual=ManualTriage(
            priority=case.priority, problem_type=case.problem_type, owner=case.owner
        )
        if triaged_by_person
        else None,
    )
