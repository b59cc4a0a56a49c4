"""A new report by email becomes a case record (seed step 1: who, when, what)."""

from __future__ import annotations

from datetime import datetime, timedelta

from mapping.case import (
    MAX_SUBJECT,
    Case,
    CaseSource,
    Language,
    LogKind,
    Person,
    SourceKind,
    subject_line,
)
from mapping.environment import environment_from_text
from mapping.errors import MessageParseError
from mapping.parsed_email import ParsedEmail, report_words

__all__ = ["case_from_email", "case_texts", "description_of", "reported_at"]

#: A Date header this far after the server's arrival time (or now) is a wrong sender clock.
MAX_CLOCK_SKEW = timedelta(days=1)


def reported_at(parsed: ParsedEmail, received_at: datetime | None, now: datetime) -> datetime:
    """When the user wrote: the Date header, unless missing or absurd; else server arrival."""
    arrival = received_at or now
    date = parsed.date
    if date is not None and date <= arrival + MAX_CLOCK_SKEW and date.year >= 2000:
        return date
    return arrival


def description_of(parsed: ParsedEmail) -> str:
    """The report's words: the visible reply, or the whole text of a forwarded mail."""
    return report_words(parsed.subject, parsed.text, parsed.reply_text)


def case_texts(subject: str, description: str) -> tuple[str, str]:
    """A new case's subject and description from a report's subject line and words: each stands
    in for the other when missing (the subject then is the words' first line)."""
    if not description:
        return subject, subject
    return subject or description.splitlines()[0][:MAX_SUBJECT], description


def case_from_email(
    parsed: ParsedEmail, *, mailbox: str, now: datetime, received_at: datetime | None = None
) -> Case:
    """The case a new report opens; MessageParseError when it has no sender or no content."""
    if not parsed.from_address:
        raise MessageParseError("the message has no From address, so nobody could be answered")
    description = description_of(parsed)
    subject = subject_line(parsed.subject)
    if not description and not subject:
        raise MessageParseError("the message has neither a subject nor a body")
    reported = reported_at(parsed, received_at, now)
    case_subject, case_description = case_texts(subject, description)
    case = Case(
        subject=case_subject,
        submitter=Person(name=parsed.from_name.strip(), email=parsed.from_address),
        description=case_description,
        environment=parsed.environment
        if parsed.environment is not None
        else environment_from_text(f"{subject}\n{description}"),
        language=Language(parsed.language),
        source=CaseSource(kind=SourceKind.EMAIL, mailbox=mailbox, message_id=parsed.message_id),
        attachments=[attachment.info for attachment in parsed.attachments],
        created_at=now,
        updated_at=now,
    )
    case.log(
        LogKind.INTAKE,
        f"reported by email to {mailbox} at {reported.isoformat()}"
        + (f" ({len(case.attachments)} attachment(s))" if case.attachments else ""),
        at=now,
        source_ref=parsed.message_id,
    )
    return case
