"""Replies held for review: a person accepts, opens a new case, or dismisses them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.store import CaseStore, LedgerDecision
from flows.cli import main
from flows.intake import ReviewAction, ingest_batch, resolve_held
from mapping.case import LogKind
from mapping.errors import CasedeskError
from tests.flows.intake_mail import context, raw_message, report

_uids = iter(range(1, 10_000))
STRANGER = ("王五", "wangwu@partner.example")


@pytest.fixture
def store(store_url: str) -> Iterator[CaseStore]:
    opened = CaseStore.open(store_url)
    yield opened
    opened.close()


def ingest(store: CaseStore, raw: bytes) -> None:
    ingest_batch(store, [raw_message(raw, next(_uids))], context())


def held_reply(store: CaseStore) -> tuple[str, int]:
    """A case, and a reply to it from someone not on it: held, with its ledger id."""
    ingest(store, report(subject="报表导出失败", message_id="origin@example.cn"))
    number = store.list_cases()[0].number or ""
    ingest(
        store,
        report(
            subject=f"Re: [Case {number}] 报表导出失败", body="我们部门也遇到了", sender=STRANGER
        ),
    )
    [held] = store.ledger_entries(decision=LedgerDecision.HELD_FOR_REVIEW)
    assert held.id is not None
    return number, held.id


def test_accept_applies_the_reply_and_trusts_the_sender_next_time(store: CaseStore) -> None:
    number, entry_id = held_reply(store)
    entry = resolve_held(store, entry_id, ReviewAction.ACCEPT, context(), reviewer="lead")
    assert (entry.decision, entry.case_number) == (LedgerDecision.REPLY, number)
    assert entry.reason.startswith("accept by lead at review")
    case = store.get_case(number)
    assert STRANGER[1] in case.collaborators
    assert case.process_log[-2].kind is LogKind.ASSIGNMENT
    assert case.process_log[-1].kind is LogKind.EMAIL_IN
    assert "我们部门也遇到了" in case.process_log[-1].text

    ingest(
        store, report(subject=f"Re: [Case {number}] 报表导出失败", body="补充日志", sender=STRANGER)
    )
    latest = store.ledger_entries()[-1]
    assert latest.decision is LedgerDecision.REPLY
    assert "is the case's collaborator" in latest.reason


def test_new_opens_a_case_of_its_own_and_confirms_it(store: CaseStore) -> None:
    number, entry_id = held_reply(store)
    entry = resolve_held(
        store, entry_id, ReviewAction.NEW_CASE, context(), reviewer="lead", note="另一个部门"
    )
    assert entry.decision is LedgerDecision.NEW_REPORT
    assert entry.case_number not in (None, number)
    new_case = store.get_case(entry.case_number or "")
    assert new_case.submitter.email == STRANGER[1]
    confirmations = [i for i in store.outbox_items() if i.case_number == new_case.number]
    assert [(i.kind, i.recipients) for i in confirmations] == [("confirmation", [STRANGER[1]])]
    assert STRANGER[1] not in store.get_case(number).collaborators


def test_dismiss_keeps_it_unapplied(store: CaseStore) -> None:
    number, entry_id = held_reply(store)
    before = store.get_case(number)
    entry = resolve_held(
        store, entry_id, ReviewAction.DISMISS, context(), reviewer="lead", note="spam"
    )
    assert entry.decision is LedgerDecision.SKIPPED
    assert entry.reason.startswith("dismiss by lead at review: spam (matched via subject token")
    assert entry.blob_sha256 and store.blob(entry.blob_sha256)
    assert store.get_case(number).process_log == before.process_log
    with pytest.raises(CasedeskError, match="is not held for review"):
        resolve_held(store, entry_id, ReviewAction.ACCEPT, context(), reviewer="lead")


def test_the_review_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "casedesk.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path}/cases.db"\n', encoding="utf-8")
    store = CaseStore.open(f"sqlite:///{tmp_path}/cases.db")
    try:
        number, entry_id = held_reply(store)
    finally:
        store.close()
    assert main(["review", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert str(entry_id) in listed and number in listed and "held for review" in listed
    assert main(["review", "accept", str(entry_id), "--by", "lead", "--config", str(config)]) == 0
    assert f"reply (case {number})" in capsys.readouterr().out
    assert main(["review", "list", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "(none)"
