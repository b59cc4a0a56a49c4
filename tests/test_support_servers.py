"""The test servers behave like the real ones the connectors will meet."""

from __future__ import annotations

import datetime as dt
import email
import imaplib
import re
import smtplib
import time
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.support.dovecot import DOVECOT_HINT, DovecotError, DovecotServer, find_dovecot
from tests.support.postgres import create_database, database_exists, drop_database
from tests.support.servers_plugin import ImapUser
from tests.support.services import REQUIRE_ENV, require_service
from tests.support.smtp_server import SmtpTestServer


def _raw(subject: str, body: str = "Hello from a test.\r\n") -> bytes:
    return (
        f"From: Reporter <reporter@example.test>\r\n"
        f"To: support@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.test>\r\n"
        f"\r\n{body}"
    ).encode()


def _login(user: ImapUser) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(user.host, user.port, timeout=10)
    conn.login(user.name, user.password)
    return conn


def _subjects_in_uid_order(conn: imaplib.IMAP4) -> list[tuple[int, str]]:
    typ, data = conn.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    found: list[tuple[int, str]] = []
    for part in data:
        if isinstance(part, tuple):
            uid = int(re.search(rb"UID (\d+)", part[0]).group(1))  # type: ignore[union-attr]
            subject = email.message_from_bytes(part[1], policy=policy.default)["Subject"]
            found.append((uid, str(subject)))
    return sorted(found)


# -- require_service --------------------------------------------------------------------


def test_require_service_skips_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"'dovecot'.*apt-get install dovecot-imapd"):
        require_service("dovecot", "apt-get install dovecot-imapd")


def test_require_service_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"'postgresql' is required.*start it"):
        require_service("postgresql", "start it")


# -- Dovecot ----------------------------------------------------------------------------


def test_appended_message_is_seen_over_imap(imap_user: ImapUser) -> None:
    date = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    uid = imap_user.append(_raw("Printer on fire"), flags=("\\Seen", "\\Flagged"), date=date)
    assert uid == 1

    conn = _login(imap_user)
    try:
        typ, data = conn.select("INBOX", readonly=True)
        assert (typ, data) == ("OK", [b"1"])
        typ, fetched = conn.uid("FETCH", str(uid), "(FLAGS INTERNALDATE BODY.PEEK[])")
        assert typ == "OK"
        meta, body = fetched[0]  # type: ignore[misc]
    finally:
        conn.logout()
    assert b"\\Seen" in meta and b"\\Flagged" in meta
    # Maildir keeps INTERNALDATE as the file's mtime: the instant survives, the zone does not.
    assert b'INTERNALDATE "04-Mar-2026 03:06:07 +0000"' in meta
    assert body == _raw("Printer on fire")


def test_fast_delivery_is_indexed_in_order(imap_user: ImapUser) -> None:
    subjects = [f"Case {i}" for i in range(5)]
    imap_user.deliver_fast([_raw(s) for s in subjects], folder="Support/Inbound")

    conn = _login(imap_user)
    try:
        typ, listing = conn.list()
        assert typ == "OK"
        assert any(line.endswith(b'"/" Support/Inbound') for line in listing)  # type: ignore[union-attr]
        typ, data = conn.select('"Support/Inbound"', readonly=True)
        assert (typ, data) == ("OK", [b"5"])
        assert _subjects_in_uid_order(conn) == list(enumerate(subjects, start=1))
        # Delivered to new/: unseen, as a freshly delivered message is.
        typ, unseen = conn.uid("SEARCH", "UNSEEN")
        assert unseen == [b"1 2 3 4 5"]
    finally:
        conn.logout()


def test_folder_names_with_spaces_and_non_ascii(imap_user: ImapUser) -> None:
    imap_user.append(_raw("Ünïcode folder"), folder="Kundendienst/Größe & Co")
    imap_user.deliver_fast([_raw("fast one")], folder="Kundendienst/Größe & Co")
    status = imap_user.status("Kundendienst/Größe & Co")
    assert status["MESSAGES"] == 2


