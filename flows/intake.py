"""Intake, as plain Python: a batch of raw messages becomes cases, ledger rows and outbox rows.

The flow in `intake_flow.py` only orchestrates this. One database transaction per batch, with a
savepoint per message, so that one bad message is quarantined (kept raw, with its reason) and
never blocks the others; the mailbox's watermark is written in the same transaction.

Each message is classified (`mapping.classify`) and handled by kind, from a table: a new report
opens a case; a reply is logged on its case (a reply found only by the subject token, from
someone who is not on the case, is held for review and never applied until a person decides:
see `resolve_held`); an auto-reply is logged
on its case and never answered; a bounce is logged on the case of the bounced mail and the
address is suppressed; our own mail coming back is dropped. Every decision and its reason goes
on the message's ledger row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from connectors.mailbox import Mailbox, MailboxCursor, RawMessage
from connectors.store import CaseStore, LedgerDecision, LedgerEntry, StoreTransaction, sha256_hex
from flows.parse_ahead import Parsed, ParseFailure, Prematch, prematch_all
from mapping.case import Case, LogKind
from mapping.classify import Classification, MessageKind, accept_subject_reply, classify
from mapping.email_to_case import case_from_email
from mapping.errors import CasedeskError, MessageParseError
from mapping.outgoing_mail import SenderIdentity, compose
from mapping.parsed_email import ParsedEmail, parse_email
from mapping.rules.conditions import Prematched

__all__ = [
    "IntakeContext",
    "IntakeReport",
    "PreparedMessage",
    "ReviewAction",
    "RouteHook",
    "cursor_name",
    "finish_pending_marks",
    "ingest_batch",
    "ingest_one_safely",
    "prepare",
    "resolve_held",
    "retry_quarantined",
]

logger = logging.getLogger(__name__)
SOURCE = "email"

#: Addresses we never write to: they do not read, or answering them loops.
NEVER_WRITE_TO = ("mailer-daemon@", "postmaster@", "noreply", "no-reply", "donotreply")

CaseHook = Callable[[StoreTransaction, Case, ParsedEmail], None]


class RouteHook(Protocol):
    """Routes a new case before it is stored, given what `IntakeContext.prematch` found."""

    def __call__(
        self, tx: StoreTransaction, case: Case, parsed: ParsedEmail, prematched: Prematched | None
    ) -> None: ...


@dataclass
class IntakeContext:
    """What intake needs besides the messages: who we are, the clock, and the routing hooks."""

    identity: SenderIdentity
    zone: ZoneInfo
    max_message_bytes: int
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: Called on each new case before it is stored (the rules of the routing issue plug in here).
    route_new_case: RouteHook | None = None
    #: Checks the rules' content conditions where a mail is parsed, for the whole batch before
    #: its database work (and in the parse worker, which gets a pickled copy): their result is
    #: passed to `route_new_case`. None: the router matches everything itself.
    prematch: Prematch | None = None
    #: Called with each accepted reply after it is logged on its case, before the case is saved:
    #: where reading feedback answers (1/2/3, 已解决 ...) plugs in. May change the case.
    on_reply: CaseHook | None = None


class IntakeReport(BaseModel):
    """What one intake run did, by decision; shown in the CLI and as a flow artifact."""

    fetched: int = 0
    already_ingested: int = 0
    new_cases: list[str] = Field(default_factory=list)
    decisions: dict[str, int] = Field(default_factory=dict)
    quarantined: list[str] = Field(default_factory=list)
    held_for_review: list[str] = Field(default_factory=list)

    def count(self, decision: LedgerDecision) -> None:
        self.decisions[decision.value] = self.decisions.get(decision.value, 0) + 1

    def merge(self, other: IntakeReport) -> None:
        self.fetched += other.fetched
        self.already_ingested += other.already_ingested
        self.new_cases.extend(other.new_cases)
        self.quarantined.extend(other.quarantined)
        self.held_for_review.extend(other.held_for_review)
        for decision, count in other.decisions.items():
            self.decisions[decision] = self.decisions.get(decision, 0) + count


def identity_of(parsed: ParsedEmail | None, digest: str) -> str:
    """Two copies are the same mail when their Message-IDs agree, else when their bytes do."""
    if parsed is not None and parsed.message_id:
        return f"mid:{parsed.message_id}"
    return f"sha256:{digest}"


def may_write_to(address: str | None) -> bool:
    """False for role and robot addresses that never read, or answer back in a loop."""
    if not address:
        return False
    return not any(part in address.lower() for part in NEVER_WRITE_TO)


@dataclass
class PreparedMessage:
    """A message read before its database work: hashed and parsed once (or why not)."""

    message: RawMessage
    digest: str
    parsed: ParsedEmail | None = None
    #: What parsing raised; handled inside the message's savepoint, as if raised there.
    error: Exception | None = None
    too_large: bool = False
    #: The rules' content conditions that hold (see `IntakeContext.prematch`).
    prematched: Prematched | None = None

    @property
    def identity(self) -> str:
        return identity_of(self.parsed, self.digest)


def prepare(
    message: RawMessage, context: IntakeContext, *, size_limit: bool = True
) -> PreparedMessage:
    """Hash and parse one message; needs no database, so a whole batch is prepared first."""
    digest = sha256_hex(message.raw)
    if size_limit and len(message.raw) > context.max_message_bytes:
        return PreparedMessage(message, digest, too_large=True)  # never parsed: it may be huge
    try:
        parsed = parse_email(message.raw)
    except Exception as error:  # noqa: BLE001 - _ingest_one re-raises it in the savepoint
        return PreparedMessage(message, digest, error=error)
    return PreparedMessage(message, digest, parsed=parsed)


def ingest_batch(
    store: CaseStore,
    batch: Sequence[RawMessage],
    context: IntakeContext,
    *,
    watermark: tuple[str, str] | None = None,
    parsed: Mapping[str, Parsed] | None = None,
) -> IntakeReport:
    """Ingest a batch in one transaction; messages already in the ledger are skipped.

    `parsed` is what parse workers found for the batch's messages, by location
    (`flows.parse_ahead`); messages not in it are parsed here.

    What every message needs from the database is asked once for the whole batch: which
    locations the ledger has, the ledger's first row for each identity (kept current as the
    batch writes rows, so a second copy within the batch is a duplicate of the first), which
    senders must not be written to, and the raw bytes kept (each message's ledger row points at
    them, whatever its decision).

    The batch first runs straight through. Only if a message raises something unexpected (a
    bug, not a message we cannot read: those are quarantined on the way) is the transaction
    rolled back and the batch run again with each message in its own savepoint, so that the
    failing one is quarantined and the others go in. A savepoint costs about 0.1 ms a message
    on SQLite, as much as writing the case itself, and such failures are rare.
    """
    prepared: dict[str, PreparedMessage] = {  # parsed once, even if the batch runs twice
        message.location: PreparedMessage(
            message,
            item.digest,
            item.parsed,
            error=item.error,
            too_large=item.too_large,
            prematched=item.prematched,
        )
        for message in batch
        if parsed is not None and (item := parsed.get(message.location)) is not None
    }
    try:
        return _ingest_batch(store, batch, context, watermark, prepared, guarded=False)
    except Exception as error:  # noqa: BLE001 - re-run below, where it is quarantined
        logger.warning(
            "a message failed in a batch of %d (%s: %s); running the batch again with a "
            "savepoint per message",
            len(batch),
            type(error).__name__,
            error,
        )
    return _ingest_batch(store, batch, context, watermark, prepared, guarded=True)


def _ingest_batch(
    store: CaseStore,
    batch: Sequence[RawMessage],
    context: IntakeContext,
    watermark: tuple[str, str] | None,
    prepared: dict[str, PreparedMessage],
    *,
    guarded: bool,
) -> IntakeReport:
    report = IntakeReport(fetched=len(batch))
    # One time for the whole batch, as a database gives one to a transaction (PostgreSQL's
    # `now()`): its cases, ledger rows and mail are all written at once, at commit. The rules'
    # log entries and due times then repeat within a batch and are made once (mapping.rules).
    now = context.clock()
    context = replace(context, clock=lambda: now)
    with store.transaction() as tx:
        seen = tx.seen_locations(SOURCE, [message.location for message in batch])
        fresh = [message for message in batch if message.location not in seen]
        report.already_ingested = len(batch) - len(fresh)
        items = []
        parsed_here = []
        for message in fresh:
            item = prepared.get(message.location)
            if item is None:
                item = prepared[message.location] = prepare(message, context)
                parsed_here.append(item)
            items.append(item)
        if context.prematch is not None:
            mails = [(item.parsed, item.message.mailbox) for item in parsed_here]
            for item, prematched in zip(
                parsed_here, prematch_all(context.prematch, mails), strict=True
            ):
                item.prematched = prematched
        tx.put_blobs([item.message.raw for item in items], digests=[item.digest for item in items])
        earlier = tx.first_with_identities(SOURCE, [item.identity for item in items])
        tx.prefetch_suppressed(
            [item.parsed.from_address for item in items if item.parsed and item.parsed.from_address]
        )
        if not guarded:
            tx.defer_inserts()  # new cases, ledger and outbox rows: one INSERT each at the end
        for item in items:
            ingest_one_safely(
                tx, item.message, context, report, prepared=item, earlier=earlier, guarded=guarded
            )
        if watermark is not None:
            tx.set_watermark(*watermark, now=context.clock())
    return report


@runtime_checkable
class PendingMarks(Protocol):
    """A mailbox that can list committed-but-unmarked messages (ImapMailbox)."""

    name: str

    def unmarked_uids(self, cursor: MailboxCursor) -> list[int]: ...

    def location(self, uid: int | str) -> str: ...

    def mark_uids_done(self, uids: Sequence[int]) -> None: ...


def cursor_name(mailbox: Mailbox) -> str:
    """The watermark that holds how far intake has read `mailbox`."""
    return f"mailbox:{mailbox.name}"


def finish_pending_marks(store: CaseStore, mailbox: Mailbox, cursor: MailboxCursor) -> int:
    """Mark what a crash left committed but unmarked; returns how many were marked.

    Only mailboxes that can list such messages (IMAP: one UID SEARCH, no bodies) take part;
    a message is marked only when the ledger really has it.
    """
    if not isinstance(mailbox, PendingMarks):
        return 0
    uids = mailbox.unmarked_uids(cursor)
    if not uids:
        return 0
    locations = {mailbox.location(uid): uid for uid in uids}
    with store.transaction() as tx:
        seen = tx.seen_locations(SOURCE, list(locations))
    done = [uid for location, uid in locations.items() if location in seen]
    if done:
        logger.warning("%s: marking %d committed but unmarked message(s)", mailbox.name, len(done))
        mailbox.mark_uids_done(done)
    return len(done)


def ingest_one_safely(
    tx: StoreTransaction,
    message: RawMessage,
    context: IntakeContext,
    report: IntakeReport,
    *,
    replaces: int | None = None,
    size_limit: bool = True,
    prepared: PreparedMessage | None = None,
    earlier: MutableMapping[str, LedgerEntry] | None = None,
    guarded: bool = True,
) -> LedgerEntry:
    """One message in its own savepoint: whatever goes wrong, it is quarantined, not lost.

    `ingest_batch` passes the message `prepared` (its raw bytes already kept) and `earlier`,
    the first ledger row per identity; alone, both are found here. Returns the row written.
    With `guarded=False` there is no savepoint and an unexpected error propagates (the
    caller rolls back and runs again guarded).
    """
    if prepared is None:
        prepared = prepare(message, context, size_limit=size_limit)
        tx.put_blob(message.raw)
    if not guarded:
        entry = _ingest_one(tx, prepared, context, report, replaces=replaces, earlier=earlier)
    else:
        savepoint = tx.connection.begin_nested()
        try:
            entry = _ingest_one(tx, prepared, context, report, replaces=replaces, earlier=earlier)
            savepoint.commit()
        except Exception as error:  # one bad message must never block the others
            savepoint.rollback()
            logger.exception("quarantined %s", message.location)
            reason = describe(error)
            entry = _quarantine(tx, prepared, context, report, reason, replaces=replaces)
    if earlier is not None:
        earlier.setdefault(entry.identity, entry)
    return entry


def describe(error: Exception) -> str:
    """How a quarantined message's reason names what went wrong: `Type: message`."""
    if isinstance(error, ParseFailure):
        return error.description  # raised in a parse worker, named there
    return f"{type(error).__name__}: {error}"


