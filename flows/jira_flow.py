"""Prefect flow: push what casedesk owes Jira, then pull what changed in Jira.

Top to bottom: push first (new issues for email-born cases, users' replies as comments, users'
feedback as transitions), so that the pull right after reads our new issues back as their
baseline; then pull page by page, one task per page (one transaction: cases, ledger, feedback
requests, watermark); then the owners the rules gave the pull's new cases become their issues'
assignees (not the project's history: see `jira-assign-since` in flows/jira_push.py). A page
that fails (429/503 after the bounded retries, 401/403) fails the flow with the connector's
message; what was committed stays, and the next run resumes from the stored watermark.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from pydantic import BaseModel

from connectors.jira_client import JiraClient, JiraSearchResult
from connectors.store import CaseStore
from flows.jira_push import JiraPushContext, JiraPushReport, assign_owners, push
from flows.jira_sync import JiraPull, JiraSyncContext, JiraSyncReport
from flows.runtime import build_jira_client, open_store, sender_identity
from flows.settings import Settings, load_settings
from mapping.case import FeedbackOutcome

__all__ = ["CLOUD_MAX_PAGE", "JiraReport", "jira_flow", "push_context", "sync_context"]

#: Jira Cloud answers at most 100 issues per page when fields are asked for; key-set paging
#: reads a shorter page as the last one, so we never ask for more.
CLOUD_MAX_PAGE = 100


class JiraReport(BaseModel):
    push: JiraPushReport
    pull: JiraSyncReport


def sync_context(settings: Settings, *, with_rules: bool = True) -> JiraSyncContext:
    """The pull's context from the settings; the rules are read now (RulesError if bad)."""
    from flows.routing import make_router

    jira = settings.jira
    page_size = min(jira.page_size, CLOUD_MAX_PAGE) if jira.flavor == "cloud" else jira.page_size
    return JiraSyncContext(
        project=jira.project,
        mapping=jira.mapping,
        identity=sender_identity(settings),
        zone=settings.zone,
        flavor=jira.flavor,
        overlap=settings.jira_overlap,
        page_size=page_size,
        route=make_router(settings).route if with_rules else None,
    )


def push_context(settings: Settings) -> JiraPushContext:
    jira = settings.jira
    transitions = {
        FeedbackOutcome.RESOLVED: jira.close_transition,
        FeedbackOutcome.UNRESOLVED: jira.reopen_transition,
    }
    if jira.reopen_when_partially:
        transitions[FeedbackOutcome.PARTIALLY] = jira.reopen_transition
    return JiraPushContext(
        project=jira.project,
        mapping=jira.mapping,
        push_email_cases=jira.push_email_cases,
        issue_type=jira.issue_type,
        create_labels=list(jira.create_labels),
        create_components=list(jira.create_components),
        priority_names=dict(jira.priority_names),
        feedback_transitions=transitions,
        push_assignments=jira.push_assignments,
        accounts=dict(jira.accounts),
    )


@task(cache_policy=NONE)
def push_pending(store: CaseStore, client: JiraClient, context: JiraPushContext) -> JiraPushReport:
    """Create issues, post replies as comments, transition on feedback."""
    return push(store, client, context)


@task(cache_policy=NONE)
def assign_new_cases(
    store: CaseStore, client: JiraClient, context: JiraPushContext, pulled: JiraSyncReport
) -> JiraPushReport:
    """Make the owners the rules gave the pull's new cases their issues' assignees."""
    return assign_owners(store, client, context, pulled.new_cases)


@task(cache_policy=NONE)
def apply_page(puller: JiraPull, page: list[JiraSearchResult]) -> JiraSyncReport:
    """Apply one page of issues to the cases and move the watermark, in one transaction."""
    return puller.apply_page(page)


@flow(name="casedesk-jira")
def jira_flow(config: str | None = None) -> JiraReport:
    """Push pending case changes to Jira, then pull issues updated since the watermark."""
    logger = get_run_logger()
    settings = load_settings(Path(config) if config else None)
    pull_context = sync_context(settings)
    store = open_store(settings)
    try:
        with build_jira_client(settings) as client:
            pushed = push_pending(store, client, push_context(settings))
            puller = JiraPull(store, client, pull_context)
            pulled = JiraSyncReport()
            before = client.request_count
            for page in puller.pages():
                pulled.merge(apply_page(puller, page))
            puller.finish()
            pulled.requests = client.request_count - before
            if pulled.new_cases:
                assigned = assign_new_cases(store, client, push_context(settings), pulled)
                pushed.assigned += assigned.assigned
                pushed.problems += assigned.problems
                pushed.requests += assigned.requests
    finally:
        store.close()
    logger.info(
        "jira push: %d created, %d comments, %d transitions, %d assigned; pull: %d read, "
        "%d new cases, "
        "%d updated, %d skipped, %d feedback requests, %d requests",
        len(pushed.created),
        pushed.comments,
        len(pushed.transitions),
        len(pushed.assigned),
        pulled.issues_read,
        len(pulled.new_cases),
        len(pulled.updated_cases),
        len(pulled.skipped),
        len(pulled.feedback_requests),
        pulled.requests + pushed.requests,
    )
    for line in pulled.skipped:
        logger.warning("skipped %s", line)
    for line in pushed.problems:
        logger.warning("problem %s", line)
    return JiraReport(push=pushed, pull=pulled)
