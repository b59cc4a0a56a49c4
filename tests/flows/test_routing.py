"""Routing at intake against a real store: assignment over a sequence of cases, triage,
a rules file read at each run, and the `casedesk rules` commands."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.mailbox import RawMessage
from connectors.store import CaseStore
from flows.cli import main
from flows.intake import ingest_batch
from flows.routing import NO_LEAD_WARNING, CaseRouter, make_router
from flows.runtime import intake_context
from flows.settings import Settings
from mapping.case import Case, CaseSource, CaseStatus, LogKind, Person, Priority, SourceKind
from mapping.errors import RulesError
from mapping.rules import facts_from_case, round_robin_key

NOW = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
GROUP = ["a@example.com", "b@example.com", "c@example.com"]

ASSIGNING_RULES = f"""
[groups]
l1 = {GROUP!r}
ops = ["ops1@example.com", "ops2@example.com"]

[[rule]]
id = "faults"
when.keywords = ["报错", "error"]
then.problem_type = "system_fault"
then.priority = "P1"
then.owner = {{ group = "l1", strategy = "STRATEGY" }}

[[rule]]
id = "servers"
when.keywords = ["服务器", "server"]
then.collaborators = [{{ group = "ops", strategy = "round_robin" }}]
"""


@pytest.fixture
def store(store_url: str) -> Iterator[CaseStore]:
    opened = CaseStore.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


def settings_with(tmp_path: Path, rules: str) -> Settings:
    path = tmp_path / "rules.toml"
    path.write_text(rules, encoding="utf-8")
    return Settings(rules_path=path, data_dir=tmp_path, database_url="sqlite://")


def router(tmp_path: Path, rules: str) -> CaseRouter:
    made = make_router(settings_with(tmp_path, rules))
    made.clock = lambda: NOW
    return made


def new_case(text: str, *, minutes: int = 0) -> Case:
    at = NOW + timedelta(minutes=minutes)
    return Case(
        subject=text,
        description=text,
        submitter=Person(name="张三", email="zhang@example.com"),
        source=CaseSource(kind=SourceKind.EMAIL, mailbox="support"),
        created_at=at,
        updated_at=at,
    )


def route_and_store(store: CaseStore, routing: CaseRouter, text: str, index: int) -> Case:
    case = new_case(text, minutes=index)
    with store.transaction() as tx:
        routing.route(tx, case, facts_from_case(case))
        tx.add_case(case, month=NOW.date())
    return case


def route_triaged(
    store: CaseStore, routing: CaseRouter, *, owner: str, priority: Priority = Priority.P2
) -> Case:
    """A case about an error that a person triaged in Jira (owner, priority), routed and stored."""
    case = new_case("error")
    case.owner, case.priority = owner, priority
    with store.transaction() as tx:
        routing.route(tx, case, facts_from_case(case, triaged_by_person=True))
        tx.add_case(case, month=NOW.date())
    return case


def test_round_robin_over_a_sequence_of_cases(store: CaseStore, tmp_path: Path) -> None:
    routing = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    owners = [route_and_store(store, routing, "登录报错", i).owner for i in range(5)]
    assert owners == [*GROUP, *GROUP[:2]]
    assert store.watermark(round_robin_key("l1")) == "b@example.com"
    # The next run (a new router, the same store) goes on where the last one stopped.
    again = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    assert route_and_store(store, again, "error", 9).owner == "c@example.com"


def test_fewest_open_cases_over_a_sequence_of_cases(store: CaseStore, tmp_path: Path) -> None:
    with store.transaction() as tx:
        for owner, status in [
            ("a@example.com", CaseStatus.ASSIGNED),
            ("a@example.com", CaseStatus.IN_PROGRESS),
            ("c@example.com", CaseStatus.ASSIGNED),
            ("b@example.com", CaseStatus.RESOLVED),  # not open: does not count
            ("b@example.com", CaseStatus.CLOSED),
        ]:
            case = new_case("earlier")
            case.owner, case.status = owner, status
            tx.add_case(case, month=NOW.date())
    routing = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "fewest_open"))
    owners = [route_and_store(store, routing, "error", i).owner for i in range(4)]
    # Counts a2 b0 c1 -> b; a2 b1 c1 -> b (ties go to the one listed first); a2 b2 c1 -> c; a.
    assert owners == ["b@example.com", "b@example.com", "c@example.com", "a@example.com"]


def test_an_assigned_case_is_logged_and_moves_to_assigned(store: CaseStore, tmp_path: Path) -> None:
    routing = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    case = route_and_store(store, routing, "服务器报错", 0)
    stored = store.get_case(case.number or "")
    assert stored.status is CaseStatus.ASSIGNED
    assert (stored.owner, stored.collaborators) == ("a@example.com", ["ops1@example.com"])
    assert stored.priority is Priority.P1
    assert stored.due_at == NOW + timedelta(days=1)
    entries = [(entry.kind, entry.text) for entry in stored.process_log]
    assert (LogKind.RULE, "P1 by rule faults: matched '报错'") in entries
    assert (
        LogKind.ASSIGNMENT,
        "owner a@example.com by rule faults: round robin in group l1; matched '报错'",
    ) in entries
    assert (
        LogKind.ASSIGNMENT,
        "collaborator ops1@example.com by rule servers: round robin in group ops; matched '服务器'",
    ) in entries
    assert (LogKind.STATUS, "new -> assigned: owner by rule") in entries
    # The owner and the collaborator are told, in one mail that names the case.
    [notice] = store.outbox_items()
    assert notice.kind == "assignment"
    assert notice.recipients == ["a@example.com", "ops1@example.com"]
    assert notice.case_number == stored.number
    assert f"[Case {stored.number}]" in notice.subject


def test_triage_and_notices(store: CaseStore, tmp_path: Path) -> None:
    routing = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    routing.lead_address = "lead@example.com"
    case = route_and_store(store, routing, "你好，麻烦看一下", 0)
    stored = store.get_case(case.number or "")
    assert stored.status is CaseStatus.TRIAGE
    assert stored.owner is None
    assert [e.text for e in stored.process_log if e.kind is LogKind.STATUS] == [
        "new -> triage: type unclear: the lead judges"
    ]
    # The lead is told (seed step 1: "if unclear, hand it to a senior engineer"); the mail to
    # the team shows the submitter masked.
    [notice] = store.outbox_items()
    assert (notice.kind, notice.recipients) == ("triage_notice", ["lead@example.com"])
    assert notice.case_number == stored.number
    message = message_from_bytes(notice.content, policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    assert stored.number in text and "张*" in text and "张三" not in text


def test_without_a_lead_address_the_triage_notice_is_only_logged(
    store: CaseStore, tmp_path: Path
) -> None:
    routing = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    case = route_and_store(store, routing, "你好，麻烦看一下", 0)
    assert store.get_case(case.number or "").status is CaseStatus.TRIAGE
    assert store.outbox_items() == []


def test_without_a_lead_address_each_run_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEDESK_OUTGOING__LEAD_ADDRESS", raising=False)
    settings = settings_with(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    assert settings.outgoing.lead_address is None
    with caplog.at_level(logging.INFO, logger="flows.routing"):
        make_router(settings)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelno, r.getMessage()) for r in warnings] == [
        ("flows.routing", logging.WARNING, NO_LEAD_WARNING)
    ]
    assert NO_LEAD_WARNING == (
        "no lead address is set, so cases sent to triage will not be mailed to anyone (they "
        "wait in the triage queue): set outgoing.lead_address in the settings "
        "(or CASEDESK_OUTGOING__LEAD_ADDRESS)"
    )
    # The variable it names is the one the settings read.
    monkeypatch.setenv("CASEDESK_OUTGOING__LEAD_ADDRESS", "lead@example.com")
    assert Settings().outgoing.lead_address == "lead@example.com"


def test_with_a_lead_address_there_is_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_with(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    settings.outgoing.lead_address = "lead@example.com"
    with caplog.at_level(logging.INFO, logger="flows.routing"):
        made = make_router(settings)
    assert made.lead_address == "lead@example.com"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_case_triaged_by_a_person_keeps_its_owner(store: CaseStore, tmp_path: Path) -> None:
    routing = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    case = route_triaged(store, routing, owner="someone@example.com", priority=Priority.P0)
    assert (case.owner, case.priority) == ("someone@example.com", Priority.P0)
    assert store.watermark(round_robin_key("l1")) is None


OWNER_WITHOUT_TYPE = f"""
[groups]
l1 = {GROUP!r}

