"""What goes in and out of the case store besides cases: ledger rows and outbox messages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from mapping.case import utc_datetime
from mapping.outgoing_mail import OutboxMessage

__all__ = ["LedgerDecision", "LedgerEntry", "OutboxItem", "OutboxMessage", "OutboxStatus"]


class LedgerDecision(StrEnum):
    """What intake decided about one incoming item; the reason says why."""

    NEW_REPORT = "new_report"
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    OWN_MAIL = "own_mail"
    DUPLICATE = "duplicate"
    HELD_FOR_REVIEW = "held_for_review"
    QUARANTINED = "quarantined"
    JIRA_ISSUE = "jira_issue"
    SKIPPED = "skipped"


class LedgerEntry(BaseModel):
    """One incoming item (a mail in a folder, a Jira issue version) and what became of it."""

    id: int | None = None
    source: str = Field(description="'email' or 'jira'.")
    location: str = Field(description="Where this copy lives: mailbox/folder/uidvalidity/uid.")
    identity: str = Field(description="What makes two copies the same item (Message-ID, hash).")
    message_id: str | None = None
    blob_sha256: str | None = None
    decision: LedgerDecision
    reason: str
    case_number: str | None = None
    received_at: utc_datetime | None = None
    recorded_at: utc_datetime
    detail: dict[str, Any] | None = None


class OutboxStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class OutboxItem(OutboxMessage):
    """An outbox row as stored, with its delivery state."""

    id: int
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None = None
    server_answer: str | None = None
    created_at: datetime
    sent_at: datetime | None = None
