"""`casedesk quarantine list|retry` and `casedesk mailbox reconcile`: looking after intake.

A quarantined message is kept raw with its reason (the ledger row and a blob); `retry` replays
it through the same intake code once the parser or the settings are fixed. `reconcile` lists an
IMAP folder over a window of days and reports any message the ledger never saw.
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from flows.cli_support import ConfigOption, load, table
from mapping.errors import CasedeskError

__all__ = ["mailbox_reconcile", "quarantine_app"]

quarantine_app = typer.Typer(
    help="Messages intake could not read: see them, replay them.", no_args_is_help=True
)


@quarantine_app.command("list")
def quarantine_list(config: ConfigOption = None) -> None:
    """Quarantined messages: ledger id, where the message was, when, and why."""
    from connectors.store import LedgerDecision
    from flows.runtime import open_store

    with open_store(load(config)) as store:
        entries = store.ledger_entries(decision=LedgerDecision.QUARANTINED)
    rows = [
        {
            "id": entry.id,
            "location": entry.location,
            "received": entry.received_at.isoformat(timespec="minutes")
            if entry.received_at
            else "-",
            "reason": entry.reason,
        }
        for entry in entries
    ]
    typer.echo(table(rows, max_width=70))


@quarantine_app.command("retry")
def quarantine_retry(
    entry_id: Annotated[int, typer.Argument(help="Ledger id, from `quarantine list`.")],
    config: ConfigOption = None,
) -> None:
    """Replay one quarantined message through intake (the size limit is not applied)."""
    from connectors.store import LedgerDecision
    from flows.intake import retry_quarantined
    from flows.runtime import intake_context, open_store

    settings = load(config)
    with open_store(settings) as store:
        entry = retry_quarantined(store, entry_id, intake_context(settings))
    if entry.decision == LedgerDecision.QUARANTINED:
        typer.echo(f"still quarantined: {entry.reason}")
        raise typer.Exit(1)
    case = f" (case {entry.case_number})" if entry.case_number else ""
    typer.echo(f"{entry.location}: {entry.decision.value}{case}: {entry.reason}")


def mailbox_reconcile(
    config: ConfigOption = None,
    days: Annotated[int, typer.Option(help="Window: this many days back to today.")] = 7,
    since: Annotated[str | None, typer.Option(help="Window start, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Window end, YYYY-MM-DD (inclusive).")] = None,
) -> None:
    """Compare each IMAP folder with the ledger; list messages that were never ingested."""
    from connectors.mailbox import MailboxCursor
    from flows.intake import cursor_name
    from flows.reconcile import reconcile_mailbox
    from flows.runtime import build_mailbox, open_store
    from flows.settings import ImapMailboxSettings

    settings = load(config)
    try:
        end = date.fromisoformat(until) if until else datetime.now(UTC).date()
        start = date.fromisoformat(since) if since else end - timedelta(days=days)
    except ValueError as error:
        raise CasedeskError(f"dates are YYYY-MM-DD: {error}") from error
    missing = 0
    with open_store(settings) as store, ExitStack() as stack:
        for index, config_entry in enumerate(settings.mailboxes):
            if not isinstance(config_entry, ImapMailboxSettings):
                typer.echo(f"{config_entry.name}: not IMAP, nothing to reconcile")
                continue
            mailbox = build_mailbox(settings, index, stack)
            stored = store.watermark(cursor_name(mailbox))
            cursor = MailboxCursor.model_validate_json(stored) if stored else MailboxCursor()
            report = reconcile_mailbox(
                store,
                mailbox,  # type: ignore[arg-type]
                cursor,
                since=start,
                until=end,
            )
            typer.echo(
                f"{report.mailbox}/{report.folder} {start}..{end}: {report.listed} listed, "
                f"{report.ingested} ingested, {report.ingested_as_copy} ingested as another "
                f"copy, {len(report.waiting)} waiting for the next run, "
                f"{len(report.never_ingested)} never ingested"
            )
            for message in report.never_ingested:
                typer.echo(
                    f"  never ingested: {message.location} Message-ID "
                    f"{message.message_id or '-'} arrived {message.received_at}"
                )
            missing += len(report.never_ingested)
    if missing:
        raise typer.Exit(1)