def test_wrong_password_is_refused_quickly_and_good_login_still_fast(
    imap_user: ImapUser,
) -> None:
    conn = imaplib.IMAP4(imap_user.host, imap_user.port, timeout=10)
    started = time.monotonic()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login(imap_user.name, imap_user.password + "-wrong")
    refused_after = time.monotonic() - started
    conn.logout()
    # Dovecot 2.3.19 flushes failed logins on a 0.5 s timer even with auth_failure_delay=0.
    assert refused_after < 2.0

    # Without the anvil block in the config, this good login would wait up to 15 s.
    started = time.monotonic()
    _login(imap_user).logout()
    assert time.monotonic() - started < 1.0


def test_uidvalidity_change_is_visible(imap_user: ImapUser) -> None:
    imap_user.append(_raw("Before the restore"))
    before = imap_user.status()["UIDVALIDITY"]

    after = imap_user.change_uidvalidity()

    assert after != before
    conn = _login(imap_user)
    try:
        typ, data = conn.status("INBOX", "(UIDVALIDITY MESSAGES)")
        assert typ == "OK"
        assert f"UIDVALIDITY {after}".encode() in data[0]  # type: ignore[operator]
        conn.select("INBOX", readonly=True)
        assert conn.untagged_responses["UIDVALIDITY"] == [str(after).encode()]
        assert _subjects_in_uid_order(conn) == [(1, "Before the restore")]
    finally:
        conn.logout()


def test_users_are_separate_and_can_come_and_go(dovecot: DovecotServer) -> None:
    dovecot.add_user("alice-sep", "a-pw")
    dovecot.add_user("bob-sep", "b-pw")
    try:
        dovecot.append("alice-sep", "INBOX", _raw("For Alice"))
        assert dovecot.status("alice-sep", "INBOX")["MESSAGES"] == 1
        assert dovecot.status("bob-sep", "INBOX")["MESSAGES"] == 0
        assert (dovecot.mail_root / "alice-sep").is_dir()
    finally:
        dovecot.remove_user("alice-sep")
        dovecot.remove_user("bob-sep")
    assert not (dovecot.mail_root / "alice-sep").exists()
    with pytest.raises(DovecotError, match="no such test user"):
        dovecot.append("alice-sep", "INBOX", _raw("Too late"))


@pytest.mark.dovecot
def test_restart_cuts_clients_off_and_keeps_mail_and_port() -> None:
    if find_dovecot() is None:
        require_service("dovecot", DOVECOT_HINT)
    server = DovecotServer()  # its own: restarting the session server would disturb others
    try:
        server.start()
        port = server.port
        server.add_user("restart", "pw")
        server.append("restart", "INBOX", _raw("Survives restarts"))
        client = imaplib.IMAP4(server.host, port, timeout=10)
        try:
            client.login("restart", "pw")
            client.select("INBOX")
            server.stop()
            # As a real server going down: the open session is told BYE and cut off.
            with pytest.raises(imaplib.IMAP4.abort, match="shutting down"):
                client.noop()
        finally:
            client.shutdown()
        with pytest.raises(ConnectionRefusedError):
            imaplib.IMAP4(server.host, port, timeout=5)

        server.start()
        assert server.port == port
        assert server.status("restart", "INBOX")["MESSAGES"] == 1
    finally:
        server.close()
    assert not server.root.exists()


