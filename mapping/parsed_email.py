"""An incoming email as intake needs it: parsed once, decoded, with what it says about itself.

`parse_email(raw)` is the one entry point. This first version leans on the standard library;
the robust one (charsets, HTML, quoted replies, Chinese clients) grows behind the same model.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from datetime import datetime
from email.message import EmailMessage

from pydantic import BaseModel, ConfigDict, Field

from mapping.case import AttachmentInfo
from mapping.errors import MessageParseError

__all__ = ["ParsedAttachment", "ParsedEmail", "parse_email"]


class ParsedAttachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    info: AttachmentInfo
    content: bytes = Field(repr=False)


class ParsedEmail(BaseModel):
    """What intake reads from one message."""

    model_config = ConfigDict(frozen=True)

    message_id: str | None = Field(description="Without angle brackets.")
    in_reply_to: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    subject: str = ""
    from_name: str = ""
    from_address: str | None = None
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    date: datetime | None = None
    headers: dict[str, list[str]] = Field(
        default_factory=dict, description="Lower-cased names -> decoded values."
    )
    text: str = Field(default="", description="The readable body (HTML converted when needed).")
    reply_text: str = Field(default="", description="The visible reply, without quoted history.")
    html: str | None = None
    attachments: list[ParsedAttachment] = Field(default_factory=list)
    language: str = "zh"
    problems: list[str] = Field(
        default_factory=list, description="Parts that could not be decoded cleanly, and why."
    )

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def _ids(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip("<> \t\r\n") for part in value.split() if part.strip("<> \t\r\n")]


def guess_language(text: str) -> str:
    """'zh' when CJK ideographs make up a fair share of the letters, else 'en'."""
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return "zh" if cjk and cjk * 3 >= latin * 0.5 else "en"


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse a raw message; MessageParseError when there is nothing a case can be made of."""
    if not raw.strip():
        raise MessageParseError("the message is empty")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage):  # pragma: no cover - policy.default guarantees it
        raise MessageParseError("not an RFC 5322 message")
    headers: dict[str, list[str]] = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), []).append(str(value))
    from_name, from_address = email.utils.parseaddr(str(message.get("From", "")))
    date = None
    if message.get("Date"):
        try:
            date = email.utils.parsedate_to_datetime(str(message["Date"]))
        except (TypeError, ValueError):
            date = None
    body = message.get_body(preferencelist=("plain", "html"))
    text = ""
    html = None
    if body is not None:
        content = body.get_content()
        if body.get_content_subtype() == "html":
            html = content
        text = content if isinstance(content, str) else ""
    subject = str(message.get("Subject", "")).strip()
    return ParsedEmail(
        message_id=(_ids(str(message.get("Message-ID", ""))) or [None])[0],
        in_reply_to=_ids(message.get("In-Reply-To")),
        references=_ids(message.get("References")),
        subject=subject,
        from_name=from_name,
        from_address=from_address.lower() or None,
        to=[addr for _, addr in email.utils.getaddresses(message.get_all("To", []))],
        cc=[addr for _, addr in email.utils.getaddresses(message.get_all("Cc", []))],
        date=date if date is None or date.tzinfo else None,
        headers=headers,
        text=text,
        reply_text=text,
        html=html,
        language=guess_language(subject + text),
    )
