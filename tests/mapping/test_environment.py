"""The environment written into a report: browser, OS, version, device; whole words only."""

from __future__ import annotations

import pytest

from mapping.environment import environment_from_text


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
