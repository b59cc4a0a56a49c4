"""The outbox end to end: queue in the store, send to a real aiosmtpd server, mark, retry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.outbox_sender import RateLimits, send_due
from connectors.smtp_mailer import SmtpMailer
from connectors.store import CaseStore, OutboxStatus
from mapping.outgoing_mail import OutboxMessage, compose
from tests.mapping.mail_samples import IDENTITY, NOW, full_case
from tests.support.smtp_server import SmtpTestServer

SENDER = "bounces@example.cn"
USER = "zhang.sf@example.cn"
REPO = Path(__file__).resolve().parents[2]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def mail(
    number: int = 1, recipients: list[str] | None = None, kind: str = "confirmation"
) -> OutboxMessage:
    return compose(
        kind,
        full_case("en", number=f"202405-{number:03d}"),
        recipients=recipients or [USER],
        identity=IDENTITY,
        now=NOW,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CaseStore]:
    opened = CaseStore.open(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    yield opened
    opened.close()


@pytest.fixture
def mailer(smtp_server: SmtpTestServer) -> Iterator[SmtpMailer]:
    client = SmtpMailer(smtp_server.host, smtp_server.port, security="plain", timeout_seconds=5)
    yield client
    client.close()


def queue(store: CaseStore, *messages: OutboxMessage) -> list[int | None]:
    with store.transaction() as tx:
        return [tx.queue(message, now=NOW) for message in messages]


def test_queueing_is_idempotent_by_key(store_url: str) -> None:
    store = CaseStore.open(store_url)
    try:
        first = queue(store, mail(1), mail(2))
        again = queue(store, mail(1), mail(2))
        assert None not in first and again == [None, None]
        assert [item.key for item in store.outbox_items()] == [
            "202405-001/confirmation/1",
            "202405-002/confirmation/1",
        ]
    finally:
        store.close()


def test_claims_keep_two_senders_apart(store_url: str) -> None:
    store = CaseStore.open(store_url)
    try:
        queue(store, mail(1), mail(2))
        with store.transaction() as tx:
            mine = tx.claim_due_outbox(NOW, 10, until=NOW + timedelta(minutes=15))
        with store.transaction() as tx:
            theirs = tx.claim_due_outbox(NOW, 10, until=NOW + timedelta(minutes=15))
        assert len(mine) == 2 and theirs == []
    finally:
        store.close()


def test_sends_each_once_and_marks_it_with_the_servers_answer(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer
) -> None:
    queue(store, mail(1), mail(2), mail(3))
    clock = Clock()
    report = send_due(store, mailer, envelope_from=SENDER, clock=clock)
    assert len(report.sent) == 3
    assert len(smtp_server.wait_for(3)) == 3
    items = store.outbox_items()
    assert {item.status for item in items} == {OutboxStatus.SENT}
    assert all(item.server_answer and item.server_answer.startswith("250 ") for item in items)
    assert all(item.attempts == 1 and item.sent_at == NOW for item in items)

    clock.advance(hours=2)
    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).sent == []
    assert len(smtp_server.messages) == 3


def test_4xx_retried_with_backoff_then_sent(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer
) -> None:
    queue(store, mail(1))
    clock = Clock()
    smtp_server.fail_next(2, 451, "4.3.0 Try again later")

    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).retrying == [1]
    [item] = store.outbox_items()
    assert item.status is OutboxStatus.QUEUED and item.attempts == 1
    assert item.next_attempt_at == NOW + timedelta(minutes=1)
    assert item.last_error and "451 4.3.0" in item.last_error

    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).retrying == []  # not due
    clock.advance(minutes=1)
    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).retrying == [1]
    assert store.outbox_items()[0].next_attempt_at == clock.now + timedelta(minutes=2)
    clock.advance(minutes=2)
    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).sent == [1]
    assert store.outbox_items()[0].attempts == 3
    assert len(smtp_server.messages) == 1


def test_gives_up_after_max_attempts_and_says_why(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer
) -> None:
    queue(store, mail(1))
    smtp_server.fail_next(1, 451, "4.3.0 Try again later")
    report = send_due(store, mailer, envelope_from=SENDER, max_attempts=1, clock=Clock())
    assert report.failed == [1]
    [item] = store.outbox_items()
    assert item.status is OutboxStatus.FAILED
    assert item.last_error and item.last_error.startswith("gave up after 1 attempts")


def test_server_down_keeps_the_batch_waiting_without_burning_attempts(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer
) -> None:
    queue(store, mail(1), mail(2), mail(3))
    smtp_server.stop()
    clock = Clock()
    report = send_due(store, mailer, envelope_from=SENDER, clock=clock)
    assert report.retrying == [1] and report.sent == []
    items = {item.id: item for item in store.outbox_items()}
    assert items[1].attempts == 1 and "cannot connect" in (items[1].last_error or "")
    assert items[2].attempts == 0 and items[2].next_attempt_at == NOW  # released, due again

    smtp_server.start()
    clock.advance(minutes=1)
    assert sorted(send_due(store, mailer, envelope_from=SENDER, clock=clock).sent) == [1, 2, 3]
    assert len(smtp_server.wait_for(3)) == 3


def test_550_fails_with_its_reason_and_the_cli_lists_and_requeues_it(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    queue(store, mail(1))
    smtp_server.fail_next(1, 550, "5.7.1 Rejected by policy")
    assert send_due(store, mailer, envelope_from=SENDER, clock=Clock()).failed == [1]
    [item] = store.outbox_items()
    assert item.status is OutboxStatus.FAILED
    assert item.server_answer == "550 5.7.1 Rejected by policy"

    from flows.cli import app

    config = tmp_path / "casedesk.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "store.sqlite3"}"\n')
    runner = CliRunner()
    listed = runner.invoke(app, ["outbox", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "failed" in listed.output and "550 5.7.1 Rejected by policy" in listed.output

    retried = runner.invoke(app, ["outbox", "retry", "1", "--config", str(config)])
    assert retried.exit_code == 0, retried.output
    [item] = store.outbox_items()
    assert item.status is OutboxStatus.QUEUED and item.attempts == 0
    assert send_due(store, mailer, envelope_from=SENDER).sent == [1]

    refused = runner.invoke(app, ["outbox", "retry", "1", "--config", str(config)])
    assert refused.exit_code != 0 and "already sent" in str(refused.exception or refused.output)


def test_never_writes_to_role_or_suppressed_addresses(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer
) -> None:
    with store.transaction() as tx:
        tx.suppress_address("Bounced@Example.cn", "bounced: 550 5.1.1 user unknown", now=NOW)
    queue(
        store,
        mail(1, ["MAILER-DAEMON@example.cn"]),
        mail(2, ["no-reply@example.cn"]),
        mail(3, ["bounced@example.cn"]),
        mail(4, ["bounced@example.cn", USER]),
    )
    report = send_due(store, mailer, envelope_from=SENDER, clock=Clock())
    assert report.failed == [1, 2, 3] and report.sent == [4]
    items = {item.id: item for item in store.outbox_items()}
    assert "automatic or role address" in (items[1].last_error or "")
    assert "suppressed (bounced: 550 5.1.1 user unknown)" in (items[3].last_error or "")
    [received] = smtp_server.wait_for(1)
    assert received.rcpt_tos == (USER,)
    assert "not sent to bounced@example.cn" in (items[4].server_answer or "")


def test_per_recipient_limits_hold_and_never_drop(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer
) -> None:
    queue(store, *(mail(n) for n in range(1, 13)), mail(13, ["other@example.cn"]))
    clock = Clock()
    report = send_due(store, mailer, envelope_from=SENDER, clock=clock)
    assert len(report.sent) == 11 and report.held == [11, 12]  # 10 to USER, 1 to other
    held = {item.id: item for item in store.outbox_items()}[11]
    assert held.status is OutboxStatus.QUEUED and held.attempts == 0
    assert held.next_attempt_at == NOW + timedelta(minutes=10)

    clock.advance(minutes=10)
    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).sent == [11, 12]
    assert len(smtp_server.wait_for(13)) == 13


def test_daily_limit_holds_until_the_oldest_leaves_the_day(
    store: CaseStore, mailer: SmtpMailer
) -> None:
    limits = RateLimits(per_10min=10, per_day=3)
    clock = Clock()
    for n in range(1, 5):
        queue(store, mail(n))
        send_due(store, mailer, envelope_from=SENDER, clock=clock, limits=limits)
        clock.advance(hours=1)
    item = {item.id: item for item in store.outbox_items()}[4]
    assert item.status is OutboxStatus.QUEUED and item.next_attempt_at == NOW + timedelta(days=1)


_KILLED_SENDER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    from connectors.outbox_sender import send_due
    from connectors.smtp_mailer import SmtpMailer
    from connectors.store import CaseStore

    class DiesAfterTheServerAnswered:
        def __init__(self, inner):
            self.inner = inner
        def send(self, message, *, envelope_from):
            answer = self.inner.send(message, envelope_from=envelope_from)
            print("accepted", flush=True)
            time.sleep(60)  # killed here: after the server's 250, before the mark
            return answer
        def close(self):
            self.inner.close()

    url, port, now = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    mailer = DiesAfterTheServerAnswered(SmtpMailer("127.0.0.1", port, security="plain"))
    send_due(CaseStore.open(url), mailer, envelope_from="bounces@example.cn", clock=lambda: now)
    """
)


def test_killed_between_send_and_mark_resends_with_the_same_message_id(
    store: CaseStore, mailer: SmtpMailer, smtp_server: SmtpTestServer, tmp_path: Path
) -> None:
    queue(store, mail(1))
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SENDER, url, str(smtp_server.port), NOW.isoformat()],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "accepted"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    [first] = smtp_server.wait_for(1)
    [item] = store.outbox_items()
    assert item.status is OutboxStatus.QUEUED and item.attempts == 0  # the mark never happened

    clock = Clock()
    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).sent == []  # still claimed
    clock.advance(minutes=15)
    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).sent == [1]
    second = smtp_server.wait_for(2)[1]
    assert second.message["Message-ID"] == first.message["Message-ID"]
    assert second.raw == first.raw
    [item] = store.outbox_items()
    assert item.status is OutboxStatus.SENT and item.attempts == 1
    clock.advance(hours=1)
    assert send_due(store, mailer, envelope_from=SENDER, clock=clock).sent == []
    assert len(smtp_server.messages) == 2
