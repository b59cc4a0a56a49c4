"""`casedesk review list|accept|new|dismiss`: replies that intake held for a person to judge.

A reply that carries a case's token in its subject but comes from someone who is neither the
case's submitter, owner nor a collaborator is never applied to the case by itself: it could be a
stranger, a forwarded thread or a guess. It is kept (raw, with its ledger row) until a person
decides: `accept` applies it and makes the sender a collaborator, `new` opens a case of its own,
`dismiss` leaves it unapplied for good.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_support import ConfigOption, load, table

__all__ = ["review_app"]

review_app = typer.Typer(
    help="Replies held for review: from someone not on the case they name.", no_args_is_help=True
)

EntryArgument = Annotated[int, typer.Argument(help="Ledger id, from `review list`.")]
ReviewerOption = Annotated[
    str | None, typer.Option("--by", help="Who decides (default: your login name).")
]
NoteOption = Annotated[str, typer.Option(help="Why, for the case's record.")]


@review_app.command("list")
def review_list(config: ConfigOption = None) -> None:
    """Held replies: ledger id, the case they name, and why they were held."""
    from connectors.store import LedgerDecision
    from flows.runtime import open_store

    with open_store(load(config)) as store:
        entries = store.ledger_entries(decision=LedgerDecision.HELD_FOR_REVIEW)
    rows = [
        {
            "id": entry.id,
            "case": (entry.detail or {}).get("candidate_case", "-"),
            "received": entry.received_at.isoformat(timespec="minutes")
            if entry.received_at
            else "-",
            "why": entry.reason,
        }
        for entry in entries
    ]
    typer.echo(table(rows, max_width=90))


def _resolve(
    config: Path | None, entry_id: int, action: str, reviewer: str | None, note: str
) -> None:
    from flows.intake import ReviewAction, resolve_held
    from flows.runtime import intake_context, open_store

    settings = load(config)
    with open_store(settings) as store:
        entry = resolve_held(
            store,
            entry_id,
            ReviewAction(action),
            intake_context(settings),
            reviewer=reviewer or getpass.getuser(),
            note=note,
        )
    case = f" (case {entry.case_number})" if entry.case_number else ""
    typer.echo(f"{entry.location}: {entry.decision.value}{case}: {entry.reason}")


@review_app.command("accept")
def review_accept(
    entry_id: EntryArgument,
    config: ConfigOption = None,
    by: ReviewerOption = None,
    note: NoteOption = "",
) -> None:
    """Apply the reply to the case it names; its sender becomes a collaborator."""
    _resolve(config, entry_id, "accept", by, note)


@review_app.command("new")
def review_new(
    entry_id: EntryArgument,
    config: ConfigOption = None,
    by: ReviewerOption = None,
    note: NoteOption = "",
) -> None:
    """Open a new case from it (the sender gets a confirmation)."""
    _resolve(config, entry_id, "new", by, note)


@review_app.command("dismiss")
def review_dismiss(
    entry_id: EntryArgument,
    config: ConfigOption = None,
    by: ReviewerOption = None,
    note: NoteOption = "",
) -> None:
    """Never apply it; it stays kept in the ledger with the reason."""
    _resolve(config, entry_id, "dismiss", by, note)