def retry_quarantined(store: CaseStore, entry_id: int, context: IntakeContext) -> LedgerEntry:
    """Replay one quarantined message from its stored raw bytes; returns its new ledger row.

    The size limit is not applied: a person chose to replay this message. If it still fails
    it stays quarantined, with the new reason.
    """
    with store.transaction() as tx:
        entries = tx.ledger_entries(entry_id=entry_id)
        if not entries:
            raise CasedeskError(f"no ledger entry with id {entry_id}")
        entry = entries[0]
        if entry.decision != LedgerDecision.QUARANTINED:
            raise CasedeskError(
                f"ledger entry {entry_id} is not quarantined (it is {entry.decision.value})"
            )
        if entry.blob_sha256 is None:
            raise CasedeskError(f"ledger entry {entry_id} kept no raw message to replay")
        mailbox, folder, uidvalidity, uid = _split_location(entry.location)
        message = RawMessage(
            mailbox=mailbox,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            raw=tx.get_blob(entry.blob_sha256),
            received_at=entry.received_at,
        )
        report = IntakeReport(fetched=1)
        ingest_one_safely(tx, message, context, report, replaces=entry_id, size_limit=False)
        return tx.ledger_entries(entry_id=entry_id)[0]


class ReviewAction(StrEnum):
    """What a person decides about a reply that was held for review."""

    #: The sender belongs to the candidate case: apply the reply, and make them a collaborator
    #: so that their next replies are applied without review.
    ACCEPT = "accept"
    #: It is a report of its own: open a new case (and confirm it to the sender).
    NEW_CASE = "new"
    #: Neither: keep it (raw, in the ledger) and never apply it.
    DISMISS = "dismiss"


