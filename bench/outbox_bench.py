"""Outbox throughput: 2,000 queued messages through send_due against a bare smtplib loop.

Both runs send the same composed bytes to the same loopback aiosmtpd server over one connection;
the outbox run also claims, checks limits and suppression, and marks messages sent (SQLite; by
default 20 marks per commit, and once more with one commit per message for comparison).
Prints messages per second for each and the ratio (target: >= 0.5).

    /tmp/probe-venv/bin/python bench/outbox_bench.py [--messages 2000]
"""

from __future__ import annotations

import argparse
import logging
import smtplib
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from connectors.outbox_sender import RateLimits, send_due
from connectors.smtp_mailer import SmtpMailer
from connectors.store import CaseStore, OutboxStatus
from mapping.case import Case, CaseSource, Person, Priority, SourceKind
from mapping.outgoing_mail import OutboxMessage, SenderIdentity, compose

SENDER = "bounces@example.cn"
IDENTITY = SenderIdentity(
    from_address="support@example.cn",
    from_name="技术支持 Support",
    message_id_domain="casedesk.example.cn",
    signing_secret=SecretStr("bench"),
)


class Counter:
    """Accepts everything and only counts: the server should not be what we measure."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.count += 1
        return "250 2.0.0 OK"


def messages(count: int) -> list[OutboxMessage]:
    now = datetime.now(UTC)
    out = []
    for n in range(1, count + 1):
        case = Case(
            number=f"202405-{n:03d}",
            subject=f"登录提示'验证码失效' #{n}",
            priority=Priority.P1,
            submitter=Person(name="张三", department="销售部", email=f"user{n}@example.cn"),
            description="登录系统时提示'验证码失效'，重试3次仍无法进入，使用Chrome浏览器，系统版本V2.1",
            source=CaseSource(kind=SourceKind.EMAIL),
            created_at=now,
            updated_at=now,
        )
        # One recipient per message, as confirmations are: the per-recipient limits don't bite.
        out.append(
            compose(
                "confirmation", case, recipients=[f"user{n}@example.cn"], identity=IDENTITY, now=now
            )
        )
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bare_smtplib(host: str, port: int, outgoing: list[OutboxMessage]) -> float:
    started = time.perf_counter()
    with smtplib.SMTP(host, port) as client:
        for message in outgoing:
            client.sendmail(SENDER, message.recipients, message.content)
    return time.perf_counter() - started


def outbox(
    host: str, port: int, outgoing: list[OutboxMessage], folder: Path, mark_group: int
) -> float:
    store = CaseStore.open(f"sqlite:///{folder / f'bench-{mark_group}.sqlite3'}")
    try:
        with store.transaction() as tx:
            for message in outgoing:
                tx.queue(message)
        mailer = SmtpMailer(host, port, security="plain")
        started = time.perf_counter()
        try:
            sent = 0
            while True:
                report = send_due(
                    store,
                    mailer,
                    envelope_from=SENDER,
                    limits=RateLimits(),
                    limit=500,
                    mark_group=mark_group,
                )
                sent += len(report.sent)
                if not report.sent:
                    break
        finally:
            mailer.close()
        elapsed = time.perf_counter() - started
        assert sent == len(outgoing), f"sent {sent} of {len(outgoing)}"
        assert len(store.outbox_items(status=OutboxStatus.SENT)) == len(outgoing)
        return elapsed
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    outgoing = messages(args.messages)
    composing = time.perf_counter() - started
    size = sum(len(m.content) for m in outgoing) / len(outgoing)
    handler = Counter()
    host, port = "127.0.0.1", free_port()
    controller = Controller(handler, hostname=host, port=port, server_hostname="bench.test")
    controller.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            # Bare loop first, then the outbox, then the bare loop again: the mean is fairer
            # than one run if the machine is busy.
            bare = [bare_smtplib(host, port, outgoing)]
            ours = outbox(host, port, outgoing, Path(folder), mark_group=20)
            bare.append(bare_smtplib(host, port, outgoing))
            each = outbox(host, port, outgoing, Path(folder), mark_group=1)
    finally:
        controller.stop()
    count = len(outgoing)
    bare_rate = count / (sum(bare) / len(bare))
    our_rate = count / ours
    print(f"{count} messages of {size / 1024:.1f} KB to aiosmtpd on loopback, one connection")
    print(f"bare smtplib loop : {bare_rate:8.0f} msg/s")
    print(f"outbox send_due   : {our_rate:8.0f} msg/s (SQLite, marks committed 20 at a time)")
    print(f"  mark_group=1    : {count / each:8.0f} msg/s (one commit per message, for comparison)")
    print(f"(composing them took {composing / count * 1000:.2f} ms each, not counted above)")
    print(f"ratio             : {our_rate / bare_rate:8.2f} (target >= 0.5)")
    assert handler.count == 4 * count
    return 0


if __name__ == "__main__":
    sys.exit(main())
