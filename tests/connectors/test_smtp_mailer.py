"""SmtpMailer against a real aiosmtpd server on loopback: what arrives, and every failure."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from connectors.smtp_mailer import MailerUnavailable, SmtpMailer
from mapping.errors import PermanentSendError, TransientSendError
from mapping.outgoing_mail import OutboxMessage, compose, parse_message_id
from tests.mapping.mail_samples import IDENTITY, NOW, USER_MESSAGE_ID, full_case
from tests.support.dovecot import free_port
from tests.support.smtp_server import SmtpTestServer
from tests.support.tls import TlsFiles

SENDER = "bounces@example.cn"


def confirmation(
    language: str = "zh", recipients: list[str] | None = None, number: str = "202405-001"
) -> OutboxMessage:
    return compose(
        "confirmation",
        full_case(language, number=number),
        recipients=recipients or ["zhang.sf@example.cn"],
        identity=IDENTITY,
        now=NOW,
        thread=["<older@mail.example.cn>", f"<{USER_MESSAGE_ID}>"],
    )


@pytest.fixture
def mailer(smtp_server: SmtpTestServer) -> Iterator[SmtpMailer]:
    client = SmtpMailer(smtp_server.host, smtp_server.port, security="plain", timeout_seconds=5)
    yield client
    client.close()


@pytest.mark.parametrize("language", ["zh", "en"])
def test_what_arrives_is_threaded_multipart_mail_in_the_case_language(
    smtp_server: SmtpTestServer, mailer: SmtpMailer, language: str
) -> None:
    outgoing = confirmation(language)
    answer = mailer.send(outgoing, envelope_from=SENDER)

    assert answer.startswith("250 ")
    [received] = smtp_server.wait_for(1)
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ("zhang.sf@example.cn",)
    message = received.message
    assert message["Subject"].startswith("[Case 202405-001] ")
    # Long ids may be folded onto a continuation line (valid RFC 5322): compare unfolded.
    assert message["Message-ID"].strip() == f"<{outgoing.message_id}>"
    assert message["In-Reply-To"].strip() == f"<{USER_MESSAGE_ID}>"
    assert message["References"].split() == ["<older@mail.example.cn>", f"<{USER_MESSAGE_ID}>"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Content-Language"] == language
    ref = parse_message_id(message["Message-ID"], IDENTITY)
    assert ref is not None and (ref.case_number, ref.kind, ref.round_number) == (
        "202405-001",
        "confirmation",
        1,
    )
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    plain, markup = text.get_content(), html.get_content()
    greeting = "张三丰，您好" if language == "zh" else "Hello 张三丰"
    assert greeting in plain and greeting in markup
    assert "<script>alert(1)</script>" in plain  # text is shown as text
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    # Every line of the raw message is 7-bit: no relay needs 8BITMIME for Chinese text.
    assert all(byte < 128 for byte in received.raw)


def test_one_connection_serves_a_batch(smtp_server: SmtpTestServer, mailer: SmtpMailer) -> None:
    mailer.send(confirmation(number="202405-001"), envelope_from=SENDER)
    first_connection = mailer._client
    mailer.send(confirmation(number="202405-002"), envelope_from=SENDER)
    assert mailer._client is first_connection is not None
    assert len(smtp_server.wait_for(2)) == 2


def test_a_dropped_connection_is_reopened(smtp_server: SmtpTestServer, mailer: SmtpMailer) -> None:
    mailer.send(confirmation(number="202405-001"), envelope_from=SENDER)
    smtp_server.stop()  # drops the open connection, as a relay restarting does
    smtp_server.start()
    mailer.send(confirmation(number="202405-002"), envelope_from=SENDER)
    assert (
        smtp_server.messages[-1].message["Message-ID"].strip().startswith("<casedesk.202405-002.")
    )


def test_server_down_is_unavailable(smtp_server: SmtpTestServer, mailer: SmtpMailer) -> None:
    smtp_server.stop()
    with pytest.raises(MailerUnavailable, match=r"cannot connect to SMTP server 127\.0\.0\.1"):
        mailer.send(confirmation(), envelope_from=SENDER)


@pytest.mark.parametrize("code", [421, 451])
def test_4xx_is_transient_and_the_next_send_goes_through(
    smtp_server: SmtpTestServer, mailer: SmtpMailer, code: int
) -> None:
    smtp_server.fail_next(1, code, "4.3.0 Try again later")
    with pytest.raises(TransientSendError, match=f"{code} 4.3.0 Try again later"):
        mailer.send(confirmation(), envelope_from=SENDER)
    assert mailer.send(confirmation(), envelope_from=SENDER).startswith("250 ")
    assert len(smtp_server.wait_for(1)) == 1


def test_550_is_permanent_with_the_servers_answer(
    smtp_server: SmtpTestServer, mailer: SmtpMailer
) -> None:
    smtp_server.fail_next(1, 550, "5.7.1 Message rejected as spam")
    with pytest.raises(PermanentSendError) as caught:
        mailer.send(confirmation(), envelope_from=SENDER)
    assert caught.value.answer == "550 5.7.1 Message rejected as spam"
    assert smtp_server.messages == []


def test_per_recipient_results(smtp_server: SmtpTestServer, mailer: SmtpMailer) -> None:
    two = ["gone@example.cn", "owner@example.cn"]
    # The first recipient is refused for good, the second accepted: it goes to the second.
    smtp_server.fail_next(1, 550, "5.1.1 No such user", command="RCPT")
    answer = mailer.send(confirmation(recipients=two), envelope_from=SENDER)
    assert "refused for good: gone@example.cn: 550 5.1.1 No such user" in answer
    assert smtp_server.wait_for(1)[0].rcpt_tos == ("owner@example.cn",)

    smtp_server.fail_next(2, 550, "5.1.1 No such user", command="RCPT")
    with pytest.raises(PermanentSendError, match="refused every recipient"):
        mailer.send(confirmation(recipients=two), envelope_from=SENDER)

    # One recipient deferred: nobody gets it now, everyone on the retry (nobody twice).
    smtp_server.fail_next(1, 450, "4.2.1 Mailbox busy", command="RCPT")
    with pytest.raises(TransientSendError, match="deferred"):
        mailer.send(confirmation(recipients=two), envelope_from=SENDER)
    assert len(smtp_server.messages) == 1


def test_login_and_a_refused_login_without_the_password_in_the_error() -> None:
    with SmtpTestServer(auth=("mailer", "s3cret-pw")) as server:
        good = SmtpMailer(
            server.host,
            server.port,
            security="plain",
            user="mailer",
            password=SecretStr("s3cret-pw"),
        )
        good.send(confirmation(), envelope_from=SENDER)
        good.close()
        assert server.wait_for(1)[0].auth_login == "mailer"

        bad = SmtpMailer(
            server.host,
            server.port,
            security="plain",
            user="mailer",
            password=SecretStr("wrong-pw"),
        )
        with pytest.raises(MailerUnavailable, match="refused the login as 'mailer'") as caught:
            bad.send(confirmation(), envelope_from=SENDER)
        assert "wrong-pw" not in str(caught.value)
        bad.close()


# TLS: a throwaway certificate authority and a server certificate for 127.0.0.1 -----------------
class _Recorder:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 2.0.0 OK tls"


@pytest.fixture(scope="module")
def certificates(tls_files: TlsFiles) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) for 127.0.0.1: the session's throwaway CA."""
    return tls_files.ca, tls_files.cert, tls_files.key


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_variants_verify_the_server_against_the_configured_ca(
    certificates: tuple[Path, Path, Path], security: str
) -> None:
    ca, cert, key = certificates
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    recorder = _Recorder()
    port = free_port("127.0.0.1")
    options: dict[str, object] = (
        {"tls_context": server_context, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": server_context}
    )
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, server_hostname="smtp.test", **options
    )
    controller.start()
    try:
        from flows.settings import SmtpMailerSettings

        settings = SmtpMailerSettings(
            kind="smtp",
            host="127.0.0.1",
            port=port,
            security=security,
            ca_file=ca,  # type: ignore[arg-type]
        )
        mailer = SmtpMailer.from_settings(settings)
        try:
            assert mailer.send(confirmation(), envelope_from=SENDER) == "250 2.0.0 OK tls"
        finally:
            mailer.close()
        untrusting = SmtpMailer("127.0.0.1", port, security=security)  # type: ignore[arg-type]
        with pytest.raises(MailerUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.send(confirmation(), envelope_from=SENDER)
        untrusting.close()
    finally:
        controller.stop()
    assert len(recorder.messages) == 1
