"""An incoming email as intake needs it: parsed once, decoded, with what it says about itself.

`parse_email(raw)` is the one entry point. The MIME tree comes from the standard library's
`email` package with the compat32 policy: it is the fastest parser we measured (2,400 msg/s
against 880 for policy.default) and it leaves every undecoded byte reachable, so that
`mapping.mail_decoding` decodes each header and each part by itself, with its own charset rules.
One part that cannot be decoded becomes a note in `problems`, never a failed message.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import logging
import quopri
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mapping.case import AttachmentInfo, subject_line
from mapping.environment import environment_from_text
from mapping.errors import MessageParseError
from mapping.mail_decoding import decode_bytes, decode_header_value, html_to_text
from mapping.reply_text import visible_reply

__all__ = ["ParsedAttachment", "ParsedEmail", "guess_language", "parse_email"]

logger = logging.getLogger(__name__)

#: Headers whose decoded value is kept (the rest are not read by intake, and decoding costs).
KEPT_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "return-path",
        "auto-submitted",
        "precedence",
        "x-autoreply",
        "x-autorespond",
        "x-auto-response-suppress",
        "x-ms-exchange-generated-message-source",
        "x-ms-exchange-inbox-rules-loop",
        "x-failed-recipients",
        "x-mailer",
        "user-agent",
        "content-type",
        "list-id",
        "list-unsubscribe",
        "x-loop",
        "x-casedesk-loop",
    }
)


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
    content_type: str = "text/plain"
    text: str = Field(default="", description="The readable body (HTML converted when needed).")
    reply_text: str = Field(default="", description="The visible reply, without quoted history.")
    html: str | None = None
    attachments: list[ParsedAttachment] = Field(default_factory=list)
    attached_message_ids: list[str] = Field(
        default_factory=list,
        description="Message-IDs of attached messages (message/rfc822, DSN headers).",
    )
    language: str = "zh"
    problems: list[str] = Field(
        default_factory=list, description="Parts that could not be decoded cleanly, and why."
    )
    environment: dict[str, str] | None = Field(
        default=None,
        description="Browser, OS, version, device named in the subject and the report's words "
        "(`report_words`); None where not read (a ParsedEmail made by hand).",
    )

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


_ID = re.compile(r"<([^<>\s]+)>")


def _ids(value: str | None) -> list[str]:
    """Message-IDs in a header; tolerant of missing angle brackets."""
    if not value:
        return []
    found = _ID.findall(value)
    if found:
        return found
    return [part.strip("<> \t\r\n,") for part in value.split() if "@" in part]


#: Everything but CJK ideographs (U+4E00-U+9FFF): deleting it leaves the ones counted.
_NOT_CJK = re.compile("[^\u4e00-\u9fff]+")
_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def guess_language(text: str) -> str:
    """'zh' when CJK ideographs make up a fair share of the letters, else 'en'."""
    # Counted in C (a loop over the characters in Python took 40 us of a message's parse, this
    # 6): ASCII letters are the UTF-8 bytes A-Z and a-z, which never occur inside a multibyte
    # character ("surrogatepass" encodes a lone surrogate as three bytes over 0x7F as well).
    sample = text[:4000]
    cjk = len(_NOT_CJK.sub("", sample))
    encoded = sample.encode("utf-8", "surrogatepass")
    latin = len(encoded) - len(encoded.translate(None, _ASCII_LETTERS))
    return "zh" if cjk and cjk * 3 >= latin * 0.5 else "en"


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # "-0000" (and no zone at all) means "UTC, local zone unknown" (RFC 5322 3.3).
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class _Collector:
    """Walks the MIME tree once, decoding each part by itself."""

    def __init__(self, hint: str | None) -> None:
        self.hint = hint
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.attached_ids: list[str] = []
        self.problems: list[str] = []

    def walk(self, part: Message, path: str = "1", in_alternative: bool = False) -> None:
        content_type = part.get_content_type()
        if part.is_multipart():
            children = part.get_payload()
            if not isinstance(children, list):  # pragma: no cover - is_multipart says list
                return
            if content_type == "message/rfc822":
                messages = [child for child in children if isinstance(child, Message)]
                self._attached_message(part, messages, path)
                return
            alternative = content_type == "multipart/alternative"
            for index, child in enumerate(children, 1):
                if isinstance(child, Message):
                    self.walk(child, f"{path}.{index}", alternative)
            return
        try:
            self._leaf(part, content_type, path, in_alternative)
        except (LookupError, ValueError, TypeError, AttributeError, UnicodeError) as error:
            # One bad part never fails the message: note it and go on.
            self.problems.append(f"part {path} ({content_type}): {type(error).__name__}: {error}")

    def _filename(self, part: Message) -> str | None:
        raw_param = part.get_param("filename", header="content-disposition")
        if raw_param is None:
            raw_param = part.get_param("name")
        if raw_param is None:
            return None
        if isinstance(raw_param, str) and "\ufffd" in raw_param:
            # compat32 hands a header with raw 8-bit bytes out as a Header that has already
            # replaced them with U+FFFD; read the parameter from the raw bytes instead.
            name = _raw_8bit_filename(part)
            if name is not None:
                return name
        if isinstance(raw_param, tuple):  # RFC 2231: (charset, language, %-decoded latin-1)
            charset, _language, value = raw_param
            data = bytes(str(value), "raw-unicode-escape")
            name, problem = decode_bytes(data, charset or None, hint=self.hint)
        else:
            name, problem = decode_header_value(email.utils.unquote(str(raw_param)), hint=self.hint)
        if problem:
            self.problems.append(f"attachment name: {problem}")
        return name.strip() or None

    def _leaf(self, part: Message, content_type: str, path: str, in_alternative: bool) -> None:
        disposition = (_raw_header(part, "Content-Disposition") or "").split(";")[0]
        disposition = disposition.strip().lower()
        filename = self._filename(part)
        is_body = (
            content_type in ("text/plain", "text/html")
            and disposition != "attachment"
            and (filename is None or in_alternative)
        )
        payload = _decoded_payload(part)
        data = payload if isinstance(payload, bytes) else b""
        if is_body:
            text, problem = decode_bytes(data, part.get_content_charset(), hint=self.hint)
            if problem:
                self.problems.append(f"part {path} ({content_type}): {problem}")
            (self.plain if content_type == "text/plain" else self.html).append(text)
            return
        if content_type == "text/rfc822-headers":
            headers = message_from_bytes(data, policy=compat32)
            self.attached_ids.extend(_ids(_raw_header(headers, "Message-ID")))
        if not data and content_type.startswith("message/"):
            raw = part.get_payload()
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
        inline = disposition == "inline" or (
            disposition != "attachment" and _raw_header(part, "Content-ID") is not None
        )
        self._add_attachment(
            filename or _default_name(content_type, path), content_type, data, inline
        )

    def _attached_message(self, part: Message, children: list[Message], path: str) -> None:
        inner = children[0] if children else None
        if inner is None:
            return
        try:
            data = inner.as_bytes(policy=compat32)
        except (LookupError, ValueError, TypeError, UnicodeError) as error:
            self.problems.append(f"part {path} (message/rfc822): cannot re-serialise: {error}")
            data = b""
        encoding = (_raw_header(part, "Content-Transfer-Encoding") or "").strip().lower()
        if encoding in ("base64", "quoted-printable") and data:
            # RFC 2046 forbids encoding a message/rfc822 part, but webmail (Yandex) does it; the
            # standard library then parses the encoded text as if it were the message.
            decoded = _decode_transfer(data, encoding)
            if decoded:
                data = decoded
                inner = message_from_bytes(data, policy=compat32)
        self.attached_ids.extend(_ids(_raw_header(inner, "Message-ID")))
        subject, _ = decode_header_value(_raw_header(inner, "Subject"), hint=self.hint)
        name = self._filename(part) or f"{(subject or 'message')[:80]}.eml"
        self._add_attachment(name, "message/rfc822", data, inline=False)

    def _add_attachment(self, name: str, content_type: str, data: bytes, inline: bool) -> None:
        info = AttachmentInfo(
            filename=name,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            inline=inline,
        )
        self.attachments.append(ParsedAttachment(info=info, content=data))


def _decoded_payload(part: Message) -> Any:
    """`part.get_payload(decode=True)`, its common base64 case without the line list.

    For base64 the standard library decodes `b"".join(payload.splitlines())` strictly when its
    length is a multiple of four (email/message.py, email/_encoded_words.decode_b). Joining the
    lines of a 100 KB attachment took 90 us; removing CR and LF, which are all that bytes'
    splitlines() breaks at, gives the same bytes in 20. Anything else (8-bit text, padding to
    repair, characters outside base64) is left to get_payload, with its defects."""
    payload = part._payload  # type: ignore[attr-defined]
    if (
        not part.is_multipart()
        and isinstance(payload, str)
        and payload.isascii()  # so no surrogate escapes: get_payload encodes it as ASCII
        and str(part.get("content-transfer-encoding", "")).lower() == "base64"
    ):
        encoded = payload.encode("ascii")
        if b"\r" in encoded:
            encoded = encoded.replace(b"\r", b"")
        joined = encoded.replace(b"\n", b"")
        if len(joined) % 4 == 0:
            try:
                return base64.b64decode(joined, validate=True)
            except binascii.Error:
                pass
    return part.get_payload(decode=True)


_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "text/plain": "txt"}


def _default_name(content_type: str, path: str) -> str:
    extension = _EXTENSIONS.get(content_type, content_type.rpartition("/")[2] or "bin")
    return f"part-{path}.{extension}"


def _body_charset(message: Message) -> str | None:
    """The first declared charset in the message: raw 8-bit headers usually share it."""
    for part in message.walk():
        charset = part.get_content_charset()
        if charset:
            return charset
    return None


# Long base64 bodies, past the line-by-line parser ---------------------------------------------
# The standard library's feed parser reads a message line by line in Python (a readline, a
# boundary check per line) and then searches each part's whole payload for its last line break
# with an unanchored regex: a 100 KB base64 attachment (1,800 lines) cost 1.6 ms of the 1.7 ms
# its message took to parse. So long runs of base64 lines are each replaced by one token line
# before the parser runs, and put back into the parts' payloads after it.
#
# Why the result is the same tree: a line made only of base64 characters (A-Z a-z 0-9 + / =) is
# plain content in every state of the parser (email/feedparser.py): it is no boundary (those
# start with "--"), no blank line (which ends a header block or a delivery-status block), no
# header or continuation (those have a ":" or start with a space or tab, or are "From "). So a
# run of them does exactly what one such line does: the first ends a header block where one is
# open (the same defect is noted) and the lines go, in order and unchanged, into the preamble,
# the payload or the epilogue being read. The token is such a line and keeps the run's last line
# ending, so the line-break trimming at the end of a part or preamble sees the same ending. The
# parser never splits or joins inside a line, so each token comes out whole, in one payload,
# preamble or epilogue string, and putting the run back gives the string the plain parse gives.
# A run is taken only when it is proved: lines of one width, each the width's base64 characters
# then the same line ending (checked byte for byte against a template), starting after a line
# break. A message that already contains the token's marker is parsed as it is.
_BASE64_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_SKELETON = bytes.maketrans(_BASE64_BYTES, b"A" * len(_BASE64_BYTES))
#: A line of base64 characters after a line break: where a run may start.
_RUN_SEED = re.compile(rb"\n([A-Za-z0-9+/=]{40,})(\r?\n)")
#: Shorter runs are left to the parser (they cost it little).
MIN_RUN_LINES = 64
_MARK = "QcasedeskRunQ"
_TOKEN = re.compile(f"{_MARK}([0-9]+){_MARK}")


def _base64_runs(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) of each long run of equal-width base64 lines; `end` is before the last
    line's ending, so the token keeps it."""
    runs: list[tuple[int, int]] = []
    position = 0
    while (seed := _RUN_SEED.search(raw, position)) is not None:
        start = seed.start(1)
        width = len(seed.group(1))
        ending = seed.group(2)
        step = width + len(ending)
        # Lines of the same width have their endings every `step` bytes: count how many do.
        lines = len(raw) - start
        for offset, byte in enumerate(ending):
            found = raw[start + width + offset :: step]
            lines = min(lines, len(found) - len(found.lstrip(bytes([byte]))))
        # And their other bytes must all be base64 characters.
        candidate = raw[start : start + lines * step].translate(_SKELETON)
        template = (b"A" * width + ending) * lines
        if candidate != template:
            low, high = 1, lines  # the seed line is one; `high` lines are not all good
            while high - low > 1:
                middle = (low + high) // 2
                if candidate[: middle * step] == template[: middle * step]:
                    low = middle
                else:
                    high = middle
            lines = low
        if lines >= MIN_RUN_LINES:
            runs.append((start, start + lines * step - len(ending)))
        # The last line's "\n" (a run may follow); never before the seed's own.
        position = max(start + lines * step, seed.end()) - 1
    return runs


