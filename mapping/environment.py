"""The environment a user wrote into a report: browser, operating system, versions.

A table of patterns (field -> regexes), looped over; the first match per field wins. Written for
what users really type: "使用Chrome浏览器，系统版本V2.1", "Windows 10", "iOS 17.2", "版本号：3.4.1".
"""

from __future__ import annotations

import re

__all__ = ["ENVIRONMENT_PATTERNS", "environment_from_text"]

_VERSION = r"v?\d+(?:\.\d+){0,3}"

#: field -> patterns; group "value" (or the whole match) is what gets recorded.
ENVIRONMENT_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "browser": [
        re.compile(
            r"(?P<value>(?:Chrome|Chromium|Firefox|Safari|Edge|Opera|IE|Internet Explorer|"
            r"360(?:安全|极速)?浏览器|QQ浏览器|搜狗浏览器|UC浏览器|微信内置浏览器)"
            r"(?:\s*(?:浏览器)?\s*" + _VERSION + r")?)",
            re.IGNORECASE,
        ),
    ],
    "os": [
        re.compile(
            r"(?P<value>(?:Windows|Win)\s*(?:11|10|8\.1|8|7|XP|Server\s*\d{4})|"
            r"mac\s?OS(?:\s*X)?(?:\s*" + _VERSION + r")?|"
            r"iOS\s*" + _VERSION + r"|iPadOS\s*" + _VERSION + r"|Android\s*" + _VERSION + r"|"
            r"HarmonyOS(?:\s*" + _VERSION + r")?|鸿蒙(?:系统)?(?:\s*" + _VERSION + r")?|"
            r"Ubuntu(?:\s*" + _VERSION + r")?|CentOS(?:\s*" + _VERSION + r")?|"
            r"统信UOS|麒麟(?:系统)?|Linux)",
            re.IGNORECASE,
        ),
    ],
    "version": [
        re.compile(
            r"(?:系统版本|软件版本|版本号|客户端版本|app\s*version|version)\s*(?:是|为|:|：)?\s*"
            r"(?P<value>" + _VERSION + r")",
            re.IGNORECASE,
        ),
        re.compile(r"(?<![\w.])(?P<value>V\d+(?:\.\d+){1,3})(?![\w.])"),
    ],
    "device": [
        re.compile(
            r"(?P<value>iPhone\s*\d+(?:\s*Pro(?:\s*Max)?)?|iPad(?:\s*(?:Pro|Air|mini))?|"
            r"华为\s*\S{1,12}手机|小米\s*\d+|MacBook(?:\s*(?:Pro|Air))?)",
            re.IGNORECASE,
        ),
    ],
}

#: How much of a body is scanned: the environment is written near the top of a report.
_SCAN = 8000


def environment_from_text(text: str) -> dict[str, str]:
    """Browser, OS, version and device where the text names them."""
    sample = text[:_SCAN]
    found: dict[str, str] = {}
    for field, patterns in ENVIRONMENT_PATTERNS.items():
        for pattern in patterns:
            match = pattern.search(sample)
            if match is not None:
                found[field] = " ".join(match.group("value").split())
                break
    return found
