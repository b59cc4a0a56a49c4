"""`casedesk outbox list` and `casedesk outbox retry ID`: see and re-queue outgoing mail.

Mounted by flows/cli.py. Like the rest of the CLI, only this module prints here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from flows.cli_support import ConfigOption, load, table
from mapping.errors import CasedeskError

__all__ = ["outbox_app"]

outbox_app = typer.Typer(
    help="Outgoing mail: what is queued, sent or failed.", no_args_is_help=True
)


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


@outbox_app.command("list")
def outbox_list(
    config: ConfigOption = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: queued, sent or failed.")
    ] = None,
) -> None:
    """A table of outgoing mail, oldest first, with why a message waits or failed (UTC times)."""
    from connectors.store import OutboxStatus
    from flows.runtime import open_store

    wanted = None
    if status is not None:
        try:
            wanted = OutboxStatus(status.strip().lower())
        except ValueError as error:
            choices = ", ".join(s.value for s in OutboxStatus)
            raise CasedeskError(
                f"unknown outbox status {status!r}; use one of: {choices}"
            ) from error
    with open_store(load(config)) as store:
        items = store.outbox_items(status=wanted)
    rows = [
        {
            "id": item.id,
            "status": item.status.value,
            "kind": item.kind,
            "case": item.case_number or "-",
            "to": ", ".join(item.recipients),
            "tries": item.attempts,
            "next/sent": _when(item.sent_at if item.sent_at else item.next_attempt_at),
            "answer / reason": _reason(item),
        }
        for item in items
    ]
    typer.echo(table(rows, max_width=60))


def _reason(item: Any) -> str:
    """The server's own answer when there is one (sent, refused), else why it waits."""
    if item.status.value in ("sent", "failed") and item.server_answer:
        return str(item.server_answer)
    return str(item.last_error or item.server_answer or "-")


@outbox_app.command("retry")
def outbox_retry(
    item_id: Annotated[int, typer.Argument(help="The id shown by `casedesk outbox list`.")],
    config: ConfigOption = None,
) -> None:
    """Queue a failed (or waiting) message again, due now, with its attempts counted from zero."""
    from connectors.store import OutboxStatus
    from flows.runtime import open_store

    with open_store(load(config)) as store, store.transaction() as tx:
        found = tx.outbox_items(item_id=item_id)
        if not found:
            raise CasedeskError(f"no outbox message with id {item_id}")
        item = found[0]
        if item.status is OutboxStatus.SENT:
            # Sending it again would be a deliberate duplicate: not what retry is for.
            raise CasedeskError(
                f"outbox message {item_id} was already sent at {_when(item.sent_at)} "
                f"({item.server_answer}); not sending it twice"
            )
        previous = item.last_error or "none"
        tx.update_outbox(
            item_id,
            status=OutboxStatus.QUEUED.value,
            attempts=0,
            next_attempt_at=datetime.now(UTC),
            last_error=f"re-queued by hand; previous error: {previous}",
        )
    typer.echo(f"outbox message {item_id} ({item.key}) queued again; the next outbox run sends it")
