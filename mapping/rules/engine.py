"""Evaluating rules: a report's facts in, every decision and the reason for it out. Pure.

Precedence, in one sentence: rules are read in file order, and the first matching rule that
sets an attribute (type, priority, related system, owner, due time) decides it, unless a later
matching rule says `override = true`, which replaces it; tags and collaborators add up; each
matching `raise_priority` raises the priority decided so far by one level, after all rules have
set theirs. What no rule decides comes from the defaults (P2, untriaged), and an untriaged
report goes to the triage queue. A report a person already triaged in Jira keeps that triage:
only rules with `override_manual = true` apply to it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from mapping.case import Priority, ProblemType
from mapping.rules.calendar import due_time
from mapping.rules.facts import ReportFacts
from mapping.rules.matcher import KeywordIndex, normalize
from mapping.rules.model import AssignSpec, Rule, RuleSet

__all__ = ["Decision", "RuleEngine", "RuleMatch", "RuleOutcome", "and_list", "format_duration"]

#: Attributes a single rule decides; the first matching rule wins unless a later one overrides.
SINGLE_ATTRIBUTES = ("problem_type", "priority", "related_system", "owner", "due_in")


class Decision(BaseModel):
    """One decision and why, as written to the process log."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    value: str
    rule_id: str | None = Field(description="None for a default or a person's own triage.")
    text: str


