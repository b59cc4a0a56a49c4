"""The real Prefect intake flow once, on Dovecot: cases made, mail flagged, re-run a no-op."""

from __future__ import annotations

from pathlib import Path

from connectors.mailbox import MailboxCursor
from connectors.store import CaseStore
from tests.flows.intake_mail import report
from tests.support.servers_plugin import ImapUser


def test_intake_flow_on_dovecot(prefect_harness: None, imap_user: ImapUser, tmp_path: Path) -> None:
    from flows.intake_flow import intake_flow

    for i in range(7):
        imap_user.append(report(subject=f"流程测试 {i}"))
    url = f"sqlite:///{tmp_path / 'flow.sqlite3'}"
    config = tmp_path / "casedesk.toml"
    config.write_text(
        f'database_url = "{url}"\nbatch_size = 2\nparse_workers = 1\n'
        '[outgoing]\nfrom_address = "support@casedesk.test"\nmessage_id_domain = "casedesk.test"\n'
        "[[mailboxes]]\n"
        f'kind = "imap"\nname = "support"\nhost = "{imap_user.host}"\nport = {imap_user.port}\n'
        f'security = "plain"\nuser = "{imap_user.name}"\npassword = "{imap_user.password}"\n',
        encoding="utf-8",
    )
    first = intake_flow(str(config))
    # Four batches: the first parsed in-process, the other three by a parse worker.
    assert first.fetched == 7 and len(first.new_cases) == 7
    second = intake_flow(str(config))
    assert second.fetched == 0 and second.new_cases == []
    store = CaseStore.open(url)
    try:
        assert sorted(case.subject for case in store.list_cases()) == [
            f"流程测试 {i}" for i in range(7)
        ]
        cursor = MailboxCursor.model_validate_json(store.watermark("mailbox:support") or "{}")
        assert cursor.last_uid == 7
    finally:
        store.close()
    with imap_user.imap() as conn:
        conn.select("INBOX")
        _typ, data = conn.uid("SEARCH", "KEYWORD $casedesk")
    assert data[0].split() == [str(uid).encode() for uid in range(1, 8)]
