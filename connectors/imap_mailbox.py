"""An IMAP folder as the mailbox, through imap-tools: incremental by UID, never by \\Seen.

Why imap-tools: it wraps imaplib's connection variants (SSL, STARTTLS, plain) behind one
`BaseMailBox`, checks every command's status into typed errors, encodes folder names in IMAP's
modified UTF-7, and is small and typed. We use it for the session (connect, login, select,
search, store, move) but read message bodies with one raw `UID FETCH` per batch: its own
`fetch()` parses every message into a `MailMessage`, and parsing is the cost (the notes measured
36,000 msg/s raw against 1,800 parsed) while intake parses each message once, its own way.

Where a message is: (mailbox name, folder, UIDVALIDITY, UID), kept in `MailboxCursor`. A new
UIDVALIDITY voids every UID: the folder is read again from the start and the ledger (Message-ID,
else a hash of the bytes) drops what was already ingested. Marking (a keyword such as
`$casedesk`, optionally \\Seen, or a move to a processed folder) happens only after the commit;
`unmarked_uids()` finds messages a crash left committed but unmarked.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import ImapToolsError, UnexpectedCommandStatusError
from imap_tools.errors import MailboxLoginError as ImapLoginError
from imap_tools.imap_utf7 import utf7_encode
from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.mailbox import MailboxCursor, RawMessage
from mapping.errors import ConfigError, MailboxError, MailboxLoginError

__all__ = ["FolderMessage", "ImapConfig", "ImapMailbox"]

logger = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "plain"]
Processed = Literal["flag", "move"]

_FETCH_ITEM = re.compile(rb"UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
#: Dovecot answers BAD past ~12,000 UIDs in one command (see the engineering notes).
MAX_BULK = 500


class ImapConfig(Protocol):
    """What `from_settings` reads: the fields of `flows.settings.ImapMailboxSettings`.

    A protocol, so that connectors never import the flows' settings module.
    """

    name: str
    host: str
    port: int | None
    security: Security
    user: str
    password: SecretStr
    folder: str
    processed: Processed
    processed_keyword: str
    processed_folder: str
    mark_seen: bool
    timeout_seconds: float
    ca_file: Path | None


class FolderMessage(BaseModel):
    """One message as the folder lists it (no body): for reconciling with the ledger."""

    model_config = ConfigDict(frozen=True)

    location: str
    uid: int
    message_id: str | None
    received_at: datetime | None


def _internaldate(header: bytes) -> datetime | None:
    match = _INTERNALDATE.search(header)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None


def _quote_folder(folder: str) -> str:
    encoded = utf7_encode(folder).decode("ascii")
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _StartTlsMailBox(MailBoxStartTls):
    """imap-tools' STARTTLS variant, closing the socket when the upgrade is refused."""

    def _get_mailbox_client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self._host, self._port, timeout=self._timeout)
        try:
            result = client.starttls(self._ssl_context)
            if result[0] != "OK":
                raise imaplib.IMAP4.error(f"STARTTLS answered {result[0]}: {_answer(result)}")
        except BaseException:
            try:
                client.shutdown()
            except OSError as cleanup_error:
                # A failed handshake (an untrusted certificate) leaves imaplib holding a socket
                # whose descriptor the SSL wrapper took and closed: shutdown() then fails with
                # EBADF, which must not replace the error that says what went wrong.
                logger.debug("closing after a failed STARTTLS: %s", cleanup_error)
            raise
        return client


