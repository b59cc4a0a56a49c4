"""Mail we send: rendered from templates into a complete MIME message with a stable identity.

Composing is pure: the same case, kind and round always give the same key and Message-ID, so a
re-run queues nothing new and a resent message is folded by mail clients.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mapping.case import Case
from mapping.errors import CasedeskError
from templates import TEMPLATES_DIR

__all__ = [
    "OurMessageRef",
    "OutboxMessage",
    "SenderIdentity",
    "case_token",
    "compose",
    "message_id_for",
    "parse_message_id",
]


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


class OurMessageRef(BaseModel):
    """What one of our Message-IDs says, once its signature checked out."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="The outbox key it was made from.")
    case_number: str | None = Field(description="None for digests over several cases.")
    kind: str
    round_number: int | None = Field(default=None, description="Case mail: the round.")
    period: str | None = Field(default=None, description="Digest mail: the period it covers.")


def _signature(key: str, identity: SenderIdentity) -> str:
    secret = identity.signing_secret.get_secret_value().encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:16]


def message_id_for(key: str, identity: SenderIdentity) -> str:
    """A deterministic Message-ID, signed so a reply can be matched back without a lookup."""
    local = key.replace("/", ".").replace(" ", "_")
    return f"casedesk.{local}.{_signature(key, identity)}@{identity.message_id_domain}"


# casedesk.<case>.<kind>.<round>.<sig> and casedesk.digest.<kind>.<period>.<sig>
_OUR_LOCAL_PART = re.compile(
    r"^casedesk\."
    r"(?:(?P<case>\d{6}-\d{3,})\.(?P<kind>[a-z][a-z0-9_]*)\.(?P<round>\d{1,6})"
    r"|digest\.(?P<digest_kind>[a-z][a-z0-9_]*)\.(?P<period>[A-Za-z0-9-]{1,40}))"
    r"\.(?P<sig>[0-9a-f]{16})$"
)


def parse_message_id(message_id: str, identity: SenderIdentity) -> OurMessageRef | None:
    """Our Message-ID (with or without <>) back to case, kind and round; None if not ours.

    None also when the signature does not match: a forged or mangled reference is treated like
    any stranger's, so nobody can attach mail to a case by guessing its number.
    """
    text = message_id.strip().removeprefix("<").removesuffix(">").strip()
    local, at, domain = text.rpartition("@")
    if not at or domain.lower() != identity.message_id_domain.lower():
        return None
    match = _OUR_LOCAL_PART.match(local)
    if match is None:
        return None
    if match["case"] is not None:
        key = f"{match['case']}/{match['kind']}/{int(match['round'])}"
        ref = OurMessageRef(
            key=key,
            case_number=match["case"],
            kind=match["kind"],
            round_number=int(match["round"]),
        )
    else:
        key = digest_key(match["digest_kind"], match["period"])
        ref = OurMessageRef(
            key=key, case_number=None, kind=match["digest_kind"], period=match["period"]
        )
    if not hmac.compare_digest(match["sig"], _signature(key, identity)):
        return None
    return ref


def case_mail_key(case_number: str, kind: str, round_number: int) -> str:
    """The outbox key of one case mail: queued once per (case, kind, round)."""
    return f"{case_number}/{kind}/{round_number}"


def digest_key(kind: str, period: str) -> str:
    """The outbox key of one digest: queued once per (kind, period), e.g. `20240520T08`."""
    return f"digest/{kind}/{period}"


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
    key = case_mail_key(case.number, kind, round_number)
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
