"""`casedesk jira ...`: sync with Jira once, and list the issues the sync had to skip."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from flows.cli_support import (
    ConfigOption,
    load,
    load_for_a_run,
    one_shot_prefect,
    prepare_prefect,
    table,
)

if TYPE_CHECKING:
    from flows.jira_flow import JiraReport

__all__ = ["jira_app", "jira_summary"]

jira_app = typer.Typer(help="Sync with Jira and look at what it skipped.", no_args_is_help=True)


def jira_summary(report: JiraReport | None, error: str | None = None) -> str:
    """The lines `casedesk run` and `casedesk jira sync` print about Jira."""
    if report is None:
        return f"jira: failed: {error}" if error else "jira: not enabled"
    pull, push = report.pull, report.push
    lines = [
        f"jira: {pull.issues_read} issues read ({pull.already_seen} already seen), "
        f"{len(pull.new_cases)} new cases, {len(pull.updated_cases)} updated, "
        f"{len(pull.skipped)} skipped, {len(pull.feedback_requests)} feedback requests queued; "
        f"{len(push.created)} issues created, {push.comments} replies posted, "
        f"{len(push.transitions)} transitions, {len(push.assigned)} assigned; "
        f"{pull.requests + push.requests} requests",
    ]
    lines += [f"  skipped {line}" for line in pull.skipped]
    lines += [f"  problem {line}" for line in push.problems]
    return "\n".join(lines)


@jira_app.command("sync")
def jira_sync(config: ConfigOption = None) -> None:
    """Push pending changes to Jira and pull what changed there, once."""
    from mapping.errors import ConfigError

    prepare_prefect()
    settings = load_for_a_run(config)  # a bad file stops here, before Prefect starts
    if not settings.jira.enabled:
        raise ConfigError("Jira is not enabled; set enabled = true under [jira]", key="jira")
    from flows.jira_flow import jira_flow

    with one_shot_prefect():
        report = jira_flow(str(config) if config else None)
    typer.echo(jira_summary(report))


@jira_app.command("skipped")
def jira_skipped(config: ConfigOption = None) -> None:
    """Issue versions the sync skipped, with the reason; fix the issue or the mapping."""
    from connectors.store import LedgerDecision
    from flows.jira_sync import SOURCE
    from flows.runtime import open_store

    with open_store(load(config)) as store:
        entries = store.ledger_entries(decision=LedgerDecision.SKIPPED)
    rows = [
        {
            "issue": entry.location.removeprefix(f"{SOURCE}:"),
            "recorded": entry.recorded_at.isoformat(timespec="seconds"),
            "reason": entry.reason,
        }
        for entry in entries
        if entry.source == SOURCE
    ]
    typer.echo(table(rows, max_width=120))
