"""What of one case has reached Jira: kept per case as a watermark row (`jira-push:<number>`).

The push (`flows/jira_push.py`) reads and writes it; the pull (`flows/jira_sync.py`) writes it
for the cases a first import brings in, whose owners are not to be written to Jira.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["PushState", "push_state_name"]


def push_state_name(case_number: str) -> str:
    return f"jira-push:{case_number}"


class PushState(BaseModel):
    """What of one case has reached Jira (kept as a watermark row)."""

    replies: int = Field(default=0, description="EMAIL_IN entries pushed, in log order.")
    pending: str | None = Field(default=None, description="A comment being posted.")
    feedback_at: str | None = Field(default=None, description="The feedback last pushed.")
    owner: str | None = Field(
        default=None,
        description="The owner last made the issue's assignee (or found not assignable, left "
        "to the assignee a person chose in Jira, or imported with the project's history): not "
        "tried again until it changes.",
    )
