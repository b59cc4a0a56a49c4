"""The mailbox interface: where raw incoming mail is read from and marked done.

Two implementations plug in behind it: `MaildirMailbox` (the embedded default, a local folder)
and `ImapMailbox` (a real server). Intake never relies on a "seen" flag to know what is new: each
mailbox reports a stable location for every message, and the case store's ledger and watermarks
decide what has been ingested.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Mailbox", "MailboxCursor", "RawMessage"]


class RawMessage(BaseModel):
    """One message as it came from a mailbox: its bytes and where it lives."""

    model_config = ConfigDict(frozen=True)

    mailbox: str = Field(description="Configured name of the mailbox, e.g. 'support'.")
    folder: str = Field(description="Folder the message is in, e.g. 'INBOX'.")
    uidvalidity: int = Field(description="IMAP UIDVALIDITY; 0 for mailboxes without one.")
    uid: str = Field(description="Stable id of the message inside folder + uidvalidity.")
    raw: bytes
    received_at: datetime | None = Field(
        default=None, description="When the server received it (INTERNALDATE, file mtime)."
    )

    @property
    def location(self) -> str:
        """A key that names this copy of the message: mailbox/folder/uidvalidity/uid."""
        return f"{self.mailbox}/{self.folder}/{self.uidvalidity}/{self.uid}"


class MailboxCursor(BaseModel):
    """How far a sync of one folder got: the next fetch starts after `last_uid`."""

    uidvalidity: int = 0
    last_uid: int = 0


@runtime_checkable
class Mailbox(Protocol):
    """A source of raw messages that can mark a message as done after it was committed."""

    name: str

    def fetch_new(self, cursor: MailboxCursor, batch_size: int) -> Iterator[list[RawMessage]]:
        """Yield batches of messages newer than the cursor, oldest first."""
        ...

    def cursor_after(self, batch: Sequence[RawMessage]) -> MailboxCursor:
        """The cursor to store once `batch` is committed."""
        ...

    def mark_done(self, batch: Sequence[RawMessage]) -> None:
        """Flag or move messages whose cases were committed (never called before the commit)."""
        ...

    def close(self) -> None:
        """Release connections; safe to call twice."""
        ...