def test_imap_user_is_fresh_and_marked(imap_user: ImapUser, request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("dovecot") is not None
    assert imap_user.status() == {
        "MESSAGES": 0,
        "UIDNEXT": 1,
        "UIDVALIDITY": pytest.approx(imap_user.status()["UIDVALIDITY"]),
        "UNSEEN": 0,
    }


# -- SMTP -------------------------------------------------------------------------------


def _message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "casedesk@example.test"
    msg["To"] = "Reporter <reporter@example.test>"
    msg["Subject"] = subject
    msg.set_content("Your case was received.\n")
    return msg


def test_smtp_message_arrives_parsed(smtp_server: SmtpTestServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        refused = client.send_message(
            _message("Fall 42 – Eingang bestätigt"),
            to_addrs=["reporter@example.test", "cc@example.test"],
        )
    assert refused == {}

    [received] = smtp_server.messages
    assert received.mail_from == "casedesk@example.test"
    assert received.rcpt_tos == ("reporter@example.test", "cc@example.test")
    assert received.message["Subject"] == "Fall 42 – Eingang bestätigt"
    # The wire uses CRLF and the parsed body keeps it, as mail fetched over IMAP does.
    assert received.message.get_content() == "Your case was received.\r\n"
    assert b"=?utf-8?" in received.raw  # the subject went over the wire encoded


def test_smtp_fail_next_451_then_succeeds(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail_next(1, 451, "4.3.0 Try again later")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPResponseException) as failed:
            client.send_message(_message("first try"))
        assert failed.value.smtp_code == 451
        assert failed.value.smtp_error == b"4.3.0 Try again later"
        client.send_message(_message("second try"))
    assert [m.message["Subject"] for m in smtp_server.messages] == ["second try"]


def test_smtp_rcpt_rejection_and_421_disconnect(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail_next(1, 550, "5.1.1 No such user", command="RCPT")
    with (
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.send_message(_message("to nobody"))
    assert refused.value.recipients == {"reporter@example.test": (550, b"5.1.1 No such user")}

    smtp_server.fail_next(1, 421, "4.3.2 Shutting down")
    client = smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10)
    try:
        with pytest.raises(smtplib.SMTPDataError) as closing:
            client.send_message(_message("during shutdown"))
        assert closing.value.smtp_code == 421
        # A 421 closes the connection, as a relay going down does.
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()
    finally:
        client.close()
    assert smtp_server.messages == []


def test_smtp_auth_over_loopback() -> None:
    with SmtpTestServer(auth=("mailer", "s3cret")) as server:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as no_auth:
                client.send_message(_message("no auth"))
            assert no_auth.value.smtp_code == 530
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as client,
            pytest.raises(smtplib.SMTPAuthenticationError),
        ):
            client.login("mailer", "wrong")
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.login("mailer", "s3cret")
            client.send_message(_message("with auth"))
        [received] = server.messages
    assert received.auth_login == "mailer"


def test_smtp_server_down_and_back_on_the_same_port(smtp_server: SmtpTestServer) -> None:
    port = smtp_server.port
    smtp_server.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_server.host, port, timeout=5)

    smtp_server.start()
    assert smtp_server.port == port
    with smtplib.SMTP(smtp_server.host, port, timeout=10) as client:
        client.send_message(_message("back again"))
    assert smtp_server.wait_for(1)[0].message["Subject"] == "back again"


# -- PostgreSQL and the store URL -------------------------------------------------------


@pytest.mark.postgres
def test_postgres_database_is_fresh_usable_and_dropped() -> None:
    url = create_database()
    try:
        assert database_exists(url)
        engine = create_engine(url)
        try:
            assert inspect(engine).get_table_names() == []
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE cases (id serial PRIMARY KEY, title text)"))
                conn.execute(text("INSERT INTO cases (title) VALUES ('VPN down')"))
            with engine.connect() as conn:
                assert conn.execute(text("SELECT title FROM cases")).scalar_one() == "VPN down"
            # A connection left open must not stop the drop (WITH (FORCE)).
            leftover = engine.connect()
        finally:
            drop_database(url)
        leftover.invalidate()
        engine.dispose()
    finally:
        if database_exists(url):
            drop_database(url)
    assert not database_exists(url)


def test_postgres_url_fixture(postgres_url: str, request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("postgres") is not None
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar_one() in postgres_url
    finally:
        engine.dispose()


def test_drop_database_refuses_foreign_databases() -> None:
    with pytest.raises(ValueError, match="refusing to drop 'test'"):
        drop_database("postgresql+psycopg://postgres@127.0.0.1:5432/test")


def test_store_url_runs_on_both_backends(store_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["store_url"]
    engine = create_engine(store_url)
    try:
        assert engine.dialect.name == backend
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE notes (id integer PRIMARY KEY, body text)"))
            conn.execute(text("INSERT INTO notes (id, body) VALUES (1, 'ok')"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT body FROM notes")).scalar_one() == "ok"
    finally:
        engine.dispose()
