"""Rules and a person's own triage in Jira: what the person decided stands, what they left open
(the type, when Jira's issue type maps to none) the rules fill, and a report a person owns never
goes to the triage queue."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mapping.case import Priority, ProblemType
from mapping.rules import ManualTriage, ReportFacts, RuleEngine, SourceTriage, parse_rules

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY_2PM = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)

RULES = """
[[rule]]
id = "fault"
when.keywords = ["error"]
then.problem_type = "system_fault"
then.priority = "P1"
then.tags = ["fault"]

[[rule]]
id = "how-to"
when.keywords = ["how"]
then.problem_type = "how_to"

[[rule]]
id = "security"
when.keywords = ["leak"]
then.priority = "P0"
override_manual = true
"""


def decide(body: str, manual: ManualTriage | None) -> object:
    facts = ReportFacts(subject="", body=body, received_at=MONDAY_2PM, manual=manual)
    return RuleEngine(parse_rules(RULES, source="test.toml"), ZONE).evaluate(facts)


def test_the_rules_fill_the_type_a_person_left_open_and_nothing_else() -> None:
    manual = ManualTriage(priority=Priority.P2, problem_type=ProblemType.UNTRIAGED, owner="mia")
    outcome = decide("an error, how odd", manual)
    assert outcome.problem_type is ProblemType.SYSTEM_FAULT  # the first rule with a type
    assert outcome.priority is Priority.P2  # the person's, not the rule's P1
    assert outcome.tags == []  # the rule decides the type only
    assert outcome.manual_owner == "mia"
    assert not outcome.needs_triage
    assert [(m.rule_id, m.applied, m.note) for m in outcome.matches] == [
        ("fault", True, "type only: triaged by a person in Jira, who set no type"),
        ("how-to", False, "not applied: triaged by a person in Jira"),
    ]
    assert outcome.decisions[0].text == (
        "type 系统故障 (system_fault) by rule fault: matched 'error' "
        "(the person who triaged it in Jira set no type)"
    )


def test_a_type_the_person_set_is_kept() -> None:
    manual = ManualTriage(priority=Priority.P2, problem_type=ProblemType.HOW_TO, owner="mia")
    outcome = decide("an error", manual)
    assert outcome.problem_type is ProblemType.HOW_TO
    assert [m.applied for m in outcome.matches] == [False]


@pytest.mark.parametrize(
    ("owner", "body", "triage"),
    [
        ("mia", "nothing to go by", False),  # owned: its owner judges, the lead is not asked
        (None, "nothing to go by", True),  # a label said triaged, but nobody owns it
        (None, "an error", False),  # the rules found the type
    ],
)
def test_only_a_report_nobody_owns_and_nobody_could_type_goes_to_triage(
    owner: str | None, body: str, triage: bool
) -> None:
    manual = ManualTriage(priority=Priority.P2, problem_type=ProblemType.UNTRIAGED, owner=owner)
    outcome = decide(body, manual)
    assert outcome.needs_triage is triage


def test_without_a_person_nothing_changes() -> None:
    outcome = decide("an error, how odd", None)
    assert (outcome.problem_type, outcome.priority, outcome.tags) == (
        ProblemType.SYSTEM_FAULT,
        Priority.P1,
        ["fault"],
    )
    assert decide("nothing to go by", None).needs_triage


# A new Jira issue nobody triaged: what its fields map to stands where no rule decides -------
@pytest.mark.parametrize(
    ("given", "body", "expected", "texts"),
    [
        (  # the map knows Highest and the Bug type: both stand, no triage
            SourceTriage(
                priority=Priority.P0, problem_type=ProblemType.SYSTEM_FAULT, priority_name="Highest"
            ),
            "nothing to go by",
            (Priority.P0, ProblemType.SYSTEM_FAULT, False),
            [
                "type 系统故障 (system_fault) (from the Jira issue's labels, components or type; "
                "no rule decided it)",
                "P0 (the Jira issue's priority 'Highest'; no rule decided it)",
            ],
        ),
        (  # Medium is not in priority_map: the rules' [defaults] (P1 here), not Jira's default
            SourceTriage(priority=None, problem_type=ProblemType.UNTRIAGED, priority_name="Medium"),
            "nothing to go by",
            (Priority.P1, ProblemType.UNTRIAGED, True),
            [
                "type 待分类 (untriaged) (no rule decided it); "
                "sent to triage for the lead to judge",
                "P1 (no rule decided it)",
            ],
        ),
        (  # a rule that decides wins over the issue's fields
            SourceTriage(priority=Priority.P0, problem_type=ProblemType.HOW_TO),
            "an error",
            (Priority.P1, ProblemType.SYSTEM_FAULT, False),
            [
                "type 系统故障 (system_fault) by rule fault: matched 'error'",
                "P1 by rule fault: matched 'error'",
            ],
        ),
    ],
)
def test_a_new_jira_issues_own_fields_stand_where_no_rule_decides(
    given: SourceTriage,
    body: str,
    expected: tuple[Priority, ProblemType, bool],
    texts: list[str],
) -> None:
    rules = parse_rules('[defaults]\npriority = "P1"\n' + RULES, source="test.toml")
    facts = ReportFacts(subject="", body=body, received_at=MONDAY_2PM, from_source=given)
    outcome = RuleEngine(rules, ZONE).evaluate(facts)
    assert (outcome.priority, outcome.problem_type, outcome.needs_triage) == expected
    assert [d.text for d in outcome.decisions[:2]] == texts


def test_the_jira_mapping_tells_a_mapped_priority_from_its_default() -> None:
    from mapping.jira_issue import JiraMapping

    mapping = JiraMapping()
    assert mapping.mapped_priority(" highest ") is Priority.P0
    assert mapping.mapped_priority("Medium") is None and mapping.mapped_priority(None) is None
    assert mapping.priority_for("Medium") is mapping.default_priority