class ImapMailbox:
    """One IMAP folder: fetches new messages by UID in batches, marks them after the commit."""

    def __init__(
        self,
        name: str,
        *,
        host: str,
        user: str,
        password: SecretStr,
        port: int | None = None,
        security: Security = "ssl",
        folder: str = "INBOX",
        processed: Processed = "flag",
        processed_keyword: str = "$casedesk",
        processed_folder: str = "casedesk-processed",
        mark_seen: bool = False,
        timeout_seconds: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port or (993 if security == "ssl" else 143)
        self.user = user
        self._password = password
        self.security: Security = security
        self.folder = folder
        self.processed: Processed = processed
        self.processed_keyword = processed_keyword
        self.processed_folder = processed_folder
        self.mark_seen = mark_seen
        self.timeout_seconds = timeout_seconds
        self._ssl_context = ssl_context
        self._box: BaseMailBox | None = None
        self._uidvalidity = 0
        self._uidnext = 0
        self.bodies_fetched = 0  # how many bodies this instance read (the no-op run reads none)

    @classmethod
    def from_settings(cls, config: ImapConfig) -> ImapMailbox:
        """Build from `flows.settings.ImapMailboxSettings` (the flows resolve the secret).

        ``ca_file`` is trusted instead of the system's CAs: a team's own server certificate.
        """
        ssl_context = None
        if config.ca_file is not None:
            # Read now: a missing or broken CA file is a configuration error to report at
            # start-up, not a connection failure on every pass.
            try:
                ssl_context = ssl.create_default_context(cafile=str(config.ca_file))
            except (OSError, ssl.SSLError) as error:
                raise ConfigError(
                    f"mailbox {config.name}: cannot load the CA file {config.ca_file}: {error}",
                    key="ca_file",
                ) from error
        return cls(
            config.name,
            host=config.host,
            user=config.user,
            password=config.password,
            port=config.port,
            security=config.security,
            folder=config.folder,
            processed=config.processed,
            processed_keyword=config.processed_keyword,
            processed_folder=config.processed_folder,
            mark_seen=config.mark_seen,
            timeout_seconds=config.timeout_seconds,
            ssl_context=ssl_context,
        )

    # Session ------------------------------------------------------------------------------
    def _error(self, message: str, uid: str | None = None) -> MailboxError:
        return MailboxError(message, mailbox=self.name, folder=self.folder, uid=uid)

    def _client_class(self) -> BaseMailBox:
        if self.security == "ssl":
            return MailBox(
                self.host,
                self.port,
                timeout=self.timeout_seconds,
                ssl_context=self._ssl_context or ssl.create_default_context(),
            )
        if self.security == "starttls":
            return _StartTlsMailBox(
                self.host,
                self.port,
                timeout=self.timeout_seconds,
                ssl_context=self._ssl_context or ssl.create_default_context(),
            )
        return MailBoxUnencrypted(self.host, self.port, timeout=self.timeout_seconds)

    def _session(self) -> BaseMailBox:
        """A logged-in session with the folder selected (opened once, reused)."""
        if self._box is not None:
            return self._box
        where = f"{self.host}:{self.port} ({self.security})"
        try:
            box = self._client_class()
        except UnexpectedCommandStatusError as error:
            raise self._error(f"STARTTLS refused by {where}: {error.command_result!r}") from error
        except ssl.SSLCertVerificationError as error:
            # Before the OSError branch (it is one): say what to change, not only what failed.
            raise self._error(
                f"the TLS certificate of {where} is not trusted ({error.verify_message}); "
                "if your own CA signed it, set the mailbox's ca_file to that CA's PEM file"
            ) from error
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as error:
            raise self._error(f"cannot connect to {where}: {error}") from error
        try:
            box.login(self.user, self._password.get_secret_value(), initial_folder=None)
        except ImapLoginError as error:
            box.client.shutdown()
            answer = _answer(error.command_result)
            raise MailboxLoginError(
                mailbox=self.name, host=where, user=self.user, answer=answer
            ) from error
        except (OSError, imaplib.IMAP4.error) as error:
            raise MailboxLoginError(
                mailbox=self.name, host=where, user=self.user, answer=str(error)
            ) from error
        self._box = box
        try:
            self._select()
        except MailboxError:
            self.close()  # a session without its folder is of no use to anyone
            raise
        return box

    def _select(self) -> None:
        assert self._box is not None
        client = self._box.client
        try:
            self._box.folder.set(self.folder)
        except UnexpectedCommandStatusError as error:
            raise self._error(
                f"cannot select the folder: {_answer(error.command_result)}"
            ) from error
        self._uidvalidity = _untagged_number(client, "UIDVALIDITY")
        self._uidnext = _untagged_number(client, "UIDNEXT")

    def _command(self, *args: str) -> list[object]:
        """One `UID` command; IMAP trouble becomes a MailboxError naming this folder."""
        client = self._session().client
        try:
            typ, data = client.uid(*args)
        except (OSError, imaplib.IMAP4.error) as error:
            self._drop()
            raise self._error(f"UID {args[0]} failed: {error}") from error
        if typ != "OK":
            raise self._error(f"UID {args[0]} answered {typ}: {_answer((typ, data))}")
        return list(data)

    def _drop(self) -> None:
        box, self._box = self._box, None
        if box is not None:
            try:
                box.client.shutdown()
            except OSError:
                logger.debug("%s: socket already closed", self.name)

    def close(self) -> None:
        box, self._box = self._box, None
        if box is None:
            return
        try:
            box.logout()
        except (OSError, imaplib.IMAP4.error, ImapToolsError) as error:
            logger.debug("%s: logout failed (%s); closing the socket", self.name, error)
            try:
                box.client.shutdown()
            except OSError:
                logger.debug("%s: socket already closed", self.name)

    def _fresh(self) -> None:
        """A session whose SELECT data is current: re-selecting makes the server report mail
        that arrived since (and a changed UIDVALIDITY) on a long-lived session."""
        if self._box is None:
            self._session()
        else:
            self._select()

    @property
    def uidvalidity(self) -> int:
        self._session()
        return self._uidvalidity

    def location(self, uid: int | str) -> str:
        return f"{self.name}/{self.folder}/{self._uidvalidity}/{uid}"

    # Reading ------------------------------------------------------------------------------
    def _search(self, criteria: str) -> list[int]:
        data = self._command("SEARCH", criteria)
        first = data[0] if data else b""
        return [int(uid) for uid in first.split()] if isinstance(first, bytes) else []

    def new_uids(self, cursor: MailboxCursor) -> list[int]:
        """UIDs after the cursor, oldest first (all of them after a UIDVALIDITY change)."""
        self._fresh()
        last_uid = cursor.last_uid
        if cursor.uidvalidity != self._uidvalidity:
            if cursor.uidvalidity:
                logger.warning(
                    "%s/%s: UIDVALIDITY changed %s -> %s: re-reading the folder; the ledger "
                    "drops what was already ingested",
                    self.name,
                    self.folder,
                    cursor.uidvalidity,
                    self._uidvalidity,
                )
            last_uid = 0
        elif self._uidnext and self._uidnext <= last_uid + 1:
            return []  # SELECT's UIDNEXT says nothing is new: no search, no fetch
        # `N:*` returns the newest message even when it is older than N: filter ourselves.
        return sorted(uid for uid in self._search(f"UID {last_uid + 1}:*") if uid > last_uid)

    def fetch_new(self, cursor: MailboxCursor, batch_size: int) -> Iterator[list[RawMessage]]:
        """Yield batches of messages newer than the cursor, oldest first, bodies peeked."""
        uids = self.new_uids(cursor)
        bulk = max(1, min(batch_size, MAX_BULK))
        for start in range(0, len(uids), bulk):
            yield self._fetch(uids[start : start + bulk])

    def _fetch(self, uids: Sequence[int]) -> list[RawMessage]:
        wanted = ",".join(str(uid) for uid in uids)
        # BODY.PEEK: reading must not set \Seen; people may still work the same mailbox.
        data = self._command("FETCH", wanted, "(UID INTERNALDATE BODY.PEEK[])")
        found: dict[int, RawMessage] = {}
        for item in data:
            if not isinstance(item, tuple) or len(item) < 2:
                continue  # closing parens and unsolicited FLAGS updates
            header, body = item[0], item[1]
            match = _FETCH_ITEM.search(header)
            if match is None or not isinstance(body, bytes):
                continue
            uid = int(match.group(1))
            found[uid] = RawMessage(
                mailbox=self.name,
                folder=self.folder,
                uidvalidity=self._uidvalidity,
                uid=str(uid),
                raw=body,
                received_at=_internaldate(header),
            )
        self.bodies_fetched += len(found)
        missing = [uid for uid in uids if uid not in found]
        if missing:
            # Expunged between SEARCH and FETCH by another client: nothing to ingest.
            logger.warning("%s: UIDs %s vanished before they were fetched", self.name, missing)
        return [found[uid] for uid in uids if uid in found]

    def cursor_after(self, batch: Sequence[RawMessage]) -> MailboxCursor:
        last = max((int(message.uid) for message in batch), default=0)
        return MailboxCursor(uidvalidity=self._uidvalidity, last_uid=last)

    # Marking ------------------------------------------------------------------------------
    def mark_done(self, batch: Sequence[RawMessage]) -> None:
        """Flag or move committed messages (never called before their commit)."""
        self._session()
        current = [
            m for m in batch if m.uidvalidity == self._uidvalidity and m.folder == self.folder
        ]
        if len(current) != len(batch):
            logger.warning(
                "%s: %d message(s) belong to an older UIDVALIDITY; not marked",
                self.name,
                len(batch) - len(current),
            )
        self.mark_uids_done([int(message.uid) for message in current])

    def mark_uids_done(self, uids: Sequence[int]) -> None:
        if not uids:
            return
        flags = [self.processed_keyword] + (["\\Seen"] if self.mark_seen else [])
        for start in range(0, len(uids), MAX_BULK):
            chunk = ",".join(str(uid) for uid in uids[start : start + MAX_BULK])
            self._command("STORE", chunk, "+FLAGS.SILENT", f"({' '.join(flags)})")
            if self.processed == "move":
                self._ensure_processed_folder()
                self._command("MOVE", chunk, _quote_folder(self.processed_folder))

    def _ensure_processed_folder(self) -> None:
        client = self._session().client
        typ, data = client.create(_quote_folder(self.processed_folder))
        text = _answer((typ, data))
        if typ != "OK" and "ALREADYEXISTS" not in text.upper() and "exists" not in text.lower():
            raise self._error(f"cannot create folder {self.processed_folder!r}: {text}")

    def unmarked_uids(self, cursor: MailboxCursor) -> list[int]:
        """Messages at or before the cursor still unmarked: a crash came after their commit."""
        self._session()
        if cursor.uidvalidity != self._uidvalidity or cursor.last_uid == 0:
            return []
        criteria = f"UID 1:{cursor.last_uid}"
        if self.processed == "flag":
            criteria += f" UNKEYWORD {self.processed_keyword}"
        return [uid for uid in self._search(criteria) if uid <= cursor.last_uid]

    # Reconcile ----------------------------------------------------------------------------
    def list_window(self, since: date, until: date) -> list[FolderMessage]:
        """Every message that arrived in [since, until] (server dates), headers only."""
        self._fresh()
        before = until + timedelta(days=1)
        criteria = f"SINCE {_imap_date(since)} BEFORE {_imap_date(before)}"
        uids = self._search(criteria)
        listed: list[FolderMessage] = []
        for start in range(0, len(uids), MAX_BULK):
            chunk = ",".join(str(uid) for uid in uids[start : start + MAX_BULK])
            data = self._command(
                "FETCH", chunk, "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            )
            for item in data:
                if not isinstance(item, tuple) or len(item) < 2:
                    continue
                match = _FETCH_ITEM.search(item[0])
                if match is None:
                    continue
                uid = int(match.group(1))
                ids = re.findall(rb"<([^<>\s]+)>", item[1] or b"")
                listed.append(
                    FolderMessage(
                        location=self.location(uid),
                        uid=uid,
                        message_id=ids[0].decode("utf-8", "replace") if ids else None,
                        received_at=_internaldate(item[0]),
                    )
                )
        return sorted(listed, key=lambda message: message.uid)


def _imap_date(day: date) -> str:
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    return f"{day.day}-{months[day.month - 1]}-{day.year}"


def _answer(result: tuple[object, object]) -> str:
    """The server's words from a command result, for error messages (never a password)."""
    data = result[1] if len(result) > 1 else b""
    parts = data if isinstance(data, list) else [data]
    texts = [
        part.decode("utf-8", "replace") if isinstance(part, bytes) else str(part)
        for part in parts
        if part is not None
    ]
    return " ".join(texts).strip() or str(result[0])


def _untagged_number(client: imaplib.IMAP4, name: str) -> int:
    """A number the server sent untagged on SELECT (UIDVALIDITY, UIDNEXT); 0 when it did not."""
    values = client.untagged_responses.get(name) or [b"0"]
    last = values[-1]
    return int(last if isinstance(last, bytes | str) else last[0])
