"""Prefect flow: send every queued outbox message that is due."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from connectors.mailer import Mailer
from connectors.outbox_sender import RateLimits, SendReport, send_due
from connectors.store import CaseStore
from flows.runtime import build_mailer, open_store
from flows.settings import load_settings

__all__ = ["outbox_flow"]


@task(cache_policy=NONE)
def send_queued(
    store: CaseStore, mailer: Mailer, envelope_from: str, max_attempts: int, limits: RateLimits
) -> SendReport:
    """Deliver the due messages; each is marked sent, held, retried or failed."""
    return send_due(
        store, mailer, envelope_from=envelope_from, max_attempts=max_attempts, limits=limits
    )


@flow(name="casedesk-outbox")
def outbox_flow(config: str | None = None) -> SendReport:
    """Send queued mail (confirmations, progress, feedback requests) exactly once."""
    logger = get_run_logger()
    settings = load_settings(Path(config) if config else None)
    store = open_store(settings)
    try:
        with ExitStack() as stack:
            mailer = build_mailer(settings, stack)
            outgoing = settings.outgoing
            limits = RateLimits(
                per_10min=outgoing.per_recipient_10min, per_day=outgoing.per_recipient_day
            )
            report = send_queued(
                store, mailer, outgoing.from_address, outgoing.max_attempts, limits
            )
    finally:
        store.close()
    logger.info(
        "outbox: %s sent, %s to retry, %s failed",
        len(report.sent),
        len(report.retrying),
        len(report.failed),
    )
    return report
