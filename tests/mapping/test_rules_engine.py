"""The rules engine: table-driven over Chinese and English reports, precedence, conditions."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from mapping.case import CaseStatus, LogEntry, LogKind, Priority, ProblemType, SourceKind
from mapping.email_to_case import case_from_email
from mapping.parsed_email import parse_email
from mapping.rules import (
    ManualTriage,
    PreviewState,
    ReportFacts,
    Routing,
    RuleEngine,
    apply_outcome,
    facts_from_email,
    load_rules,
    parse_rules,
)
from mapping.rules.apply import ACTOR, _log_all
from tests.mapping.test_case import make_case

ZONE = ZoneInfo("Asia/Shanghai")
# A Monday, 14:00 in Shanghai.
MONDAY_2PM = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)


def facts(subject: str = "", body: str = "", **more: object) -> ReportFacts:
    return ReportFacts.model_validate(
        {"subject": subject, "body": body, "received_at": MONDAY_2PM, **more}
    )


def engine(text: str) -> RuleEngine:
    return RuleEngine(parse_rules(text, source="test.toml"), ZONE)


# Keywords: CJK as substring, Latin at word boundaries ---------------------------------------
KEYWORD_RULES = """
[[rule]]
id = "k"
when.keywords = ["log", "宕机", "CRM系统", "access denied"]
then.tags = ["hit"]
"""


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ("see the log file", True),
        ("LOG attached", True),
        ("cannot login", False),  # 'log' is not a word of 'login'
        ("catalog", False),
        ("服务器宕机了", True),  # Chinese: a substring, no word boundaries
        ("登录CRM系统失败", True),
        ("打开crm系统", True),
        ("xcrm系统", False),
        ("ACCESS   denied!", True),  # case and white space do not matter
        ("access-denied", False),
    ],
)
def test_keyword_matching(text: str, hit: bool) -> None:
    outcome = engine(KEYWORD_RULES).evaluate(facts(body=text))
    assert (outcome.tags == ["hit"]) is hit


# Precedence -------------------------------------------------------------------------------
PRECEDENCE = """
[[rule]]
id = "first"
when.keywords = ["error"]
then.priority = "P1"
then.problem_type = "system_fault"
then.tags = ["a"]

[[rule]]
id = "second"
when.keywords = ["error"]
then.priority = "P2"
then.tags = ["a", "b"]
then.related_system = "CRM"

[[rule]]
id = "third"
when.keywords = ["database"]
then.priority = "P0"
override = true

[[rule]]
id = "vip"
when.sender = ["@vip.example.com"]
then.raise_priority = true
"""


@pytest.mark.parametrize(
    ("body", "sender", "priority", "decided_by"),
    [
        ("an error", None, Priority.P1, "first"),  # the first matching rule wins
        ("a database error", None, Priority.P0, "third"),  # unless a later one overrides
        ("an error", "boss@vip.example.com", Priority.P0, "vip"),  # raised from P1
        ("an error", "boss@sub.vip.example.com", Priority.P0, "vip"),
        ("an error", "boss@notvip.example.com", Priority.P1, "first"),
        ("nothing", "boss@vip.example.com", Priority.P1, "vip"),  # raised from the default P2
    ],
)
def test_precedence(body: str, sender: str | None, priority: Priority, decided_by: str) -> None:
    outcome = engine(PRECEDENCE).evaluate(facts(body=body, sender=sender))
    assert outcome.priority == priority
    last = [d for d in outcome.decisions if d.attribute == "priority"][-1]
    assert last.rule_id == decided_by


def test_tags_add_up_and_single_values_come_from_the_first_rule() -> None:
    outcome = engine(PRECEDENCE).evaluate(facts(body="a database error"))
    assert outcome.tags == ["a", "b"]
    assert outcome.related_system == "CRM"
    assert outcome.problem_type is ProblemType.SYSTEM_FAULT
    texts = [d.text for d in outcome.decisions]
    assert "P0 by rule third: matched 'database' (overrides rule first)" in texts


# Other conditions -------------------------------------------------------------------------
CONDITIONS = """
[[rule]]
id = "jira-billing"
when.source = "jira"
when.jira_project = ["BILL"]
when.jira_component = ["Invoices"]
then.related_system = "billing"

[[rule]]
id = "jira-label"
when.jira_label = ["outage"]
when.jira_priority = ["Highest"]
then.priority = "P0"

