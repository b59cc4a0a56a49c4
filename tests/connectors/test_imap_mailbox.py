"""ImapMailbox against a real Dovecot: incremental by UID, marking, UIDVALIDITY, login errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from connectors.imap_mailbox import ImapMailbox
from connectors.mailbox import Mailbox, MailboxCursor
from mapping.errors import MailboxError, MailboxLoginError
from tests.flows.intake_mail import report
from tests.support.servers_plugin import ImapUser


def mailbox_for(user: ImapUser, **options: object) -> ImapMailbox:
    settings: dict[str, object] = {"security": "plain", **options}
    return ImapMailbox(
        "support",
        host=user.host,
        port=user.port,
        user=user.name,
        password=SecretStr(user.password),
        **settings,  # type: ignore[arg-type]
    )


def test_is_a_mailbox(imap_user: ImapUser) -> None:
    assert isinstance(mailbox_for(imap_user), Mailbox)


def test_fetches_only_what_is_new_in_batches(imap_user: ImapUser) -> None:
    uids = [imap_user.append(report(subject=f"r{i}")) for i in range(5)]
    mailbox = mailbox_for(imap_user)
    try:
        batches = list(mailbox.fetch_new(MailboxCursor(), batch_size=2))
        assert [len(batch) for batch in batches] == [2, 2, 1]
        assert [int(m.uid) for batch in batches for m in batch] == uids
        first = batches[0][0]
        assert first.received_at is not None and first.uidvalidity == mailbox.uidvalidity
        cursor = mailbox.cursor_after(batches[-1])
        assert cursor.last_uid == uids[-1]
        # `UID N:*` answers with the last message when nothing is newer: never fetched again.
        assert mailbox.new_uids(cursor) == []
        assert list(mailbox.fetch_new(cursor, 2)) == []
        newer = imap_user.append(report(subject="later"))
        mailbox.close()
        again = [m.uid for b in mailbox.fetch_new(cursor, 10) for m in b]
        assert again == [str(newer)]
    finally:
        mailbox.close()
    # Reading never set \Seen: people working the same mailbox still see the mail as new.
    assert imap_user.status()["UNSEEN"] == 6


def test_mark_done_flags_with_the_keyword(imap_user: ImapUser) -> None:
    for i in range(3):
        imap_user.append(report(subject=f"r{i}"))
    mailbox = mailbox_for(imap_user, mark_seen=True)
    try:
        (batch,) = list(mailbox.fetch_new(MailboxCursor(), 10))
        cursor = mailbox.cursor_after(batch)
        assert mailbox.unmarked_uids(cursor) == [1, 2, 3]
        mailbox.mark_done(batch[:2])
        assert mailbox.unmarked_uids(cursor) == [3]
        mailbox.mark_done(batch)
        assert mailbox.unmarked_uids(cursor) == []
    finally:
        mailbox.close()
    with imap_user.imap() as conn:
        conn.select("INBOX")
        _typ, data = conn.uid("SEARCH", "KEYWORD $casedesk SEEN")
    assert data[0].split() == [b"1", b"2", b"3"]


def test_mark_done_moves_to_the_processed_folder(imap_user: ImapUser) -> None:
    for i in range(2):
        imap_user.append(report(subject=f"r{i}"))
    mailbox = mailbox_for(imap_user, processed="move", processed_folder="Processed/casedesk")
    try:
        (batch,) = list(mailbox.fetch_new(MailboxCursor(), 10))
        cursor = mailbox.cursor_after(batch)
        assert mailbox.unmarked_uids(cursor) == [1, 2]
        mailbox.mark_done(batch)
        assert mailbox.unmarked_uids(cursor) == []
    finally:
        mailbox.close()
    assert imap_user.status()["MESSAGES"] == 0
    assert imap_user.status("Processed/casedesk")["MESSAGES"] == 2


def test_uidvalidity_change_reads_the_folder_again(imap_user: ImapUser) -> None:
    for i in range(3):
        imap_user.append(report(subject=f"r{i}"))
    mailbox = mailbox_for(imap_user)
    (batch,) = list(mailbox.fetch_new(MailboxCursor(), 10))
    cursor = mailbox.cursor_after(batch)
    mailbox.mark_done(batch)
    mailbox.close()
    new_validity = imap_user.change_uidvalidity()
    try:
        rescanned = [m for b in mailbox.fetch_new(cursor, 10) for m in b]
        assert len(rescanned) == 3
        assert {m.uidvalidity for m in rescanned} == {new_validity}
        # UIDs of the old UIDVALIDITY are void: nothing is marked by them.
        assert mailbox.unmarked_uids(cursor) == []
    finally:
        mailbox.close()


def test_list_window_for_reconcile(imap_user: ImapUser) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    imap_user.append(report(subject="old", message_id="old@x"), date=old)
    imap_user.append(report(subject="new", message_id="new@x"))
    mailbox = mailbox_for(imap_user)
    try:
        today = datetime.now(UTC).date()
        listed = mailbox.list_window(today - timedelta(days=2), today)
    finally:
        mailbox.close()
    assert [(m.uid, m.message_id) for m in listed] == [(2, "new@x")]
    assert mailbox.bodies_fetched == 0


def test_login_refused_names_host_user_and_answer(imap_user: ImapUser) -> None:
    mailbox = ImapMailbox(
        "support",
        host=imap_user.host,
        port=imap_user.port,
        security="plain",
        user=imap_user.name,
        password=SecretStr("wrong-password"),
    )
    with pytest.raises(MailboxLoginError) as caught:
        mailbox.new_uids(MailboxCursor())
    message = str(caught.value)
    assert imap_user.name in message and imap_user.host in message
    assert "AUTHENTICATIONFAILED" in message
    assert "wrong-password" not in message


def test_starttls_refused_is_a_clear_error(imap_user: ImapUser) -> None:
    mailbox = mailbox_for(imap_user, security="starttls")
    with pytest.raises(MailboxError, match="starttls"):
        mailbox.new_uids(MailboxCursor())


def test_unknown_folder_is_a_clear_error(imap_user: ImapUser) -> None:
    mailbox = mailbox_for(imap_user, folder="NoSuchFolder")
    with pytest.raises(MailboxError, match="cannot select the folder"):
        mailbox.new_uids(MailboxCursor())


def test_from_settings(imap_user: ImapUser) -> None:
    from flows.settings import ImapMailboxSettings

    settings = ImapMailboxSettings(
        kind="imap",
        host=imap_user.host,
        port=imap_user.port,
        security="plain",
        user=imap_user.name,
        password=SecretStr(imap_user.password),
    )
    mailbox = ImapMailbox.from_settings(settings)
    try:
        assert mailbox.new_uids(MailboxCursor()) == []
    finally:
        mailbox.close()
