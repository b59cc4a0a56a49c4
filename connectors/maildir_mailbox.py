"""A local Maildir folder as the mailbox: the embedded default, no server needed.

Messages waiting in `new/` are the queue; once their cases are committed they move to `cur/`
with the Seen flag. A crash between the commit and the move leaves them in `new/`, and the
ledger (which knows their location) makes the next run only move them.
"""

from __future__ import annotations

import logging
import mailbox
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from connectors.mailbox import MailboxCursor, RawMessage
from mapping.errors import MailboxError

__all__ = ["MaildirMailbox"]

logger = logging.getLogger(__name__)
FOLDER = "INBOX"


class MaildirMailbox:
    """Reads `new/` of a Maildir, oldest first, and files done messages into `cur/`."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._maildir = mailbox.Maildir(path, factory=None, create=True)
        except OSError as error:
            raise MailboxError(f"cannot open Maildir at {path}: {error}", mailbox=name) from error

    def add(self, raw: bytes) -> str:
        """Deliver a message into `new/` (what a mail server would do); returns its key."""
        return self._maildir.add(raw)

    def _new_files(self) -> list[tuple[float, str, Path]]:
        new_dir = self.path / "new"
        found: list[tuple[float, str, Path]] = []
        with os.scandir(new_dir) as entries:
            for entry in entries:
                if entry.is_file() and not entry.name.startswith("."):
                    key = entry.name.split(":", 1)[0]
                    found.append((entry.stat().st_mtime, key, Path(entry.path)))
        found.sort()
        return found

    def fetch_new(self, cursor: MailboxCursor, batch_size: int) -> Iterator[list[RawMessage]]:
        batch: list[RawMessage] = []
        for mtime, key, file_path in self._new_files():
            try:
                raw = file_path.read_bytes()
            except OSError as error:
                raise MailboxError(f"cannot read: {error}", mailbox=self.name, uid=key) from error
            batch.append(
                RawMessage(
                    mailbox=self.name,
                    folder=FOLDER,
                    uidvalidity=0,
                    uid=key,
                    raw=raw,
                    received_at=datetime.fromtimestamp(mtime, UTC),
                )
            )
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def cursor_after(self, batch: Sequence[RawMessage]) -> MailboxCursor:
        # new/ is the queue itself, so there is no position to remember.
        return MailboxCursor()

    def mark_done(self, batch: Sequence[RawMessage]) -> None:
        for message in batch:
            try:
                maildir_message = self._maildir.get_message(message.uid)
            except KeyError:
                logger.info("%s: message %s is already filed", self.name, message.uid)
                continue
            if maildir_message.get_subdir() == "cur":
                continue
            maildir_message.set_subdir("cur")
            maildir_message.add_flag("S")
            self._maildir[message.uid] = maildir_message

    def close(self) -> None:
        self._maildir.close()