[[rule]]
id = "everything-to-l1"
then.owner = {{ group = "l1", strategy = "round_robin" }}
"""


def test_an_owner_picked_by_a_rule_judges_an_untriaged_case(
    store: CaseStore, tmp_path: Path
) -> None:
    # No rule tells the type, but one picks an owner: the owner judges it (assigned, and told),
    # the case does not wait in the triage queue and the lead is not asked.
    routing = router(tmp_path, OWNER_WITHOUT_TYPE)
    routing.lead_address = "lead@example.com"
    case = route_and_store(store, routing, "你好，麻烦看一下", 0)
    stored = store.get_case(case.number or "")
    assert (stored.problem_type.value, stored.owner) == ("untriaged", "a@example.com")
    assert stored.status is CaseStatus.ASSIGNED
    assert [e.text for e in stored.process_log if e.kind is LogKind.STATUS] == [
        "new -> assigned: owner by rule"
    ]
    [notice] = store.outbox_items()
    assert (notice.kind, notice.recipients) == ("assignment", ["a@example.com"])


OVERRIDING_OWNER = f"""
[groups]
l1 = {GROUP!r}

[[rule]]
id = "faults-to-l1"
override_manual = true
when.keywords = ["error"]
then.owner = {{ group = "l1", strategy = "round_robin" }}
"""


def test_an_owner_a_rule_puts_over_a_persons_triage_is_told(
    store: CaseStore, tmp_path: Path
) -> None:
    case = route_triaged(store, router(tmp_path, OVERRIDING_OWNER), owner="someone@example.com")
    assert case.owner == "a@example.com"
    [notice] = store.outbox_items()
    assert (notice.kind, notice.recipients) == ("assignment", ["a@example.com"])


def test_only_the_collaborator_a_rule_adds_to_a_persons_triage_is_told(
    store: CaseStore, tmp_path: Path
) -> None:
    rules = OVERRIDING_OWNER.replace(
        'then.owner = { group = "l1", strategy = "round_robin" }',
        'then.collaborators = ["ops@example.com"]',
    )
    case = route_triaged(store, router(tmp_path, rules), owner="someone@example.com")
    assert (case.owner, case.collaborators) == ("someone@example.com", ["ops@example.com"])
    [notice] = store.outbox_items()
    assert (notice.kind, notice.recipients) == ("assignment", ["ops@example.com"])


def test_a_persons_own_triage_sends_no_assignment_notice(store: CaseStore, tmp_path: Path) -> None:
    routing = router(tmp_path, ASSIGNING_RULES.replace("STRATEGY", "round_robin"))
    case = route_triaged(store, routing, owner="someone@example.com")
    assert case.owner == "someone@example.com"
    assert store.outbox_items() == []


# The rules file is read at each run -------------------------------------------------------
def raw_mail(subject: str, body: str, uid: str) -> RawMessage:
    message = EmailMessage()
    message["From"] = "张三 <zhang@example.com>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{uid}@example.com>"
    message.set_content(body)
    return RawMessage(
        mailbox="support", folder="INBOX", uidvalidity=1, uid=uid, raw=message.as_bytes()
    )


def test_an_edit_of_the_rules_file_takes_effect_at_the_next_run(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path, '[[rule]]\nid = "slow"\nwhen.keywords = ["慢"]\nthen.priority = "P1"\n'
    )
    store = CaseStore.open(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    try:
        first = ingest_batch(
            store, [raw_mail("系统很慢", "打开很慢", "1")], intake_context(settings)
        )
        assert settings.rules_path is not None
        settings.rules_path.write_text(
            '[[rule]]\nid = "slow"\nwhen.keywords = ["慢"]\nthen.priority = "P0"\n',
            encoding="utf-8",
        )
        second = ingest_batch(
            store, [raw_mail("系统很慢", "还是慢", "2")], intake_context(settings)
        )
        priorities = [store.get_case(n).priority for n in [*first.new_cases, *second.new_cases]]
    finally:
        store.close()
    assert priorities == [Priority.P1, Priority.P0]


def test_a_backlog_is_promised_times_from_its_intake_not_from_its_arrival(tmp_path: Path) -> None:
    # Arrived on 30 April, taken in (after a pause) on 20 May: the confirmation must not promise
    # a resolution time already past, and the case is numbered in the month it was taken in.
    arrived = datetime(2024, 4, 30, 15, 50, tzinfo=UTC)
    settings = settings_with(
        tmp_path, '[[rule]]\nid = "outage"\nwhen.keywords = ["宕机"]\nthen.priority = "P0"\n'
    )
    context = intake_context(settings)
    context.clock = lambda: NOW
    message = raw_mail("生产环境宕机", "所有人都进不去", "1").model_copy(
        update={"received_at": arrived}
    )
    store = CaseStore.open(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    try:
        [number] = ingest_batch(store, [message], context).new_cases
        case = store.get_case(number)
    finally:
        store.close()
    assert number.startswith("202405-") and case.created_at == NOW
    assert case.due_at == NOW + timedelta(hours=4)


def test_a_bad_rules_file_stops_the_run_before_anything(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, '[[rule]]\nid = "x"\nthen.priority = "P9"\n')
    with pytest.raises(RulesError) as caught:
        intake_context(settings)
    assert str(caught.value) == (
        f"{settings.rules_path}:3 rule 'x': then.priority: Input should be 'P0', 'P1' or 'P2'"
    )


# casedesk rules check / explain -----------------------------------------------------------
def test_rules_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["rules", "check"]) == 0
    out = capsys.readouterr().out
    # The shipped set, each rule with what it decides (the default set decides types).
    lines = out.rstrip().splitlines()
    assert lines[0].startswith("rules: ") and lines[0].endswith("default_rules.toml")
    listed = [line for line in lines if re.match(r"^ +\d+\. [a-z0-9-]+: ", line)]
    assert any("type=system_fault" in line for line in listed)
    assert lines[-1] == f"ok: {len(listed)} rules"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nid = "x"\nthen.tags = []\n', encoding="utf-8")
    assert main(["rules", "check", str(bad)]) == 1
    assert capsys.readouterr().err == (
        f"error: {bad}:1 rule 'x': the rule decides nothing: give [rule.then] at least one action\n"
    )


def test_rules_explain_shows_matches_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    eml = tmp_path / "report.eml"
    eml.write_bytes(raw_mail("生产环境宕机", "今天上午生产环境宕机，所有用户无法登录", "1").raw)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["rules", "explain", str(eml)]) == 0
    out = capsys.readouterr().out
    assert "  outage-keywords: matched '宕机' and '所有用户'" in out
    assert "  P0 by rule outage-keywords: matched '宕机' and '所有用户'" in out
    assert "  type: 系统故障 (system_fault)" in out
    assert "  status: new (waiting for the dispatcher)" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def explain_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """`casedesk rules explain`'s status line for a report the shipped rules send to triage."""
    monkeypatch.delenv("CASEDESK_OUTGOING__LEAD_ADDRESS", raising=False)
    monkeypatch.delenv("CASEDESK_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    eml = tmp_path / "report.eml"
    eml.write_bytes(raw_mail("你好", "麻烦看一下", "1").raw)
    assert main(["rules", "explain", str(eml)]) == 0
    out = capsys.readouterr().out
    assert "  type: 待分类 (untriaged)" in out
    [status] = [line for line in out.splitlines() if line.startswith("  status: ")]
    return status


def test_rules_explain_names_the_lead_who_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "casedesk.toml").write_text(
        '[outgoing]\nlead_address = "lead@example.com"\n', encoding="utf-8"
    )
    assert explain_status(tmp_path, capsys, monkeypatch) == (
        "  status: triage (the lead is told: lead@example.com)"
    )


def test_rules_explain_says_when_no_lead_is_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert explain_status(tmp_path, capsys, monkeypatch) == (
        "  status: triage (no lead address is set: outgoing.lead_address; the case waits in "
        "the triage queue)"
    )
