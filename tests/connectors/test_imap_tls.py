"""ImapMailbox over real TLS: imaps, STARTTLS and plain against a Dovecot with a throwaway CA.

The server's certificate is signed by the session's test CA (``tls_files``); clients trust it
through ``ca_file``, as a team with its own CA would configure. That a login really happened
inside TLS is what Dovecot itself logs for it ("TLS" instead of "secured" on its Login line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import SecretStr

from connectors.imap_mailbox import ImapMailbox
from connectors.mailbox import MailboxCursor
from flows.settings import ImapMailboxSettings
from mapping.errors import ConfigError, MailboxError
from tests.flows.intake_mail import report
from tests.support.servers_plugin import ImapUser
from tests.support.tls import make_tls_files

Security = Literal["ssl", "starttls", "plain"]


def settings_for(user: ImapUser, security: Security, ca_file: Path | None) -> ImapMailboxSettings:
    return ImapMailboxSettings(
        kind="imap",
        name="support",
        host=user.host,
        port=user.ssl_port if security == "ssl" else user.port,
        security=security,
        user=user.name,
        password=SecretStr(user.password),
        ca_file=ca_file,
        timeout_seconds=10.0,
    )


def log_mark(user: ImapUser) -> int:
    """Where Dovecot's log ends now: the fixture's own APPEND logins come before it."""
    return len(user.server.log_text())


def logins_since(user: ImapUser, mark: int) -> list[str]:
    """Dovecot's Login lines for this user after ``mark``; how it was protected is a field."""
    return [
        line
        for line in user.server.log_text()[mark:].splitlines()
        if f"Login: user=<{user.name}>" in line
    ]


def fetched_subjects(mailbox: ImapMailbox) -> list[str]:
    subjects: list[str] = []
    for batch in mailbox.fetch_new(MailboxCursor(), batch_size=10):
        for message in batch:
            match = re.search(rb"^Subject: (.*)\r?$", message.raw, re.MULTILINE)
            assert match is not None
            subjects.append(match.group(1).decode().strip())
    return subjects


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_syncs_over_tls_with_the_private_ca(imap_tls_user: ImapUser, security: Security) -> None:
    assert imap_tls_user.ca_file is not None
    for subject in ("first over tls", "second over tls"):
        imap_tls_user.append(report(subject=subject))
    mark = log_mark(imap_tls_user)
    mailbox = ImapMailbox.from_settings(
        settings_for(imap_tls_user, security, imap_tls_user.ca_file)
    )
    try:
        assert fetched_subjects(mailbox) == ["first over tls", "second over tls"]
        (batch,) = mailbox.fetch_new(MailboxCursor(), batch_size=10)
        mailbox.mark_done(batch)
        assert mailbox.unmarked_uids(mailbox.cursor_after(batch)) == []
    finally:
        mailbox.close()
    # Dovecot tags every login with how the connection was protected: the password went
    # inside TLS (imaps or after STARTTLS), never in the clear.
    (line,) = logins_since(imap_tls_user, mark)
    assert ", TLS," in line, line


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_a_certificate_from_an_unknown_ca_is_refused_before_the_login(
    imap_tls_user: ImapUser, security: Security, tmp_path: Path
) -> None:
    # Another throwaway CA: a well-formed CA file, just not the one that signed the server.
    stranger = make_tls_files(tmp_path / "other-ca", ca_name="someone else's CA")
    imap_tls_user.append(report(subject="never read"))
    mark = log_mark(imap_tls_user)
    mailbox = ImapMailbox.from_settings(settings_for(imap_tls_user, security, stranger.ca))
    port = imap_tls_user.ssl_port if security == "ssl" else imap_tls_user.port
    try:
        with pytest.raises(MailboxError) as caught:
            mailbox.new_uids(MailboxCursor())
    finally:
        mailbox.close()
    text = str(caught.value)
    assert f"{imap_tls_user.host}:{port} ({security})" in text
    assert "certificate" in text and "ca_file" in text, text
    assert imap_tls_user.password not in text
    assert mailbox.bodies_fetched == 0
    assert logins_since(imap_tls_user, mark) == []  # the password never left the client


def test_without_a_ca_file_the_system_cas_do_not_trust_a_private_ca(
    imap_tls_user: ImapUser,
) -> None:
    mark = log_mark(imap_tls_user)
    mailbox = ImapMailbox.from_settings(settings_for(imap_tls_user, "ssl", None))
    try:
        with pytest.raises(MailboxError, match=r"certificate.*127\.0\.0\.1|127\.0\.0\.1.*certif"):
            mailbox.new_uids(MailboxCursor())
    finally:
        mailbox.close()
    assert logins_since(imap_tls_user, mark) == []


def test_plain_still_works_on_the_tls_server(imap_tls_user: ImapUser) -> None:
    imap_tls_user.append(report(subject="in the clear"))
    mark = log_mark(imap_tls_user)
    # ca_file is irrelevant without TLS: plain neither needs nor uses it.
    mailbox = ImapMailbox.from_settings(settings_for(imap_tls_user, "plain", imap_tls_user.ca_file))
    try:
        assert fetched_subjects(mailbox) == ["in the clear"]
    finally:
        mailbox.close()
    (line,) = logins_since(imap_tls_user, mark)
    assert ", secured," in line and ", TLS," not in line, line


def test_a_missing_ca_file_is_a_settings_error(imap_tls_user: ImapUser, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(ConfigError, match=r"ca_file.*support.*no-such-ca\.pem"):
        ImapMailbox.from_settings(settings_for(imap_tls_user, "ssl", missing))
