"""Writing an outcome onto a case: fields, the process log, the assignment and the status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import TypeAdapter

from mapping.case import Case, CaseStatus, LogEntry, LogKind, status_change
from mapping.rules.assignment import AssignmentState, resolve
from mapping.rules.engine import RuleOutcome, Verdict

__all__ = ["ACTOR", "Routing", "apply_outcome"]

#: Who the process log says made the rules' decisions.
ACTOR = "rules"


@dataclass(frozen=True, slots=True)
class Routing:
    """What applying an outcome did to the case, for notices and reports (a plain record: it is
    made for every report from the case's validated fields)."""

    owner: str | None
    collaborators: list[str]
    status: CaseStatus
    needs_triage: bool


def apply_outcome(
    case: Case,
    outcome: RuleOutcome | Verdict,
    *,
    groups: Mapping[str, Sequence[str]],
    state: AssignmentState,
    at: datetime,
) -> Routing:
    """Set what the rules decided, log every decision, assign, and move the status.

    `outcome` is what `RuleEngine.evaluate` gives, or its plain form from `RuleEngine.decide`.
    """
    # These fields are set straight into the case's `__dict__`, not by validated assignment
    # (about 2 us each, for every report): each value was validated already, as part of the
    # rule set (types, priorities, tags, related systems, people are fields of its models),
    # its defaults or a person's triage, or made by `due_time` from the validated
    # `received_at` (aware, in UTC). Only the due time's one invariant is checked again,
    # cheaply. All log entries are validated together at the end (`_log_all`).
    due_at = outcome.due_at
    if due_at.tzinfo is None:
        raise ValueError("a due time must carry its time zone")
    fields = case.__dict__
    fields["problem_type"] = outcome.problem_type
    fields["priority"] = outcome.priority
    fields["due_at"] = due_at
    if outcome.tags:
        new_tags = [tag for tag in outcome.tags if tag not in case.tags]
        if new_tags:
            fields["tags"] = [*case.tags, *new_tags]
    if outcome.related_system is not None:
        fields["related_system"] = outcome.related_system
    rule, assignment = LogKind.RULE, LogKind.ASSIGNMENT
    entries = [(rule, decision.text) for decision in outcome.decisions]
    if outcome.owner is not None:
        owner = resolve(outcome.owner.spec, groups, state, now=at)
        _set(case, "owner", owner)
        entries.append(
            (
                assignment,
                f"owner {owner} by rule {outcome.owner.rule_id}: "
                f"{outcome.owner.spec.describe()}; {outcome.owner.because}",
            )
        )
    elif outcome.manual_owner is not None:
        _set(case, "owner", outcome.manual_owner)
    for pick in outcome.collaborators:
        exclude = [person for person in (case.owner, *case.collaborators) if person]
        person = resolve(pick.spec, groups, state, now=at, exclude=exclude)
        if person is None or person in exclude:
            continue
        _set(case, "collaborators", [*case.collaborators, person])
        entries.append(
            (
                assignment,
                f"collaborator {person} by rule {pick.rule_id}: {pick.spec.describe()}; "
                f"{pick.because}",
            )
        )
    target = _status(case, outcome)
    if target is not None and target != case.status and case.can_move_to(target):
        # What `Case.move_to` does, its log entry validated with the others.
        reason = "type unclear: the lead judges" if outcome.needs_triage else "owner by rule"
        entries.append((LogKind.STATUS, status_change(case.status, target, reason)))
        _set(case, "status", target)
    _log_all(case, entries, at)
    return Routing(
        owner=case.owner,
        collaborators=list(case.collaborators),
        status=case.status,
        needs_triage=outcome.needs_triage,
    )


def _set(case: Case, name: str, value: object) -> None:
    """A field set as validated assignment leaves it (value, and the set of fields set), for a
    value validated already (see `apply_outcome`)."""
    case.__dict__[name] = value
    case.__pydantic_fields_set__.add(name)


def _status(case: Case, outcome: RuleOutcome | Verdict) -> CaseStatus | None:
    """Untriaged -> triage; an owner chosen by rule -> assigned; otherwise unchanged."""
    if outcome.needs_triage:
        return CaseStatus.TRIAGE
    if outcome.owner is not None and case.owner:
        return CaseStatus.ASSIGNED
    return None


#: Validates a list of log entries in one call (see `_log_all`).
_ENTRIES = TypeAdapter(list[LogEntry])


class _KeptEntries:
    """Validated log entries of one time, kept by (kind, text): intake gives a batch's cases one
    time (its transaction's), and their rule entries repeat (the same rule, evidence, due
    time), so each is validated once and, frozen, shared by the cases' logs."""

    #: Never more than this many (a clock that stands still, as in tests, keeps one time).
    LIMIT = 4096

    def __init__(self) -> None:
        #: The time and its entries, replaced together (never cleared in place), so that a
        #: caller in another thread keeps a consistent pair.
        self.kept: tuple[datetime | None, dict[tuple[LogKind, str], LogEntry]] = (None, {})

    def get(self, at: datetime, wanted: list[tuple[LogKind, str]]) -> list[LogEntry]:
        """The entries for `wanted` at `at`, validated as `Case.log` validates one (all that
        are not kept yet in one call of the validator over the list: about 0.85 us an entry,
        against 1.25 for one model built at a time and 1.8 for a copy of a first one)."""
        kept_at, entries = self.kept
        if (
            kept_at is None
            or at != kept_at
            or at.tzinfo is not kept_at.tzinfo
            or len(entries) > self.LIMIT
        ):
            entries = {}
        missing = [key for key in wanted if key not in entries]
        if missing:
            validated = _ENTRIES.validate_python(
                [{"at": at, "actor": ACTOR, "kind": kind, "text": text} for kind, text in missing]
            )
            entries.update(zip(missing, validated, strict=True))
            self.kept = (at, entries)  # only once `at` was validated
        return [entries[key] for key in wanted]


_kept_entries = _KeptEntries()


def _log_all(case: Case, entries: list[tuple[LogKind, str]], at: datetime) -> None:
    """What `Case.log(kind, text, at=at, actor=ACTOR)` does for each entry, in one go.

    Every entry is validated, as `Case.log` validates it (or is one validated before with the
    same values, see `_KeptEntries`). The log becomes one new list (never appended in place, so
    a shallow copy of the case never shares it), and `updated_at` moves forward once, instead
    of a list copy and a comparison per entry.
    """
    if not entries:
        return
    validated = _kept_entries.get(at, entries)
    case.__dict__["process_log"] = [*case.process_log, *validated]
    moved = validated[0].at
    if moved > case.updated_at:
        # Straight into the field, as validated assignment would leave it (value and the set
        # of fields set): the entry's `at` was just validated as the same type (an aware
        # datetime), and inside intake validated assignment of this one field cost about 10 us
        # a report.
        _set(case, "updated_at", moved)
