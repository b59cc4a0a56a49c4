"""Which rules' conditions hold for a report, and what in the report made them hold. Pure.

Compiled once per run. A report is prepared once for every rule: its text case-folded and
searched for all the rules' keywords in one pass per field (`matcher.KeywordIndex`), its sender
case-folded, and where (if anywhere) any rule's regular expression can first match. Each rule
has a *trigger*, one of its conditions that needs one of a few keys to be in the report (a
keyword, the sender's address or domain, or, for a rule with none of those, a match of the
regular expressions' gate); only rules whose trigger occurs, and rules without a trigger, are
checked, condition by condition, cheap ones first.

Matching is done in two steps, so that the first can run where the mail is parsed:
`prematch(content)` checks every condition on the report's content (all but the weekday and
the hour), and `finish(prematched, received_at)` checks the time conditions of the rules that
have any. `matching(facts)` does both. A `Conditions` carries a token, so that what a parse
worker prematched (with a copy of the engine, see `RuleEngine.__reduce__`) is only used by the
engine of the same rules (`Prematched.token`).
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from mapping.rules.facts import ReportContent, ReportFacts, content_of
from mapping.rules.matcher import KeywordIndex, fold, keyword_key
from mapping.rules.model import Rule
from mapping.rules.verdict import Precided

__all__ = ["Conditions", "Evidence", "Prematched"]


@dataclass(slots=True)
class _Report:
    """A report prepared once for every rule (not frozen: that makes building it 3x slower)."""

    content: ReportContent
    #: `_UNREAD` when no rule has `subject_keywords`, the only check that reads it.
    subject_hits: AbstractSet[str]
    hits: set[str]
    sender: str
    domain: str
    #: Where a rule's regex can first match in the subject and the body; None: nowhere (or no
    #: rule has a regex).
    subject_from: int | None
    body_from: int | None


#: The subject's hits when no rule reads them (see `_Report.subject_hits`).
_UNREAD: frozenset[str] = frozenset()

#: Evidence when the condition holds (what in the report made it hold), None when it does not.
Evidence = tuple[str, ...]
Check = Callable[[_Report], Evidence | None]
#: A time condition's check, given the received time in the team's zone.
TimeCheck = Callable[[datetime], Evidence | None]


class Prematched(NamedTuple):
    """The rules whose content conditions hold for a report, with what matched, in file
    order; made by the `Conditions` with this `token` (see `Conditions.finish`)."""

    token: str
    matches: tuple[tuple[int, Evidence], ...]
    #: What the rules decide but the due time, when no rule of `matches` has a time
    #: condition (`RuleEngine.prematch_email` adds it).
    precided: Precided | None = None


def _quote(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"'{item}'" for item in items)


def _any_keyword(keywords: list[str], *, subject_only: bool) -> Check:
    quoted = tuple(zip(keywords, _quote(keywords), strict=True))

    def check(report: _Report) -> Evidence | None:
        hits = report.subject_hits if subject_only else report.hits
        found = [quote for keyword, quote in quoted if keyword in hits]
        return tuple(found) if found else None

    return check


def _all_keywords(groups: list[list[str]]) -> Check:
    """Each group (alternatives; most are one keyword) must have a keyword in the report; the
    evidence is each group's first, in the order written."""
    quoted = [tuple(zip(group, _quote(group), strict=True)) for group in groups]
    if all(len(group) == 1 for group in groups):  # plain keywords: one set test
        wanted = frozenset(keyword for group in groups for keyword in group)
        evidence = tuple(quote for group in quoted for _, quote in group)

        def check_all(report: _Report) -> Evidence | None:
            return evidence if wanted <= report.hits else None

        return check_all

    def check(report: _Report) -> Evidence | None:
        hits = report.hits
        found = []
        for group in quoted:
            first = next((quote for keyword, quote in group if keyword in hits), None)
            if first is None:
                return None
            found.append(first)
        return tuple(found)

    return check


