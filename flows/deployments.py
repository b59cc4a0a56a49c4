"""Scheduled Prefect deployments: what `casedesk serve` keeps running for the ops team.

One deployment, `casedesk-run/scheduled`, runs the whole pass (intake, Jira, outbox) every
`schedule_minutes`, never two at once (a pass that overlaps the next would race on the outbox).
The ops team sees each run, its logs and its summary artifact in the Prefect UI, and can start
a run by hand there with another settings file as the `config` parameter.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flows.run_flow import run_flow
from flows.settings import Settings

__all__ = ["DEPLOYMENT_NAME", "build_deployments", "serve_forever"]

DEPLOYMENT_NAME = "scheduled"


def build_deployments(settings: Settings, config: Path | None) -> list[Any]:
    """The deployments to serve, with their schedules and default parameters."""
    return [
        run_flow.to_deployment(
            name=DEPLOYMENT_NAME,
            interval=timedelta(minutes=settings.schedule_minutes),
            parameters={"config": str(config.resolve()) if config else None},
            concurrency_limit=1,
            description="Intake from every mailbox, Jira sync, then send queued mail.",
            tags=["casedesk"],
        )
    ]


def serve_forever(settings: Settings, config: Path | None) -> None:
    """Serve the deployments until interrupted (needs PREFECT_API_URL for a lasting server)."""
    from prefect import serve  # Prefect's runner is only needed here

    serve(*build_deployments(settings, config))
