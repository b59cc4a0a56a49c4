"""The environment written into a report: browser, OS, version, device; whole words only."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from mapping.email_to_case import case_from_email
from mapping.environment import environment_from_text
from mapping.parsed_email import ParsedEmail, parse_email


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "登录时提示'验证码失效'，使用Chrome浏览器，系统版本V2.1",
            {"browser": "Chrome", "version": "V2.1"},
        ),
        (
            "Windows 10, Firefox 125, version: 3.4.1",
            {"browser": "Firefox 125", "os": "Windows 10", "version": "3.4.1"},
        ),
        ("iPhone 15 Pro Max, iOS 17.2", {"os": "iOS 17.2", "device": "iPhone 15 Pro Max"}),
        ("用QQ浏览器 11.2 打开, 客户端版本：3.4", {"browser": "QQ浏览器 11.2", "version": "3.4"}),
        ("MACOS 14 with SAFARI", {"browser": "SAFARI", "os": "MACOS 14"}),
        (
            "版本号 v2.0.1，华为 Mate60手机，鸿蒙系统 4.0",
            {"os": "鸿蒙系统 4.0", "version": "v2.0.1", "device": "华为 Mate60手机"},
        ),
        # Names inside other words are not names.
        ("the field is empty in the knowledge base", {}),
        ("OPERATION failed on darwin 10", {}),
        ("a conversion 2 of the file", {}),
        # A bare version needs its capital V.
        ("v2.1 is what the footer says", {}),
        ("İstanbul office, Edge 120", {"browser": "Edge 120"}),
    ],
)
def test_environment_from_text(text: str, expected: dict[str, str]) -> None:
    assert environment_from_text(text) == expected


def test_parsing_reads_the_environment_the_case_gets() -> None:
    """Read with the parse (in the parse worker when there is one); a ParsedEmail made by hand
    gets it read when its case is made."""
    message = EmailMessage()
    message["From"] = "张三 <zhangsan@example.cn>"
    message["Subject"] = "Fwd: 登录失败 (Windows 10)"
    message.set_content("使用Chrome浏览器，系统版本V2.1\n\n-- \n张三")
    parsed = parse_email(message.as_bytes())
    expected = {"browser": "Chrome", "os": "Windows 10", "version": "V2.1"}
    assert parsed.environment == expected
    now = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
    assert case_from_email(parsed, mailbox="support", now=now).environment == expected
    by_hand = ParsedEmail(
        message_id=None,
        subject="登录失败 Windows 10",
        from_address="a@example.cn",
        text="使用Chrome浏览器，系统版本V2.1",
        reply_text="使用Chrome浏览器，系统版本V2.1",
    )
    assert by_hand.environment is None
    assert case_from_email(by_hand, mailbox="support", now=now).environment == expected
