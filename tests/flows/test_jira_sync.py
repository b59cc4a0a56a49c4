"""The Jira sync end to end: our pull and push against the stateful fake Jira on loopback (Cloud
and Data Center, every request and response contract-checked) and a real case store (SQLite and
PostgreSQL), then one real Prefect run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import SecretStr

from connectors.jira_client import JiraClient, JiraConnection, JiraUser
from connectors.store import CaseStore, LedgerDecision
from flows.cli import main
from flows.jira_push import (
    JiraPushContext,
    assign_owners,
    by_address,
    push,
    push_state_name,
    reply_ref,
)
from flows.jira_sync import JiraPull, JiraSyncContext, pull, watermark_name
from flows.routing import CaseRouter
from flows.runtime import sender_identity
from flows.settings import Settings
from mapping.case import (
    Case,
    CaseSource,
    CaseStatus,
    Feedback,
    FeedbackOutcome,
    LogKind,
    Person,
    Priority,
    ProblemType,
    SourceKind,
)
from mapping.errors import JiraAuthError, JiraRateLimitError
from mapping.jira_issue import JiraMapping
from mapping.rules import RuleEngine, RuleSet, load_rules, parse_rules
from tests.support import jira_openapi
from tests.support.fake_jira import FakeJira

Flavor = Literal["cloud", "dc"]
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
MAPPING = JiraMapping(customer_email_field="Customer Email", solution_field="Solution")


@pytest.fixture(autouse=True)
def _specs() -> None:
    jira_openapi.require_specs()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class World:
    """A fake Jira, a store, one clock, and the sync's contexts, as the flow would build them."""

    fake: FakeJira
    store: CaseStore
    clock: Clock
    settings: Settings
    sleeps: list[float] = field(default_factory=list)

    def client(self, token: str | None = None, max_retries: int = 2) -> JiraClient:
        connection = JiraConnection(
            url=self.fake.url,
            flavor=self.fake.flavor,
            user=self.fake.user,
            token=SecretStr(token or self.fake.token),
            project="SUP",
            time_zone="Asia/Shanghai",  # known zone: no /myself per run
        )
        return JiraClient(
            connection,
            custom_fields=MAPPING.custom_field_names,
            comment_marker=MAPPING.comment_marker,
            max_retries=max_retries,
            sleep=self.sleeps.append,
            clock=self.clock,
        )

    def sync_context(self, page_size: int = 100, rules: RuleSet | None = None) -> JiraSyncContext:
        rules = rules or load_rules(None)
        router = CaseRouter(
            rules=rules,
            engine=RuleEngine(rules, self.settings.zone),
            zone=self.settings.zone,
            identity=sender_identity(self.settings),
            lead_address=self.settings.outgoing.lead_address,
            clock=self.clock,
        )
        return JiraSyncContext(
            project="SUP",
            mapping=MAPPING,
            identity=sender_identity(self.settings),
            zone=self.settings.zone,
            flavor=self.fake.flavor,
            page_size=page_size,
            route=router.route,
            clock=self.clock,
        )

    def push_context(self, **overrides: Any) -> JiraPushContext:
        return JiraPushContext(
            project="SUP",
            mapping=MAPPING,
            priority_names={Priority.P0: "Highest", Priority.P1: "High", Priority.P2: "Medium"},
            create_components=["Web"],
            feedback_transitions={
                FeedbackOutcome.RESOLVED: "Close",
                FeedbackOutcome.UNRESOLVED: "Reopen",
            },
            clock=self.clock,
            **overrides,
        )

    def pull(self, page_size: int = 100, rules: RuleSet | None = None) -> Any:
        with self.client() as client:
            return pull(self.store, client, self.sync_context(page_size, rules))

    def push(self, **overrides: Any) -> Any:
        with self.client() as client:
            return push(self.store, client, self.push_context(**overrides))

    def case_for(self, key: str) -> Case:
        with self.store.transaction() as tx:
            case = tx.case_by_jira_key(key)
        assert case is not None, key
        return case