[[rule]]
id = "logs"
when.attachment_types = [".log", "image/*"]
then.tags = ["evidence"]

[[rule]]
id = "night"
when.hours = ["22-7"]
then.tags = ["night"]

[[rule]]
id = "weekend"
when.weekdays = ["sat", "sun"]
then.tags = ["weekend"]

[[rule]]
id = "vip-mailbox"
when.mailbox = "vip"
when.not_keywords = ["test"]
then.tags = ["vip"]

[[rule]]
id = "error-code"
when.regex = ['ERR-\\d{4}']
when.subject_regex = ['^\\[ticket\\]']
then.tags = ["coded"]
"""


@pytest.mark.parametrize(
    ("more", "tags", "system"),
    [
        (
            {"source": "jira", "jira_project": "BILL", "jira_components": ["invoices"]},
            [],
            "billing",
        ),
        ({"source": "email", "jira_project": "BILL", "jira_components": ["Invoices"]}, [], None),
        ({"attachment_types": [".log", "text/plain"]}, ["evidence"], None),
        ({"attachment_types": [".png", "image/png"]}, ["evidence"], None),
        ({"attachment_types": [".pdf"]}, [], None),
        ({"received_at": datetime(2024, 5, 20, 15, 30, tzinfo=UTC)}, ["night"], None),  # 23:30
        ({"received_at": datetime(2024, 5, 25, 2, 0, tzinfo=UTC)}, ["weekend"], None),  # Sat 10:00
        ({"mailbox": "vip"}, ["vip"], None),
        ({"mailbox": "vip", "body": "just a test"}, [], None),
        ({"subject": "[ticket] broken", "body": "code ERR-1234"}, ["coded"], None),
        ({"subject": "broken", "body": "code ERR-1234"}, [], None),
    ],
)
def test_conditions(more: dict[str, object], tags: list[str], system: str | None) -> None:
    outcome = engine(CONDITIONS).evaluate(facts(**more))
    assert (outcome.tags, outcome.related_system) == (tags, system)


def test_jira_labels_and_priority() -> None:
    outcome = engine(CONDITIONS).evaluate(
        facts(source=SourceKind.JIRA, jira_labels=["Outage"], jira_priority="highest")
    )
    assert outcome.priority is Priority.P0
    assert outcome.matches[0].because == "matched Jira label 'Outage' and Jira priority 'highest'"


# A person's own triage in Jira ------------------------------------------------------------
MANUAL = """
[[rule]]
id = "fault"
when.keywords = ["error"]
then.problem_type = "system_fault"
then.priority = "P1"

