"""Evaluating rules: a report's facts in, every decision and the reason for it out. Pure.

Precedence, in one sentence: rules are read in file order, and the first matching rule that
sets an attribute (type, priority, related system, owner, due time) decides it, unless a later
matching rule says `override = true`, which replaces it; tags and collaborators add up; each
matching `raise_priority` raises the priority decided so far by one level, after all rules have
set theirs. What no rule decides comes from the defaults (P2, untriaged), or for a new Jira
issue from what its own fields map to (its priority; a type its labels, components or issue
type give), and an untriaged report nobody owns goes to the triage queue (an owner a rule
picked judges it). A report a person already triaged in Jira keeps that triage:
only rules with `override_manual = true` apply to it, except that when the person set no type
(an issue type the Jira mapping does not know), the rules' type fills it in. A report a person
already owns never goes to the triage queue: its owner judges it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from mapping.case import Priority, ProblemType
from mapping.parsed_email import ParsedEmail
from mapping.rules.calendar import due_time
from mapping.rules.conditions import Conditions, Evidence, Prematched
from mapping.rules.facts import ManualTriage, ReportFacts, SourceTriage, email_content
from mapping.rules.model import AssignSpec, Rule, RuleSet
from mapping.rules.verdict import Assign, Decided, Matched, Precided

__all__ = [
    "Assign",
    "Decided",
    "Decision",
    "Matched",
    "RuleEngine",
    "RuleMatch",
    "RuleOutcome",
    "Verdict",
    "and_list",
    "because",
    "format_duration",
    "plain_value",
]

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
        return because(self.evidence)


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


def because(evidence: Sequence[str]) -> str:
    """Why a rule matched, as the log says it: `matched 'a' and 'b'`."""
    return f"matched {and_list(evidence)}" if evidence else "matches every report"


def format_duration(duration: timedelta) -> str:
    hours, rest = divmod(duration.seconds, 3600)
    parts = [(duration.days, "d"), (hours, "h"), (rest // 60, "m")]
    return " ".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0m"


# The engine's plain result ------------------------------------------------------------------
class Verdict(NamedTuple):
    """A `RuleOutcome` in plain values: what intake applies, with no model built per report.

    The same fields as `RuleOutcome` (which `to_outcome` builds, for explaining and tests), so
    `apply_outcome` takes either.
    """

    problem_type: ProblemType
    priority: Priority
    tags: tuple[str, ...]
    related_system: str | None
    owner: Assign | None
    collaborators: tuple[Assign, ...]
    due_at: datetime
    matches: tuple[Matched, ...]
    decisions: tuple[Decided, ...]
    needs_triage: bool
    manual_owner: str | None

    def to_outcome(self) -> RuleOutcome:
        def pick(assign: Assign) -> Pick:
            return Pick(spec=assign.spec, rule_id=assign.rule_id, because=assign.because)

        return RuleOutcome(
            problem_type=self.problem_type,
            priority=self.priority,
            tags=list(self.tags),
            related_system=self.related_system,
            owner=None if self.owner is None else pick(self.owner),
            collaborators=[pick(assign) for assign in self.collaborators],
            due_at=self.due_at,
            matches=[
                RuleMatch(
                    rule_id=match.rule_id,
                    evidence=list(match.evidence),
                    applied=match.applied,
                    note=match.note,
                )
                for match in self.matches
            ],
            decisions=[Decision(**decided._asdict()) for decided in self.decisions],
            needs_triage=self.needs_triage,
            manual_owner=self.manual_owner,
        )


# The engine ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Action:
    """One single-valued attribute a rule decides, with how it reads in the log."""

    attribute: str
    value: object
    plain: str
    described: str
    #: `P0 by rule outage: `: the log text up to the reason, the same for every report.
    prefix: str
    #: The owner is logged when applied (who it is, from the store), not as a decision.
    logged: bool


@dataclass(frozen=True, slots=True)
class _Then:
    """A rule's decisions, prepared once so evaluating a report only copies them."""

    rule_id: str
    override: bool
    override_manual: bool
    actions: tuple[_Action, ...]
    #: Each tag with its log text up to the reason: `tag 'x' by rule r: `.
    tags: tuple[tuple[str, str], ...]
    collaborators: tuple[AssignSpec, ...]
    raise_priority: bool

    @classmethod
    def of(cls, rule: Rule) -> _Then:
        then = rule.then
        actions = []
        for attribute in SINGLE_ATTRIBUTES:
            value = getattr(then, attribute)
            if value is not None:
                described = _describe(attribute, value)
                prefix = f"{described} by rule {rule.id}: "
                logged = attribute != "owner"
                actions.append(
                    _Action(attribute, value, plain_value(value), described, prefix, logged)
                )
        return cls(
            rule_id=rule.id,
            override=rule.override,
            override_manual=rule.override_manual,
            actions=tuple(actions),
            tags=tuple((tag, f"tag '{tag}' by rule {rule.id}: ") for tag in then.tags),
            collaborators=tuple(then.collaborators),
            raise_priority=then.raise_priority,
        )