def resolve_held(
    store: CaseStore,
    entry_id: int,
    action: ReviewAction,
    context: IntakeContext,
    *,
    reviewer: str,
    note: str = "",
) -> LedgerEntry:
    """Carry out a person's decision on a held reply; returns its updated ledger row."""
    with store.transaction() as tx:
        entries = tx.ledger_entries(entry_id=entry_id)
        if not entries:
            raise CasedeskError(f"no ledger entry with id {entry_id}")
        entry = entries[0]
        if entry.decision != LedgerDecision.HELD_FOR_REVIEW:
            raise CasedeskError(
                f"ledger entry {entry_id} is not held for review (it is {entry.decision.value})"
            )
        why = f"{action.value} by {reviewer} at review" + (f": {note}" if note else "")
        if action is ReviewAction.DISMISS:
            tx.update_ledger(
                entry_id, decision=LedgerDecision.SKIPPED.value, reason=f"{why} ({entry.reason})"
            )
            return tx.ledger_entries(entry_id=entry_id)[0]
        if entry.blob_sha256 is None:  # pragma: no cover - held rows always keep their bytes
            raise CasedeskError(f"ledger entry {entry_id} kept no raw message")
        mailbox, folder, uidvalidity, uid = _split_location(entry.location)
        message = RawMessage(
            mailbox=mailbox,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            raw=tx.get_blob(entry.blob_sha256),
            received_at=entry.received_at,
        )
        parsed = parse_email(message.raw)
        prepared = PreparedMessage(message, entry.blob_sha256, parsed=parsed)
        report = IntakeReport(fetched=1)
        if action is ReviewAction.ACCEPT:
            number = (entry.detail or {}).get("candidate_case")
            case = tx.find_case(number) if number else None
            if case is None:
                raise CasedeskError(f"ledger entry {entry_id} names no case that exists")
            sender = parsed.from_address or ""
            if sender and sender not in case.collaborators:
                case.collaborators = [*case.collaborators, sender]
                case.log(
                    LogKind.ASSIGNMENT,
                    f"collaborator {sender} added by {reviewer} at review",
                    at=context.clock(),
                    actor=reviewer,
                )
                tx.save_case(case)
            verdict = Classification(
                kind=MessageKind.REPLY, reason=why, case_number=case.number, matched_by="review"
            )
            _reply(tx, prepared, parsed, verdict, entry, context, report)
        else:
            verdict = Classification(kind=MessageKind.NEW_REPORT, reason=why)
            _new_report(tx, prepared, parsed, verdict, entry, context, report)
        _write(tx, entry, entry_id, report)
        return tx.ledger_entries(entry_id=entry_id)[0]


