"""A new report by email becomes a case record (seed step 1: who, when, what)."""

from __future__ import annotations

from datetime import datetime

from mapping.case import Case, CaseSource, Language, LogKind, Person, SourceKind
from mapping.errors import MessageParseError
from mapping.parsed_email import ParsedEmail

__all__ = ["case_from_email"]

MAX_SUBJECT = 200


def case_from_email(parsed: ParsedEmail, *, mailbox: str, now: datetime) -> Case:
    """The case a new report opens; MessageParseError when it has no sender or no content."""
    if not parsed.from_address:
        raise MessageParseError("the message has no From address, so nobody could be answered")
    description = (parsed.reply_text or parsed.text).strip()
    subject = " ".join(parsed.subject.split())[:MAX_SUBJECT]
    if not description and not subject:
        raise MessageParseError("the message has neither a subject nor a body")
    reported_at = parsed.date or now
    case = Case(
        subject=subject or description.splitlines()[0][:MAX_SUBJECT],
        submitter=Person(name=parsed.from_name.strip(), email=parsed.from_address),
        description=description or subject,
        language=Language(parsed.language),
        source=CaseSource(kind=SourceKind.EMAIL, mailbox=mailbox, message_id=parsed.message_id),
        attachments=[attachment.info for attachment in parsed.attachments],
        created_at=now,
        updated_at=now,
    )
    case.log(
        LogKind.INTAKE,
        f"reported by email to {mailbox} at {reported_at.isoformat()}",
        at=now,
        source_ref=parsed.message_id,
    )
    return case