def _no_keyword(keywords: list[str]) -> Check:
    unwanted = frozenset(keywords)

    def check(report: _Report) -> Evidence | None:
        return () if unwanted.isdisjoint(report.hits) else None

    return check


def _regex(patterns: list[str], *, subject_only: bool) -> Check:
    # Regular expressions see the original text (not case-folded), ignoring case.
    compiled = [re.compile(pattern, re.IGNORECASE) for pattern in patterns]

    def check(report: _Report) -> Evidence | None:
        subject, body = report.content.subject, report.content.body
        texts = [(subject, report.subject_from)]
        if not subject_only:
            texts.append((body, report.body_from))
        for pattern in compiled:
            for text, start in texts:
                # No rule's pattern matches before `start` (the gate's first match), so
                # searching from there finds the same first match, and searching a text where
                # the gate found none would find nothing.
                match = None if start is None else pattern.search(text, start)
                if match:
                    return (f"/{pattern.pattern}/ ('{match.group(0)[:40]}')",)
        return None

    return check


def _sender_values(values: list[str]) -> tuple[set[str], set[str]]:
    """Addresses, and domains (`@example.com` or a bare `example.com`), case-folded."""
    addresses = {v.casefold() for v in values if not v.startswith("@") and "@" in v}
    domains = {v.casefold().lstrip("@") for v in values if v.startswith("@") or "@" not in v}
    return addresses, domains


def _sender(values: list[str]) -> Check:
    addresses, domains = _sender_values(values)

    def check(report: _Report) -> Evidence | None:
        if report.sender in addresses:
            return (f"sender '{report.sender}'",)
        domain = report.domain
        for wanted in domains:
            if domain == wanted or domain.endswith("." + wanted):
                return (f"sender domain '@{wanted}'",)
        return None

    return check


def _one_of(label: str, values: list[str], read: Callable[[ReportContent], Sequence[str]]) -> Check:
    wanted = {value.casefold() for value in values}

    def check(report: _Report) -> Evidence | None:
        found = [value for value in read(report.content) if value.casefold() in wanted]
        return (f"{label} '{found[0]}'",) if found else None

    return check


def _attachments(patterns: list[str]) -> Check:
    def check(report: _Report) -> Evidence | None:
        for kind in report.content.attachment_types:
            if any(fnmatch.fnmatchcase(kind, pattern) for pattern in patterns):
                return (f"attachment '{kind}'",)
        return None

    return check


def _weekday(indexes: set[int]) -> TimeCheck:
    def check(local: datetime) -> Evidence | None:
        day = local.weekday()
        return (f"weekday {local.strftime('%a').lower()}",) if day in indexes else None

    return check


def _hours(rule: Rule) -> TimeCheck:
    def check(local: datetime) -> Evidence | None:
        hour = local.hour
        held = any(hour_range.contains(hour) for hour_range in rule.when.hours)
        return (f"hour {hour:02d}",) if held else None

    return check


def _optional(value: str | None) -> Sequence[str]:
    return [value] if value else []


def _checks(rule: Rule) -> tuple[Check, ...]:
    """The rule's content conditions as checks, cheap ones first; only the conditions it gives.

    The order is also the order of the evidence in the log ("matched 'a' and 'b'"); the time
    conditions' evidence comes after it (`_time_checks`).
    """
    when = rule.when
    norm = [keyword_key(k) for k in when.keywords]
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
        (bool(when.attachment_types), lambda: _attachments(when.attachment_types)),
        (bool(when.not_keywords), lambda: _no_keyword([keyword_key(k) for k in when.not_keywords])),
        (
            bool(when.all_keywords),
            lambda: _all_keywords([[keyword_key(k) for k in g] for g in when.keyword_groups]),
        ),
        (bool(norm), lambda: _any_keyword(norm, subject_only=False)),
        (
            bool(when.subject_keywords),
            lambda: _any_keyword(
                [keyword_key(k) for k in when.subject_keywords], subject_only=True
            ),
        ),
        (bool(when.regex), lambda: _regex(when.regex, subject_only=False)),
        (bool(when.subject_regex), lambda: _regex(when.subject_regex, subject_only=True)),
    ]
    return tuple(make() for present, make in table if present) or (_holds,)


