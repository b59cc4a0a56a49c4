"""The rules' content conditions checked where mail is parsed: the same cases either way.

The same batches are ingested with the prematch done in a parse worker, in-process, and not at
all; every case must come out the same (priority, type, tags, owner, due time, the rules' log),
round-robin order included. A prematch made by other rules is never used, and a prematch that
fails loses no mail.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.mailbox import RawMessage
from connectors.store import CaseStore
from flows.intake import IntakeContext, ingest_batch
from flows.parse_ahead import ParseAhead, Parsed
from flows.routing import CaseRouter, make_router
from flows.runtime import intake_context
from flows.settings import Settings
from mapping.case import LogKind
from mapping.parsed_email import ParsedEmail
from mapping.rules import Prematched, RuleEngine
from tests.flows.intake_mail import raw_message
from tests.support.postgres import create_database, drop_database

ZONE = ZoneInfo("Asia/Shanghai")
MAX_BYTES = 5 * 1024 * 1024
#: When each batch arrives (the intake clock): a weekday afternoon, a Saturday, a night.
BATCH_TIMES = [
    datetime(2024, 5, 20, 14, 0, tzinfo=ZONE),
    datetime(2024, 5, 25, 11, 0, tzinfo=ZONE),
    datetime(2024, 5, 21, 2, 0, tzinfo=ZONE),
    datetime(2024, 5, 22, 10, 30, tzinfo=ZONE),
]
GROUP = ["a@example.com", "b@example.com", "c@example.com"]

RULES = f"""
[groups]
l1 = {GROUP!r}
ops = ["ops1@example.com", "ops2@example.com"]

[[rule]]
id = "outage"
when.keywords = ["宕机", "outage"]
then.priority = "P0"
then.problem_type = "system_fault"
then.collaborators = [{{ group = "ops", strategy = "round_robin" }}]

[[rule]]
id = "faults"
when.keywords = ["报错", "error", "失败"]
then.problem_type = "system_fault"
then.priority = "P1"
then.owner = {{ group = "l1", strategy = "round_robin" }}

[[rule]]
id = "how-to"
when.keywords = ["如何", "how to"]
then.problem_type = "how_to"

[[rule]]
id = "vip"
when.sender = ["@vip.example.com"]
then.raise_priority = true

[[rule]]
id = "logs"
when.attachment_types = [".log"]
then.tags = ["附日志"]

[[rule]]
id = "working-hours"
when.weekdays = ["mon", "tue", "wed", "thu", "fri"]
when.hours = ["9-18"]
then.tags = ["工作时间"]

[[rule]]
id = "weekend"
when.weekdays = ["sat", "sun"]
then.tags = ["周末"]

[[rule]]
id = "night-errors"
when.keywords = ["error", "报错"]
when.hours = ["18-9"]
then.priority = "P0"
override = true
"""

#: Other rules, in another order: their prematched positions would mislead these rules.
OTHER_RULES = """
[[rule]]
id = "everything"
then.priority = "P0"
then.tags = ["其他规则"]

