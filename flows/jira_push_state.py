"""What of one case has reached Jira: kept per case as a watermark row (`jira-push:<number>`).

The push (`flows/jira_push.py`) reads and writes it; the pull (`flows/jira_sync.py`) settles the
owner of a new case whose owner came from Jira's assignee: it is never written back.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from connectors.store import StoreTransaction

__all__ = ["PushState", "push_state_name", "settle_owner"]


def push_state_name(case_number: str) -> str:
    return f"jira-push:{case_number}"


class PushState(BaseModel):
    """What of one case has reached Jira (kept as a watermark row)."""

    replies: int = Field(default=0, description="EMAIL_IN entries pushed, in log order.")
    pending: str | None = Field(default=None, description="A comment being posted.")
    feedback_at: str | None = Field(default=None, description="The feedback last pushed.")
    new_issue: bool = Field(
        default=False,
        description="casedesk created the issue (this version): its owner is written whenever "
        "the case was made.",
    )
    owner: str | None = Field(
        default=None,
        description="The owner last made the issue's assignee (or found not assignable, left "
        "to the assignee a person chose in Jira, or imported with the project's history): not "
        "tried again until it changes.",
    )


def settle_owner(
    tx: StoreTransaction,
    number: str,
    owner: str | None,
    now: datetime,
    *,
    new_issue: bool | None = None,
) -> None:
    """Record, in the transaction that did it, that the case's `owner` is done with: made the
    assignee, found not assignable, left to Jira's assignee, or never to be written (history,
    or an owner that came from Jira). `new_issue`: set that flag too (see `PushState`)."""
    stored = tx.get_watermark(push_state_name(number))
    state = PushState.model_validate_json(stored) if stored else PushState()
    state.owner = owner
    if new_issue is not None:
        state.new_issue = new_issue
    tx.set_watermark(push_state_name(number), state.model_dump_json(), now=now)
