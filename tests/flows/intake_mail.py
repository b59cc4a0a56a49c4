"""Builders for the mail the intake tests deliver: reports, replies, auto-replies, bounces."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from connectors.mailbox import RawMessage
from connectors.store import CaseStore
from flows.intake import IntakeContext
from mapping.outgoing_mail import SenderIdentity

_numbers = itertools.count(1)

IDENTITY = SenderIdentity(
    from_address="support@casedesk.test",
    from_name="技术支持",
    message_id_domain="casedesk.test",
    signing_secret=SecretStr("test-signing-secret"),
)
NOW = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)


def context(max_message_bytes: int = 5 * 1024 * 1024) -> IntakeContext:
    return IntakeContext(
        identity=IDENTITY,
        zone=ZoneInfo("Asia/Shanghai"),
        max_message_bytes=max_message_bytes,
        clock=lambda: NOW,
    )


def report(
    subject: str = "登录失败",
    body: str = "登录系统时提示'验证码失效'，重试3次仍无法进入，使用Chrome浏览器，系统版本V2.1",
    *,
    sender: tuple[str, str] = ("张三", "zhangsan@example.cn"),
    message_id: str | None = None,
    charset: str = "utf-8",
    headers: dict[str, str] | None = None,
    attachment: bytes | None = None,
) -> bytes:
    """A report as a mail client would send it."""
    message = EmailMessage()
    message["From"] = formataddr(sender)
    message["To"] = "support@casedesk.test"
    message["Subject"] = subject
    message["Date"] = format_datetime(
        datetime(2024, 5, 20, 14, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    )
    message["Message-ID"] = f"<{message_id or f'm{next(_numbers)}@example.cn'}>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body, charset=charset)
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename="log.bin"
        )
    return message.as_bytes()


def raw_message(raw: bytes, uid: int, mailbox: str = "support") -> RawMessage:
    return RawMessage(mailbox=mailbox, folder="INBOX", uidvalidity=1, uid=str(uid), raw=raw)


def open_store(url: str) -> CaseStore:
    return CaseStore.open(url)


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'store.sqlite3'}"
