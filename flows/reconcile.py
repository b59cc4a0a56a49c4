"""Reconcile: is every message of a folder, over a time window, in the ledger?

The folder is listed without bodies (UID, arrival time, Message-ID); each message is looked up
in the ledger by its location, then by its Message-ID (another copy of it, in another mailbox or
under an older UIDVALIDITY, may have been ingested instead). What is in neither was never
ingested: a bug or a crash to look at. Messages after the sync cursor are only waiting.
"""

from __future__ import annotations

import logging
from datetime import date

from pydantic import BaseModel, Field

from connectors.imap_mailbox import FolderMessage, ImapMailbox
from connectors.mailbox import MailboxCursor
from connectors.store import CaseStore
from flows.intake import SOURCE

__all__ = ["ReconcileReport", "reconcile_mailbox"]

logger = logging.getLogger(__name__)


class ReconcileReport(BaseModel):
    """What a reconcile found in one folder over one window."""

    mailbox: str
    folder: str
    since: date
    until: date
    listed: int = 0
    ingested: int = 0
    ingested_as_copy: int = 0
    waiting: list[FolderMessage] = Field(
        default_factory=list, description="After the sync cursor: the next run reads them."
    )
    never_ingested: list[FolderMessage] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.never_ingested


def reconcile_mailbox(
    store: CaseStore,
    mailbox: ImapMailbox,
    cursor: MailboxCursor,
    *,
    since: date,
    until: date,
) -> ReconcileReport:
    """Compare the folder with the ledger over [since, until] (server arrival dates)."""
    listed = mailbox.list_window(since, until)
    report = ReconcileReport(
        mailbox=mailbox.name, folder=mailbox.folder, since=since, until=until, listed=len(listed)
    )
    current = cursor.uidvalidity == mailbox.uidvalidity
    with store.transaction() as tx:
        seen = tx.seen_locations(SOURCE, [message.location for message in listed])
        for message in listed:
            if message.location in seen:
                report.ingested += 1
                continue
            if message.message_id and tx.first_with_identity(SOURCE, f"mid:{message.message_id}"):
                report.ingested_as_copy += 1
                continue
            if current and message.uid > cursor.last_uid:
                report.waiting.append(message)
                continue
            report.never_ingested.append(message)
    if report.never_ingested:
        logger.error(
            "%s/%s: %d message(s) were never ingested: UIDs %s",
            mailbox.name,
            mailbox.folder,
            len(report.never_ingested),
            [message.uid for message in report.never_ingested][:50],
        )
    return report
