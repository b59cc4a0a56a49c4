"""The rules' decisions in plain values: what intake applies, with no model built per report.

`mapping.rules.engine` makes them; its pydantic `RuleOutcome` says the same for explaining and
tests. Kept apart so that `conditions` can name `Precided` (a `Prematched` may carry one).
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from mapping.case import Priority, ProblemType
from mapping.rules.model import AssignSpec

__all__ = ["Assign", "Decided", "Matched", "Precided"]


class Decided(NamedTuple):
    """A `Decision` as a plain tuple."""

    attribute: str
    value: str
    rule_id: str | None
    text: str


class Matched(NamedTuple):
    """A `RuleMatch` as a plain tuple."""

    rule_id: str
    evidence: tuple[str, ...]
    because: str
    applied: bool = True
    note: str = ""


class Assign(NamedTuple):
    """A `Pick` as a plain tuple."""

    spec: AssignSpec
    rule_id: str
    because: str


class Precided(NamedTuple):
    """All a `Verdict` says but the due time: what the rules decide of a new report before the
    time of its intake is known (`RuleEngine.prematch_email`, in the parse worker). Only made
    when no rule that matched has a weekday or hour condition."""

    problem_type: ProblemType
    priority: Priority
    tags: tuple[str, ...]
    related_system: str | None
    owner: Assign | None
    collaborators: tuple[Assign, ...]
    matches: tuple[Matched, ...]
    #: The log entries before the due time's, in order...
    decisions: tuple[Decided, ...]
    #: ...and those after it (the tags' among them).
    later_decisions: tuple[Decided, ...]
    needs_triage: bool
    manual_owner: str | None
    #: A rule's own due time (`then.due_in`), that rule and why it matched; None: the
    #: priority's.
    due_in: timedelta | None
    due_rule: str | None
    due_reason: str
