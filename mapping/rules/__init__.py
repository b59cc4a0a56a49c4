"""Rules: priority, type, assignment and due times, kept as data and explained.

    rules = load_rules(path)                  # RulesError naming file, line, rule id, reason
    engine = RuleEngine(rules, zone)          # compiled once per run
    outcome = engine.evaluate(facts_from_email(case, parsed))   # pure; decide(): plain values
    apply_outcome(case, outcome, groups=rules.groups, state=tx, at=now)

The file format and the precedence are in docs/rules.md and in `mapping.rules.engine`.
"""

from mapping.rules.apply import Routing, apply_outcome
from mapping.rules.assignment import AssignmentState, PreviewState, resolve, round_robin_key
from mapping.rules.calendar import due_time
from mapping.rules.conditions import Prematched
from mapping.rules.engine import Decision, RuleEngine, RuleMatch, RuleOutcome, Verdict
from mapping.rules.facts import (
    ManualTriage,
    ReportFacts,
    SourceTriage,
    facts_from_case,
    facts_from_email,
    facts_from_issue,
)
from mapping.rules.loader import DEFAULT_RULES_PATH, load_rules, parse_rules
from mapping.rules.model import AssignSpec, Rule, RuleSet, Strategy

__all__ = [
    "DEFAULT_RULES_PATH",
    "AssignSpec",
    "AssignmentState",
    "Decision",
    "ManualTriage",
    "Prematched",
    "PreviewState",
    "ReportFacts",
    "Routing",
    "Rule",
    "RuleEngine",
    "RuleMatch",
    "RuleOutcome",
    "RuleSet",
    "SourceTriage",
    "Strategy",
    "Verdict",
    "apply_outcome",
    "due_time",
    "facts_from_case",
    "facts_from_email",
    "facts_from_issue",
    "load_rules",
    "parse_rules",
    "resolve",
    "round_robin_key",
]
