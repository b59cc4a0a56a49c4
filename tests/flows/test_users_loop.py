"""The user's loop on real servers, through `casedesk run` and a settings file: a report mailed
to Dovecot becomes a case, the confirmation arrives at the SMTP server threaded to it, the user's
reply lands on the case, an out-of-office is noted and never answered, and re-runs do nothing."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

import pytest

from connectors.store import CaseStore, LedgerDecision
from flows.cli import main
from mapping.case import LogKind
from tests.support.servers_plugin import ImapUser
from tests.support.smtp_server import SmtpTestServer

USER = ("李娜", "li.na@example.cn")


def users_mail(subject: str, body: str, **headers: str) -> tuple[bytes, str]:
    """A mail as the user's client sends it (GBK body, as many Chinese clients still do)."""
    message = EmailMessage()
    message["From"] = formataddr(USER)
    message["To"] = "support@casedesk.test"
    message["Subject"] = subject
    message_id = make_msgid(domain="example.cn")
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body, charset="gbk")
    return message.as_bytes(), message_id.strip("<>")


@pytest.fixture
def config(tmp_path: Path, imap_user: ImapUser, smtp_server: SmtpTestServer) -> Path:
    path = tmp_path / "casedesk.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path}/cases.db"\n'
        "[[mailboxes]]\n"
        f'kind = "imap"\nname = "support"\nhost = "{imap_user.host}"\nport = {imap_user.port}\n'
        f'security = "plain"\nuser = "{imap_user.name}"\npassword = "{imap_user.password}"\n'
        "[mailer]\n"
        f'kind = "smtp"\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\n'
        'security = "plain"\n'
        "[outgoing]\n"
        'from_address = "support@casedesk.test"\nmessage_id_domain = "casedesk.test"\n'
        'signing_secret = "loop-test-secret"\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["run", "--config", str(config)]) == 0
    return capsys.readouterr().out


def test_report_confirmation_reply_and_out_of_office(
    prefect_harness: None,
    config: Path,
    tmp_path: Path,
    imap_user: ImapUser,
    smtp_server: SmtpTestServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw, report_id = users_mail("报表导出失败", "导出 Q1 报表时提示“系统错误”，Chrome 浏览器，V2.1")
    imap_user.append(raw)
    out = run(config, capsys)
    assert "1 new cases" in out and "outbox: 1 sent" in out

    [received] = smtp_server.wait_for(1)
    confirmation = received.message
    assert list(received.rcpt_tos) == [USER[1]]
    token = re.search(r"\[Case (\d{6}-\d{3,})\]", str(confirmation["Subject"]))
    assert token is not None
    number = token.group(1)
    assert confirmation["In-Reply-To"] == f"<{report_id}>"
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert number in confirmation.get_body(("plain",)).get_content()
    assert number in confirmation.get_body(("html",)).get_content()

    reply, _ = users_mail(
        f"回复：{confirmation['Subject']}",
        "补充：换了 Edge 浏览器也一样。\n\n------------------ 原始邮件 ------------------\n旧内容",
        In_Reply_To=str(confirmation["Message-ID"]),
        References=f"<{report_id}> {confirmation['Message-ID']}",
    )
    away, _ = users_mail(
        f"自动回复: {confirmation['Subject']}",
        "我正在休假，5 月 27 日回来。",
        Auto_Submitted="auto-replied",
        In_Reply_To=str(confirmation["Message-ID"]),
    )
    imap_user.append(reply)
    imap_user.append(away)
    out = run(config, capsys)
    assert "0 new cases" in out and "outbox: 0 sent" in out
    assert len(smtp_server.messages) == 1  # the out-of-office is never answered

    with CaseStore.open(f"sqlite:///{tmp_path}/cases.db") as store:
        case = store.get_case(number)
        decisions = [entry.decision for entry in store.ledger_entries()]
    assert decisions == [
        LedgerDecision.NEW_REPORT,
        LedgerDecision.REPLY,
        LedgerDecision.AUTO_REPLY,
    ]
    email_in = [e for e in case.process_log if e.kind is LogKind.EMAIL_IN]
    assert len(email_in) == 1 and "换了 Edge 浏览器也一样" in email_in[0].text
    assert "旧内容" not in email_in[0].text
    assert any(e.kind is LogKind.AUTO_REPLY for e in case.process_log)

    out = run(config, capsys)
    assert "0 messages read" in out and len(smtp_server.messages) == 1
    with imap_user.imap() as conn:
        conn.select("INBOX")
        _typ, data = conn.uid("SEARCH", "KEYWORD $casedesk")
    assert len(data[0].split()) == 3  # every message marked done, after its commit


def test_a_server_refusal_waits_and_is_sent_once_later(
    prefect_harness: None,
    config: Path,
    imap_user: ImapUser,
    smtp_server: SmtpTestServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw, _ = users_mail("无法登录", "登录时提示验证码失效")
    imap_user.append(raw)
    smtp_server.fail_next(1, 451, "4.3.0 try again later")
    out = run(config, capsys)
    assert "1 new cases" in out and "1 waiting to retry" in out
    assert smtp_server.messages == []
    assert main(["outbox", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert "queued" in listed and "451" in listed
    # A person need not wait for the backoff: retry makes it due now; the next run sends it.
    assert main(["outbox", "retry", "1", "--config", str(config)]) == 0
    capsys.readouterr()
    out = run(config, capsys)
    assert "outbox: 1 sent" in out
    assert len(smtp_server.wait_for(1)) == 1
    assert "outbox: 0 sent" in run(config, capsys)
    parsed = email.message_from_bytes(smtp_server.messages[0].raw, policy=email.policy.default)
    assert str(parsed["To"]) == USER[1]