def parse_mime(raw: bytes) -> Message:
    """`email.message_from_bytes(raw, policy=compat32)`, faster on long base64 bodies."""
    runs = _base64_runs(raw) if _MARK.encode("ascii") not in raw else []
    if not runs:
        return message_from_bytes(raw, policy=compat32)
    pieces: list[bytes] = []
    texts: list[str] = []
    position = 0
    for start, end in runs:
        pieces += (raw[position:start], f"{_MARK}{len(texts)}{_MARK}".encode("ascii"))
        texts.append(raw[start:end].decode("ascii"))
        position = end
    pieces.append(raw[position:])
    message = message_from_bytes(b"".join(pieces), policy=compat32)

    def restore(match: re.Match[str]) -> str:
        return texts[int(match.group(1))]

    for part in message.walk():
        # The parser's own string: get_payload() would hand out 8-bit text decoded already.
        payload = part._payload  # type: ignore[attr-defined]
        if isinstance(payload, str) and _MARK in payload:
            part._payload = _TOKEN.sub(restore, payload)  # type: ignore[attr-defined]
        for name in ("preamble", "epilogue"):
            value = getattr(part, name)
            if isinstance(value, str) and _MARK in value:
                setattr(part, name, _TOKEN.sub(restore, value))
    return message


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse a raw message; MessageParseError when there is nothing a case can be made of."""
    if not raw.strip():
        raise MessageParseError("the message is empty")
    try:
        message = parse_mime(raw)
    except (ValueError, TypeError, LookupError, IndexError) as error:
        raise MessageParseError(f"not an RFC 5322 message: {error}") from error
    if not message.keys():
        raise MessageParseError("no header could be read")
    hint = _body_charset(message)
    problems: list[str] = []
    headers: dict[str, list[str]] = {}
    raw_headers: dict[str, list[str]] = {}
    # raw_items: compat32 hands raw 8-bit headers out as Header objects otherwise.
    for name, value in message.raw_items():
        key = name.lower()
        raw_headers.setdefault(key, []).append(value)
        if key not in KEPT_HEADERS:
            continue
        decoded, problem = _decode_header(value, hint)
        if problem:
            problems.append(f"header {name}: {problem}")
        headers.setdefault(key, []).append(decoded)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    raw_from = (raw_headers.get("from") or raw_headers.get("sender") or [""])[0]
    display, address = _parse_address(raw_from)
    from_name, _ = _decode_header(display, hint)
    address = _decoded_address(address, hint)
    if "@" not in address:
        address = ""

    collector = _Collector(hint)
    collector.walk(message)
    problems.extend(collector.problems)
    html = "\n".join(collector.html) if collector.html else None
    if collector.plain and any(text.strip() for text in collector.plain):
        # CRLF first: strip("\n") alone leaves the "\r" of a trailing "\r\n" behind.
        pieces = (piece.replace("\r\n", "\n").strip("\n") for piece in collector.plain)
        text = "\n\n".join(pieces)
    elif html is not None:
        try:
            text = html_to_text(html)
        except (ValueError, TypeError, AssertionError, RecursionError) as error:
            problems.append(f"html body: {type(error).__name__}: {error}")
            text = re.sub(r"<[^>]+>", " ", html)
    else:
        text = ""
    text = text.replace("\r\n", "\n").replace("\x00", "")
    reply = visible_reply(text)
    subject = first("subject") or ""
    # Read here, in the parse worker when there is one, not by intake's own process.
    environment = environment_from_text(
        f"{subject_line(subject)}\n{report_words(subject, text, reply)}"
    )
    return ParsedEmail(
        message_id=next(iter(_ids(first("message-id"))), None),
        in_reply_to=_ids(first("in-reply-to")),
        references=_ids(" ".join(headers.get("references", []))),
        subject=subject,
        from_name=from_name.strip().strip('"').strip(),
        from_address=address or None,
        to=_addresses(raw_headers.get("to", []), hint),
        cc=_addresses(raw_headers.get("cc", []), hint),
        date=_parse_date(first("date")),
        headers=headers,
        content_type=message.get_content_type(),
        text=text,
        reply_text=reply,
        html=html,
        attachments=collector.attachments,
        attached_message_ids=collector.attached_ids,
        language=guess_language(subject + "\n" + (reply or text)),
        problems=problems,
        environment=environment,
    )


_FORWARD = re.compile(r"^\s*(?:fwd?|转发|轉寄|转寄)\s*[:：]", re.IGNORECASE)


def report_words(subject: str, text: str, reply_text: str) -> str:
    """A report's words: the visible reply, or the whole text of a forwarded mail."""
    if _FORWARD.match(subject) or not reply_text.strip():
        return text.strip()
    return reply_text.strip()