class RuleMatch(BaseModel):
    """A rule that matched, and what in the report made it match."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    evidence: list[str]
    applied: bool = True
    note: str = ""

    @property
    def because(self) -> str:
        return f"matched {and_list(self.evidence)}" if self.evidence else "matches every report"


class Pick(BaseModel):
    """Someone to assign, and the rule that asks for them (resolved against the store later)."""

    model_config = ConfigDict(frozen=True)

    spec: AssignSpec
    rule_id: str
    because: str


class RuleOutcome(BaseModel):
    """Everything the rules decided about one report: exactly one type, priority and due time."""

    model_config = ConfigDict(frozen=True)

    problem_type: ProblemType
    priority: Priority
    tags: list[str] = Field(default_factory=list)
    related_system: str | None = None
    owner: Pick | None = None
    collaborators: list[Pick] = Field(default_factory=list)
    due_at: datetime
    matches: list[RuleMatch] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    needs_triage: bool = Field(description="Nobody could tell the type: the lead must judge.")
    manual_owner: str | None = None

    @property
    def matched_rules(self) -> list[str]:
        return [match.rule_id for match in self.matches if match.applied]


def and_list(items: Sequence[str]) -> str:
    """`'a'`, `'a' and 'b'`, `'a', 'b' and 'c'`."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def format_duration(duration: timedelta) -> str:
    hours, rest = divmod(duration.seconds, 3600)
    parts = [(duration.days, "d"), (hours, "h"), (rest // 60, "m")]
    return " ".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0m"


# Conditions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Report:
    """A report prepared once for every rule: normalized text, keyword hits, local time."""

    facts: ReportFacts
    subject_hits: set[str]
    hits: set[str]
    local: datetime
    regex_possible: bool = True


Check = Callable[[_Report], list[str] | None]  # evidence when it holds, None when it does not


def _quote(items: Sequence[str]) -> list[str]:
    return [f"'{item}'" for item in items]


def _any_keyword(keywords: list[str], *, subject_only: bool) -> Check:
    def check(report: _Report) -> list[str] | None:
        hits = report.subject_hits if subject_only else report.hits
        found = [keyword for keyword in keywords if keyword in hits]
        return _quote(found) or None

    return check


def _all_keywords(keywords: list[str]) -> Check:
    def check(report: _Report) -> list[str] | None:
        return _quote(keywords) if all(k in report.hits for k in keywords) else None

    return check


def _no_keyword(keywords: list[str]) -> Check:
    def check(report: _Report) -> list[str] | None:
        return None if any(k in report.hits for k in keywords) else []

    return check


def _regex(patterns: list[str], *, subject_only: bool) -> Check:
    # Regular expressions see the original text (not case-folded), ignoring case.
    compiled = [re.compile(pattern, re.IGNORECASE) for pattern in patterns]

    def check(report: _Report) -> list[str] | None:
        if not report.regex_possible:
            return None
        texts = (
            [report.facts.subject] if subject_only else [report.facts.subject, report.facts.body]
        )
        for pattern in compiled:
            for text in texts:
                match = pattern.search(text)
                if match:
                    return [f"/{pattern.pattern}/ ('{match.group(0)[:40]}')"]
        return None

    return check


def _sender(values: list[str]) -> Check:
    addresses = {v.casefold() for v in values if not v.startswith("@") and "@" in v}
    domains = {v.casefold().lstrip("@") for v in values if v.startswith("@") or "@" not in v}

    def check(report: _Report) -> list[str] | None:
        sender = (report.facts.sender or "").casefold()
        if sender in addresses:
            return [f"sender '{sender}'"]
        domain = sender.rpartition("@")[2]
        for wanted in domains:
            if domain == wanted or domain.endswith("." + wanted):
                return [f"sender domain '@{wanted}'"]
        return None

    return check


def _one_of(label: str, values: list[str], read: Callable[[ReportFacts], list[str]]) -> Check:
    wanted = {value.casefold() for value in values}

    def check(report: _Report) -> list[str] | None:
        found = [value for value in read(report.facts) if value.casefold() in wanted]
        return [f"{label} '{found[0]}'"] if found else None

    return check


def _attachments(patterns: list[str]) -> Check:
    def check(report: _Report) -> list[str] | None:
        for kind in report.facts.attachment_types:
            if any(fnmatch.fnmatchcase(kind, pattern) for pattern in patterns):
                return [f"attachment '{kind}'"]
        return None

    return check


def _weekday(indexes: set[int]) -> Check:
    def check(report: _Report) -> list[str] | None:
        day = report.local.weekday()
        return [f"weekday {report.local.strftime('%a').lower()}"] if day in indexes else None

    return check


def _hours(rule: Rule) -> Check:
    def check(report: _Report) -> list[str] | None:
        hour = report.local.hour
        held = any(hour_range.contains(hour) for hour_range in rule.when.hours)
        return [f"hour {hour:02d}"] if held else None

    return check


def _optional(value: str | None) -> list[str]:
    return [value] if value else []


def _checks(rule: Rule) -> list[Check]:
    """The rule's conditions as checks, cheap ones first; only the conditions it gives."""
    when = rule.when
    norm = [normalize(k) for k in when.keywords]
    table: list[tuple[bool, Callable[[], Check]]] = [
        (bool(when.source), lambda: _one_of("source", list(when.source), lambda f: [f.source])),
        (
            bool(when.mailbox),
            lambda: _one_of("mailbox", when.mailbox, lambda f: _optional(f.mailbox)),
        ),
        (bool(when.sender), lambda: _sender(when.sender)),
        (
            bool(when.jira_project),
            lambda: _one_of("Jira project", when.jira_project, lambda f: _optional(f.jira_project)),
        ),
        (
            bool(when.jira_component),
            lambda: _one_of("Jira component", when.jira_component, lambda f: f.jira_components),
        ),
        (
            bool(when.jira_label),
            lambda: _one_of("Jira label", when.jira_label, lambda f: f.jira_labels),
        ),
        (
            bool(when.jira_priority),
            lambda: _one_of(
                "Jira priority", when.jira_priority, lambda f: _optional(f.jira_priority)
            ),
        ),
        (bool(when.weekdays), lambda: _weekday({day.index for day in when.weekdays})),
        (bool(when.hours), lambda: _hours(rule)),
        (bool(when.attachment_types), lambda: _attachments(when.attachment_types)),
        (bool(when.not_keywords), lambda: _no_keyword([normalize(k) for k in when.not_keywords])),
        (bool(when.all_keywords), lambda: _all_keywords([normalize(k) for k in when.all_keywords])),
        (bool(norm), lambda: _any_keyword(norm, subject_only=False)),
        (
            bool(when.subject_keywords),
            lambda: _any_keyword([normalize(k) for k in when.subject_keywords], subject_only=True),
        ),
        (bool(when.regex), lambda: _regex(when.regex, subject_only=False)),
        (bool(when.subject_regex), lambda: _regex(when.subject_regex, subject_only=True)),
    ]
    return [make() for present, make in table if present]


@dataclass(frozen=True)
class _CompiledRule:
    rule: Rule
    checks: list[Check]

    def evidence(self, report: _Report) -> list[str] | None:
        found: list[str] = []
        for check in self.checks:
            result = check(report)
            if result is None:
                return None
            found.extend(result)
        return found


def _triggers(rule: Rule) -> list[str]:
    """Keywords one of which must occur for the rule to match; empty when it has none."""
    when = rule.when
    if when.keywords or when.subject_keywords:
        return [normalize(k) for k in [*when.keywords, *when.subject_keywords]]
    return [normalize(when.all_keywords[0])] if when.all_keywords else []


# The engine ---------------------------------------------------------------------------------
@dataclass
class _Draft:
    """Decisions as rules are applied in order."""

    values: dict[str, object] = field(default_factory=dict)
    deciders: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    tags: list[Decision] = field(default_factory=list)
    collaborators: list[Pick] = field(default_factory=list)
    raises: list[RuleMatch] = field(default_factory=list)


class RuleEngine:
    """A rule set compiled for fast evaluation; `evaluate(facts)` is pure."""

    def __init__(self, rules: RuleSet, zone: ZoneInfo) -> None:
        self.rules = rules
        self.zone = zone
        self._compiled = [_CompiledRule(r, _checks(r)) for r in rules.rules if r.enabled]
        keywords: list[str] = []
        self._by_keyword: dict[str, set[int]] = {}
        self._always: set[int] = set()
        for position, compiled in enumerate(self._compiled):
            when = compiled.rule.when
            keywords += [*when.keywords, *when.all_keywords, *when.subject_keywords]
            keywords += when.not_keywords
            triggers = _triggers(compiled.rule)
            for keyword in triggers:
                self._by_keyword.setdefault(keyword, set()).add(position)
            if not triggers:
                self._always.add(position)
        self._index = KeywordIndex.build(keywords)
        self._regex_gate = _gate(
            [p for c in self._compiled for p in [*c.rule.when.regex, *c.rule.when.subject_regex]]
        )

    def evaluate(self, facts: ReportFacts) -> RuleOutcome:
        """Which rules match `facts`, and every decision they lead to."""
        subject_hits = self._index.find(normalize(facts.subject))
        hits = subject_hits | self._index.find(normalize(facts.body))
        gate = self._regex_gate
        report = _Report(
            facts,
            subject_hits,
            hits,
            facts.received_at.astimezone(self.zone),
            regex_possible=gate is None
            or bool(gate.search(facts.subject) or gate.search(facts.body)),
        )
        candidates = set(self._always)
        for keyword in hits:
            candidates |= self._by_keyword.get(keyword, set())
        draft = _Draft()
        matches: list[RuleMatch] = []
        for position in sorted(candidates):
            compiled = self._compiled[position]
            evidence = compiled.evidence(report)
            if evidence is None:
                continue
            match = RuleMatch(rule_id=compiled.rule.id, evidence=evidence)
            if facts.manual is not None and not compiled.rule.override_manual:
                match = match.model_copy(
                    update={"applied": False, "note": "not applied: triaged by a person in Jira"}
                )
            else:
                self._apply(compiled.rule, match, draft)
            matches.append(match)
        return self._finish(facts, draft, matches)

    def _apply(self, rule: Rule, match: RuleMatch, draft: _Draft) -> None:
        then = rule.then
        for attribute in SINGLE_ATTRIBUTES:
            value = getattr(then, attribute)
            if value is None:
                continue
            earlier = draft.deciders.get(attribute)
            if earlier is not None and not rule.override:
                continue  # the first matching rule decided it (see the module docstring)
            draft.values[attribute] = value
            draft.deciders[attribute] = rule.id
            draft.reasons[attribute] = match.because
            text = f"{_describe(attribute, value)} by rule {rule.id}: {match.because}"
            if earlier is not None:
                text += f" (overrides rule {earlier})"
            draft.decisions[attribute] = Decision(
                attribute=attribute, value=_plain(value), rule_id=rule.id, text=text
            )
        known = {decision.value for decision in draft.tags}
        for tag in then.tags:
            if tag not in known:
                known.add(tag)
                draft.tags.append(
                    Decision(
                        attribute="tags",
                        value=tag,
                        rule_id=rule.id,
                        text=f"tag '{tag}' by rule {rule.id}: {match.because}",
                    )
                )
        for spec in then.collaborators:
            draft.collaborators.append(Pick(spec=spec, rule_id=rule.id, because=match.because))
        if then.raise_priority:
            draft.raises.append(match)

    def _finish(self, facts: ReportFacts, draft: _Draft, matches: list[RuleMatch]) -> RuleOutcome:
        decisions = dict(draft.decisions)
        defaults = self.rules.defaults
        base = facts.manual or defaults
        why = "triaged by a person in Jira" if facts.manual else "no rule decided it"
        problem_type = draft.values.get("problem_type", base.problem_type)
        priority = draft.values.get("priority", base.priority)
        assert isinstance(problem_type, ProblemType) and isinstance(priority, Priority)
        if "problem_type" not in decisions:
            triage = "" if facts.manual else "; sent to triage for the lead to judge"
            decisions["problem_type"] = Decision(
                attribute="problem_type",
                value=problem_type.value,
                rule_id=None,
                text=f"{_describe('problem_type', problem_type)} ({why}){triage}",
            )
        if "priority" not in decisions:
            decisions["priority"] = Decision(
                attribute="priority", value=priority.value, rule_id=None, text=f"{priority} ({why})"
            )
        for match in draft.raises:
            before, priority = priority, priority.raised()
            change = f"raised from {before}" if priority != before else f"already {before}"
            decisions[f"priority+{match.rule_id}"] = Decision(
                attribute="priority",
                value=priority.value,
                rule_id=match.rule_id,
                text=f"{priority} by rule {match.rule_id}: {change}; {match.because}",
            )
        due_in = draft.values.get("due_in")
        assert due_in is None or isinstance(due_in, timedelta)
        due_at = due_time(facts.received_at, priority, self.rules.due, self.zone, duration=due_in)
        local_due = due_at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")
        working = ", working time" if self.rules.due.business_hours else ""
        if due_in is None:
            length = format_duration(self.rules.due.for_priority(priority))
            due_text = f"due {local_due} ({priority}: {length}{working})"
        else:
            due_text = (
                f"due {local_due} ({format_duration(due_in)}{working}) by rule "
                f"{draft.deciders['due_in']}: {draft.reasons['due_in']}"
            )
        decisions["due_in"] = Decision(
            attribute="due",
            value=due_at.isoformat(),
            rule_id=draft.deciders.get("due_in"),
            text=due_text,
        )
        owner = draft.values.get("owner")
        assert owner is None or isinstance(owner, AssignSpec)
        related = draft.values.get("related_system")
        return RuleOutcome(
            problem_type=problem_type,
            priority=priority,
            tags=[decision.value for decision in draft.tags],
            related_system=related if isinstance(related, str) else None,
            owner=None
            if owner is None
            else Pick(
                spec=owner,
                rule_id=draft.deciders["owner"],
                because=draft.reasons["owner"],
            ),
            collaborators=draft.collaborators,
            due_at=due_at,
            matches=matches,
            decisions=[
                *[d for key, d in decisions.items() if key != "owner"],
                *draft.tags,
            ],
            needs_triage=problem_type is ProblemType.UNTRIAGED,
            manual_owner=facts.manual.owner if facts.manual else None,
        )


def _gate(patterns: list[str]) -> re.Pattern[str] | None:
    """One pass that tells whether any rule's regex can match, so most reports try none."""
    if not patterns:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    except re.error:
        return None  # e.g. numbered back-references clash when combined: no gate, same result


def _plain(value: object) -> str:
    if isinstance(value, AssignSpec):
        return value.describe()
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def _describe(attribute: str, value: object) -> str:
    """How a decided value reads in the log: `P0`, `type 系统故障 (system_fault)`, ..."""
    if isinstance(value, ProblemType):
        return f"type {value.label_zh} ({value.value})"
    labels = {"related_system": "related system", "owner": "owner", "due_in": "due in"}
    if attribute in labels:
        return f"{labels[attribute]} {_plain(value)}"
    return _plain(value)
