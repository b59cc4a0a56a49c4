"""The main job, end to end through real Prefect flow runs, on the embedded default."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from connectors.maildir_mailbox import MaildirMailbox
from connectors.store import CaseStore, LedgerDecision, OutboxStatus

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.eml"))


def latest_artifact(key: str) -> str:
    """The newest artifact's text under `key`, read through the Prefect API."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert artifacts, f"no artifact {key!r}"
    return str(artifacts[0].data)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "casedesk.toml"
    path.write_text(
        '[outgoing]\nfrom_address = "support@example.com"\nmessage_id_domain = "example.com"\n',
        encoding="utf-8",
    )
    return path


def test_examples_become_cases_and_confirmations_once(
    prefect_harness: None, config: Path, tmp_path: Path
) -> None:
    from flows.run_flow import run_flow

    mailbox = MaildirMailbox("support", tmp_path / "var/mailbox")
    for example in EXAMPLES:
        mailbox.add(example.read_bytes())
    mailbox.add(b"To: support@example.com\r\nSubject: no sender\r\n\r\nhello\r\n")

    first = run_flow(str(config))
    assert first.intake.fetched == len(EXAMPLES) + 1
    assert len(first.intake.new_cases) == len(EXAMPLES)
    assert first.intake.decisions[LedgerDecision.QUARANTINED.value] == 1
    assert len(first.outbox.sent) == len(EXAMPLES)

    summary = latest_artifact("casedesk-run-summary")
    assert f"| new cases | {len(EXAMPLES)} |" in summary
    assert "decision: quarantined | 1" in summary

    second = run_flow(str(config))
    assert second.intake.fetched == 0 and second.intake.new_cases == []
    assert second.outbox.sent == []

    store = CaseStore.open(f"sqlite:///{tmp_path}/var/casedesk.db")
    try:
        cases = store.list_cases()
        quarantined = store.ledger_entries(decision=LedgerDecision.QUARANTINED)
        sent = store.outbox_items(status=OutboxStatus.SENT)
        raw_kept = store.blob(quarantined[0].blob_sha256 or "")
    finally:
        store.close()
    assert len(cases) == len(EXAMPLES)
    assert len({case.number for case in cases}) == len(EXAMPLES)
    assert "no From address" in quarantined[0].reason
    assert b"Subject: no sender" in raw_kept
    assert len(sent) == len(EXAMPLES)

    subjects = {case.subject for case in cases}
    assert "登录系统提示验证码失效" in subjects
    assert "报表模块没有导出入口，权限不足" in subjects

    outbox = sorted((tmp_path / "var/outbox").glob("*.eml"))
    assert len(outbox) == len(EXAMPLES)
    by_number = {case.number: case for case in cases}
    for path in outbox:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        token = re.search(r"\[Case (\d{6}-\d{3,})\]", str(message["Subject"]))
        assert token is not None, message["Subject"]
        number = token.group(1)
        case = by_number[number]
        assert message["To"] == case.submitter.email
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["In-Reply-To"] == f"<{case.source.message_id}>"
        assert number in message.get_body(("plain",)).get_content()


def test_a_rerun_after_new_mail_only_adds_the_new_case(
    prefect_harness: None, config: Path, tmp_path: Path
) -> None:
    from flows.run_flow import run_flow

    mailbox = MaildirMailbox("support", tmp_path / "var/mailbox")
    mailbox.add(EXAMPLES[0].read_bytes())
    assert len(run_flow(str(config)).intake.new_cases) == 1
    mailbox.add(EXAMPLES[1].read_bytes())
    mailbox.add(EXAMPLES[0].read_bytes())  # the same mail delivered again
    report = run_flow(str(config)).intake
    assert len(report.new_cases) == 1
    assert report.decisions == {"new_report": 1, "duplicate": 1}
    shutil.rmtree(tmp_path / "var")
