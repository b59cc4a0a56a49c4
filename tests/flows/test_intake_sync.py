"""Intake end to end on a real Dovecot: sync, exactly-once under crashes, two mailboxes, reconcile.

Every store test runs on SQLite and on PostgreSQL (`store_url`). `sync()` is what the Prefect
flow does, minus Prefect: finish marks a crash left behind, fetch after the cursor, ingest a
batch (one transaction with the cursor), mark it, only after the commit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.imap_mailbox import ImapMailbox
from connectors.mailbox import MailboxCursor, RawMessage
from connectors.store import CaseStore, LedgerDecision
from flows.intake import IntakeContext, IntakeReport, finish_pending_marks, ingest_batch
from flows.reconcile import reconcile_mailbox
from tests.flows.intake_mail import context, report
from tests.support.servers_plugin import ImapUser

ROOT = Path(__file__).resolve().parents[2]


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no handler of ours swallows it."""


def mailbox_for(user: ImapUser, name: str = "support") -> ImapMailbox:
    return ImapMailbox(
        name,
        host=user.host,
        port=user.port,
        security="plain",
        user=user.name,
        password=SecretStr(user.password),
    )


def sync(
    store: CaseStore, mailbox: ImapMailbox, ctx: IntakeContext, batch_size: int = 3
) -> IntakeReport:
    name = f"mailbox:{mailbox.name}"
    stored = store.watermark(name)
    cursor = MailboxCursor.model_validate_json(stored) if stored else MailboxCursor()
    finish_pending_marks(store, mailbox, cursor)
    total = IntakeReport()
    for batch in mailbox.fetch_new(cursor, batch_size):
        cursor = mailbox.cursor_after(batch)
        total.merge(ingest_batch(store, batch, ctx, watermark=(name, cursor.model_dump_json())))
        mailbox.mark_done(batch)
    return total


def case_subjects(store: CaseStore) -> list[str]:
    return sorted(case.subject for case in store.list_cases())


@pytest.fixture
def store(store_url: str) -> CaseStore:
    opened = CaseStore.open(store_url)
    yield opened  # type: ignore[misc]
    opened.close()


def load(user: ImapUser, count: int) -> list[str]:
    subjects = [f"问题 {i:02d}" for i in range(count)]
    for subject in subjects:
        user.append(report(subject=subject))
    return subjects


def test_sync_makes_each_mail_a_case_once_and_a_second_run_changes_nothing(
    store: CaseStore, imap_user: ImapUser
) -> None:
    subjects = load(imap_user, 7)
    mailbox = mailbox_for(imap_user)
    try:
        first = sync(store, mailbox, context())
        assert len(first.new_cases) == 7
        assert case_subjects(store) == subjects
        outbox = store.outbox_items()
        assert len(outbox) == 7  # one confirmation per case
        fetched_before = mailbox.bodies_fetched
        second = sync(store, mailbox, context())
        assert second.fetched == 0 and mailbox.bodies_fetched == fetched_before
        assert case_subjects(store) == subjects and len(store.outbox_items()) == 7
        assert (
            mailbox.unmarked_uids(
                MailboxCursor.model_validate_json(store.watermark("mailbox:support") or "{}")
            )
            == []
        )
    finally:
        mailbox.close()


def test_same_mail_in_two_mailboxes_is_one_case(
    store: CaseStore, imap_user: ImapUser, dovecot: object
) -> None:
    from tests.support.servers_plugin import ImapUser as User

    server = imap_user.server
    server.add_user("second-" + imap_user.name, "pw-second")
    other = User("second-" + imap_user.name, "pw-second", imap_user.host, imap_user.port, server)
    try:
        raw = report(subject="两个邮箱都收到", message_id="shared-1@example.cn")
        imap_user.append(raw)
        other.append(b"Delivered-To: ops@casedesk.test\r\n" + raw)  # another copy, other bytes
        first, second = mailbox_for(imap_user, "support"), mailbox_for(other, "ops")
        try:
            sync(store, first, context())
            sync(store, second, context())
        finally:
            first.close()
            second.close()
        assert case_subjects(store) == ["两个邮箱都收到"]
        duplicates = store.ledger_entries(decision=LedgerDecision.DUPLICATE)
        assert len(duplicates) == 1 and duplicates[0].location.startswith("ops/")
        assert duplicates[0].case_number == store.list_cases()[0].number
    finally:
        server.remove_user(other.name)


def test_uidvalidity_change_ingests_nothing_twice(store: CaseStore, imap_user: ImapUser) -> None:
    subjects = load(imap_user, 4)
    mailbox = mailbox_for(imap_user)
    try:
        sync(store, mailbox, context())
        mailbox.close()
        imap_user.change_uidvalidity()
        imap_user.append(report(subject="之后的新邮件"))
        again = sync(store, mailbox, context())
    finally:
        mailbox.close()
    assert again.fetched == 5 and len(again.new_cases) == 1
    assert again.decisions[LedgerDecision.DUPLICATE.value] == 4
    assert case_subjects(store) == sorted([*subjects, "之后的新邮件"])


