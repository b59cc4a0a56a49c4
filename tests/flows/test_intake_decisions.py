"""What intake does with each kind of message, on SQLite and PostgreSQL; quarantine and retry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.store import CaseStore, LedgerDecision
from flows.intake import ingest_batch, retry_quarantined
from mapping.case import CaseStatus, LogKind
from mapping.outgoing_mail import message_id_for
from tests.flows.intake_mail import IDENTITY, context, raw_message, report

_uids = iter(range(1, 10_000))


@pytest.fixture
def store(store_url: str) -> Iterator[CaseStore]:
    opened = CaseStore.open(store_url)
    yield opened
    opened.close()


def ingest(store: CaseStore, *raws: bytes, max_bytes: int = 5 * 1024 * 1024) -> None:
    ingest_batch(store, [raw_message(raw, next(_uids)) for raw in raws], context(max_bytes))


def last_entry(store: CaseStore):  # type: ignore[no-untyped-def]
    return store.ledger_entries()[-1]


def first_case(store: CaseStore) -> str:
    ingest(store, report(subject="登录失败", message_id="first@example.cn"))
    number = store.list_cases()[0].number
    assert number is not None
    return number


def test_every_kind_of_message(store: CaseStore) -> None:
    number = first_case(store)
    ours = message_id_for(f"{number}/confirmation/1", IDENTITY)

    ingest(
        store,
        report(
            subject="Re: 登录失败",
            body="好的，谢谢\n\n> 旧内容",
            headers={"In-Reply-To": f"<{ours}>"},
        ),
    )
    entry = last_entry(store)
    assert (entry.decision, entry.case_number) == (LedgerDecision.REPLY, number)
    assert entry.reason.startswith("matched via In-Reply-To")
    case = store.get_case(number)
    assert case.process_log[-1].kind == LogKind.EMAIL_IN
    assert "好的，谢谢" in case.process_log[-1].text and "旧内容" not in case.process_log[-1].text

    ingest(store, report(subject=f"回复：[Case {number}] 登录失败", body="又出现了"))
    assert last_entry(store).decision == LedgerDecision.REPLY
    assert "is the case's submitter" in last_entry(store).reason

    before = store.get_case(number)
    ingest(
        store,
        report(
            subject=f"Re: [Case {number}] 登录失败",
            body="我是别人",
            sender=("陌生人", "stranger@evil.example"),
        ),
    )
    held = last_entry(store)
    assert held.decision == LedgerDecision.HELD_FOR_REVIEW and held.case_number is None
    assert held.detail and held.detail["candidate_case"] == number
    assert store.get_case(number).process_log == before.process_log  # never applied

    ingest(
        store,
        report(
            subject=f"自动回复: [Case {number}] 登录失败",
            body="休假中",
            headers={"Auto-Submitted": "auto-replied", "In-Reply-To": f"<{ours}>"},
        ),
    )
    auto = last_entry(store)
    assert auto.decision == LedgerDecision.AUTO_REPLY and auto.case_number == number
    assert auto.reason == "auto-reply: Auto-Submitted=auto-replied"
    case = store.get_case(number)
    assert case.process_log[-1].kind == LogKind.AUTO_REPLY and case.status == CaseStatus.NEW

    bounce = (
        "From: MAILER-DAEMON@mx.example.cn\r\nTo: support@casedesk.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.cn>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="r"\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nfailed\r\n'
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; zhangsan@example.cn\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        f"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{ours}>\r\n\r\n--r--\r\n"
    ).encode()
    ingest(store, bounce)
    entry = last_entry(store)
    assert (entry.decision, entry.case_number) == (LedgerDecision.BOUNCE, number)
    assert store.get_case(number).process_log[-1].kind == LogKind.BOUNCE
    with store.transaction() as tx:
        assert "zhangsan@example.cn" in tx.suppressed(["zhangsan@example.cn"])

    ingest(store, report(subject=f"[Case {number}] 已收到", sender=("支持", IDENTITY.from_address)))
    assert last_entry(store).decision == LedgerDecision.OWN_MAIL
    assert len(store.list_cases()) == 1  # nothing above opened a case
    assert len(store.outbox_items()) == 1  # and nothing was answered but the first report


def test_reply_to_an_unknown_case_number_is_a_new_report(store: CaseStore) -> None:
    ingest(store, report(subject="Re: [Case 209912-001] 旧问题"))
    entry = last_entry(store)
    assert entry.decision == LedgerDecision.NEW_REPORT
    assert "does not exist" in entry.reason


def test_attachments_are_stored_as_blobs(store: CaseStore) -> None:
    content = b"\x00log bytes\xff" * 100
    ingest(store, report(attachment=content))
    (case,) = store.list_cases()
    (info,) = case.attachments
    assert (info.filename, info.size) == ("log.bin", len(content))
    assert store.blob(info.sha256) == content


def test_quarantine_then_retry(store: CaseStore) -> None:
    big = report(subject="很大的附件", attachment=b"x" * 4000)
    ingest(store, big, b"   ", max_bytes=2000)
    quarantined = store.ledger_entries(decision=LedgerDecision.QUARANTINED)
    assert [e.reason.split(" (")[0] for e in quarantined] == [
        "larger than max_message_bytes",
        "cannot parse: the message is empty",
    ]
    assert store.blob(quarantined[0].blob_sha256 or "") == big
    retried = retry_quarantined(store, quarantined[0].id or 0, context(2000))
    assert retried.decision == LedgerDecision.NEW_REPORT and retried.case_number
    again = retry_quarantined(store, quarantined[1].id or 0, context())
    assert again.decision == LedgerDecision.QUARANTINED
    assert len(store.list_cases()) == 1


def test_quarantine_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flows.cli import main

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    config = tmp_path / "casedesk.toml"
    config.write_text(f'database_url = "{url}"\nmax_message_bytes = 2048\n', encoding="utf-8")
    store = CaseStore.open(url)
    try:
        ingest(store, report(subject="大邮件", attachment=b"y" * 4000), max_bytes=2048)
    finally:
        store.close()
    assert main(["quarantine", "list", "-c", str(config)]) == 0
    listed = capsys.readouterr().out
    assert "larger than max_message_bytes" in listed
    entry_id = listed.splitlines()[2].split()[0]
    assert main(["quarantine", "retry", entry_id, "-c", str(config)]) == 0
    assert "new_report (case" in capsys.readouterr().out
    assert main(["quarantine", "retry", entry_id, "-c", str(config)]) == 1  # no longer there