def _split_location(location: str) -> tuple[str, str, int, str]:
    mailbox, _, rest = location.partition("/")
    folder_and_validity, _, uid = rest.rpartition("/")
    folder, _, uidvalidity = folder_and_validity.rpartition("/")
    try:
        return mailbox, folder, int(uidvalidity), uid
    except ValueError as error:
        raise CasedeskError(f"cannot read the location {location!r}") from error


def _ingest_one(
    tx: StoreTransaction,
    prepared: PreparedMessage,
    context: IntakeContext,
    report: IntakeReport,
    *,
    replaces: int | None,
    earlier: MutableMapping[str, LedgerEntry] | None,
) -> LedgerEntry:
    message = prepared.message
    now = context.clock()
    if prepared.too_large:
        reason = f"larger than max_message_bytes ({len(message.raw)} > {context.max_message_bytes})"
        return _quarantine(tx, prepared, context, report, reason, replaces=replaces)
    if isinstance(prepared.error, MessageParseError):
        reason = f"cannot parse: {prepared.error.reason}"
        return _quarantine(tx, prepared, context, report, reason, replaces=replaces)
    if prepared.error is not None:
        raise prepared.error
    parsed = prepared.parsed
    assert parsed is not None
    digest = prepared.digest
    identity = identity_of(parsed, digest)
    entry = LedgerEntry(
        source=SOURCE,
        location=message.location,
        identity=identity,
        message_id=parsed.message_id,
        blob_sha256=digest,
        decision=LedgerDecision.NEW_REPORT,
        reason="",
        received_at=message.received_at,
        recorded_at=now,
        detail={"problems": parsed.problems[:20]} if parsed.problems else None,
    )
    first = (
        earlier.get(identity) if earlier is not None else tx.first_with_identity(SOURCE, identity)
    )
    if first is not None and (replaces is None or first.id != replaces):
        entry.decision = LedgerDecision.DUPLICATE
        entry.reason = f"same mail as {first.location} ({identity})"
        entry.case_number = first.case_number
        _write(tx, entry, replaces, report)
        return entry
    verdict = classify(parsed, message.raw, context.identity)
    handler = _HANDLERS[verdict.kind]
    handler(tx, prepared, parsed, verdict, entry, context, report)
    _write(tx, entry, replaces, report)
    return entry


