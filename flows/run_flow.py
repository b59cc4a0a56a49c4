"""Prefect flow: one full pass of casedesk, the flows in order (what `casedesk run` starts)."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel

from connectors.outbox_sender import SendReport
from flows.intake import IntakeReport
from flows.intake_flow import intake_flow
from flows.outbox_flow import outbox_flow

__all__ = ["RunReport", "run_flow"]


class RunReport(BaseModel):
    intake: IntakeReport
    outbox: SendReport


@flow(name="casedesk-run")
def run_flow(config: str | None = None) -> RunReport:
    """Intake from every mailbox, then send what it queued."""
    intake = intake_flow(config)
    outbox = outbox_flow(config)
    return RunReport(intake=intake, outbox=outbox)