[[rule]]
id = "security"
when.keywords = ["leak"]
then.priority = "P0"
override_manual = true
"""


def test_a_case_triaged_by_a_person_keeps_that_triage() -> None:
    manual = ManualTriage(priority=Priority.P2, problem_type=ProblemType.HOW_TO, owner="li")
    outcome = engine(MANUAL).evaluate(facts(body="an error", manual=manual))
    assert (outcome.problem_type, outcome.priority) == (ProblemType.HOW_TO, Priority.P2)
    assert outcome.matches[0].note == "not applied: triaged by a person in Jira"
    assert not outcome.needs_triage
    assert outcome.manual_owner == "li"


def test_a_rule_may_override_a_person_when_it_says_so() -> None:
    manual = ManualTriage(priority=Priority.P2, problem_type=ProblemType.HOW_TO)
    outcome = engine(MANUAL).evaluate(facts(body="a data leak error", manual=manual))
    assert (outcome.problem_type, outcome.priority) == (ProblemType.HOW_TO, Priority.P0)
    assert outcome.matched_rules == ["security"]


# Due times --------------------------------------------------------------------------------
def test_a_rule_may_set_its_own_due_time() -> None:
    rules = '[[rule]]\nid = "quick"\nwhen.keywords = ["now"]\nthen.due_in = "2h"\n'
    outcome = engine(rules).evaluate(facts(body="now"))
    assert outcome.due_at == MONDAY_2PM + timedelta(hours=2)
    assert "due 2024-05-20 16:00 CST (2h) by rule quick: matched 'now'" in [
        d.text for d in outcome.decisions
    ]


# Any message gets exactly one type, one priority and a due time ---------------------------
@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(max_size=80),
    body=st.text(max_size=400),
    sender=st.one_of(st.none(), st.emails()),
    hour=st.integers(min_value=0, max_value=24 * 14),
)
def test_any_message_gets_one_type_one_priority_and_a_due_time(
    subject: str, body: str, sender: str | None, hour: int
) -> None:
    received = MONDAY_2PM + timedelta(hours=hour)
    outcome = ENGINE.evaluate(facts(subject, body, sender=sender, received_at=received))
    assert isinstance(outcome.problem_type, ProblemType)
    assert isinstance(outcome.priority, Priority)
    assert outcome.due_at > received
    assert len([d for d in outcome.decisions if d.attribute == "problem_type"]) == 1
    assert len([d for d in outcome.decisions if d.attribute == "due"]) == 1
    assert outcome.needs_triage is (outcome.problem_type is ProblemType.UNTRIAGED)


ENGINE = RuleEngine(load_rules(), ZONE)


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(
            [
                *["宕机", "登录", "报错", "权限", "如何", "建议增加", "error", "how to", "紧急"],
                *["當機", "登入", "報錯", "權限", "建議", "優化", "生產環境", "緊急"],
            ]
        )
        | st.text(max_size=6),
        max_size=12,
    )
)
def test_keyword_soup_still_gives_one_of_each(words: list[str]) -> None:
    text = "".join(words)
    outcome = ENGINE.evaluate(facts(text[:20], text))
    assert outcome.priority in set(Priority)
    assert outcome.problem_type in set(ProblemType)
    assert outcome.due_at is not None


def test_rule_log_entries_equal_validated_ones() -> None:
    # `_log_all` validates all entries in one call over the list: they must be the same models
    # `Case.log` would have made, field by field, including what counts as set.
    case = make_case()
    at = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
    texts = ["P0 by rule a: matched 'x'", "tag '订单' by rule b: matched '订单失败'", "due"]
    kinds = [LogKind.RULE, LogKind.RULE, LogKind.ASSIGNMENT]
    _log_all(case, list(zip(kinds, texts, strict=True)), at)
    expected = [
        LogEntry(at=at, actor=ACTOR, kind=kind, text=text)
        for kind, text in zip(kinds, texts, strict=True)
    ]
    entries = case.process_log[-3:]
    assert entries == expected
    assert [entry.model_fields_set for entry in entries] == [e.model_fields_set for e in expected]
    assert [entry.model_dump(exclude_unset=True) for entry in entries] == [
        entry.model_dump(exclude_unset=True) for entry in expected
    ]
    with pytest.raises(ValidationError):
        entries[1].text = "changed"  # still frozen
    with pytest.raises(ValidationError):
        _log_all(case, [(LogKind.RULE, "x")], datetime(2024, 5, 20, 6, 0))  # naive: refused


def test_the_rule_log_moves_updated_at_as_validated_assignment_would() -> None:
    case, expected = make_case(), make_case()
    later = case.updated_at + timedelta(minutes=5)
    _log_all(case, [(LogKind.RULE, "P1 by rule a: matched 'x'")], later)
    expected.updated_at = later
    assert case.updated_at == expected.updated_at == later
    assert case.model_fields_set == expected.model_fields_set
    _log_all(case, [(LogKind.RULE, "P1 by rule a: matched 'x'")], later - timedelta(hours=1))
    assert case.updated_at == later  # an earlier entry does not move it back


ASSIGNING = """
[groups]
l1 = ["a@example.com", "b@example.com"]
ops = ["ops1@example.com", "a@example.com"]

