"""Delivers queued outbox messages through a mailer, exactly once as far as the wire allows.

One run: claim the due messages (so a second sender running at the same time skips them), then
for each message, in order:

    recipients that are role addresses (mailer-daemon, postmaster, noreply...) or suppressed
    (bounced) are left out; none left -> FAILED, with the reason
    a recipient over its limit (10 in 10 minutes, 50 a day) -> HELD: stays QUEUED until the
    window has room, no attempt counted
    send -> SENT with the server's answer | 4xx, connection trouble -> QUEUED again after a
    backoff (1, 2, 4 ... 60 minutes), FAILED after max_attempts | 5xx -> FAILED with the answer

Sent marks are committed together, at most 20 messages or 0.1 s after the first of them was
accepted (`mark_group=1` commits each on its own), because a commit costs more than an SMTP
transaction. The one window for a duplicate is a crash after the server accepted DATA and before
that commit: the claim runs out, the next run sends the same bytes again with the same
Message-ID, which mail clients fold into one. At most `mark_group` messages can be in it.
Nothing is ever dropped: a FAILED message is shown by `casedesk outbox list` and
re-queued by `casedesk outbox retry ID`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from connectors.mailer import Mailer
from connectors.smtp_mailer import MailerUnavailable
from connectors.store import CaseStore, OutboxItem, OutboxStatus
from mapping.errors import MailerError, PermanentSendError, TransientSendError
from mapping.outgoing_mail import is_role_address

__all__ = ["RateLimits", "RecipientWindow", "SendReport", "backoff", "send_due"]

logger = logging.getLogger(__name__)

_TEN_MINUTES = timedelta(minutes=10)
_DAY = timedelta(days=1)


class SendReport(BaseModel):
    """What one run did, by outbox id."""

    sent: list[int] = Field(default_factory=list)
    retrying: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)
    held: list[int] = Field(default_factory=list, description="Over a per-recipient limit.")


class RateLimits(BaseModel):
    """How much mail one address may get from us: stops any loop with an auto-responder."""

    model_config = ConfigDict(frozen=True)

    per_10min: int = Field(default=10, ge=1)
    per_day: int = Field(default=50, ge=1)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 ... minutes, at most an hour."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


class RecipientWindow:
    """Who got how much mail when, over the last day; says until when a recipient must wait."""

    def __init__(self, history: Iterable[tuple[list[str], datetime]], limits: RateLimits) -> None:
        self.limits = limits
        self._sent: dict[str, list[datetime]] = defaultdict(list)
        for recipients, at in history:
            self.record(recipients, at)
        for times in self._sent.values():
            times.sort()

    def record(self, recipients: Iterable[str], at: datetime) -> None:
        for recipient in recipients:
            self._sent[recipient.lower()].append(at)

    def free_at(self, recipients: Iterable[str], now: datetime) -> datetime | None:
        """When every one of them is under both limits again; None when they are now."""
        latest: datetime | None = None
        for recipient in recipients:
            times = self._sent.get(recipient.lower(), [])
            for limit, window in (
                (self.limits.per_10min, _TEN_MINUTES),
                (self.limits.per_day, _DAY),
            ):
                recent = [at for at in times if at > now - window]
                if len(recent) >= limit:
                    # Room again once the oldest message that still counts leaves the window.
                    free = recent[-limit] + window
                    latest = free if latest is None else max(latest, free)
        return latest


def send_due(
    store: CaseStore,
    mailer: Mailer,
    *,
    envelope_from: str,
    max_attempts: int = 8,
    limit: int = 500,
    limits: RateLimits | None = None,
    claim_for: timedelta = timedelta(minutes=15),
    mark_group: int = 20,
    mark_within_seconds: float = 0.1,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendReport:
    """Send every queued message that is due; returns what happened to each.

    Sent marks are committed together, at most `mark_group` messages or `mark_within_seconds`
    after the first of them was accepted (1 marks each message on its own): a commit costs
    more than an SMTP transaction, and this bounds the duplicate window to that many messages.
    """
    limits = limits or RateLimits()
    marks = _SentMarks(store, mark_group, mark_within_seconds)
    report = SendReport()
    now = clock()
    with store.transaction() as tx:
        claimed = tx.claim_due_outbox(now, limit, until=now + claim_for)
        if not claimed:
            return report
        history = tx.outbox_sent_since(now - _DAY)
        suppressed = tx.suppressed({r for item in claimed for r in item.recipients})
    window = RecipientWindow(history, limits)
    pending = list(claimed)
    try:
        while pending:
            # Out of `pending` before sending: if anything below raises, this message keeps
            # its claim (it may have reached the server) instead of being released at once.
            item = pending.pop(0)
            try:
                outcome = _deliver_one(
                    store,
                    mailer,
                    item,
                    envelope_from,
                    window,
                    suppressed,
                    clock,
                    max_attempts,
                    marks,
                )
            except MailerUnavailable as error:
                # The server is down or refuses us: this message counts an attempt, the rest
                # of the batch waits for the next run without one.
                _retry_or_fail(store, item, error, clock, max_attempts, report)
                logger.error("outbox: %s; %d message(s) wait for the next run", error, len(pending))
                break
            getattr(report, outcome).append(item.id)
    finally:
        # Even when something failed: what the server accepted must be marked if at all possible.
        marks.flush()
        if pending:
            _release(store, pending, clock())
    return report


class _SentMarks:
    """Sent marks waiting for their commit: the duplicate window, kept small and bounded."""

    def __init__(self, store: CaseStore, group: int, within_seconds: float) -> None:
        self.store, self.group, self.within_seconds = store, max(group, 1), within_seconds
        self._pending: list[tuple[int, dict[str, object]]] = []
        self._oldest = 0.0

    def add(self, item_id: int, values: dict[str, object]) -> None:
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append((item_id, values))
        full = len(self._pending) >= self.group
        if full or time.monotonic() - self._oldest >= self.within_seconds:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self.store.transaction() as tx:
            tx.update_outbox_many(self._pending)
        self._pending.clear()


def _deliver_one(
    store: CaseStore,
    mailer: Mailer,
    item: OutboxItem,
    envelope_from: str,
    window: RecipientWindow,
    suppressed: dict[str, str],
    clock: Callable[[], datetime],
    max_attempts: int,
    marks: _SentMarks,
) -> str:
    """Send one message and mark it; returns the SendReport list it belongs to."""
    blocked = _blocked_recipients(item.recipients, suppressed)
    deliverable = [r for r in item.recipients if r not in blocked]
    skipped = "; ".join(f"not sent to {r}: {why}" for r, why in blocked.items())
    if not deliverable:
        with store.transaction() as tx:
            tx.update_outbox(item.id, status=OutboxStatus.FAILED.value, last_error=skipped)
        logger.warning("outbox #%s (%s) not sent: %s", item.id, item.key, skipped)
        return "failed"
    now = clock()
    free_at = window.free_at(deliverable, now)
    if free_at is not None:
        with store.transaction() as tx:
            tx.update_outbox(
                item.id,
                next_attempt_at=free_at,
                last_error=f"held until {free_at.isoformat()}: a recipient reached the limit of "
                f"{window.limits.per_10min} in 10 minutes or {window.limits.per_day} a day",
            )
        logger.info("outbox #%s held until %s (per-recipient limit)", item.id, free_at)
        return "held"
    outgoing = item if not blocked else item.model_copy(update={"recipients": deliverable})
    try:
        answer = mailer.send(outgoing, envelope_from=envelope_from)
    except MailerUnavailable:
        raise
    except TransientSendError as error:
        report = SendReport()
        _retry_or_fail(store, item, error, clock, max_attempts, report)
        return "failed" if report.failed else "retrying"
    except PermanentSendError as error:
        with store.transaction() as tx:
            tx.update_outbox(
                item.id,
                attempts=item.attempts + 1,
                status=OutboxStatus.FAILED.value,
                last_error=str(error),
                server_answer=error.answer,
            )
        logger.error("outbox #%s (%s) failed for good: %s", item.id, item.key, error)
        return "failed"
    sent_at = clock()
    # From the server's answer to this mark's commit is the duplicate window (module docstring).
    marks.add(
        item.id,
        {
            "attempts": item.attempts + 1,
            "status": OutboxStatus.SENT.value,
            "server_answer": f"{answer}; {skipped}" if skipped else answer,
            "sent_at": sent_at,
            "last_error": None,
        },
    )
    window.record(deliverable, sent_at)
    return "sent"


def _blocked_recipients(recipients: list[str], suppressed: dict[str, str]) -> dict[str, str]:
    blocked: dict[str, str] = {}
    for recipient in recipients:
        if is_role_address(recipient):
            blocked[recipient] = "an automatic or role address (never written to)"
        elif recipient.lower() in suppressed:
            blocked[recipient] = f"suppressed ({suppressed[recipient.lower()]})"
    return blocked


def _retry_or_fail(
    store: CaseStore,
    item: OutboxItem,
    error: MailerError,
    clock: Callable[[], datetime],
    max_attempts: int,
    report: SendReport,
) -> None:
    attempts = item.attempts + 1
    give_up = attempts >= max_attempts
    reason = f"gave up after {attempts} attempts: {error}" if give_up else str(error)
    with store.transaction() as tx:
        tx.update_outbox(
            item.id,
            attempts=attempts,
            status=(OutboxStatus.FAILED if give_up else OutboxStatus.QUEUED).value,
            last_error=reason,
            next_attempt_at=clock() + backoff(attempts),
        )
    (report.failed if give_up else report.retrying).append(item.id)
    logger.warning("outbox #%s (%s): %s (attempt %s)", item.id, item.key, error, attempts)


def _release(store: CaseStore, items: list[OutboxItem], now: datetime) -> None:
    """Hand back claimed messages that were not tried: due again at once, no attempt counted."""
    with store.transaction() as tx:
        for item in items:
            tx.update_outbox(item.id, next_attempt_at=now)
