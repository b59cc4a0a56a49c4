"""Delivers queued outbox messages through a mailer, exactly once as far as the wire allows.

Each message is marked in its own transaction right after the server accepted it. The one window
for a duplicate is a crash after the server's "250 OK" and before that mark; the retry then sends
the same Message-ID, which mail clients fold into one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from connectors.mailer import Mailer
from connectors.store import CaseStore, OutboxStatus
from mapping.errors import PermanentSendError, TransientSendError

__all__ = ["SendReport", "send_due"]

logger = logging.getLogger(__name__)


class SendReport(BaseModel):
    sent: list[int] = Field(default_factory=list)
    retrying: list[int] = Field(default_factory=list)
    failed: list[int] = Field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 ... minutes, at most an hour."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def send_due(
    store: CaseStore,
    mailer: Mailer,
    *,
    envelope_from: str,
    max_attempts: int = 8,
    limit: int = 500,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SendReport:
    """Send every queued message that is due; returns what happened to each."""
    report = SendReport()
    with store.transaction() as tx:
        due = tx.due_outbox(clock(), limit)
    for item in due:
        try:
            answer = mailer.send(item, envelope_from=envelope_from)
        except TransientSendError as error:
            attempts = item.attempts + 1
            status = OutboxStatus.FAILED if attempts >= max_attempts else OutboxStatus.QUEUED
            with store.transaction() as tx:
                tx.update_outbox(
                    item.id,
                    attempts=attempts,
                    status=status.value,
                    last_error=str(error),
                    next_attempt_at=clock() + backoff(attempts),
                )
            (report.failed if status is OutboxStatus.FAILED else report.retrying).append(item.id)
            logger.warning("outbox #%s: %s (attempt %s)", item.id, error, attempts)
            continue
        except PermanentSendError as error:
            with store.transaction() as tx:
                tx.update_outbox(
                    item.id,
                    attempts=item.attempts + 1,
                    status=OutboxStatus.FAILED.value,
                    last_error=str(error),
                )
            report.failed.append(item.id)
            logger.error("outbox #%s failed for good: %s", item.id, error)
            continue
        with store.transaction() as tx:
            tx.update_outbox(
                item.id,
                attempts=item.attempts + 1,
                status=OutboxStatus.SENT.value,
                server_answer=answer,
                sent_at=clock(),
                last_error=None,
            )
        report.sent.append(item.id)
    return report