[[rule]]
id = "servers"
when.keywords = ["服务器"]
then.problem_type = "system_fault"
then.owner = { group = "l1", strategy = "round_robin" }
then.collaborators = [{ group = "ops", strategy = "round_robin" }, "dba@example.com"]
"""


@pytest.mark.parametrize(("subject", "triaged"), [("服务器宕机", False), ("不清楚", True)])
def test_applying_leaves_the_case_as_its_validated_methods_would(
    subject: str, triaged: bool
) -> None:
    # `apply_outcome` sets fields straight and validates all log entries in one call; the case
    # must be what validated assignment, `Case.log` and `Case.move_to` make of it.
    rules = engine(ASSIGNING)
    at = MONDAY_2PM + timedelta(minutes=1)
    verdict = rules.decide(facts(subject, "正文"))
    case, expected = make_case(), make_case()
    apply_outcome(case, verdict, groups=rules.rules.groups, state=PreviewState(), at=at)
    for name in ("problem_type", "priority", "due_at"):
        expected.__dict__[name] = getattr(verdict, name)  # set straight on both (see apply)
    for decided in verdict.decisions:
        expected.log(LogKind.RULE, decided.text, at=at, actor=ACTOR)
    if not triaged:
        expected.owner = "a@example.com"
        expected.log(
            LogKind.ASSIGNMENT,
            "owner a@example.com by rule servers: round robin in group l1; matched '服务器'",
            at=at,
            actor=ACTOR,
        )
        expected.collaborators = ["ops1@example.com"]
        expected.log(
            LogKind.ASSIGNMENT,
            "collaborator ops1@example.com by rule servers: "
            "round robin in group ops; matched '服务器'",
            at=at,
            actor=ACTOR,
        )
        expected.collaborators = ["ops1@example.com", "dba@example.com"]
        expected.log(
            LogKind.ASSIGNMENT,
            "collaborator dba@example.com by rule servers: dba@example.com; matched '服务器'",
            at=at,
            actor=ACTOR,
        )
    expected.move_to(
        CaseStatus.TRIAGE if triaged else CaseStatus.ASSIGNED,
        at=at,
        actor=ACTOR,
        reason="type unclear: the lead judges" if triaged else "owner by rule",
    )
    assert case.model_dump() == expected.model_dump()
    assert case.model_fields_set == expected.model_fields_set


@pytest.mark.parametrize("with_subject_rule", [False, True])
def test_keywords_in_subject_or_body_with_and_without_subject_keywords(
    with_subject_rule: bool,
) -> None:
    # Without any `subject_keywords` the subject and body are searched as one text.
    text = '[[rule]]\nid = "any"\nwhen.keywords = ["订单失败", "login error"]\nthen.tags = ["a"]\n'
    if with_subject_rule:
        text += '[[rule]]\nid = "subj"\nwhen.subject_keywords = ["订单"]\nthen.tags = ["s"]\n'
    rules = engine(text)
    assert rules.decide(facts("订单失败", "")).tags == (("a", "s") if with_subject_rule else ("a",))
    assert rules.decide(facts("x", "订单失败")).tags == ("a",)
    assert rules.decide(facts("login", "error")).tags == ()
    assert rules.decide(facts("订单", "失败")).tags == (("s",) if with_subject_rule else ())
    assert rules.decide(facts("", "LOGIN  Error!")).tags == ("a",)


def _validated_twin(model: BaseModel) -> BaseModel:
    """The same model built through validation, from the fields it says were set."""
    return type(model)(**{name: getattr(model, name) for name in model.model_fields_set})


@pytest.mark.parametrize("with_attachment", [False, True])
def test_facts_and_routing_of_an_email_report(with_attachment: bool) -> None:
    # What facts_from_email and apply_outcome build must be the models validation would make,
    # field by field, with the same fields set.
    message = EmailMessage()
    message["From"] = "张三 <zhang@example.com>"
    message["To"] = "support@example.com"
    message["Subject"] = "订单失败"
    message["Message-ID"] = "<t-1@example.com>"
    message["Date"] = "Mon, 20 May 2024 14:00:00 +0800"
    message.set_content("登录失败\n")
    if with_attachment:
        message.add_attachment(b"x", maintype="text", subtype="plain", filename="a.LOG")
    parsed = parse_email(message.as_bytes())
    case = case_from_email(parsed, mailbox="support", now=MONDAY_2PM)
    built = facts_from_email(case, parsed)
    assert built == _validated_twin(built)
    assert built.model_fields_set == _validated_twin(built).model_fields_set
    assert built == ReportFacts(
        subject="订单失败",
        body=case.description,
        sender="zhang@example.com",
        mailbox="support",
        source=SourceKind.EMAIL,
        attachment_types=[".log", "text/plain"] if with_attachment else [],
        received_at=case.created_at,
    )
    rules = engine(
        '[groups]\nl1 = ["a@example.com"]\n[[rule]]\nid = "r"\nwhen.keywords = ["订单失败"]\n'
        'then.problem_type = "system_fault"\n'
        'then.owner = { group = "l1", strategy = "round_robin" }\n'
    )
    routing = apply_outcome(
        case,
        rules.decide(built),
        groups=rules.rules.groups,
        state=PreviewState(),
        at=MONDAY_2PM,
    )
    assert routing == Routing(
        owner="a@example.com",
        collaborators=[],
        status=CaseStatus.ASSIGNED,
        needs_triage=False,
    )
    with pytest.raises(FrozenInstanceError):
        routing.owner = "b@example.com"  # type: ignore[misc]


def test_what_a_rule_contributes_is_kept_without_changing_any_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `decide` keeps each (rule, evidence) it has seen with its texts; the same reports give
    # the same outcomes whether they are kept, made again, or the store of them starts over.
    reports = [
        facts("生产环境宕机", "核心业务全部中断"),
        facts("登录提示验证码失效", "重试3次仍无法进入", sender="li@example.com"),
        facts("URGENT: login error", "Login fails with error 'captcha expired'."),
        facts(
            "生产环境宕机",
            "核心业务全部中断",
            manual=ManualTriage(priority="P1", problem_type="how_to"),
        ),
        facts("你好", "麻烦看一下附件"),
    ]
    fresh = [RuleEngine(load_rules(), ZONE).evaluate(report) for report in reports]
    kept = RuleEngine(load_rules(), ZONE)
    assert [kept.evaluate(report) for report in reports * 2] == fresh * 2
    monkeypatch.setattr("mapping.rules.engine._HITS_KEPT", 2)
    small = RuleEngine(load_rules(), ZONE)
    assert [small.evaluate(report) for report in reports * 2] == fresh * 2
    assert len(small._hits) <= 2


def test_log_entries_of_one_time_are_validated_once_and_shared() -> None:
    at = MONDAY_2PM
    first, second, third = make_case(), make_case(), make_case()
    texts = [(LogKind.RULE, "P0 by rule a: matched 'x'"), (LogKind.RULE, "due 2024-05-20")]
    _log_all(first, texts, at)
    _log_all(second, [*texts, (LogKind.ASSIGNMENT, "owner b")], at)
    assert all(
        a is b for a, b in zip(first.process_log[-2:], second.process_log[-3:-1], strict=True)
    )
    assert second.process_log[-1].text == "owner b"
    # Another time (or the same instant in another zone) gets its own entries.
    shanghai = at.astimezone(ZONE)
    _log_all(third, texts, shanghai)
    assert [entry.at.tzinfo for entry in third.process_log[-2:]] == [ZONE, ZONE]
    assert not any(
        a is b for a, b in zip(first.process_log[-2:], third.process_log[-2:], strict=True)
    )
    assert first.process_log[-2:] == [
        LogEntry(at=at, actor=ACTOR, kind=kind, text=text) for kind, text in texts
    ]


def test_due_times_of_one_time_of_intake_are_worked_out_once() -> None:
    rules = engine(ASSIGNING)
    one, other = facts("服务器宕机", "a"), facts("服务器", "b")
    assert rules.decide(one).due_at == rules.decide(other).due_at
    later = one.model_copy(update={"received_at": MONDAY_2PM + timedelta(hours=1)})
    assert rules.decide(later).due_at == rules.decide(one).due_at + timedelta(hours=1)
    # The same instant written in another zone: the same due time, and its text in the
    # team's zone either way.
    elsewhere = one.model_copy(update={"received_at": MONDAY_2PM.astimezone(ZONE)})
    assert rules.decide(elsewhere).decisions == rules.decide(one).decisions


def test_kept_log_entries_stay_right_beside_another_thread() -> None:
    # Two threads logging at two times, switching as often as Python lets them: every entry a
    # case gets carries that case's time (the kept time and entries are replaced together).
    import sys
    import threading

    times = [MONDAY_2PM, MONDAY_2PM + timedelta(minutes=1)]
    texts = [(LogKind.RULE, f"P{n % 3} by rule r{n}: matched 'x'") for n in range(6)]
    wrong: list[object] = []

    def log_many(at: datetime) -> None:
        for _ in range(400):
            case = make_case()
            try:
                _log_all(case, texts, at)
            except Exception as error:  # noqa: BLE001 - reported below
                wrong.append(error)
                return
            if any(entry.at != at for entry in case.process_log[-6:]):
                wrong.append(at)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=log_many, args=(at,)) for at in times]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