def _write(
    tx: StoreTransaction, entry: LedgerEntry, replaces: int | None, report: IntakeReport
) -> None:
    """Record the decision: a new ledger row, or the quarantined row being retried."""
    if replaces is None:
        entry.id = tx.record(entry)
    else:
        values = entry.model_dump(exclude={"id", "source", "location"})
        tx.update_ledger(replaces, **values)
    report.count(entry.decision)
    logger.debug("%s: %s (%s)", entry.location, entry.decision.value, entry.reason)


def _store_attachments(tx: StoreTransaction, parsed: ParsedEmail) -> None:
    if parsed.attachments:
        tx.put_blobs(
            [attachment.content for attachment in parsed.attachments],
            digests=[attachment.info.sha256 for attachment in parsed.attachments],
        )


def _new_report(
    tx: StoreTransaction,
    prepared: PreparedMessage,
    parsed: ParsedEmail,
    verdict: Classification,
    entry: LedgerEntry,
    context: IntakeContext,
    report: IntakeReport,
) -> None:
    message = prepared.message
    now = context.clock()
    case = case_from_email(
        parsed, mailbox=message.mailbox, now=now, received_at=message.received_at
    )
    _store_attachments(tx, parsed)
    if context.route_new_case is not None:
        context.route_new_case(tx, case, parsed, prepared.prematched)
    tx.add_case(case, month=case.created_at.astimezone(context.zone).date())
    assert case.number is not None
    entry.decision = LedgerDecision.NEW_REPORT
    entry.case_number = case.number
    entry.reason = verdict.reason
    report.new_cases.append(case.number)
    _queue_confirmation(tx, case, parsed, context)