[[rule]]
id = "questions"
when.keywords = ["如何", "how to"]
then.problem_type = "improvement"
"""

_numbers = itertools.count(1)


def mail(
    subject: str,
    body: str,
    *,
    sender: str = "张三 <zhangsan@example.cn>",
    attachment: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@casedesk.test"
    message["Subject"] = subject
    message["Date"] = format_datetime(BATCH_TIMES[0])
    message["Message-ID"] = f"<p{next(_numbers)}@example.cn>"
    message.set_content(body)
    if attachment is not None:
        message.add_attachment(
            b"log line\n" * 8, maintype="text", subtype="plain", filename=attachment
        )
    return message.as_bytes()


VIP = "王总 <wang@vip.example.com>"
MAILS = [
    mail("登录报错", "登录时报错：验证码失效"),
    mail("服务器宕机", "所有用户都进不去"),
    mail("如何导出报表", "请问如何导出月报"),
    mail("Export error", "Export failed with error 500", sender="Bob <bob@example.com>"),
    mail("你好", "麻烦看一下"),
    mail("紧急：支付失败", "支付一直失败", sender=VIP),
    mail("日志", "上传失败，日志见附件", attachment="ERROR.LOG"),
    mail("Production outage", "outage for all users", sender=VIP),
    mail("导入报错", "导入 Excel 报错"),
    mail("how to reset my password", "How to reset it?", sender="Ann <ann@example.com>"),
    mail("同步失败", "订单同步失败"),
    mail("报表", "how to read the attached log", attachment="Trace.Log"),
]


def batches() -> list[list[RawMessage]]:
    """Four batches of three, the same messages (and locations) for every run."""
    messages = [raw_message(raw, uid) for uid, raw in enumerate(MAILS, 1)]
    return [messages[start : start + 3] for start in range(0, len(messages), 3)]


# Stores and contexts -----------------------------------------------------------------------
@pytest.fixture
def new_store(store_url: str, tmp_path: Path) -> Iterator[Callable[[], CaseStore]]:
    """Fresh, empty stores of the test's kind (SQLite or PostgreSQL), one per call."""
    opened: list[CaseStore] = []
    made: list[str] = []
    first = [store_url]

    def make() -> CaseStore:
        if first:
            url = first.pop()
        elif store_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'store-{len(opened)}.sqlite3'}"
        else:
            url = create_database()
            made.append(url)
        store = CaseStore.open(url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    for url in made:
        drop_database(url)


def settings_for(tmp_path: Path, rules: str = RULES, name: str = "rules.toml") -> Settings:
    path = tmp_path / name
    path.write_text(rules, encoding="utf-8")
    return Settings(rules_path=path, data_dir=tmp_path, database_url="sqlite://")


def make_context(tmp_path: Path) -> tuple[IntakeContext, CaseRouter]:
    context = intake_context(settings_for(tmp_path))
    router = context.route_new_case
    assert isinstance(router, CaseRouter)
    assert context.prematch is not None
    return context, router


def at_batch(context: IntakeContext, router: CaseRouter, index: int) -> None:
    """The intake clock (and the router's) for the batch: the same in every run."""
    now = BATCH_TIMES[index].astimezone(UTC)
    context.clock = router.clock = lambda: now


class Calls:
    """Counts the router's engine's `decide` and `decide_prematched` (and still runs them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, engine: RuleEngine) -> None:
        self.decide = self.prematched = 0
        decide, decide_prematched = engine.decide, engine.decide_prematched

        def counting_decide(*args: Any, **kwargs: Any) -> Any:
            self.decide += 1
            return decide(*args, **kwargs)

        def counting_decide_prematched(*args: Any, **kwargs: Any) -> Any:
            self.prematched += 1
            return decide_prematched(*args, **kwargs)

        monkeypatch.setattr(engine, "decide", counting_decide)
        monkeypatch.setattr(engine, "decide_prematched", counting_decide_prematched)


def ingest_in_process(store: CaseStore, context: IntakeContext, router: CaseRouter) -> None:
    for index, batch in enumerate(batches()):
        at_batch(context, router, index)
        report = ingest_batch(store, batch, context)
        assert report.decisions == {"new_report": len(batch)}


def ingest_with_worker(
    store: CaseStore, context: IntakeContext, router: CaseRouter
) -> list[dict[str, Parsed]]:
    """Through a parse worker that prematches; what the worker sent back, by batch."""
    ahead_parsed: list[dict[str, Parsed]] = []
    with ParseAhead(MAX_BYTES, workers=1, prematch=context.prematch) as ahead:
        for index, (batch, parsed) in enumerate(ahead.pipeline(iter(batches()))):
            at_batch(context, router, index)
            if parsed is not None:
                ahead_parsed.append(parsed)
            report = ingest_batch(store, batch, context, parsed=parsed)
            assert report.decisions == {"new_report": len(batch)}
        assert ahead.batches_parsed_ahead > 0
    assert len(ahead_parsed) == ahead.batches_parsed_ahead
    return ahead_parsed


Summary = tuple[Any, ...]


def summaries(store: CaseStore) -> dict[str | None, Summary]:
    """Each case by its mail's Message-ID: what the rules decided, and their log (no times)."""
    cases = store.list_cases()
    assert len(cases) == len(MAILS)
    return {
        case.source.message_id: (
            case.priority,
            case.problem_type,
            tuple(case.tags),
            case.owner,
            tuple(case.collaborators),
            case.due_at,
            case.status,
            case.related_system,
            tuple(
                (entry.kind, entry.text)
                for entry in case.process_log
                if entry.kind in (LogKind.RULE, LogKind.ASSIGNMENT)
            ),
        )
        for case in cases
    }


def baseline(new_store: Callable[[], CaseStore], tmp_path: Path) -> dict[str | None, Summary]:
    """The cases with no prematch at all: the router matches every rule itself."""
    context, router = make_context(tmp_path / "baseline")
    context.prematch = None
    store = new_store()
    ingest_in_process(store, context, router)
    return summaries(store)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    for name in ("baseline", "run", "other"):
        (tmp_path / name).mkdir()
    return tmp_path


# The same cases three ways ----------------------------------------------------------------
def test_worker_in_process_and_no_prematch_give_the_same_cases(
    new_store: Callable[[], CaseStore], tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = baseline(new_store, tmp)

    # (a) prematched in a parse worker (the first batch in-process, as ParseAhead does).
    context, router = make_context(tmp / "run")
    calls = Calls(monkeypatch, router.engine)
    store = new_store()
    ahead = ingest_with_worker(store, context, router)
    token = router.engine.conditions.token
    items = [item for parsed in ahead for item in parsed.values()]
    assert items and all(item.prematched is not None for item in items)
    assert {item.prematched.token for item in items if item.prematched} == {token}
    assert any(item.prematched and item.prematched.matches for item in items)
    # Every new report was decided from what was prematched: none was matched again.
    assert (calls.decide, calls.prematched) == (0, len(MAILS))
    assert summaries(store) == expected

    # (b) prematched in-process, no worker.
    context, router = make_context(tmp / "other")
    calls = Calls(monkeypatch, router.engine)
    store = new_store()
    ingest_in_process(store, context, router)
    assert (calls.decide, calls.prematched) == (0, len(MAILS))
    assert summaries(store) == expected


def test_the_cases_are_what_the_rules_say(new_store: Callable[[], CaseStore], tmp: Path) -> None:
    """The expected cases are right by the rules (else agreeing with them proves little)."""
    cases = baseline(new_store, tmp)
    ordered = list(cases.values())  # the cases were numbered in the order the mails came
    owners = [summary[3] for summary in ordered]
    tags = [set(summary[2]) for summary in ordered]
    priorities = [summary[0].value for summary in ordered]
    types = [summary[1].value for summary in ordered]
    # Round robin over the fault reports, in the order the mails came.
    faults = [0, 3, 5, 6, 8, 10]
    assert [owners[i] for i in faults] == [*GROUP, *GROUP]
    assert {owners[i] for i in range(len(MAILS)) if i not in faults} == {None}
    # Time conditions: batch 0 a weekday afternoon, 1 a Saturday, 2 a night, 3 a weekday.
    assert [("工作时间" in t, "周末" in t) for t in tags] == [
        *[(True, False)] * 3,
        *[(False, True)] * 3,
        *[(False, False)] * 3,
        *[(True, False)] * 3,
    ]
    # Night errors are P0 (override), by day they are P1; the VIP's are raised.
    assert priorities[0] == "P1" and priorities[8] == "P0" and priorities[3] == "P1"
    assert priorities[5] == "P0" and priorities[7] == "P0"
    assert types[2] == "how_to" and types[4] == "untriaged" and types[1] == "system_fault"
    assert "附日志" in tags[6] and "附日志" in tags[11]
    texts = [text for _, text in ordered[8][-1]]
    assert any("by rule night-errors" in text and "hour 02" in text for text in texts), texts


# Another rule set's prematch ----------------------------------------------------------------
def test_a_prematch_by_other_rules_is_not_used(
    new_store: Callable[[], CaseStore], tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = baseline(new_store, tmp)
    for other in (
        make_router(settings_for(tmp / "other", OTHER_RULES, "other.toml")),
        make_router(settings_for(tmp / "other")),  # the same file, compiled again
    ):
        context, router = make_context(tmp / "run")
        assert other.engine.conditions.token != router.engine.conditions.token
        context.prematch = other.prematch
        calls = Calls(monkeypatch, router.engine)
        store = new_store()
        ingest_in_process(store, context, router)
        # Every report was matched again from its facts; none finished another's prematch.
        assert (calls.decide, calls.prematched) == (len(MAILS), 0)
        assert summaries(store) == expected


def test_the_router_decides_from_the_facts_given_a_foreign_prematched(
    new_store: Callable[[], CaseStore], tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Called directly: a prematched whose token is not its engine's is ignored, even one
    that claims every rule matched."""
    _, router = make_context(tmp / "run")
    calls = Calls(monkeypatch, router.engine)
    forged = Prematched("not-this-engine", tuple((i, ()) for i in range(8)))
    store = new_store()
    seen: list[tuple[str, str]] = []
    original = router.__call__

    def hook(tx: Any, case: Any, parsed: ParsedEmail, prematched: Prematched | None) -> None:
        seen.append((parsed.subject, "forged" if prematched is forged else "own"))
        original(tx, case, parsed, forged)

    context = intake_context(settings_for(tmp / "run"))
    context.route_new_case = hook
    context.prematch = None
    at_batch(context, router, 0)
    ingest_batch(store, batches()[0], context)
    assert (calls.decide, calls.prematched) == (3, 0)
    cases = store.list_cases()
    assert [case.owner for case in cases] == ["a@example.com", None, None]
    assert all("其他规则" not in case.tags and "周末" not in case.tags for case in cases)
    assert [case.priority.value for case in cases] == ["P1", "P0", "P2"]


# A prematch that fails ----------------------------------------------------------------------
def failing_prematch(parsed: ParsedEmail, mailbox: str) -> Prematched:
    """A prematch that breaks on every mail (module level: a worker can unpickle it)."""
    raise RuntimeError(f"rules broke on {mailbox}")


def test_a_failing_prematch_loses_no_mail_in_process(
    new_store: Callable[[], CaseStore],
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = baseline(new_store, tmp)
    context, router = make_context(tmp / "run")
    context.prematch = lambda parsed, mailbox: 1 / 0  # type: ignore[assignment,return-value]
    calls = Calls(monkeypatch, router.engine)
    store = new_store()
    with caplog.at_level(logging.WARNING):
        ingest_in_process(store, context, router)
    assert summaries(store) == expected
    assert (calls.decide, calls.prematched) == (len(MAILS), 0)
    warnings = [r for r in caplog.records if "checking the rules early failed" in r.getMessage()]
    assert len(warnings) == len(MAILS)
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert "ZeroDivisionError" in warnings[0].getMessage()


def test_a_failing_prematch_loses_no_mail_in_a_worker(
    new_store: Callable[[], CaseStore], tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = baseline(new_store, tmp)
    context, router = make_context(tmp / "run")
    context.prematch = failing_prematch
    calls = Calls(monkeypatch, router.engine)
    store = new_store()
    ahead = ingest_with_worker(store, context, router)
    items = [item for parsed in ahead for item in parsed.values()]
    assert items and all(item.parsed is not None and item.prematched is None for item in items)
    assert summaries(store) == expected
    assert (calls.decide, calls.prematched) == (len(MAILS), 0)
