"""Mail we send: rendered from templates into a complete MIME message with a stable identity.

Composing is pure: the same case, kind and round always give the same key and Message-ID, so a
re-run queues nothing new and a resent message is folded by mail clients.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mapping.case import Case
from mapping.errors import CasedeskError
from templates import TEMPLATES_DIR

__all__ = ["OutboxMessage", "SenderIdentity", "case_token", "compose", "message_id_for"]


class OutboxMessage(BaseModel):
    """A rendered message waiting to be sent; `key` makes queuing it idempotent."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Unique per (case, kind, round): queued once, whatever re-runs.")
    case_number: str | None
    kind: str
    recipients: list[str]
    subject: str
    message_id: str
    content: bytes = Field(description="The whole MIME message, ready for the wire.")


class SenderIdentity(BaseModel):
    """Who we are on the wire, and the secret that signs our Message-IDs."""

    from_address: str
    from_name: str = ""
    message_id_domain: str
    signing_secret: SecretStr
    timezone: str = "Asia/Shanghai"


def case_token(case_number: str) -> str:
    """The subject token a reply keeps: `[Case 202405-001]`."""
    return f"[Case {case_number}]"


def message_id_for(key: str, identity: SenderIdentity) -> str:
    """A deterministic Message-ID, signed so a reply can be matched back without a lookup."""
    secret = identity.signing_secret.get_secret_value().encode()
    signature = hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:16]
    local = key.replace("/", ".").replace(" ", "_")
    return f"casedesk.{local}.{signature}@{identity.message_id_domain}"


def _environment(zone: ZoneInfo) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.globals["local"] = lambda value: value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return environment


def compose(
    kind: str,
    case: Case,
    *,
    recipients: list[str],
    identity: SenderIdentity,
    now: datetime,
    round_number: int = 1,
    thread: list[str] | None = None,
) -> OutboxMessage:
    """Render one kind of mail about one case into a ready-to-send message."""
    if case.number is None:
        raise CasedeskError(f"cannot write {kind} mail about a case that has no number yet")
    language = case.language.value
    try:
        template = _environment(ZoneInfo(identity.timezone)).get_template(
            f"email/{language}/{kind}.txt.j2"
        )
    except TemplateNotFound as error:
        raise CasedeskError(
            f"no template for {kind!r} in language {language!r} "
            f"(expected {TEMPLATES_DIR}/email/{language}/{kind}.txt.j2)"
        ) from error
    text = template.render(case=case)
    key = f"{case.number}/{kind}/{round_number}"
    message_id = message_id_for(key, identity)
    subject = f"{case_token(case.number)} {case.subject}".strip()
    message = EmailMessage()
    message["From"] = formataddr((identity.from_name, identity.from_address))
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{message_id}>"
    if thread:
        message["In-Reply-To"] = f"<{thread[-1]}>"
        message["References"] = " ".join(f"<{ref}>" for ref in thread)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text)
    return OutboxMessage(
        key=key,
        case_number=case.number,
        kind=kind,
        recipients=recipients,
        subject=subject,
        message_id=message_id,
        content=message.as_bytes(),
    )