def _reply(
    tx: StoreTransaction,
    prepared: PreparedMessage,
    parsed: ParsedEmail,
    verdict: Classification,
    entry: LedgerEntry,
    context: IntakeContext,
    report: IntakeReport,
) -> None:
    assert verdict.case_number is not None
    case = tx.find_case(verdict.case_number)
    if case is None:
        # A token or reference to a case we do not have (another system's, or mistyped).
        verdict = Classification(
            kind=MessageKind.NEW_REPORT,
            reason=f"new report: it refers to case {verdict.case_number}, which does not exist",
        )
        _new_report(tx, prepared, parsed, verdict, entry, context, report)
        return
    reason = verdict.reason
    if verdict.matched_by == "subject":
        accepted, why = accept_subject_reply(case, parsed.from_address)
        if not accepted:
            # Never applied to the case: kept (raw blob + ledger) for a person to look at.
            entry.decision = LedgerDecision.HELD_FOR_REVIEW
            entry.reason = f"{reason}; {why}"
            entry.detail = {**(entry.detail or {}), "candidate_case": case.number}
            report.held_for_review.append(f"{prepared.message.location}: {entry.reason}")
            return
        reason = f"{reason}; {why}"
    _store_attachments(tx, parsed)
    words = (parsed.reply_text or parsed.text).strip()
    sender = parsed.from_address or "unknown sender"
    attachments = f" [{len(parsed.attachments)} attachment(s)]" if parsed.attachments else ""
    case.attachments = [*case.attachments, *(a.info for a in parsed.attachments)]
    case.log(
        LogKind.EMAIL_IN,
        f"reply from {sender}: {_clip(words)}{attachments}",
        at=context.clock(),
        actor=sender,
        source_ref=parsed.message_id,
    )
    if context.on_reply is not None:
        # The hook for reading feedback answers (1/2/3, 已解决 ...) from the reply.
        context.on_reply(tx, case, parsed)
    tx.save_case(case)
    entry.decision = LedgerDecision.REPLY
    entry.case_number = case.number
    entry.reason = reason


def _auto_reply(
    tx: StoreTransaction,
    prepared: PreparedMessage,
    parsed: ParsedEmail,
    verdict: Classification,
    entry: LedgerEntry,
    context: IntakeContext,
    report: IntakeReport,
) -> None:
    entry.decision = LedgerDecision.AUTO_REPLY
    entry.reason = verdict.reason
    case = tx.find_case(verdict.case_number) if verdict.case_number else None
    if case is not None and verdict.matched_by == "subject":
        accepted, _why = accept_subject_reply(case, parsed.from_address)
        case = case if accepted else None
    if case is None:
        return
    # Recorded on the case; never answered, and it never changes the case's status.
    case.log(
        LogKind.AUTO_REPLY,
        f"automatic reply from {parsed.from_address}: {_clip(parsed.subject)}",
        at=context.clock(),
        actor=parsed.from_address or "unknown sender",
        source_ref=parsed.message_id,
    )
    tx.save_case(case)
    entry.case_number = case.number