def _raw_header(message: Message, name: str) -> str | None:
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return value
    return None


def _decoded_address(address: str, hint: str | None) -> str:
    """An address lower-cased; raw UTF-8 (RFC 6532, "jdöe@mächine.example") decoded."""
    address = address.strip()
    if not address.isascii():
        # compat32 keeps the raw bytes as surrogate escapes.
        address, _ = decode_header_value(address, hint=hint)
    return address.lower()


# The standard library's address parser is pure Python (about 20 us a header) and the same
# headers come again and again (To: our own address, From: the same senders): its answers,
# which depend on the header's text alone, are kept for short headers (460 -> 430 us a
# message), and so are our decoded header values (which depend on the text and the body's
# charset: 415 -> 396 us).
_CACHED_HEADER_CHARS = 1000


@lru_cache(maxsize=2048)
def _cached_parseaddr(value: str) -> tuple[str, str]:
    return email.utils.parseaddr(value)


@lru_cache(maxsize=2048)
def _cached_getaddresses(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(email.utils.getaddresses(list(values)))


@lru_cache(maxsize=4096)
def _cached_header(value: str, hint: str | None) -> tuple[str, str | None]:
    return decode_header_value(value, hint=hint)


def _decode_header(value: str, hint: str | None) -> tuple[str, str | None]:
    """decode_header_value, its answers kept for short headers (To, From, Content-Type recur)."""
    if len(value) > _CACHED_HEADER_CHARS:
        return decode_header_value(value, hint=hint)
    return _cached_header(value, hint)


def _parse_address(value: str) -> tuple[str, str]:
    if len(value) > _CACHED_HEADER_CHARS:
        return email.utils.parseaddr(value)
    return _cached_parseaddr(value)


def _address_list(values: list[str]) -> list[tuple[str, str]] | tuple[tuple[str, str], ...]:
    if sum(map(len, values)) > _CACHED_HEADER_CHARS:
        return email.utils.getaddresses(values)
    return _cached_getaddresses(tuple(values))


def _addresses(values: list[str], hint: str | None = None) -> list[str]:
    return [
        _decoded_address(address, hint) for _, address in _address_list(values) if "@" in address
    ]


def _decode_transfer(data: bytes, encoding: str) -> bytes:
    """Base64 or quoted-printable bytes decoded; b"" when they are not what they claim."""
    try:
        if encoding == "base64":
            return base64.b64decode(b"".join(data.split()), validate=True)
        return quopri.decodestring(data)
    except (binascii.Error, ValueError):
        return b""


def _raw_8bit_filename(part: Message) -> str | None:
    """The filename parameter of a header that carries raw 8-bit bytes (UTF-8 or the body's)."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        raw = _raw_header(part, header)
        if raw is None:
            continue
        # Latin-1 maps each surrogate-escaped byte to one character, so the standard
        # parameter parser works on it and the bytes come back unchanged afterwards.
        shadow = Message()
        shadow[header] = raw.encode("ascii", "surrogateescape").decode("latin-1")
        value = shadow.get_param(param, header=header)
        if isinstance(value, str):
            data = email.utils.unquote(value).encode("latin-1", "replace")
            name, _ = decode_bytes(data, None, hint=part.get_content_charset())
            return name.strip() or None
    return None