class CrashAfterCommit(ImapMailbox):
    """Dies in mark_done: the batch is committed, the flags never get set."""

    def mark_done(self, batch: Sequence[RawMessage]) -> None:
        raise Killed


def test_crash_between_commit_and_flagging(store: CaseStore, imap_user: ImapUser) -> None:
    subjects = load(imap_user, 5)
    crashing = CrashAfterCommit(
        "support",
        host=imap_user.host,
        port=imap_user.port,
        security="plain",
        user=imap_user.name,
        password=SecretStr(imap_user.password),
    )
    with pytest.raises(Killed):
        sync(store, crashing, context(), batch_size=2)
    crashing.close()
    assert len(store.list_cases()) == 2  # the first batch committed, then the "crash"
    mailbox = mailbox_for(imap_user)
    try:
        sync(store, mailbox, context(), batch_size=2)
        cursor = MailboxCursor.model_validate_json(store.watermark("mailbox:support") or "{}")
        assert mailbox.unmarked_uids(cursor) == []  # the crashed batch got its flags too
        assert sync(store, mailbox, context()).fetched == 0
    finally:
        mailbox.close()
    assert case_subjects(store) == subjects


def test_crash_between_fetch_and_commit(store: CaseStore, imap_user: ImapUser) -> None:
    subjects = load(imap_user, 5)
    seen: list[str] = []

    def die_on_the_fourth(tx: object, case: object, parsed: object, prematched: object) -> None:
        seen.append("x")
        if len(seen) == 4:
            raise Killed

    crashing_context = context()
    crashing_context.route_new_case = die_on_the_fourth
    mailbox = mailbox_for(imap_user)
    try:
        with pytest.raises(Killed):
            sync(store, mailbox, crashing_context, batch_size=3)
        assert len(store.list_cases()) == 3  # batch 2 rolled back whole, cursor with it
        sync(store, mailbox, context(), batch_size=3)
        assert sync(store, mailbox, context()).fetched == 0
    finally:
        mailbox.close()
    assert case_subjects(store) == subjects
    assert len(store.ledger_entries()) == 5


KILLER = textwrap.dedent(
    """
    import os, sys
    from pydantic import SecretStr
    from connectors.imap_mailbox import ImapMailbox
    from connectors.store import CaseStore
    from tests.flows.intake_mail import context
    from tests.flows.test_intake_sync import sync
    url, host, port, user, password, where = sys.argv[1:]
    store = CaseStore.open(url)
    mailbox = ImapMailbox("support", host=host, port=int(port), security="plain", user=user,
                          password=SecretStr(password))
    calls = []
    def hook(tx, case, parsed, prematched):
        calls.append(1)
        if where == "fetch-commit" and len(calls) == 3:
            os._exit(9)  # killed in the middle of a batch's transaction
    ctx = context()
    ctx.route_new_case = hook
    if where == "commit-flag":
        def mark_done(batch):
            os._exit(9)  # killed right after the first commit
        mailbox.mark_done = mark_done
    sync(store, mailbox, ctx, batch_size=2)
    """
)


@pytest.mark.parametrize("where", ["fetch-commit", "commit-flag"])
def test_killed_process_loses_and_doubles_nothing(
    store_url: str, imap_user: ImapUser, where: str
) -> None:
    subjects = load(imap_user, 5)
    CaseStore.open(store_url).close()  # migrate before the child runs
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLER,
            store_url,
            imap_user.host,
            str(imap_user.port),
            imap_user.name,
            imap_user.password,
            where,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 9, done.stderr.decode()
    store = CaseStore.open(store_url)
    mailbox = mailbox_for(imap_user)
    try:
        sync(store, mailbox, context())
        assert sync(store, mailbox, context()).fetched == 0
        cursor = MailboxCursor.model_validate_json(store.watermark("mailbox:support") or "{}")
        assert mailbox.unmarked_uids(cursor) == []
        assert case_subjects(store) == subjects
        assert len(store.ledger_entries()) == 5
    finally:
        mailbox.close()
        store.close()


def test_reconcile_reports_mail_that_was_never_ingested(
    store: CaseStore, imap_user: ImapUser
) -> None:
    load(imap_user, 3)
    mailbox = mailbox_for(imap_user)
    try:
        batch = next(mailbox.fetch_new(MailboxCursor(), 10))
        # Simulate a lost message: commit 1 and 3 with a cursor past 2.
        ingest_batch(store, [batch[0], batch[2]], context())
        cursor = mailbox.cursor_after(batch)
        imap_user.append(report(subject="waiting"))
        today = datetime.now(UTC).date()
        result = reconcile_mailbox(
            store, mailbox, cursor, since=today - timedelta(days=1), until=today
        )
    finally:
        mailbox.close()
    assert (result.listed, result.ingested) == (4, 2)
    assert [m.uid for m in result.never_ingested] == [2]
    assert [m.uid for m in result.waiting] == [4]
    assert not result.ok
