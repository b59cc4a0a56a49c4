"""Golden files: every `tests/fixtures/emails/X.eml` beside `X.expected.json`, one test each.

The expected record holds what intake reads from the mail (decoded headers, visible reply,
attachments), how it is classified, and, for new reports, the case it opens. To write the
expected files after an intended change: `CASEDESK_REGEN_GOLDEN=1 pytest tests/mapping`, then
read the diff before committing it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from mapping.classify import MessageKind, classify
from mapping.email_to_case import case_from_email
from mapping.outgoing_mail import SenderIdentity
from mapping.parsed_email import parse_email

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
IDENTITY = SenderIdentity(
    from_address="support@casedesk.test",
    from_name="技术支持",
    message_id_domain="casedesk.test",
    signing_secret=SecretStr("golden-secret"),
)
NOW = datetime(2024, 5, 21, 12, 0, tzinfo=UTC)
ARRIVAL = datetime(2024, 5, 21, 11, 0, tzinfo=UTC)


def record_of(raw: bytes) -> dict[str, Any]:
    parsed = parse_email(raw)
    verdict = classify(parsed, raw, IDENTITY)
    record: dict[str, Any] = {
        "subject": parsed.subject,
        "from_name": parsed.from_name,
        "from_address": parsed.from_address,
        "date": parsed.date.isoformat() if parsed.date else None,
        "language": parsed.language,
        "reply_text": parsed.reply_text,
        "attachments": [a.info.model_dump() for a in parsed.attachments],
        "attached_message_ids": parsed.attached_message_ids,
        "problems": parsed.problems,
        "classification": verdict.model_dump(mode="json"),
    }
    if verdict.kind == MessageKind.NEW_REPORT:
        case = case_from_email(parsed, mailbox="support", now=NOW, received_at=ARRIVAL)
        record["case"] = {
            "subject": case.subject,
            "submitter": case.submitter.model_dump(exclude_none=True),
            "description": case.description,
            "environment": case.environment,
            "language": case.language.value,
            "attachments": [a.filename for a in case.attachments],
            "intake_log": case.process_log[0].text,
        }
    return record


GOLDEN = sorted(FIXTURES.glob("*.eml"))


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_email(path: Path) -> None:
    expected_path = path.with_suffix(".expected.json")
    actual = record_of(path.read_bytes())
    if os.environ.get("CASEDESK_REGEN_GOLDEN") == "1":
        text = json.dumps(actual, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        expected_path.write_text(text, encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert actual == expected


def test_every_golden_file_has_its_expectation() -> None:
    assert len(GOLDEN) >= 12
    missing = [p.name for p in GOLDEN if not p.with_suffix(".expected.json").exists()]
    assert not missing or os.environ.get("CASEDESK_REGEN_GOLDEN") == "1", missing
