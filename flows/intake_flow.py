"""Prefect flow: read new mail from every configured mailbox into cases.

Top to bottom: for each mailbox, first finish marking what an earlier run committed but did not
get to mark (a crash between the commit and the flag), then fetch batches after the stored
cursor, ingest each batch (one task, one transaction), then mark the batch done in the mailbox,
only after the commit. When there is more than one batch, the next ones are parsed by a worker
process meanwhile (`flows.parse_ahead`, `parse_workers` in the settings).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from connectors.mailbox import Mailbox, MailboxCursor, RawMessage
from connectors.store import CaseStore
from flows.intake import (
    IntakeContext,
    IntakeReport,
    cursor_name,
    finish_pending_marks,
    ingest_batch,
)
from flows.parse_ahead import ParseAhead, Parsed
from flows.runtime import build_mailbox, intake_context, open_store
from flows.settings import load_settings

__all__ = ["intake_flow"]


@task(cache_policy=NONE)
def ingest(
    store: CaseStore,
    batch: list[RawMessage],
    context: IntakeContext,
    watermark: tuple[str, str],
    parsed: dict[str, Parsed] | None = None,
) -> IntakeReport:
    """Turn one batch of raw mail into cases, ledger and outbox rows, in one transaction."""
    return ingest_batch(store, batch, context, watermark=watermark, parsed=parsed)


@task(cache_policy=NONE)
def mark_done(mailbox: Mailbox, batch: list[RawMessage]) -> None:
    """Flag or move the committed batch in the mailbox."""
    mailbox.mark_done(batch)


@task(cache_policy=NONE)
def finish_marking(store: CaseStore, mailbox: Mailbox, cursor: MailboxCursor) -> int:
    """Mark messages that were committed by an earlier run but never flagged or moved."""
    return finish_pending_marks(store, mailbox, cursor)


@flow(name="casedesk-intake", log_prints=False)
def intake_flow(config: str | None = None) -> IntakeReport:
    """Read new mail from every configured mailbox and turn each report into a case."""
    logger = get_run_logger()
    settings = load_settings(Path(config) if config else None)
    context = intake_context(settings)
    report = IntakeReport()
    store = open_store(settings)
    try:
        with ExitStack() as stack:
            ahead = stack.enter_context(
                ParseAhead(
                    settings.max_message_bytes,
                    workers=settings.parse_workers,
                    prematch=context.prematch,
                )
            )
            for index in range(len(settings.mailboxes)):
                mailbox = build_mailbox(settings, index, stack)
                stored = store.watermark(cursor_name(mailbox))
                cursor = MailboxCursor.model_validate_json(stored) if stored else MailboxCursor()
                finish_marking(store, mailbox, cursor)
                batches = mailbox.fetch_new(cursor, settings.batch_size)
                for batch, parsed in ahead.pipeline(batches):
                    cursor = mailbox.cursor_after(batch)
                    watermark = (cursor_name(mailbox), cursor.model_dump_json())
                    report.merge(ingest(store, batch, context, watermark, parsed))
                    mark_done(mailbox, batch)
            if ahead.batches_parsed_ahead:
                logger.info("%d batch(es) parsed by workers", ahead.batches_parsed_ahead)
    finally:
        store.close()
    logger.info(
        "intake: %s fetched, %s new cases, %s already ingested, decisions %s",
        report.fetched,
        len(report.new_cases),
        report.already_ingested,
        report.decisions,
    )
    return report