def _time_checks(rule: Rule) -> tuple[TimeCheck, ...]:
    """The rule's weekday and hour conditions, checked when the time of intake is known."""
    when = rule.when
    checks: list[TimeCheck] = []
    if when.weekdays:
        checks.append(_weekday({day.number for day in when.weekdays}))
    if when.hours:
        checks.append(_hours(rule))
    return tuple(checks)


def _holds(report: _Report) -> Evidence:
    """The check of a rule without conditions: it matches every report."""
    return ()


# Triggers -----------------------------------------------------------------------------------
def _keyword_trigger(rule: Rule) -> list[str]:
    """Keywords one of which must occur for the rule to match; empty when it has none."""
    when = rule.when
    if when.keywords or when.subject_keywords:
        return [keyword_key(k) for k in [*when.keywords, *when.subject_keywords]]
    return [keyword_key(k) for k in when.keyword_groups[0]] if when.all_keywords else []


def _sender_trigger(rule: Rule) -> list[str]:
    """Sender keys (see `_sender_keys`) one of which the report must have; empty: no sender."""
    addresses, domains = _sender_values(rule.when.sender)
    return [*addresses, *(f"@{domain}" for domain in domains)]


def _sender_keys(sender: str, domain: str) -> list[str]:
    """The address, and `@` + each domain it is in: `a@x.example.com` is in `@example.com`."""
    return [sender, *_domain_keys(domain)]


@lru_cache(maxsize=4096)
def _domain_keys(domain: str) -> tuple[str, ...]:
    # Cached: a team's reports come from few domains, and this ran for every report.
    suffixes = [domain[i + 1 :] for i, char in enumerate(domain) if char == "."]
    return tuple(f"@{suffix}" for suffix in [domain, *suffixes])


# Regular expressions ------------------------------------------------------------------------
#: Numbered back-references and group conditionals (`\1`, `(?(1)`) would point at another
#: pattern's group once the patterns are combined; `(?P=` too, to be safe.
_GROUP_REFERENCE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


def _gate(patterns: list[str]) -> re.Pattern[str] | None:
    """One pass that tells where any rule's regex can first match, so most reports try none.

    None (no gate: every rule tries its own) when the patterns cannot be combined faithfully.
    """
    if not patterns or any(_GROUP_REFERENCE.search(pattern) for pattern in patterns):
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
    except re.error:
        return None  # e.g. a global flag such as `(?x)` is only allowed at the very start


def _first_possible(gate: re.Pattern[str] | None, text: str) -> int | None:
    if gate is None:
        return 0
    match = gate.search(text)
    return None if match is None else match.start()


