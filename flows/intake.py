"""Intake, as plain Python: a batch of raw messages becomes cases, ledger rows and outbox rows.

The flow in `intake_flow.py` only orchestrates this. One database transaction per batch, with a
savepoint per message, so that one bad message is quarantined (kept raw, with its reason) and
never blocks the others; the mailbox's watermark is written in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from connectors.mailbox import RawMessage
from connectors.store import CaseStore, LedgerDecision, LedgerEntry, StoreTransaction, sha256_hex
from mapping.case import Case
from mapping.email_to_case import case_from_email
from mapping.errors import MessageParseError
from mapping.outgoing_mail import SenderIdentity, compose
from mapping.parsed_email import ParsedEmail, parse_email

__all__ = ["IntakeContext", "IntakeReport", "ingest_batch"]

logger = logging.getLogger(__name__)
SOURCE = "email"

#: Addresses we never write to: they do not read, or answering them loops.
NEVER_WRITE_TO = ("mailer-daemon@", "postmaster@", "noreply", "no-reply", "donotreply")

CaseHook = Callable[[StoreTransaction, Case, ParsedEmail], None]


@dataclass
class IntakeContext:
    """What intake needs besides the messages: who we are, the clock, and the routing hooks."""

    identity: SenderIdentity
    zone: ZoneInfo
    max_message_bytes: int
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: Called on each new case before it is stored (the rules of the routing issue plug in here).
    route_new_case: CaseHook | None = None


class IntakeReport(BaseModel):
    """What one intake run did, by decision; shown in the CLI and as a flow artifact."""

    fetched: int = 0
    already_ingested: int = 0
    new_cases: list[str] = Field(default_factory=list)
    decisions: dict[str, int] = Field(default_factory=dict)
    quarantined: list[str] = Field(default_factory=list)

    def count(self, decision: LedgerDecision) -> None:
        self.decisions[decision.value] = self.decisions.get(decision.value, 0) + 1

    def merge(self, other: IntakeReport) -> None:
        self.fetched += other.fetched
        self.already_ingested += other.already_ingested
        self.new_cases.extend(other.new_cases)
        self.quarantined.extend(other.quarantined)
        for decision, count in other.decisions.items():
            self.decisions[decision] = self.decisions.get(decision, 0) + count


def identity_of(parsed: ParsedEmail | None, digest: str) -> str:
    """Two copies are the same mail when their Message-IDs agree, else when their bytes do."""
    if parsed is not None and parsed.message_id:
        return f"mid:{parsed.message_id}"
    return f"sha256:{digest}"


def may_write_to(address: str | None) -> bool:
    return bool(address) and not any(part in address.lower() for part in NEVER_WRITE_TO)


def ingest_batch(
    store: CaseStore,
    batch: Sequence[RawMessage],
    context: IntakeContext,
    *,
    watermark: tuple[str, str] | None = None,
) -> IntakeReport:
    """Ingest a batch in one transaction; messages already in the ledger are skipped."""
    report = IntakeReport(fetched=len(batch))
    with store.transaction() as tx:
        seen = tx.seen_locations(SOURCE, [message.location for message in batch])
        for message in batch:
            if message.location in seen:
                report.already_ingested += 1
                continue
            savepoint = tx.connection.begin_nested()
            try:
                _ingest_one(tx, message, context, report)
                savepoint.commit()
            except Exception as error:
                savepoint.rollback()
                _quarantine(tx, message, context, report, f"{type(error).__name__}: {error}")
                logger.exception("quarantined %s", message.location)
        if watermark is not None:
            tx.set_watermark(*watermark, now=context.clock())
    return report


def _ingest_one(
    tx: StoreTransaction, message: RawMessage, context: IntakeContext, report: IntakeReport
) -> None:
    now = context.clock()
    if len(message.raw) > context.max_message_bytes:
        _quarantine(
            tx,
            message,
            context,
            report,
            f"larger than max_message_bytes ({len(message.raw)} > {context.max_message_bytes})",
        )
        return
    try:
        parsed = parse_email(message.raw)
    except MessageParseError as error:
        _quarantine(tx, message, context, report, f"cannot parse: {error.reason}")
        return
    digest = tx.put_blob(message.raw)
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
    )
    earlier = tx.first_with_identity(SOURCE, identity)
    if earlier is not None:
        entry.decision = LedgerDecision.DUPLICATE
        entry.reason = f"same mail as {earlier.location} ({identity})"
        entry.case_number = earlier.case_number
        tx.record(entry)
        report.count(entry.decision)
        return
    try:
        case = case_from_email(parsed, mailbox=message.mailbox, now=now)
    except MessageParseError as error:
        _quarantine(tx, message, context, report, error.reason)
        return
    if context.route_new_case is not None:
        context.route_new_case(tx, case, parsed)
    tx.add_case(case, month=case.created_at.astimezone(context.zone).date())
    assert case.number is not None
    entry.case_number = case.number
    entry.reason = "new report: no reference to an existing case"
    tx.record(entry)
    report.count(entry.decision)
    report.new_cases.append(case.number)
    _queue_confirmation(tx, case, parsed, context)


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
    message: RawMessage,
    context: IntakeContext,
    report: IntakeReport,
    reason: str,
) -> None:
    """Keep the raw bytes and say why; `casedesk quarantine retry` replays it later."""
    digest = tx.put_blob(message.raw)
    tx.record(
        LedgerEntry(
            source=SOURCE,
            location=message.location,
            identity=f"sha256:{sha256_hex(message.raw)}",
            blob_sha256=digest,
            decision=LedgerDecision.QUARANTINED,
            reason=reason,
            received_at=message.received_at,
            recorded_at=context.clock(),
        )
    )
    report.count(LedgerDecision.QUARANTINED)
    report.quarantined.append(f"{message.location}: {reason}")