#: Why a decision is the rules' default, or the source's.
_NO_RULE = "no rule decided it"
#: A new Jira issue's type from its labels, components or issue type (`jira.mapping`).
_FROM_JIRA = f"from the Jira issue's labels, components or type; {_NO_RULE}"
#: Why a matching rule did nothing to a report a person triaged.
_NOT_APPLIED = "not applied: triaged by a person in Jira"
#: Why a matching rule decided only the type of a report a person triaged without one.
_TYPE_ONLY = "type only: triaged by a person in Jira, who set no type"


@dataclass(frozen=True, slots=True)
class _Hit:
    """A rule matched with given evidence: everything `decide` takes from it, texts included.

    The same for every report in which the rule matches with the same evidence, so it is made
    once and kept (see `RuleEngine._hits`).
    """

    then: _Then
    reason: str
    matched: Matched
    #: Each action with its log entry when it decides (None for the owner, logged when applied).
    actions: tuple[tuple[_Action, Decided | None], ...]
    #: Each tag with its log entry.
    tags: tuple[tuple[str, Decided], ...]
    collaborators: tuple[Assign, ...]

    @classmethod
    def of(cls, then: _Then, evidence: tuple[str, ...]) -> _Hit:
        rule_id = then.rule_id
        reason = because(evidence)
        return cls(
            then=then,
            reason=reason,
            matched=Matched(rule_id, evidence, reason),
            actions=tuple(
                (
                    action,
                    Decided(action.attribute, action.plain, rule_id, action.prefix + reason)
                    if action.logged
                    else None,
                )
                for action in then.actions
            ),
            tags=tuple(
                (tag, Decided("tags", tag, rule_id, prefix + reason)) for tag, prefix in then.tags
            ),
            collaborators=tuple(Assign(spec, rule_id, reason) for spec in then.collaborators),
        )


#: How many (rule, evidence) pairs a `RuleEngine` keeps made (see `RuleEngine._hits`); when
#: full, it starts again. A rule with keywords matches with one of few combinations of them, but
#: a regular expression's evidence quotes the text it matched, a sender rule's the address.
_HITS_KEPT = 4096