@pytest.fixture(params=["cloud", "dc"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    value: Flavor = request.param
    return value


@pytest.fixture
def world(flavor: Flavor, store_url: str, tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    settings = Settings(data_dir=tmp_path, database_url=store_url)
    with FakeJira(flavor, validate=True, clock=clock, time_zone="Asia/Shanghai") as fake:
        fake.add_custom_field("Solution", "string")
        fake.set_transitions(
            {
                "Start Progress": "In Progress",
                "Resolve": "Done",
                "Close": "Closed",
                "Reopen": "To Do",
            }
        )
        fake.add_status("Closed", "done")
        store = CaseStore.open(store_url)
        try:
            yield World(fake, store, clock, settings)
        finally:
            store.close()
        assert fake.contract_violations == []
        assert fake.request_violations == []


def feedback_mails(store: CaseStore) -> list[str]:
    return [item.key for item in store.outbox_items() if item.kind == "feedback_request"]


# -- pull --------------------------------------------------------------------------------------


def test_first_sync_creates_cases_and_the_second_is_a_no_op(world: World) -> None:
    keys = world.fake.add_issues(60, end=world.clock.now, comment_ratio=0.3)
    first = world.pull(page_size=25)
    assert len(first.new_cases) == 60 and first.skipped == []
    cases = world.store.list_cases()
    assert sorted(c.source.jira_key or "" for c in cases) == sorted(keys)
    assert all(c.source.kind is SourceKind.JIRA and c.number for c in cases)
    assert len(world.store.ledger_entries(decision=LedgerDecision.JIRA_ISSUE)) == 60
    assert world.store.watermark(watermark_name("SUP")) is not None
    # an initial import asks nobody for feedback about issues resolved long ago
    assert feedback_mails(world.store) == []

    world.fake.reset_counts()
    second = world.pull(page_size=25)
    assert second.new_cases == [] and second.updated_cases == []
    assert world.fake.total_requests <= 2, world.fake.requests  # /field and one search page
    assert len(world.store.list_cases()) == 60


def test_rules_route_new_cases_unless_a_person_triaged_them(world: World) -> None:
    mia = world.fake.people[1]
    world.fake.add_issue("系统报错，无法登录", assignee=mia, priority="Highest")
    world.fake.add_issue("How do I export a report?")
    world.pull()
    triaged, untriaged = world.case_for("SUP-1"), world.case_for("SUP-2")
    assert triaged.owner == mia.email and triaged.priority is Priority.P0
    assert any("triaged by a person in Jira" in e.text for e in triaged.process_log)
    # A Task maps to no type: the rules fill it in; Mia owns it, so it is not sent to triage.
    assert triaged.problem_type is ProblemType.SYSTEM_FAULT
    assert triaged.status is not CaseStatus.TRIAGE
    assert world.store.outbox_items() == []
    assert any(e.kind is LogKind.RULE for e in untriaged.process_log)


def test_a_new_issues_own_priority_and_type_stand_where_no_rule_decides(world: World) -> None:
    # Nobody triaged these (no assignee, no triage label), and no default rule matches their
    # words: what their Jira fields map to stands, not the rules' defaults (P2, untriaged).
    world.fake.add_issue("Nightly batch", priority="Highest", issuetype="Bug")
    world.fake.add_issue("Quarterly figures", priority="High", labels=["data"])
    world.fake.add_issue("Hello, please have a look", priority="High")  # a Task: no type
    # A rule that decides wins over the issue's fields.
    world.fake.add_issue("生产环境宕机了，所有人都无法访问", priority="Low", issuetype="Story")
    world.pull()
    bug, data, task, outage = (world.case_for(f"SUP-{n}") for n in range(1, 5))
    assert (bug.priority, bug.problem_type) == (Priority.P0, ProblemType.SYSTEM_FAULT)
    assert bug.status is not CaseStatus.TRIAGE
    assert bug.due_at == bug.created_at + timedelta(hours=4)
    texts = [entry.text for entry in bug.process_log if entry.kind is LogKind.RULE]
    assert "P0 (the Jira issue's priority 'Highest'; no rule decided it)" in texts
    assert (
        "type 系统故障 (system_fault) (from the Jira issue's labels, components or type; "
        "no rule decided it)" in texts
    )
    assert (data.priority, data.problem_type) == (Priority.P1, ProblemType.DATA_ANOMALY)
    # The type is unknown, so the lead judges it; the priority is still the issue's.
    assert (task.priority, task.problem_type) == (Priority.P1, ProblemType.UNTRIAGED)
    assert task.status is CaseStatus.TRIAGE
    assert (outage.priority, outage.problem_type) == (Priority.P0, ProblemType.SYSTEM_FAULT)


def test_the_first_import_tells_nobody_and_later_issues_reach_the_lead(world: World) -> None:
    world.settings.outgoing.lead_address = "lead@example.com"
    world.fake.add_issue("你好，麻烦看一下")
    world.fake.add_issue("Hello, please have a look")
    world.pull()
    assert {case.status for case in world.store.list_cases()} == {CaseStatus.TRIAGE}
    assert world.store.outbox_items() == []

    world.clock.advance(minutes=5)
    world.fake.add_issue("你好，麻烦看一下这个")
    world.pull()
    [notice] = world.store.outbox_items()
    assert (notice.kind, notice.recipients) == ("triage_notice", ["lead@example.com"])
    assert notice.case_number == world.case_for("SUP-3").number


def test_changes_in_jira_flow_into_the_case(world: World) -> None:
    world.fake.add_issue("导出报表超时", description="导出 Q1 报表 30 秒后失败")
    world.pull()
    case = world.case_for("SUP-1")
    assert case.status in (CaseStatus.NEW, CaseStatus.TRIAGE)

    world.clock.advance(minutes=5)
    issue = world.fake.issues["SUP-1"]
    issue.assignee = world.fake.people[2]
    issue.status = "In Progress"
    issue.priority = "High"
    issue.custom[world.fake.custom_field_id("Solution")] = "重启导出服务"
    world.fake.add_comment("SUP-1", "日志显示数据库超时", author=world.fake.people[3])
    world.fake.touch("SUP-1")
    report = world.pull()
    assert report.updated_cases == [case.number]

    case = world.case_for("SUP-1")
    assert case.owner == world.fake.people[2].email
    assert case.status is CaseStatus.IN_PROGRESS and case.priority is Priority.P1
    assert case.solution == "重启导出服务"
    comments = [e for e in case.process_log if e.kind is LogKind.COMMENT]
    assert [(c.actor, c.text) for c in comments] == [
        (world.fake.people[3].email, "日志显示数据库超时")
    ]


def test_more_than_20_comments_are_all_fetched(world: World) -> None:
    world.fake.add_issue("Many comments")
    for n in range(27):
        world.fake.add_comment("SUP-1", f"step {n}", created=T0 + timedelta(minutes=n))
    report = world.pull()
    assert report.comment_fetches == 1
    case = world.case_for("SUP-1")
    texts = [e.text for e in case.process_log if e.kind is LogKind.COMMENT]
    assert texts == [f"step {n}" for n in range(27)]


def test_a_rate_limit_fails_the_batch_and_the_next_run_resumes(world: World) -> None:
    keys = world.fake.add_issues(250, end=world.clock.now)
    search = "/rest/api/3/search/jql" if world.fake.flavor == "cloud" else "/rest/api/2/search"
    with world.client() as client:
        puller = JiraPull(world.store, client, world.sync_context(page_size=100))
        pages = puller.pages()
        puller.apply_page(next(pages))
        world.fake.inject(429, count=10, headers={"Retry-After": "3"}, path=search)
        with pytest.raises(JiraRateLimitError, match="resumes from the stored watermark"):
            for page in pages:
                puller.apply_page(page)
    assert world.sleeps == [3.0, 3.0]  # Retry-After honoured, bounded
    done = len(world.store.list_cases())
    assert 0 < done < 250
    stored = world.store.watermark(watermark_name("SUP"))
    assert stored is not None

    world.fake._faults.clear()
    world.fake.reset_counts()
    report = world.pull()
    assert len(world.store.list_cases()) == 250
    assert sorted(c.source.jira_key or "" for c in world.store.list_cases()) == sorted(keys)
    assert report.issues_read - report.already_seen == 250 - done  # from the watermark on
    assert world.fake.count(path_prefix=search) <= 3


def test_wrong_credentials_name_the_url_and_user(world: World) -> None:
    world.fake.add_issues(3)
    with (
        world.client(token="wrong-token") as client,
        pytest.raises(JiraAuthError) as caught,
    ):
        pull(world.store, client, world.sync_context())
    message = str(caught.value)
    assert world.fake.url in message
    if world.fake.flavor == "cloud":
        assert world.fake.user in message
    assert world.fake.total_requests == 1  # no retry storm
    assert world.store.list_cases() == []


def test_malformed_issues_are_skipped_listed_and_the_rest_go_on(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.fake.add_status("Mystery", "indeterminate")
    world.fake.add_issue("fine one")
    world.fake.add_issue("odd one", status="Mystery")
    world.fake.add_issue("fine two")
    report = world.pull()
    assert len(report.new_cases) == 2
    assert len(report.skipped) == 1 and "SUP-2" in report.skipped[0]
    assert "unknown status 'Mystery'" in report.skipped[0]
    skipped = world.store.ledger_entries(decision=LedgerDecision.SKIPPED)
    assert [e.location.split("@")[0] for e in skipped] == ["jira:SUP-2"]
    assert world.pull().skipped == []  # the same version is not retried every run

    config = tmp_path / "casedesk.toml"
    config.write_text(f'database_url = "{world.settings.database_url}"\n', encoding="utf-8")
    assert main(["jira", "skipped", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "SUP-2@" in out and "unknown status 'Mystery'" in out

    # fixed in Jira: the next version goes through
    world.clock.advance(minutes=3)
    world.fake.issues["SUP-2"].status = "In Progress"
    world.fake.touch("SUP-2")
    assert world.pull().new_cases != []


@pytest.mark.parametrize(
    ("withheld", "named"), [(("updated",), "SUP-2"), (("key",), "issue id {id}")]
)
def test_unreadable_issues_are_skipped_listed_and_the_rest_go_on(
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    withheld: tuple[str, ...],
    named: str,
) -> None:
    world.fake.add_issue("fine one")
    broken = world.fake.add_issue("broken one")
    world.fake.add_issue("fine two")
    world.fake.withhold(broken.key, *withheld)
    name, reason = named.format(id=broken.id), f"Jira sent the issue without '{withheld[0]}'"

    report = world.pull()
    assert len(report.new_cases) == 2
    assert report.skipped == [f"{name}: {reason}"]
    [skipped] = world.store.ledger_entries(decision=LedgerDecision.SKIPPED)
    where = broken.key if "key" not in withheld else str(broken.id)
    assert skipped.location.startswith(f"jira:{where}@unreadable-")
    assert skipped.reason == reason and skipped.received_at is None
    assert world.pull().skipped == []  # the same answer is recorded once, not every run
    assert len(world.store.ledger_entries(decision=LedgerDecision.SKIPPED)) == 1

    config = tmp_path / "casedesk.toml"
    config.write_text(f'database_url = "{world.settings.database_url}"\n', encoding="utf-8")
    assert main(["jira", "skipped", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"{where}@unreadable-" in out and reason in out

    # Jira answers properly again: the issue comes in, though nobody edited it.
    world.fake.withhold(broken.key)
    again = world.pull()
    assert len(again.new_cases) == 1 and again.skipped == []
    assert world.case_for(broken.key).subject == "broken one"


def test_a_first_import_of_only_unreadable_issues_moves_no_watermark(world: World) -> None:
    broken = world.fake.add_issue("broken one")
    world.fake.withhold(broken.key, "updated")
    report = world.pull()
    assert report.new_cases == [] and len(report.skipped) == 1
    assert report.watermark is None
    assert world.store.watermark(watermark_name("SUP")) is None
    assert world.pull().skipped == []


def test_issues_edited_mid_sync_are_not_skipped(world: World) -> None:
    keys = world.fake.add_issues(300, end=world.clock.now)
    seen: list[str] = []
    with world.client() as client:
        puller = JiraPull(world.store, client, world.sync_context(page_size=50))
        for n, page in enumerate(puller.pages()):
            puller.apply_page(page)
            seen += [issue.key for issue in page]
            if n in (1, 3):
                # Someone edits issues already read: they move to the end of the ordering.
                world.clock.advance(seconds=1)
                for key in seen[n * 10 : n * 10 + 3]:
                    world.fake.touch(key)
    assert set(seen) == set(keys)
    assert len(world.store.list_cases()) == 300


# -- resolved in Jira ---------------------------------------------------------------------------


def test_resolved_in_jira_queues_the_feedback_request_once_per_round(world: World) -> None:
    world.fake.add_issue("Cannot log in", custom={"Customer Email": "zhang@example.cn"})
    world.pull()
    number = world.case_for("SUP-1").number

    for status in ("In Progress", "Done"):
        world.clock.advance(minutes=3)
        world.fake.issues["SUP-1"].status = status
        world.fake.touch("SUP-1")
        world.pull()
    assert feedback_mails(world.store) == [f"{number}/feedback_request/1"]
    [mail] = world.store.outbox_items()
    assert mail.recipients == ["zhang@example.cn"]

    world.clock.advance(minutes=3)
    world.fake.add_comment("SUP-1", "Deployed the fix")  # another version, still resolved
    world.pull()
    assert len(feedback_mails(world.store)) == 1

    for status in ("To Do", "Done"):  # reopened in Jira, then resolved again: round 2
        world.clock.advance(minutes=3)
        world.fake.issues["SUP-1"].status = status
        world.fake.touch("SUP-1")
        world.pull()
    assert feedback_mails(world.store) == [
        f"{number}/feedback_request/1",
        f"{number}/feedback_request/2",
    ]
    statuses = [e.text for e in world.case_for("SUP-1").process_log if e.kind is LogKind.STATUS]
    assert "resolved -> reopened: Jira status To Do" in statuses


# -- push ---------------------------------------------------------------------------------------


def email_case(store: CaseStore, clock: Clock, subject: str = "打印机报错") -> str:
    case = Case(
        subject=subject,
        description="打印时提示错误 0x42",
        submitter=Person(name="张三", email="zhang@example.cn"),
        priority=Priority.P1,
        source=CaseSource(kind=SourceKind.EMAIL, mailbox="support"),
        created_at=clock.now,
        updated_at=clock.now,
    )
    with store.transaction() as tx:
        tx.add_case(case, month=clock.now.date())
    assert case.number is not None
    return case.number


class Crash(Exception):
    pass


def push_dying_after_create(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A push that dies after Jira created the issue, before the key is stored."""

    def crash(*args: Any, **kwargs: Any) -> None:
        raise Crash("the process died after Jira created the issue")

    with world.client() as client:
        monkeypatch.setattr(client, "set_property", crash)
        with pytest.raises(Crash):
            push(world.store, client, world.push_context())


def test_push_creates_one_issue_even_after_a_crash(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = email_case(world.store, world.clock)
    push_dying_after_create(world, monkeypatch)
    assert world.store.get_case(number).source.jira_key is None
    assert len(world.fake.issues) == 1

    report = world.push()
    assert report.created == [] and report.found_existing == [f"{number} -> SUP-1"]
    assert len(world.fake.issues) == 1
    issue = world.fake.issues["SUP-1"]
    assert f"casedesk-{number}" in issue.labels and issue.priority == "High"
    assert issue.components == ["Web"] and issue.properties["casedesk"] == {"case": number}
    case = world.store.get_case(number)
    assert case.source.jira_key == "SUP-1"
    assert world.push().created == []  # nothing pending any more

    # Reading our own issue back changes nothing casedesk decided.
    world.pull()
    assert world.store.get_case(number).priority is Priority.P1
    assert world.store.get_case(number).owner is None


def test_replies_become_comments_and_are_not_imported_back(world: World) -> None:
    number = email_case(world.store, world.clock)
    world.push()
    world.pull()

    world.clock.advance(minutes=2)
    with world.store.transaction() as tx:
        case = tx.get_case(number)
        case.log(
            LogKind.EMAIL_IN,
            "reply from zhang@example.cn: 换了驱动还是不行",
            at=world.clock.now,
            actor="zhang@example.cn",
        )
        tx.save_case(case)
    first = world.push()
    again = world.push()
    assert first.comments == 1 and again.comments == 0
    comments = world.fake.issues["SUP-1"].comments
    assert len(comments) == 1
    body = comments[0].body if isinstance(comments[0].body, str) else str(comments[0].body)
    assert "换了驱动还是不行" in body and reply_ref(number, 0) in body

    world.clock.advance(minutes=1)
    world.pull()
    case = world.store.get_case(number)
    assert [e for e in case.process_log if e.kind is LogKind.COMMENT] == []  # no echo


def test_a_reply_posted_before_a_crash_is_not_posted_twice(world: World) -> None:
    number = email_case(world.store, world.clock)
    world.push()
    with world.store.transaction() as tx:
        case = tx.get_case(number)
        case.log(LogKind.EMAIL_IN, "reply: still broken", at=world.clock.now, actor="zhang")
        tx.save_case(case)
        # As a run that died right after posting leaves it: pending, not counted.
        tx.set_watermark(push_state_name(number), f'{{"pending": "{reply_ref(number, 0)}"}}')
    with world.client() as client:
        client.add_comment(
            "SUP-1", "reply: still broken", marker=f"[casedesk] {reply_ref(number, 0)}"
        )
    assert world.push().comments == 0
    assert len(world.fake.issues["SUP-1"].comments) == 1


@pytest.mark.parametrize(
    ("outcome", "status"),
    [(FeedbackOutcome.RESOLVED, "Closed"), (FeedbackOutcome.UNRESOLVED, "To Do")],
)
def test_feedback_transitions_the_issue(
    world: World, outcome: FeedbackOutcome, status: str
) -> None:
    number = email_case(world.store, world.clock)
    world.push()
    world.fake.issues["SUP-1"].status = "Done"
    world.clock.advance(minutes=1)
    with world.store.transaction() as tx:
        case = tx.get_case(number)
        case.feedback = Feedback(
            outcome=outcome, words="好了" if outcome else "", at=world.clock.now
        )
        case.log(LogKind.FEEDBACK, outcome.value, at=world.clock.now)
        tx.save_case(case)
    report = world.push()
    assert world.fake.issues["SUP-1"].status == status
    assert len(report.transitions) == 1
    assert world.push().transitions == []  # once


# -- the owner becomes the assignee ------------------------------------------------------------


def printers(owner: str = "wang.fang@example.cn", *, override: bool = False) -> RuleSet:
    """Printer reports go to `owner` (by default 王芳, the fake's `wang.fang`); with
    `override`, even on issues a person triaged."""
    text = (
        '[[rule]]\nid = "printers"\nwhen.keywords = ["打印机"]\n'
        f'then.problem_type = "system_fault"\nthen.owner = "{owner}"\n'
    )
    if override:
        text += "override_manual = true\n"
    return parse_rules(text, source="printers.toml")


PRINTERS = printers()


def assignee(world: World, key: str) -> str | None:
    person = world.fake.issues[key].assignee
    return None if person is None else person.email


def assignments(world: World) -> int:
    """How many times the fake was asked to assign an issue."""
    return sum(
        n for (m, p), n in world.fake.requests.items() if (m, p[-9:]) == ("PUT", "/assignee")
    )


def owned_email_case(world: World, owner: str = "mia@example.com") -> str:
    """An email case the rules gave `owner`, not yet in Jira."""
    number = email_case(world.store, world.clock)
    with world.store.transaction() as tx:
        case = tx.get_case(number)
        case.owner = owner
        tx.save_case(case)
    return number


def replied_twice(world: World) -> tuple[str, str]:
    """Two email cases in Jira (SUP-1, SUP-2), each with a user's reply still to push."""
    numbers = (
        email_case(world.store, world.clock),
        email_case(world.store, world.clock, subject="扫描仪报错"),
    )
    world.push()
    world.clock.advance(minutes=1)
    for number in numbers:
        with world.store.transaction() as tx:
            case = tx.get_case(number)
            case.log(LogKind.EMAIL_IN, "还是不行", at=world.clock.now, actor="zhang@example.cn")
            tx.save_case(case)
    return numbers


def imported(world: World) -> None:
    """A first run, as the flow makes it: a push (casedesk writes assignees from now on), then
    the import of the project's history (SUP-1); later pulls bring new issues (SUP-2 ...)."""
    world.fake.add_issue("历史问题：上个月的报表")
    world.push()
    world.pull(rules=PRINTERS)
    world.clock.advance(minutes=1)


def test_the_history_a_first_import_brings_is_not_assigned_in_jira(world: World) -> None:
    world.fake.add_issue("打印机报错（去年的）")
    world.pull(rules=PRINTERS)
    assert world.case_for("SUP-1").owner == "wang.fang@example.cn"  # casedesk's own record
    world.fake.reset_counts()
    assert world.push().assigned == [] and world.fake.total_requests == 0
    assert assignee(world, "SUP-1") is None


def test_the_rules_owner_becomes_the_assignee_and_is_not_read_back_as_a_change(
    world: World,
) -> None:
    imported(world)
    world.fake.add_issue("打印机报错，无法打印")
    if world.fake.flavor == "cloud":
        world.fake.hidden_emails.add("wang.fang@example.cn")  # her privacy settings
    world.pull(rules=PRINTERS)
    number = world.case_for("SUP-2").number
    assert world.case_for("SUP-2").owner == "wang.fang@example.cn"

    world.clock.advance(minutes=1)
    report = world.push()
    assert assignee(world, "SUP-2") == "wang.fang@example.cn"
    shown = "王芳" if world.fake.flavor == "cloud" else "wang.fang@example.cn"
    assert report.assigned == [f"SUP-2 -> {shown} ({number})"] and report.problems == []
    case = world.case_for("SUP-2")
    assert "assigned Jira issue SUP-2 to 王芳 (wang.fang@example.cn)" in [
        e.text for e in case.process_log if e.kind is LogKind.ASSIGNMENT
    ]

    # The next pull reads the issue we changed: the owner stays the address the rules named
    # (where Jira shows only her name), and nothing is "changed in Jira".
    world.clock.advance(minutes=1)
    world.pull(rules=PRINTERS)
    case = world.case_for("SUP-2")
    assert case.owner == "wang.fang@example.cn"
    assert not [e for e in case.process_log if e.text.startswith("changed in Jira")]

    world.fake.reset_counts()
    assert world.push().assigned == []
    assert world.fake.total_requests == 0  # settled: Jira is not asked again


def test_the_run_assigns_the_new_cases_of_its_pull_at_once(world: World) -> None:
    imported(world)
    world.fake.add_issue("打印机报错")
    world.fake.add_issue("How do I export a report?")  # no owner: nothing to do
    pulled = world.pull(rules=PRINTERS)
    with world.client() as client:
        report = assign_owners(world.store, client, world.push_context(), pulled.new_cases)
    assert assignee(world, "SUP-2") == "wang.fang@example.cn"
    # The issue, the user, the assignment; and the site's fields, once for a new client.
    assert report.requests == 4
    assert assignments(world) == 1
    world.fake.reset_counts()
    assert world.push().assigned == [] and assignments(world) == 0  # done already


def test_an_email_case_is_created_and_assigned_in_one_push(world: World) -> None:
    number = owned_email_case(world)
    report = world.push()
    assert report.created == [f"{number} -> SUP-1"]
    assert report.assigned == [f"SUP-1 -> mia@example.com ({number})"]
    assert assignee(world, "SUP-1") == "mia@example.com"
    world.clock.advance(minutes=1)
    world.pull()
    assert world.store.get_case(number).owner == "mia@example.com"


def test_a_person_who_assigned_the_issue_in_jira_meanwhile_keeps_it(world: World) -> None:
    imported(world)
    world.fake.add_issue("打印机报错")
    world.pull(rules=PRINTERS)
    sam = world.fake.people[4]
    world.clock.advance(minutes=1)
    world.fake.issues["SUP-2"].assignee = sam  # the dispatcher, in Jira, before our push
    world.fake.touch("SUP-2")

    report = world.push()
    assert assignee(world, "SUP-2") == sam.email
    assert report.assigned == [] and assignments(world) == 0
    world.clock.advance(minutes=1)
    world.pull(rules=PRINTERS)
    assert world.case_for("SUP-2").owner == sam.email  # the person's choice reaches the case
    world.fake.reset_counts()
    world.push()
    assert assignments(world) == 0


def test_an_assignment_that_died_before_it_was_recorded_is_not_made_twice(world: World) -> None:
    imported(world)
    world.fake.add_issue("打印机报错")
    world.pull(rules=PRINTERS)
    if world.fake.flavor == "cloud":
        world.fake.hidden_emails.add("wang.fang@example.cn")
    # A run assigned the issue and died before recording it.
    world.clock.advance(minutes=1)
    world.fake.issues["SUP-2"].assignee = world.fake.people[2]
    world.fake.touch("SUP-2")
    world.fake.reset_counts()

    report = world.push()
    assert report.assigned and assignments(world) == 0
    world.clock.advance(minutes=1)
    world.pull(rules=PRINTERS)
    case = world.case_for("SUP-2")
    assert case.owner == "wang.fang@example.cn"
    assert not [e for e in case.process_log if e.text.startswith("changed in Jira")]


def test_an_owner_jira_cannot_assign_is_noted_once(world: World) -> None:
    imported(world)
    world.fake.add_issue("打印机报错")
    world.fake.unassignable.add("wang.fang")
    world.pull(rules=PRINTERS)

    report = world.push()
    [problem] = report.problems
    assert "owner wang.fang@example.cn is not the assignee of Jira issue SUP-2" in problem
    assert "[jira.accounts]" in problem
    assert assignee(world, "SUP-2") is None
    notes = [e.text for e in world.case_for("SUP-2").process_log if e.kind is LogKind.NOTE]
    assert any("is not the assignee" in text for text in notes)

    world.fake.reset_counts()
    assert world.push().problems == [] and world.fake.total_requests == 0


def test_accounts_name_people_jira_does_not_find_by_their_address(world: World) -> None:
    imported(world)
    # Her address in casedesk is one Jira does not know.
    rules = printers("fang.wang@corp.example")
    world.fake.add_issue("打印机报错")
    world.pull(rules=rules)
    unknown = world.push()
    assert "Jira finds no user with the address fang.wang@corp.example" in unknown.problems[0]
    assert assignee(world, "SUP-2") is None

    # The lead names her Jira account: the next case is assigned.
    wang = world.fake.people[2]
    account = wang.account_id if world.fake.flavor == "cloud" else wang.name
    world.clock.advance(minutes=1)
    world.fake.add_issue("打印机又报错")
    world.pull(rules=rules)
    report = world.push(accounts={"fang.wang@corp.example": account})
    assert report.problems == [] and assignee(world, "SUP-3") == wang.email


def test_one_issue_jira_will_not_assign_does_not_stop_the_others(world: World) -> None:
    imported(world)
    for n in range(3):
        world.fake.add_issue(f"打印机报错 {n}")
    world.pull(rules=PRINTERS)
    world.fake.delete_issue("SUP-2")  # deleted in Jira

    report = world.push()
    assert [line.split(": ", 1)[1] for line in report.problems] == [
        "owner wang.fang@example.cn is not the assignee of Jira issue SUP-2: Jira does not "
        "show the issue to casedesk's account (deleted, or moved)",
    ]
    assert assignee(world, "SUP-3") == assignee(world, "SUP-4") == "wang.fang@example.cn"
    world.fake.reset_counts()
    assert world.push().problems == [] and world.fake.total_requests == 0  # noted once


def test_a_403_stops_the_runs_assignments_and_settles_nothing(world: World) -> None:
    # A permission casedesk's account lacks, or the site refusing it for a while: it would be
    # the same answer for every issue, so the run stops assigning and notes nothing.
    imported(world)
    for n in range(2):
        world.fake.add_issue(f"打印机报错 {n}")
    world.pull(rules=PRINTERS)
    api = f"/rest/api/{world.fake.api_version}"
    world.fake.inject(403, method="PUT", path=f"{api}/issue/SUP-2/assignee")
    report = world.push()
    [problem] = report.problems
    assert "needs the Assign Issues and Browse users permissions" in problem
    assert assignee(world, "SUP-2") is None and assignee(world, "SUP-3") is None
    assert not [e for e in world.case_for("SUP-2").process_log if e.kind is LogKind.NOTE]
    # Allowed again; the next time the issues change, they are assigned.
    world.clock.advance(minutes=1)
    for key in ("SUP-2", "SUP-3"):
        world.fake.issues[key].priority = "High"
        world.fake.touch(key)
    world.pull(rules=PRINTERS)
    assert len(world.push().assigned) == 2


def test_an_assignee_a_person_chose_before_the_rules_stands_in_jira(world: World) -> None:
    imported(world)
    mia = world.fake.people[1]
    world.fake.add_issue("打印机报错", assignee=mia)
    world.pull(rules=printers(override=True))
    assert world.case_for("SUP-2").owner == "wang.fang@example.cn"  # the rule says so
    report = world.push()
    assert report.assigned == [] and report.problems == []
    assert assignee(world, "SUP-2") == mia.email and assignments(world) == 0
    notes = [e.text for e in world.case_for("SUP-2").process_log if e.kind is LogKind.NOTE]
    assert f"Jira issue SUP-2 is assigned to {mia.email}, not the owner " in "".join(notes)


def test_an_email_case_is_created_with_its_owner_not_the_projects_default(
    world: World,
) -> None:
    sam = world.fake.people[4]
    world.fake.default_assignee = sam
    owned = owned_email_case(world)
    unowned = email_case(world.store, world.clock, subject="怎么导出报表？")
    report = world.push()
    assert report.assigned == [f"SUP-1 -> mia@example.com ({owned})"]
    assert assignee(world, "SUP-1") == "mia@example.com"
    assert assignee(world, "SUP-2") == sam.email  # Jira's default, for the case nobody owns
    assert assignments(world) == 0  # created so, no second request
    world.clock.advance(minutes=1)
    world.pull()
    assert world.store.get_case(owned).owner == "mia@example.com"
    # The case nobody owned has Jira's default assignee now: Jira's choice, like a person's.
    assert world.store.get_case(unowned).owner == sam.email
    assert world.push().assigned == []


def test_an_interrupted_first_import_is_still_history_on_the_next_run(world: World) -> None:
    world.settings.outgoing.lead_address = "lead@example.com"
    for n in range(4):
        world.fake.add_issue(f"打印机报错（旧）{n}")
    with world.client() as client:
        puller = JiraPull(world.store, client, world.sync_context(page_size=2, rules=PRINTERS))
        pages = puller.pages()
        puller.apply_page(next(pages))  # then a rate limit stopped the run
        pages.close()
    world.clock.advance(minutes=1)
    world.pull(page_size=2, rules=PRINTERS)  # the import goes on, and ends
    assert len(world.store.list_cases()) == 4
    world.fake.reset_counts()
    assert world.push().assigned == [] and world.fake.total_requests == 0
    assert world.store.outbox_items() == []  # nobody mailed about the history

    world.clock.advance(minutes=1)
    world.fake.add_issue("打印机又报错")  # after the import: a new report
    world.pull(page_size=2, rules=PRINTERS)
    assert world.push().assigned and assignee(world, "SUP-5") == "wang.fang@example.cn"


def test_a_resolved_case_is_not_assigned_in_jira(world: World) -> None:
    imported(world)
    world.fake.add_issue("打印机报错", status="Done")
    world.pull(rules=PRINTERS)
    assert world.case_for("SUP-2").status is CaseStatus.RESOLVED
    world.fake.reset_counts()
    assert world.push().assigned == [] and assignments(world) == 0


def test_an_issue_jira_will_not_create_with_an_assignee_is_created_without(
    world: World,
) -> None:
    sam = world.fake.people[4]
    world.fake.default_assignee = sam
    world.fake.assignee_on_create_screen = False
    number = owned_email_case(world)
    report = world.push()
    assert report.created == [f"{number} -> SUP-1"] and report.assigned == []
    [problem] = report.problems
    assert "owner mia@example.com is not the assignee of the new Jira issue" in problem
    assert "Field 'assignee' cannot be set" in problem
    assert assignee(world, "SUP-1") == sam.email  # the project's default
    world.clock.advance(minutes=1)
    world.pull()
    # Jira's default is the baseline, not a person's change: the case keeps the rules' owner.
    assert world.store.get_case(number).owner == "mia@example.com"
    world.fake.reset_counts()
    assert world.push().problems == [] and world.fake.total_requests == 0


def test_an_owner_that_came_from_jira_is_not_written_back_after_jira_clears_it(
    world: World,
) -> None:
    imported(world)
    world.fake.add_issue("打印机报错")
    world.pull(rules=PRINTERS)
    world.push()  # 王芳, by the rules
    mia = world.fake.people[1]
    for change in ("reassign", "unassign", "reprioritise"):
        world.clock.advance(minutes=1)
        issue = world.fake.issues["SUP-2"]
        if change == "reassign":
            issue.assignee = mia  # the dispatcher
        elif change == "unassign":
            issue.assignee = None  # Mia hands it back
        else:
            issue.priority = "High"
        world.fake.touch("SUP-2")
        world.pull(rules=PRINTERS)
        world.push()
    assert world.case_for("SUP-2").owner == mia.email  # an empty assignee changes no owner
    assert assignee(world, "SUP-2") is None and assignments(world) == 1  # only the first


def test_cases_from_before_assignments_were_written_keep_their_owner_in_casedesk(
    world: World,
) -> None:
    # An installation that synced before this version: it has a watermark, and cases whose
    # rules' owners were never written to Jira.
    with world.store.transaction() as tx:
        since = (world.clock.now - timedelta(days=30)).isoformat()
        tx.set_watermark(watermark_name("SUP"), since)
    world.fake.add_issue("打印机报错（上个月）", created=world.clock.now - timedelta(days=20))
    world.pull(rules=PRINTERS)
    world.clock.advance(minutes=1)
    report = world.push()  # the first with this version
    assert report.assigned == [] and assignee(world, "SUP-1") is None
    world.clock.advance(minutes=1)
    world.fake.add_issue("打印机又报错")
    world.pull(rules=PRINTERS)
    assert world.push().assigned and assignee(world, "SUP-2") == "wang.fang@example.cn"


def test_credentials_jira_refuses_stop_the_run_and_leave_the_owner_to_try_again(
    world: World,
) -> None:
    imported(world)
    world.fake.add_issue("打印机报错")
    world.pull(rules=PRINTERS)
    api = f"/rest/api/{world.fake.api_version}"
    world.fake.inject(401, method="GET", path=f"{api}/issue/SUP-2")
    with pytest.raises(JiraAuthError, match="401"):
        world.push()
    assert world.push().assigned and assignee(world, "SUP-2") == "wang.fang@example.cn"


def test_a_deleted_issue_with_a_pending_reply_does_not_stop_the_others(world: World) -> None:
    gone, _ = replied_twice(world)
    world.fake.delete_issue("SUP-1")  # deleted in Jira
    report = world.push()
    assert report.comments == 1 and len(world.fake.issues["SUP-2"].comments) == 1
    [problem] = report.problems
    assert problem.startswith(f"{gone}: ") and "not found" in problem


def test_an_assignee_a_new_issue_had_is_not_written_back_after_jira_clears_it(
    world: World,
) -> None:
    imported(world)
    mia = world.fake.people[1]
    world.fake.add_issue("打印机报错", assignee=mia)  # triaged in Jira before casedesk saw it
    world.pull(rules=PRINTERS)
    world.push()
    world.clock.advance(minutes=1)
    issue = world.fake.issues["SUP-2"]
    issue.assignee, issue.priority = None, "High"  # Mia hands it back; someone reprioritises
    world.fake.touch("SUP-2")
    world.pull(rules=PRINTERS)
    assert world.push().assigned == [] and assignee(world, "SUP-2") is None
    assert assignments(world) == 0


def test_an_issue_found_after_a_crash_keeps_the_assignee_it_was_created_with(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.fake.default_assignee = world.fake.people[4]
    number = owned_email_case(world)
    push_dying_after_create(world, monkeypatch)
    assert world.push().found_existing == [f"{number} -> SUP-1"]
    world.clock.advance(minutes=1)
    world.pull()
    case = world.store.get_case(number)
    assert case.owner == "mia@example.com" and assignee(world, "SUP-1") == "mia@example.com"
    assert not [e for e in case.process_log if e.text.startswith("changed in Jira")]


def test_a_run_with_assignments_off_does_not_start_them(world: World) -> None:
    world.push(push_assignments=False)
    assert world.store.watermark("jira-assign-since:SUP") is None


def test_the_first_run_after_an_upgrade_assigns_its_own_new_issues(world: World) -> None:
    # The last run of the version before: the pull's watermark is the old issue's update.
    world.fake.add_issue("打印机报错（上个月）", created=world.clock.now - timedelta(days=20))
    world.pull(rules=PRINTERS)
    old = world.case_for("SUP-1").number or ""
    with world.store.transaction() as tx:  # as that version left it: no push state
        tx.set_watermark(push_state_name(old), "{}")
    world.clock.advance(minutes=5)
    world.fake.add_issue("打印机又报错")  # created since, in Jira
    # This version's first run, as the flow runs it: push, pull, assign the pull's new cases.
    world.push()
    pulled = world.pull(rules=PRINTERS)
    with world.client() as client:
        report = assign_owners(world.store, client, world.push_context(), pulled.new_cases)
    assert report.assigned and assignee(world, "SUP-2") == "wang.fang@example.cn"
    world.fake.issues["SUP-1"].priority = "High"  # the old one changes later: not assigned
    world.fake.touch("SUP-1")
    world.clock.advance(minutes=1)
    world.pull(rules=PRINTERS)
    assert world.push().assigned == [] and assignee(world, "SUP-1") is None


def test_a_reply_jira_refuses_once_is_posted_by_the_next_run_and_the_rest_goes_on(
    world: World,
) -> None:
    refused, _ = replied_twice(world)
    world.fake.issues["SUP-1"].status = "Done"
    with world.store.transaction() as tx:  # the user says it is not fixed
        case = tx.get_case(refused)
        case.feedback = Feedback(outcome=FeedbackOutcome.UNRESOLVED, at=world.clock.now)
        tx.save_case(case)
    api = f"/rest/api/{world.fake.api_version}"
    world.fake.inject(403, method="POST", path=f"{api}/issue/SUP-1/comment")
    world.clock.advance(minutes=1)  # the push starts after the case's last change
    report = world.push()
    assert report.comments == 1 and len(world.fake.issues["SUP-2"].comments) == 1
    [problem] = report.problems
    assert problem.startswith(f"{refused}: ") and "403" in problem
    assert world.fake.issues["SUP-1"].status == "To Do"  # reopened all the same
    world.clock.advance(minutes=1)
    again = world.push()  # nothing changed on the case: its reply is tried again
    assert again.comments == 1 and len(world.fake.issues["SUP-1"].comments) == 1
    assert world.push().comments == 0


def test_an_owner_a_403_kept_off_a_new_issue_is_assigned_by_the_next_run(world: World) -> None:
    number = owned_email_case(world)
    api = f"/rest/api/{world.fake.api_version}"
    world.fake.inject(403, method="GET", path=f"{api}/user/assignable/search")
    first = world.push()
    assert first.created == [f"{number} -> SUP-1"] and first.assigned == []
    assert "needs the Assign Issues" in first.problems[0]
    assert assignee(world, "SUP-1") is None
    world.clock.advance(minutes=1)
    assert world.push().assigned == [f"SUP-1 -> mia@example.com ({number})"]


def test_no_assignment_is_written_when_turned_off(world: World) -> None:
    imported(world)
    world.fake.add_issue("打印机报错")
    world.pull(rules=PRINTERS)
    world.fake.reset_counts()
    assert world.push(push_assignments=False).assigned == []
    assert world.fake.total_requests == 0 and assignee(world, "SUP-2") is None


# -- one real Prefect run -----------------------------------------------------------------------


@pytest.mark.prefect
def test_run_flow_syncs_jira_between_intake_and_outbox(
    prefect_harness: None, tmp_path: Path
) -> None:
    from flows.run_flow import run_flow

    with FakeJira("cloud", validate=True, time_zone="UTC") as fake:
        fake.add_issues(12)
        config = tmp_path / "casedesk.toml"
        config.write_text(
            "[outgoing]\n"
            'from_address = "support@example.com"\nmessage_id_domain = "example.com"\n'
            "[jira]\n"
            f'enabled = true\nurl = "{fake.url}"\nflavor = "cloud"\nuser = "{fake.user}"\n'
            f'token = "{fake.token}"\nproject = "SUP"\ntime_zone = "UTC"\n'
            "[jira.mapping]\n"
            'customer_email_field = "Customer Email"\n',
            encoding="utf-8",
        )
        first = run_flow(str(config))
        assert first.jira is not None and first.jira_error is None
        assert len(first.jira.pull.new_cases) == 12

        fake.inject(401, count=1)
        failed = run_flow(str(config))
        assert failed.jira is None and failed.jira_error is not None
        assert fake.url in failed.jira_error
        assert fake.contract_violations == []


def test_the_jira_sync_command(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeJira("dc", validate=True, time_zone="UTC") as fake:
        fake.add_issues(3)
        rules = tmp_path / "rules.toml"
        rules.write_text(
            '[[rule]]\nid = "printers"\nwhen.keywords = ["打印机"]\n'
            'then.owner = "wang.fang@example.cn"\n',
            encoding="utf-8",
        )
        config = tmp_path / "casedesk.toml"
        config.write_text(
            f'database_url = "sqlite:///{tmp_path}/cases.db"\nrules_path = "{rules}"\n'
            "[jira]\n"
            f'enabled = true\nurl = "{fake.url}"\nflavor = "dc"\n'
            f'token = "{fake.token}"\nproject = "SUP"\ntime_zone = "UTC"\n',
            encoding="utf-8",
        )
        assert main(["jira", "sync", "--config", str(config)]) == 0
        assert "3 new cases" in capsys.readouterr().out
        printer = fake.add_issue("打印机卡纸")  # after the first import: assigned in this run
        assert main(["jira", "sync", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "1 new cases" in out and "1 assigned" in out
        assert printer.assignee is not None and printer.assignee.name == "wang.fang"
        assert main(["jira", "sync", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "0 new cases" in out and "0 assigned" in out
        assert fake.contract_violations == []

    disabled = tmp_path / "off.toml"
    disabled.write_text("[jira]\nenabled = false\n", encoding="utf-8")
    assert main(["jira", "sync", "--config", str(disabled)]) == 1
    assert "Jira is not enabled" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("users", "found", "why"),
    [
        ([JiraUser(name="mia", email="MIA@example.com")], "mia", ""),
        # Cloud leaves a hidden address out; a search by the address found only her.
        ([JiraUser(account_id="a1", display_name="Mia")], "a1", ""),
        (
            [JiraUser(account_id="a1"), JiraUser(account_id="a2")],
            None,
            "Jira finds 2 users for mia@example.com and shows not all addresses",
        ),
        (
            [JiraUser(name="mia.k", email="mia.k@example.com")],
            None,
            "Jira finds no user with the address mia@example.com who can be assigned SUP-1",
        ),
        ([], None, "Jira finds no user with the address mia@example.com"),
        (
            [
                JiraUser(name="a", email="mia@example.com"),
                JiraUser(name="b", email="mia@example.com"),
            ],
            None,
            "2 Jira users have the address mia@example.com",
        ),
    ],
)
def test_the_assignee_is_the_user_with_the_owners_address(
    users: list[JiraUser], found: str | None, why: str
) -> None:
    user, reason = by_address("mia@example.com", "SUP-1", users)
    assert (user.name or user.account_id if user else None) == found
    assert reason.startswith(why)
