"""ingest_batch asks the ledger once per batch: copies inside one batch, and failures among them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from connectors.store import CaseStore, LedgerDecision, StoreTransaction
from flows import intake
from flows.intake import ingest_batch
from flows.routing import make_router
from flows.settings import Settings
from mapping.case import Case, LogKind
from mapping.parsed_email import ParsedEmail
from tests.flows.intake_mail import NOW, context, raw_message, report


@pytest.fixture
def store(store_url: str) -> Iterator[CaseStore]:
    opened = CaseStore.open(store_url)
    yield opened
    opened.close()


def test_copies_within_one_batch_and_across_batches_are_duplicates(store: CaseStore) -> None:
    first = report(subject="登录失败", message_id="same@example.cn")
    other = report(subject="导出失败", message_id="other@example.cn")
    no_id = b"From: a@example.cn\r\nSubject: no id\r\n\r\nbody\r\n"
    ingest_batch(
        store,
        [raw_message(raw, uid) for uid, raw in enumerate([first, other, first, no_id, no_id], 1)],
        context(),
    )
    ingest_batch(store, [raw_message(first, 6)], context())
    entries = store.ledger_entries()
    assert [entry.decision for entry in entries] == [
        LedgerDecision.NEW_REPORT,
        LedgerDecision.NEW_REPORT,
        LedgerDecision.DUPLICATE,
        LedgerDecision.NEW_REPORT,
        LedgerDecision.DUPLICATE,
        LedgerDecision.DUPLICATE,
    ]
    assert entries[2].reason == f"same mail as {entries[0].location} (mid:same@example.cn)"
    assert entries[2].case_number == entries[0].case_number
    assert entries[4].reason.startswith(f"same mail as {entries[3].location} (sha256:")
    assert entries[5].case_number == entries[0].case_number
    assert len(store.list_cases()) == 3


def test_a_crash_while_parsing_quarantines_only_that_message(
    store: CaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_parse = intake.parse_email

    def parse(raw: bytes) -> ParsedEmail:
        if b"boom" in raw:
            raise RuntimeError("parser bug")
        return real_parse(raw)

    monkeypatch.setattr(intake, "parse_email", parse)
    raws = [report(subject="ok 1"), report(subject="boom"), report(subject="ok 2")]
    done = ingest_batch(
        store, [raw_message(raw, uid) for uid, raw in enumerate(raws, 1)], context()
    )
    assert done.decisions == {"new_report": 2, "quarantined": 1}
    entry = store.ledger_entries(decision=LedgerDecision.QUARANTINED)[0]
    assert entry.reason == "RuntimeError: parser bug"
    assert entry.blob_sha256 is not None and store.blob(entry.blob_sha256) == raws[1]
    assert entry.identity == f"sha256:{entry.blob_sha256}"


def test_an_unexpected_failure_reruns_the_batch_with_a_savepoint_per_message(
    store: CaseStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch runs without savepoints first; a bug in one message's handling rolls it all
    back and runs it again guarded: that message is quarantined, the others go in once, with
    gap-free case numbers and one confirmation each."""
    calls: list[str] = []

    def route(tx: object, case: Case, parsed: ParsedEmail, prematched: object) -> None:
        calls.append(parsed.subject)
        if parsed.subject == "boom":
            raise RuntimeError("routing bug")

    ctx = context()
    ctx.route_new_case = route
    raws = [report(subject="ok 1"), report(subject="boom"), report(subject="ok 2")]
    with caplog.at_level(logging.WARNING, logger="flows.intake"):
        done = ingest_batch(store, [raw_message(raw, uid) for uid, raw in enumerate(raws, 1)], ctx)
    assert "running the batch again with a savepoint per message" in caplog.text
    assert calls == ["ok 1", "boom", "ok 1", "boom", "ok 2"]
    assert done.decisions == {"new_report": 2, "quarantined": 1}
    assert [case.number for case in store.list_cases()] == done.new_cases
    assert [number[-3:] for number in done.new_cases] == ["001", "002"]
    assert len(store.outbox_items()) == 2
    entry = store.ledger_entries(decision=LedgerDecision.QUARANTINED)[0]
    assert entry.reason == "RuntimeError: routing bug" and entry.location.endswith("/2")


def test_a_clean_batch_runs_without_savepoints(store: CaseStore) -> None:
    savepoints: list[str] = []
    raws = [report(subject=f"ok {n}") for n in range(3)]
    real_transaction = store.transaction

    @contextmanager
    def counting() -> Iterator[StoreTransaction]:
        with real_transaction() as tx:
            event.listen(tx.connection, "savepoint", lambda *args: savepoints.append("sp"))
            yield tx

    store.transaction = counting  # type: ignore[method-assign]
    done = ingest_batch(
        store, [raw_message(raw, uid) for uid, raw in enumerate(raws, 1)], context()
    )
    assert done.decisions == {"new_report": 3}
    assert savepoints == []


def test_a_reply_in_the_same_batch_finds_the_case_opened_earlier_in_it(store: CaseStore) -> None:
    """New cases are written with the batch's other rows at the end, but every read of the cases
    sees them: a reply right behind its report is applied to that report's case."""
    number = f"{NOW.astimezone(ZoneInfo('Asia/Shanghai')):%Y%m}-001"
    raws = [
        report(subject="登录失败"),
        report(subject=f"Re: [Case {number}] 登录失败", body="今天又试了一次，还是不行。"),
    ]
    done = ingest_batch(
        store, [raw_message(raw, uid) for uid, raw in enumerate(raws, 1)], context()
    )
    assert done.new_cases == [number]
    assert done.decisions == {"new_report": 1, "reply": 1}
    case = store.get_case(number)
    assert case.process_log[-1].text.startswith("reply from zhangsan@example.cn: 今天又试了一次")


def test_a_batch_has_one_time_as_a_transaction_does(store: CaseStore, tmp_path: Path) -> None:
    """Its cases, their rule log entries and its ledger rows carry the batch's time, however
    often the clock is read; the next batch has its own."""
    ticks = iter(range(1000))
    ctx = context()
    ctx.clock = lambda: NOW + timedelta(seconds=next(ticks))
    ctx.route_new_case = make_router(Settings(data_dir=tmp_path, database_url="sqlite://"))
    raws = [report(subject=f"服务器宕机 {n}", message_id=f"t{n}@example.cn") for n in range(4)]
    ingest_batch(store, [raw_message(raw, uid) for uid, raw in enumerate(raws[:3], 1)], ctx)
    ingest_batch(store, [raw_message(raws[3], 4)], ctx)
    cases = store.list_cases()
    first, second = {case.created_at for case in cases[:3]}, cases[3].created_at
    assert first == {NOW} and second > NOW
    for case in cases:
        assert {entry.at for entry in case.process_log} == {case.created_at}
        assert case.due_at is not None and case.due_at > case.created_at
    recorded = [entry.recorded_at for entry in store.ledger_entries()]
    assert recorded[:3] == [NOW] * 3 and recorded[3] == second
    # The shipped rules decide the same for the first batch's three reports, at one time.
    rules = [[e for e in case.process_log if e.kind is LogKind.RULE] for case in cases[:3]]
    assert len(rules[0]) >= 3 and rules[0] == rules[1] == rules[2]