class RuleEngine:
    """A rule set compiled for fast evaluation; `evaluate(facts)` and `decide(facts)` are pure."""

    def __init__(self, rules: RuleSet, zone: ZoneInfo, *, token: str | None = None) -> None:
        self.rules = rules
        self.zone = zone
        enabled = [rule for rule in rules.rules if rule.enabled]
        self._conditions = Conditions(enabled, zone, token=token)
        self._thens = [_Then.of(rule) for rule in enabled]
        #: (rule position, evidence) -> what the rule contributes when it matches so: a rule's
        #: reason, its log entries and plain tuples, made once instead of for every report.
        self._hits: dict[tuple[int, tuple[str, ...]], _Hit] = {}
        #: Due times and their log entries for one time of intake (see `_finish`).
        self._dues: tuple[datetime | None, dict[tuple[object, ...], tuple[datetime, Decided]]] = (
            None,
            {},
        )
        due = rules.due
        #: How a due time of each priority says it counts working time (P0 is counted around
        #: the clock by default, even with business hours: `DuePolicy.around_the_clock`).
        self._working = {p: ", working time" if due.in_working_time(p) else "" for p in Priority}
        working = self._working
        # Every text below is the same for every report, so it is written once here.
        # How each priority's due time ends in the log: ` (P0: 4h)`.
        self._due_suffix = {
            p: f" ({p}: {format_duration(due.for_priority(p))}{working[p]})" for p in Priority
        }
        # What no rule decided, by whether a person triaged the report (True) or not.
        self._default_type: dict[tuple[ProblemType, bool], str] = {}
        self._default_priority: dict[tuple[Priority, bool], str] = {}
        for manual in (False, True):
            why = "triaged by a person in Jira" if manual else _NO_RULE
            triage = "" if manual else "; sent to triage for the lead to judge"
            for kind in ProblemType:
                self._default_type[kind, manual] = f"{_TYPE_TEXT[kind]} ({why}){triage}"
            for priority in Priority:
                self._default_priority[priority, manual] = f"{priority} ({why})"

    def evaluate(self, facts: ReportFacts) -> RuleOutcome:
        """Which rules match `facts`, and every decision they lead to."""
        return self.decide(facts).to_outcome()

    def _hit(self, key: tuple[int, tuple[str, ...]]) -> _Hit:
        hits = self._hits
        if len(hits) >= _HITS_KEPT:
            hits.clear()
        hit = hits[key] = _Hit.of(self._thens[key[0]], key[1])
        return hit

    @property
    def conditions(self) -> Conditions:
        """The compiled conditions: `prematch` a report's content where it is parsed (it
        pickles as its rules, for a parse worker), then `decide_prematched` here."""
        return self._conditions

    def decide(self, facts: ReportFacts) -> Verdict:
        """`evaluate` in plain values, for intake (see `Verdict`)."""
        matching = self._conditions.matching(facts)
        precided = self._precide(matching, facts.manual, facts.from_source)
        return self._finish(precided, facts.received_at)

    def prematch_email(self, parsed: ParsedEmail, mailbox: str) -> Prematched:
        """What the rules can tell of a new email report before the time of its intake: the
        rules whose content conditions hold and, unless one of them has a time condition,
        everything they decide but the due time (`Precided`). For `IntakeContext.prematch`,
        run where mail is parsed; the engine pickles as its rules, for a parse worker."""
        prematched = self._conditions.prematch(email_content(parsed, mailbox))
        if self._conditions.timeless(prematched):
            return prematched._replace(precided=self._precide(list(prematched.matches), None))
        return prematched

    def decide_prematched(self, prematched: Prematched, *, received_at: datetime) -> Verdict:
        """`decide` for a new report (nobody triaged it) that `prematch_email` (or this engine's
        `conditions`) prematched; ValueError if other rules prematched it."""
        precided = prematched.precided
        if precided is None or prematched.token != self._conditions.token:
            precided = self._precide(self._conditions.finish(prematched, received_at), None)
        return self._finish(precided, received_at)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its rules, zone and token: a parse worker compiles them again."""
        return (_compiled, (self.rules, self.zone, self._conditions.token))

    def _precide(
        self,
        matching: list[tuple[int, Evidence]],
        manual: ManualTriage | None,
        source: SourceTriage | None = None,
    ) -> Precided:
        """The precedence of the module docstring, applied rule by rule in file order: every
        decision but the due time (`_finish`). This runs for every report, so it keeps to local
        names and plain dicts and tuples; what a rule contributes for given evidence (its
        reason, log entries, tuples) is made once (`_Hit`).
        """
        known = self._hits
        # attribute -> (value, the rule's hit) of the rule that decided it
        chosen: dict[str, tuple[object, _Hit]] = {}
        # attribute -> its log entry; keeps the order in which attributes were first decided
        decisions: dict[str, Decided] = {}
        tags: dict[str, Decided] = {}
        collaborators: list[Assign] = []
        raises: list[_Hit] = []
        matches: list[Matched] = []
        for key in matching:
            hit = known.get(key)
            if hit is None:
                hit = self._hit(key)
            then = hit.then
            if manual is not None and not then.override_manual:
                matches.append(self._for_person(hit, manual, chosen, decisions))
                continue
            matches.append(hit.matched)
            for action, decided in hit.actions:
                attribute = action.attribute
                earlier = chosen.get(attribute)
                if earlier is None:
                    chosen[attribute] = (action.value, hit)
                    if decided is not None:
                        decisions[attribute] = decided
                elif then.override:
                    # Replaces the earlier rule's decision; the log says so.
                    chosen[attribute] = (action.value, hit)
                    if decided is not None:
                        text = f"{decided.text} (overrides rule {earlier[1].then.rule_id})"
                        decisions[attribute] = decided._replace(text=text)
            for tag, decided in hit.tags:
                if tag not in tags:
                    tags[tag] = decided
            if hit.collaborators:
                collaborators += hit.collaborators
            if then.raise_priority:
                raises.append(hit)

        triaged = manual is not None
        base = manual or self.rules.defaults
        by = chosen.get("problem_type")
        if by is not None:
            problem_type = by[0]
            assert isinstance(problem_type, ProblemType)
        elif source is not None and source.problem_type is not ProblemType.UNTRIAGED:
            problem_type = source.problem_type
            text = f"{_TYPE_TEXT[problem_type]} ({_FROM_JIRA})"
            decisions["problem_type"] = Decided("problem_type", problem_type.value, None, text)
        else:
            problem_type = base.problem_type
            text = self._default_type[problem_type, triaged]
            decisions["problem_type"] = Decided("problem_type", problem_type.value, None, text)
        by = chosen.get("priority")
        if by is not None:
            priority = by[0]
            assert isinstance(priority, Priority)
        elif source is not None and source.priority is not None:
            priority = source.priority
            named = f" '{source.priority_name}'" if source.priority_name else ""
            text = f"{priority} (the Jira issue's priority{named}; {_NO_RULE})"
            decisions["priority"] = Decided("priority", priority.value, None, text)
        else:
            priority = base.priority
            text = self._default_priority[priority, triaged]
            decisions["priority"] = Decided("priority", priority.value, None, text)
        for hit in raises:
            rule_id = hit.then.rule_id
            before, priority = priority, priority.raised()
            change = f"raised from {before}" if priority != before else f"already {before}"
            text = f"{priority} by rule {rule_id}: {change}; {hit.reason}"
            decisions[f"priority+{rule_id}"] = Decided("priority", priority.value, rule_id, text)

        # The due time's log entry goes where a rule first decided it, else after the others.
        if "due_in" in decisions:
            logged = list(decisions.values())
            at = list(decisions).index("due_in")
            before_due, after_due = tuple(logged[:at]), logged[at + 1 :]
        else:
            before_due, after_due = tuple(decisions.values()), []
        due_by = chosen.get("due_in")
        due_in, due_rule, due_reason = None, None, ""
        if due_by is not None:
            value, due_hit = due_by
            assert isinstance(value, timedelta)
            due_in, due_rule, due_reason = value, due_hit.then.rule_id, due_hit.reason
        owner_by = chosen.get("owner")
        owner = None
        if owner_by is not None:
            owner_spec, owner_hit = owner_by
            assert isinstance(owner_spec, AssignSpec)
            owner = Assign(owner_spec, owner_hit.then.rule_id, owner_hit.reason)
        related_by = chosen.get("related_system")
        related = None if related_by is None else related_by[0]
        return Precided(  # positional: about a microsecond less than by keyword
            problem_type,
            priority,
            tuple(tags),
            related if isinstance(related, str) else None,
            owner,
            tuple(collaborators),
            tuple(matches),
            before_due,
            (*after_due, *tags.values()),
            # Nobody could tell the type, and nobody owns the report: not a person, not a rule.
            problem_type is ProblemType.UNTRIAGED
            and owner is None
            and not (manual and manual.owner),
            manual.owner if manual else None,
            due_in,
            due_rule,
            due_reason,
        )

    @staticmethod
    def _for_person(
        hit: _Hit,
        manual: ManualTriage,
        chosen: dict[str, tuple[object, _Hit]],
        decisions: dict[str, Decided],
    ) -> Matched:
        """A rule that matched a report a person triaged, and does not override them: it
        decides nothing, unless the person set no type and it is the first to decide one."""
        if manual.problem_type is ProblemType.UNTRIAGED and "problem_type" not in chosen:
            for action, decided in hit.actions:
                if action.attribute == "problem_type" and decided is not None:
                    chosen["problem_type"] = (action.value, hit)
                    decisions["problem_type"] = decided._replace(
                        text=f"{decided.text} (the person who triaged it in Jira set no type)"
                    )
                    return hit.matched._replace(note=_TYPE_ONLY)
        return hit.matched._replace(applied=False, note=_NOT_APPLIED)

    def _finish(self, precided: Precided, received_at: datetime) -> Verdict:
        """The due time, from the time of intake, and the whole verdict."""
        key = (precided.priority, precided.due_in, precided.due_rule, precided.due_reason)
        # Kept for one time of intake: intake gives a batch's cases one time (its
        # transaction's), so their due times and texts repeat by priority. The time and its
        # dues are replaced together, never cleared in place (safe beside another thread).
        kept_at, dues = self._dues
        if kept_at is None or received_at != kept_at or received_at.tzinfo is not kept_at.tzinfo:
            dues = {}
            self._dues = (received_at, dues)
        known = dues.get(key)
        if known is None:
            known = dues[key] = self._due(precided, received_at)
        due_at, due = known
        return Verdict(  # positional, as `_precide` builds its result
            precided.problem_type,
            precided.priority,
            precided.tags,
            precided.related_system,
            precided.owner,
            precided.collaborators,
            due_at,
            precided.matches,
            (*precided.decisions, due, *precided.later_decisions),
            precided.needs_triage,
            precided.manual_owner,
        )

    def _due(self, precided: Precided, received_at: datetime) -> tuple[datetime, Decided]:
        """The due time and its log entry."""
        zone = self.zone
        priority = precided.priority
        due_in = precided.due_in
        due_at = due_time(received_at, priority, self.rules.due, zone, duration=due_in)
        if due_in is None:
            due_why = self._due_suffix[priority]
        else:
            working = self._working[priority]
            due_why = (
                f" ({format_duration(due_in)}{working}) by rule {precided.due_rule}: "
                f"{precided.due_reason}"
            )
        local = due_at.astimezone(zone)
        # What strftime("due %Y-%m-%d %H:%M %Z") gives, at a fraction of its cost.
        due_text = f"due {local.isoformat(' ', 'minutes')[:16]} {local.tzname()}{due_why}"
        return due_at, Decided("due", due_at.isoformat(), precided.due_rule, due_text)


def _compiled(rules: RuleSet, zone: ZoneInfo, token: str) -> RuleEngine:
    return RuleEngine(rules, zone, token=token)


#: `type 系统故障 (system_fault)`: worked out once, not for every report.
_TYPE_TEXT = {kind: f"type {kind.label_zh} ({kind.value})" for kind in ProblemType}


def plain_value(value: object) -> str:
    """A decided value as people read it: `P0`, `system_fault`, `round robin in group l1`, `4h`."""
    if isinstance(value, AssignSpec):
        return value.describe()
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def _describe(attribute: str, value: object) -> str:
    """How a decided value reads in the log: `P0`, `type 系统故障 (system_fault)`, ..."""
    if isinstance(value, ProblemType):
        return _TYPE_TEXT[value]
    labels = {"related_system": "related system", "owner": "owner", "due_in": "due in"}
    if attribute in labels:
        return f"{labels[attribute]} {plain_value(value)}"
    return plain_value(value)
