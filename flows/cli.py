"""The `casedesk` command: run the flows once, look at cases, check the settings.

Only this module prints, and what it prints is for people: tables, records, one-line errors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_jira import jira_app, jira_summary
from flows.cli_outbox import outbox_app
from flows.cli_quarantine import mailbox_reconcile, quarantine_app
from flows.cli_review import review_app
from flows.cli_rules import rules_app
from flows.cli_support import (
    ConfigOption,
    load,
    load_for_a_run,
    one_shot_prefect,
    prepare_prefect,
    table,
)
from mapping.errors import CasedeskError

app = typer.Typer(
    help="casedesk: support cases from email and Jira.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cases_app = typer.Typer(help="Look at case records.", no_args_is_help=True)
config_app = typer.Typer(help="Check the settings.", no_args_is_help=True)
mailbox_app = typer.Typer(help="The embedded Maildir mailbox.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")
app.add_typer(config_app, name="config")
app.add_typer(mailbox_app, name="mailbox")
app.add_typer(outbox_app, name="outbox")
app.add_typer(rules_app, name="rules")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(jira_app, name="jira")
app.add_typer(review_app, name="review")
mailbox_app.command("reconcile")(mailbox_reconcile)


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the flows once, in order: intake from every mailbox, then send queued mail."""
    prepare_prefect()
    settings = load_for_a_run(config)  # a bad file stops here, before Prefect starts
    from flows.run_flow import run_flow
    from flows.settings import FolderMailerSettings

    with one_shot_prefect():
        report = run_flow(str(config) if config else None)
    intake, outbox = report.intake, report.outbox
    typer.echo(
        f"intake: {intake.fetched} messages read, {len(intake.new_cases)} new cases"
        + (f" ({', '.join(intake.new_cases)})" if intake.new_cases else "")
        + f", {intake.already_ingested} already ingested"
    )
    for decision, count in sorted(intake.decisions.items()):
        typer.echo(f"  {decision}: {count}")
    for line in intake.quarantined:
        typer.echo(f"  quarantined {line}")
    if report.jira is not None or report.jira_error:
        typer.echo(jira_summary(report.jira, report.jira_error))
    typer.echo(
        f"outbox: {len(outbox.sent)} sent, {len(outbox.retrying)} waiting to retry, "
        f"{len(outbox.failed)} failed"
    )
    if isinstance(settings.mailer, FolderMailerSettings):
        typer.echo(f"outgoing mail is written to {settings.mailer.path}")


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Keep running the whole pass on a schedule, as a Prefect deployment (Ctrl-C stops)."""
    prepare_prefect()
    settings = load_for_a_run(config)
    from flows.deployments import serve_forever

    typer.echo(
        f"serving casedesk-run/scheduled every {settings.schedule_minutes} min; "
        "set PREFECT_API_URL to a Prefect server to see it in the UI"
    )
    serve_forever(settings, config)


@cases_app.command("list")
def cases_list(
    config: ConfigOption = None,
    status: Annotated[str | None, typer.Option(help="Only this status, e.g. new, triage.")] = None,
) -> None:
    """A table of cases, newest last; names are masked."""
    from flows.runtime import open_store
    from mapping.case import CaseStatus

    statuses = None
    if status is not None:
        try:
            statuses = [CaseStatus.parse(status)]
        except ValueError as error:
            raise CasedeskError(str(error)) from error
    with open_store(load(config)) as store:
        cases = store.list_cases(statuses=statuses)
    typer.echo(table([case.summary_row() for case in cases]))


@cases_app.command("show")
def cases_show(number: str, config: ConfigOption = None) -> None:
    """One case record, every field of the team's case record."""
    from flows.case_view import render_case
    from flows.runtime import open_store

    settings = load(config)
    with open_store(settings) as store:
        case = store.get_case(number)
    typer.echo(render_case(case, settings.zone))


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the settings and print the effective values, secrets masked."""
    from flows.settings import config_path

    settings = load(config)
    source = config_path(config)
    typer.echo(f"settings: {source or 'defaults'} (+ CASEDESK_* environment)")
    for key, value in _flatten(settings.redacted()):
        typer.echo(f"  {key} = {value}")
    typer.echo("ok")


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        out: list[tuple[str, Any]] = []
        for key, value in data.items():
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list) and data and isinstance(data[0], dict):
        out = []
        for index, value in enumerate(data):
            out.extend(_flatten(value, f"{prefix}[{index}]"))
        return out
    return [(prefix, data)]


@mailbox_app.command("add")
def mailbox_add(
    files: Annotated[list[Path], typer.Argument(help=".eml files to deliver.")],
    config: ConfigOption = None,
) -> None:
    """Deliver .eml files into the first Maildir mailbox, as a mail server would."""
    from connectors.maildir_mailbox import MaildirMailbox
    from flows.settings import MaildirMailboxSettings

    settings = load(config)
    maildirs = [m for m in settings.mailboxes if isinstance(m, MaildirMailboxSettings)]
    if not maildirs:
        raise CasedeskError("no Maildir mailbox is configured; deliver through your mail server")
    mailbox = MaildirMailbox(maildirs[0].name, maildirs[0].path)
    for file in files:
        try:
            mailbox.add(file.read_bytes())
        except OSError as error:
            raise CasedeskError(f"cannot read {file}: {error}") from error
    mailbox.close()
    typer.echo(f"delivered {len(files)} message(s) to {maildirs[0].path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one clear line for our own errors, never a traceback."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=True)
    except CasedeskError as error:
        typer.echo(f"error: {error}", err=True)
        return 1
    except SystemExit as done:  # click's own exit, after usage errors or --help
        return done.code if isinstance(done.code, int) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
