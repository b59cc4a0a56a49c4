"""Prefect flow: one full pass of casedesk, the flows in order (what `casedesk run` starts).

Each pass leaves a markdown artifact, `casedesk-run-summary`, so the ops team sees in the Prefect
UI what a run did (new cases, decisions, quarantined mail, mail sent) without reading logs.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from connectors.outbox_sender import SendReport
from flows.intake import IntakeReport
from flows.intake_flow import intake_flow
from flows.jira_flow import JiraReport, jira_flow
from flows.outbox_flow import outbox_flow
from mapping.outgoing_mail import reload_templates_if_changed

__all__ = ["RunReport", "run_flow", "summary_markdown"]


class RunReport(BaseModel):
    intake: IntakeReport
    outbox: SendReport
    jira: JiraReport | None = None
    jira_error: str | None = None


def summary_markdown(report: RunReport) -> str:
    """The run as the ops team reads it in the Prefect UI."""
    intake, outbox = report.intake, report.outbox
    lines = [
        "# casedesk run",
        "",
        "| | count |",
        "|---|---|",
        f"| mail read | {intake.fetched} |",
        f"| already ingested | {intake.already_ingested} |",
        f"| new cases | {len(intake.new_cases)} |",
        *(f"| decision: {name} | {count} |" for name, count in sorted(intake.decisions.items())),
        f"| mail sent | {len(outbox.sent)} |",
        f"| mail waiting to retry | {len(outbox.retrying)} |",
        f"| mail failed | {len(outbox.failed)} |",
    ]
    if intake.new_cases:
        lines += ["", "New cases: " + ", ".join(intake.new_cases)]
    if report.jira is not None:
        pull, push = report.jira.pull, report.jira.push
        lines += [
            "",
            f"Jira: {pull.issues_read} issues read, {len(pull.new_cases)} new cases, "
            f"{len(pull.updated_cases)} updated, {len(pull.skipped)} skipped, "
            f"{len(push.created)} issues created, {len(push.assigned)} assigned, "
            f"{push.comments} comments pushed",
        ]
        lines += [f"- problem: {line}" for line in push.problems]
    if report.jira_error:
        lines += ["", f"Jira failed: {report.jira_error}"]
    if intake.quarantined:
        lines += ["", "## Quarantined (see `casedesk quarantine list`)", ""]
        lines += [f"- {item}" for item in intake.quarantined]
    return "\n".join(lines) + "\n"


@flow(name="casedesk-run")
def run_flow(config: str | None = None) -> RunReport:
    """Intake from every mailbox, sync Jira when enabled, then send what they queued."""
    if reload_templates_if_changed():  # an edit takes effect at the next run, like the rules
        get_run_logger().info("mail templates changed since the last run: read again")
    intake = intake_flow(config)
    jira, jira_error = _jira(config)
    outbox = outbox_flow(config)
    report = RunReport(intake=intake, outbox=outbox, jira=jira, jira_error=jira_error)
    create_markdown_artifact(
        key="casedesk-run-summary",
        markdown=summary_markdown(report),
        description="What this casedesk run did",
    )
    return report


def _jira(config: str | None) -> tuple[JiraReport | None, str | None]:
    """The Jira sync when enabled; its failure (shown as a failed subflow) spares the outbox."""
    from pathlib import Path

    from flows.settings import load_settings

    if not load_settings(Path(config) if config else None).jira.enabled:
        return None, None
    state = jira_flow(config, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        return None, str(result)
    return result, None
