"""`casedesk rules explain MAIL.eml --at TIME --mailbox NAME`: weekday, hour and mailbox rules
explained for the time and mailbox asked, as intake would decide them."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from flows.cli import main

RULES = """
[[rule]]
id = "weekend"
when.weekdays = ["sat", "sun"]
then.tags = ["weekend"]

[[rule]]
id = "night"
when.hours = ["22-6"]
then.raise_priority = true

[[rule]]
id = "vip-box"
when.mailbox = ["vip"]
then.priority = "P1"
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "casedesk.toml").write_text(
        'timezone = "Asia/Shanghai"\nrules_path = "rules.toml"\n\n'
        '[[mailboxes]]\nname = "support"\nkind = "maildir"\npath = "mail/support"\n\n'
        '[[mailboxes]]\nname = "vip"\nkind = "maildir"\npath = "mail/vip"\n',
        encoding="utf-8",
    )
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    message = EmailMessage()
    message["From"] = "张三 <zhang@example.com>"
    message["To"] = "support@example.com"
    message["Subject"] = "打印机卡纸"
    message["Date"] = "Sat, 18 May 2024 10:00:00 +0800"  # a Saturday: not what decides
    message.set_content("三楼的打印机又卡纸了。")
    (tmp_path / "report.eml").write_bytes(message.as_bytes())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def explain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["rules", "explain", "report.eml", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def matched(out: str) -> list[str]:
    block = out.split("matched rules:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split(":")[0].strip() for line in block.splitlines()]


@pytest.mark.parametrize(
    ("at", "rules", "due"),
    [
        # Saturday 10:00 in Shanghai (naive times are the team's zone).
        ("2024-05-18T10:00", ["weekend"], "  due 2024-05-21 10:00 CST (P2: 3d)"),
        # Monday 23:30 Shanghai, given in UTC: night, and P2 raised to P1.
        ("2024-05-20T15:30+00:00", ["night"], "  due 2024-05-21 23:30 CST (P1: 1d)"),
        # Monday 14:00: neither.
        ("2024-05-20T14:00", ["(none)"], "  due 2024-05-23 14:00 CST (P2: 3d)"),
    ],
)
def test_weekday_and_hour_rules_for_the_time_asked(
    folder: Path, capsys: pytest.CaptureFixture[str], at: str, rules: list[str], due: str
) -> None:
    code, out, err = explain(capsys, "--at", at)
    assert (code, err) == (0, "")
    assert matched(out) == rules
    assert due in out


def test_the_mailbox_asked_decides_mailbox_rules(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monday = ("--at", "2024-05-20T14:00")
    assert matched(explain(capsys, *monday)[1]) == ["(none)"]  # the first mailbox: support
    code, out, _ = explain(capsys, *monday, "--mailbox", "vip")
    assert code == 0 and matched(out) == ["vip-box"]
    assert "  priority: P1" in out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ("--at", "Saturday"),
            "error: --at 'Saturday' is not a time: write it as ISO 8601, e.g. 2024-05-18T10:00 "
            "or 2024-05-18T10:00+08:00\n",
        ),
        (
            ("--mailbox", "sales"),
            "error: no mailbox 'sales' in the settings (configured: support, vip)\n",
        ),
    ],
)
def test_a_bad_time_or_mailbox_is_a_clear_error(
    folder: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], error: str
) -> None:
    assert explain(capsys, *args) == (1, "", error)


COMPETING = """
[groups]
l1 = ["a@example.com", "b@example.com"]

[[rule]]
id = "rr"
when.keywords = ["卡纸"]
then.problem_type = "system_fault"
then.owner = { group = "l1", strategy = "round_robin" }

[[rule]]
id = "fewest"
when.keywords = ["打印机"]
then.problem_type = "how_to"
then.owner = { group = "l1", strategy = "fewest_open" }

[[rule]]
id = "printer"
when.keywords = ["打印机"]
then.owner = "printer-team@example.com"
then.tags = ["printer"]
then.collaborators = ["facilities@example.com"]
then.due_in = "2h"

[[rule]]
id = "third-floor"
override = true
when.keywords = ["三楼"]
then.problem_type = "permission"
then.tags = ["printer"]
"""


def test_each_matching_rule_says_what_it_decided_and_what_came_from_another(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "rules.toml").write_text(COMPETING, "utf-8")
    code, out, err = explain(capsys)
    assert (code, err) == (0, "")
    block = out.split("matched rules:\n", 1)[1].split("\n\n", 1)[0]
    assert block.splitlines() == [
        "  rr: matched '卡纸' -> owner (type from rule third-floor)",
        "  fewest: matched '打印机' -> nothing (type from rule third-floor; owner from rule rr)",
        "  printer: matched '打印机' -> due time, tag 'printer', collaborator "
        "(facilities@example.com) (owner from rule rr)",
        "  third-floor: matched '三楼' -> type (tag 'printer' from rule printer)",
    ]


def test_rules_check_lists_what_each_rule_decides_as_people_read_it(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "rules.toml").write_text(COMPETING + RULES, "utf-8")
    assert main(["rules", "check"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1:] == [
        "  group l1: a@example.com, b@example.com",
        "    1. rr: type=system_fault, owner=round robin in group l1",
        "    2. fewest: type=how_to, owner=fewest open cases in group l1",
        "    3. printer: due time=2h, owner=printer-team@example.com, tags=printer, "
        "collaborators=facilities@example.com",
        "    4. third-floor: type=permission, tags=printer, override",
        "    5. weekend: tags=weekend",
        "    6. night: raise priority by one level",
        "    7. vip-box: priority=P1",
        "ok: 7 rules",
    ]
