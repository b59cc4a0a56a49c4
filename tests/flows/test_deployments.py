"""The scheduled deployment the ops team sees in the Prefect UI."""

from __future__ import annotations

from pathlib import Path

from flows.deployments import DEPLOYMENT_NAME, build_deployments
from flows.settings import Settings


def test_the_whole_pass_is_scheduled_once_at_a_time(tmp_path: Path) -> None:
    config = tmp_path / "casedesk.toml"
    deployments = build_deployments(Settings(schedule_minutes=7), config)
    assert len(deployments) == 1
    deployment = deployments[0]
    assert deployment.name == DEPLOYMENT_NAME
    assert deployment.parameters == {"config": str(config.resolve())}
    assert [s.schedule.interval.total_seconds() for s in deployment.schedules] == [420.0]
    assert deployment.concurrency_limit == 1