# All rules ----------------------------------------------------------------------------------
class Conditions:
    """The conditions of an ordered list of rules, compiled; `matching(facts)` is pure."""

    def __init__(self, rules: Sequence[Rule], zone: ZoneInfo, *, token: str | None = None) -> None:
        self.rules = list(rules)
        self.zone = zone
        #: Names this compilation: what it prematched is only finished by the same rules.
        self.token = token or uuid.uuid4().hex
        checks = [_checks(rule) for rule in rules]
        #: Each rule's first check, and its others (most rules have one).
        self._first_checks = [first for first, *_ in checks]
        self._more_checks = [more for _, *more in checks]
        #: Each rule's time checks (most rules have none).
        self._time_checks = [_time_checks(rule) for rule in rules]
        self._timed = any(self._time_checks)
        self._by_keyword: dict[str, tuple[int, ...]] = {}
        self._by_sender: dict[str, tuple[int, ...]] = {}
        by_regex: list[int] = []  # rules only a regex can trigger: when the gate matched
        always: list[int] = []
        keywords: list[str] = []
        for position, rule in enumerate(rules):
            when = rule.when
            keywords += [*when.keywords, *when.subject_keywords]
            keywords += [keyword for group in when.keyword_groups for keyword in group]
            keywords += when.not_keywords
            if trigger := _keyword_trigger(rule):
                table = self._by_keyword
            elif trigger := _sender_trigger(rule):
                table = self._by_sender
            elif when.regex or when.subject_regex:
                by_regex.append(position)
                continue
            else:
                always.append(position)
                continue
            for key in set(trigger):
                table[key] = (*table.get(key, ()), position)
        self._by_regex = tuple(by_regex)
        self._always = tuple(always)
        self._index = KeywordIndex.build(keywords)
        self._subject_keywords = any(rule.when.subject_keywords for rule in rules)
        patterns = [p for rule in rules for p in [*rule.when.regex, *rule.when.subject_regex]]
        #: Whether any rule has a regex; without one, no report needs the gate's pass.
        self._regexes = bool(patterns)
        self._gate = _gate(patterns)

    def _prepare(self, content: ReportContent) -> _Report:
        # Enough for the index, at about half the cost of `normalize` (see `KeywordIndex.find`).
        subject, body = fold(content.subject), fold(content.body)
        subject_hits: AbstractSet[str]
        if self._subject_keywords:
            subject_hits, hits = self._index.find_in(subject, body)
        else:
            # Only `subject_keywords` read the subject's own hits: without any, one search of
            # both texts instead of two (the keyword search: 20.4 -> 18.4 us standalone).
            hits = self._index.find(f"{subject}\n{body}" if body else subject)
            subject_hits = _UNREAD
        sender = (content.sender or "").casefold()
        subject_from = body_from = None
        if self._regexes:
            gate = self._gate
            subject_from = _first_possible(gate, content.subject)
            body_from = _first_possible(gate, content.body)
        return _Report(
            content=content,
            subject_hits=subject_hits,
            hits=hits,
            sender=sender,
            domain=sender.rpartition("@")[2],
            subject_from=subject_from,
            body_from=body_from,
        )

    def matching(self, facts: ReportFacts) -> list[tuple[int, Evidence]]:
        """(position, evidence) of every rule whose conditions hold, in the rules' order."""
        return self.finish(self.prematch(content_of(facts)), facts.received_at)

    def prematch(self, content: ReportContent) -> Prematched:
        """The rules whose content conditions hold (all but weekday and hour), in order."""
        report = self._prepare(content)
        # Runs for every report: local names, the tables read in C (map, filter, update).
        candidates = set(self._always)
        candidates.update(*filter(None, map(self._by_keyword.get, report.hits)))
        if self._by_sender:
            keys = _sender_keys(report.sender, report.domain)
            candidates.update(*filter(None, map(self._by_sender.get, keys)))
        if report.subject_from is not None or report.body_from is not None:
            candidates.update(self._by_regex)
        first_checks, more_checks = self._first_checks, self._more_checks
        found: list[tuple[int, Evidence]] = []
        for position in sorted(candidates):
            evidence = first_checks[position](report)
            if evidence is None:
                continue
            for check in more_checks[position]:
                more = check(report)
                if more is None:
                    break
                evidence += more
            else:
                found.append((position, evidence))
        return Prematched(self.token, tuple(found))

    def timeless(self, prematched: Prematched) -> bool:
        """Whether no rule that prematched has a time condition (then `finish` adds nothing)."""
        time_checks = self._time_checks
        return not self._timed or not any(time_checks[p] for p, _ in prematched.matches)

    def finish(self, prematched: Prematched, received_at: datetime) -> list[tuple[int, Evidence]]:
        """Of the prematched rules, those whose time conditions hold too (evidence added).

        ValueError if `prematched` was made by other rules (another token)."""
        if prematched.token != self.token:
            raise ValueError("prematched by another rule set; match the facts again")
        if not self._timed:
            return list(prematched.matches)
        local = received_at.astimezone(self.zone)
        time_checks = self._time_checks
        found: list[tuple[int, Evidence]] = []
        for position, evidence in prematched.matches:
            for check in time_checks[position]:
                more = check(local)
                if more is None:
                    break
                evidence += more
            else:
                found.append((position, evidence))
        return found