def _bounce(
    tx: StoreTransaction,
    prepared: PreparedMessage,
    parsed: ParsedEmail,
    verdict: Classification,
    entry: LedgerEntry,
    context: IntakeContext,
    report: IntakeReport,
) -> None:
    now = context.clock()
    entry.decision = LedgerDecision.BOUNCE
    failed = verdict.permanent_failures
    entry.reason = verdict.reason + (f"; undeliverable: {', '.join(failed)}" if failed else "")
    entry.detail = {
        **(entry.detail or {}),
        "permanent": verdict.permanent_failures,
        "temporary": verdict.temporary_failures,
    }
    for address in failed:
        tx.suppress_address(address, f"bounced ({prepared.message.location})", now=now)
    case = tx.find_case(verdict.case_number) if verdict.case_number else None
    if case is None:
        for referenced in parsed.attached_message_ids:
            number = tx.case_number_for_message_id(referenced)
            case = tx.find_case(number) if number else None
            if case is not None:
                break
    if case is None:
        return
    what = ", ".join(failed or verdict.temporary_failures) or "unknown recipient"
    kind = "permanent" if failed else "temporary"
    case.log(
        LogKind.BOUNCE,
        f"our mail could not be delivered to {what} ({kind} failure)",
        at=now,
        source_ref=parsed.message_id,
    )
    tx.save_case(case)
    entry.case_number = case.number


def _own_mail(
    tx: StoreTransaction,
    prepared: PreparedMessage,
    parsed: ParsedEmail,
    verdict: Classification,
    entry: LedgerEntry,
    context: IntakeContext,
    report: IntakeReport,
) -> None:
    logger.info("%s: dropped our own mail (%s)", prepared.message.location, verdict.reason)
    entry.decision = LedgerDecision.OWN_MAIL
    entry.reason = verdict.reason


Handler = Callable[
    [
        StoreTransaction,
        PreparedMessage,
        ParsedEmail,
        Classification,
        LedgerEntry,
        IntakeContext,
        IntakeReport,
    ],
    None,
]

#: What intake does with each kind of message (the kinds come from `mapping.classify`).
_HANDLERS: dict[MessageKind, Handler] = {
    MessageKind.NEW_REPORT: _new_report,
    MessageKind.REPLY: _reply,
    MessageKind.AUTO_REPLY: _auto_reply,
    MessageKind.BOUNCE: _bounce,
    MessageKind.OWN_MAIL: _own_mail,
}


def _clip(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _queue_confirmation(
    tx: StoreTransaction, case: Case, parsed: ParsedEmail, context: IntakeContext
) -> None:
    recipient = case.submitter.email
    if not may_write_to(recipient) or tx.suppressed([recipient or ""]):
        logger.info("case %s: no confirmation to %r (never written to)", case.number, recipient)
        return
    thread = [*parsed.references, parsed.message_id] if parsed.message_id else []
    mail = compose(
        "confirmation",
        case,
        recipients=[recipient or ""],
        identity=context.identity,
        now=context.clock(),
        thread=[ref for ref in thread if ref],
    )
    tx.queue(mail, now=context.clock())


def _quarantine(
    tx: StoreTransaction,
    prepared: PreparedMessage,
    context: IntakeContext,
    report: IntakeReport,
    reason: str,
    *,
    replaces: int | None = None,
) -> LedgerEntry:
    """Say why (the raw bytes are kept already); `casedesk quarantine retry` replays it later."""
    message = prepared.message
    entry = LedgerEntry(
        source=SOURCE,
        location=message.location,
        identity=f"sha256:{prepared.digest}",
        blob_sha256=prepared.digest,
        decision=LedgerDecision.QUARANTINED,
        reason=reason,
        received_at=message.received_at,
        recorded_at=context.clock(),
    )
    _write(tx, entry, replaces, report)
    report.quarantined.append(f"{message.location}: {reason}")
    return entry
