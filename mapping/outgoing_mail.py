"""Mail we send: rendered from templates into a complete MIME message with a stable identity.

Composing is pure: the same case, kind and round always give the same key and Message-ID, so a
re-run queues nothing new and a resent message is folded by mail clients.

Templates live in `templates/email/<lang>/<kind>.txt.j2` (the subject block and the plain-text
part) and `<kind>.html.j2` (the HTML part); a new language is a new folder of files. Mail to the
team (assignment, escalation, digests) only ever sees the submitter masked (`张*`), because the
case is masked before any template sees it.

Every value that reaches a header is made safe here: CR, LF and other control characters in
subjects and names become spaces, addresses are validated (InvalidAddress), and references from
a user's mail that are not Message-IDs are dropped. Header injection has no way in.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import logging
import random
import re
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mapping.case import Case, LogEntry, LogKind, Person
from mapping.errors import CasedeskError
from templates import TEMPLATES_DIR

__all__ = [
    "DIGEST_KINDS",
    "EMAIL_TEMPLATES_DIR",
    "TEAM_KINDS",
    "USER_KINDS",
    "ComposeError",
    "InvalidAddress",
    "MailTemplates",
    "OurMessageRef",
    "OutboxMessage",
    "RenderedMail",
    "SenderIdentity",
    "case_mail_key",
    "case_token",
    "compose",
    "compose_digest",
    "digest_key",
    "is_role_address",
    "message_id_for",
    "parse_message_id",
    "validate_address",
]

logger = logging.getLogger(__name__)

EMAIL_TEMPLATES_DIR = TEMPLATES_DIR / "email"

#: Mail to the person who reported, about their case (seed steps 1, 3, 5).
USER_KINDS = frozenset(
    {"confirmation", "progress", "feedback_request", "feedback_reminder", "closed_without_answer"}
)
#: Mail to the team about one case (steps 2 and 4): the submitter is masked.
TEAM_KINDS = frozenset({"assignment", "escalation", "triage_notice"})
#: Mail to the team over several cases (steps 4 and 6): masked, `compose_digest`.
DIGEST_KINDS = frozenset({"lead_digest", "team_digest"})

_KIND = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_PERIOD = re.compile(r"^[A-Za-z0-9-]{1,40}$")
# Dot-atom local part and a dotted host name: what every relay accepts without quoting.
# Quoted local parts and non-ASCII (SMTPUTF8) addresses are refused on purpose: we write to work
# addresses, and a strict rule leaves no room for smuggling header syntax into an address.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# Addresses that answer automatically or never read: writing to them can only start a loop.
_ROLE_LOCAL_PART = re.compile(
    r"^(?:mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?)(?:[+-].*)?$",
    re.IGNORECASE,
)
_MESSAGE_ID = re.compile(r"^[^\s<>()\[\]\\,;:@\"]+@[^\s<>()\\,;:@\"]+$")
# Control characters (CR and LF above all), and the Unicode line and paragraph separators.
_HEADER_BREAKERS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_MAX_SUBJECT = 200
_MAX_REFERENCES = 20


class ComposeError(CasedeskError):
    """A mail cannot be composed (no template, a case without a number, a bad value)."""


class InvalidAddress(ComposeError):
    """An address we were asked to write to (or from) is not a plain, valid address."""

    def __init__(self, address: str, *, role: str = "recipient") -> None:
        self.address = address
        super().__init__(
            f"invalid {role} address {address!r}: expected a plain address like "
            "name@example.com (no display name, no line breaks, ASCII only)"
        )


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
    default_language: str = Field(
        default="zh", description="Used when the case's language has no template folder."
    )


class RenderedMail(BaseModel):
    """One mail rendered in one language: subject, plain text and HTML."""

    model_config = ConfigDict(frozen=True)

    language: str
    subject: str
    text: str
    html: str


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


# Addresses and header values --------------------------------------------------------------
def validate_address(address: str, *, role: str = "recipient") -> str:
    """The address itself, stripped; InvalidAddress when it is not a plain, valid address."""
    candidate = address.strip() if isinstance(address, str) else ""
    if len(candidate) > 254 or not _ADDRESS.match(candidate):
        raise InvalidAddress(str(address), role=role)
    return candidate


def is_role_address(address: str) -> bool:
    """mailer-daemon, postmaster, noreply and the like: never written to (loops, bounces)."""
    local = address.strip().rpartition("@")[0]
    return bool(_ROLE_LOCAL_PART.match(local))


def header_text(value: str, *, limit: int | None = None) -> str:
    """A value that can go into a header: control characters become one space."""
    text = _HEADER_BREAKERS.sub(" ", value).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _clean_references(thread: Sequence[str] | None) -> list[str]:
    """The user's Message-IDs, without brackets; anything else (injection, junk) is dropped."""
    cleaned: list[str] = []
    for reference in thread or ():
        candidate = reference.strip().removeprefix("<").removesuffix(">").strip()
        # ASCII only (RFC 5322 msg-id): a Message-ID is never encoded, so it must be written as is.
        if _MESSAGE_ID.match(candidate) and len(candidate) <= 250 and candidate.isascii():
            if candidate not in cleaned:
                cleaned.append(candidate)
        else:
            logger.debug("dropped a reference that is not a Message-ID: %r", reference[:80])
    # Keep the first (the thread's root) and the most recent: what clients need to thread.
    if len(cleaned) > _MAX_REFERENCES:
        cleaned = [cleaned[0], *cleaned[-(_MAX_REFERENCES - 1) :]]
    return cleaned


# Templates ------------------------------------------------------------------------------------
_PROGRESS_KINDS = frozenset(
    {
        LogKind.FINDING,
        LogKind.PLAN,
        LogKind.PROGRESS,
        LogKind.COMMENT,
        LogKind.ESCALATION,
        LogKind.ASSIGNMENT,
        LogKind.STATUS,
        LogKind.FEEDBACK,
    }
)


def _recent(case: Case, count: int = 3) -> list[LogEntry]:
    """The last entries of the process log that say how the work goes (not mail traffic)."""
    return [entry for entry in case.process_log if entry.kind in _PROGRESS_KINDS][-count:]


def _excerpt(text: str | None, limit: int = 800) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


class _MailEnvironment(Environment):
    """A Jinja environment whose templates see its globals as a plain dict.

    Jinja's default is a `ChainMap` over the environment's globals per template, which every
    render walks in Python (a context copies it, each `{% import %}` compares its keys): ~20 us
    a mail. The globals are all set before the first template loads and never change after.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


@lru_cache(maxsize=16)
def _environment(root: Path, timezone: str) -> Environment:
    zone = ZoneInfo(timezone)
    environment = _MailEnvironment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        # Templates are read once: no stat() of every file (extends, imports) on every render
        # to see whether it changed; `reload_templates_if_changed` looks once per run.
        auto_reload=False,
        # A plain dict, never cleaned (a few dozen files): the default LRU cache takes a lock
        # and reorders a deque on each of the ~9 lookups (extends, imports) of every mail.
        cache_size=-1,
        # HTML parts escape every value; the plain-text parts must not (they'd show &amp;).
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.globals.update(
        local=lambda value: value.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        excerpt=_excerpt,
        recent=_recent,
    )
    return environment


class MailTemplates:
    """The email templates under one folder: `<lang>/<kind>.txt.j2` and `<kind>.html.j2`."""

    def __init__(self, root: Path = EMAIL_TEMPLATES_DIR, *, timezone: str = "Asia/Shanghai"):
        self.root = root
        self._environment = _environment(root, timezone)
        self._languages: list[str] | None = None
        # (language, kind) -> (text template, html template), looked up once.
        self._pairs: dict[tuple[str, str], tuple[Template, Template]] = {}

    def languages(self) -> list[str]:
        """Every language folder (names starting with `_` or `.` are not languages).

        Read once per instance (a folder listing cost ~30 us a mail): a new language folder is
        seen by a new `MailTemplates`, i.e. after a restart for the default one.
        """
        if self._languages is None:
            self._languages = sorted(
                entry.name
                for entry in self.root.iterdir()
                if entry.is_dir() and not entry.name.startswith(("_", "."))
            )
        return self._languages

    def _templates(self, language: str, kind: str) -> tuple[Template, Template]:
        pair = self._pairs.get((language, kind))
        if pair is None:
            text_template = self._environment.get_template(f"{language}/{kind}.txt.j2")
            html_template = self._environment.get_template(f"{language}/{kind}.html.j2")
            if "subject" not in text_template.blocks:
                raise ComposeError(
                    f"{self.root}/{language}/{kind}.txt.j2 has no {{% block subject %}}"
                )
            pair = self._pairs[(language, kind)] = (text_template, html_template)
        return pair

    def language_for(self, wanted: str | None, default: str) -> str:
        """The wanted language when it has a folder, else the default; ComposeError if neither."""
        available = self.languages()
        for language in (wanted, default):
            if language and language in available:
                return language
        raise ComposeError(
            f"no template folder for language {wanted!r} nor for the default {default!r} "
            f"under {self.root} (found: {', '.join(available) or 'none'})"
        )

    def render(self, kind: str, language: str, context: Mapping[str, Any]) -> RenderedMail:
        """Subject (the text template's `subject` block), plain text and HTML of one mail."""
        if not _KIND.match(kind):
            raise ComposeError(f"{kind!r} is not a mail kind (lower case letters and _)")
        values = {**context, "lang": language, "kind": kind}
        try:
            text_template, html_template = self._templates(language, kind)
            # One context for the subject block and the text: what `render` would make twice.
            text_context = text_template.new_context(values)
            subject = "".join(text_template.blocks["subject"](text_context))
            subject = header_text(subject, limit=_MAX_SUBJECT)
            try:
                text = "".join(text_template.root_render_func(text_context))
            except Exception:  # noqa: BLE001 - re-raised, as `Template.render` does it
                self._environment.handle_exception()  # the traceback points into the template
            html = html_template.render({**values, "subject": subject})
        except TemplateNotFound as error:
            raise ComposeError(
                f"no template {error.name!r} for {kind!r} in language {language!r} "
                f"(templates are looked up under {self.root})"
            ) from error
        except TemplateError as error:
            raise ComposeError(
                f"template for {kind!r} in {language!r} failed to render: {error}"
            ) from error
        return RenderedMail(
            language=language, subject=subject, text=_tidy_text(text), html=html.strip() + "\n"
        )


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces: templates need not be exact."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy) + "\n"


@lru_cache(maxsize=16)
def _templates_for_zone(timezone: str) -> MailTemplates:
    return MailTemplates(EMAIL_TEMPLATES_DIR, timezone=timezone)


def _default_templates(identity: SenderIdentity) -> MailTemplates:
    return _templates_for_zone(identity.timezone)


_templates_stamp: tuple[int, int] | None = None


def reload_templates_if_changed(root: Path = EMAIL_TEMPLATES_DIR) -> bool:
    """Forget the compiled default templates when a file under `root` was edited, added or
    removed since they were read; True when they were forgotten.

    Templates are compiled once per process (see `_environment`); a long-running `casedesk
    serve` calls this at the start of every run, so that an edited template, like an edited
    rules file, takes effect at the next run without a restart. One stat() per file.
    """
    global _templates_stamp
    files = [path for path in root.rglob("*") if path.is_file()]
    stamp = (len(files), max((path.stat().st_mtime_ns for path in files), default=0))
    changed = _templates_stamp is not None and stamp != _templates_stamp
    _templates_stamp = stamp
    if changed:
        _templates_for_zone.cache_clear()
        _environment.cache_clear()
    return changed


def _masked_case(case: Case) -> Case:
    """The case as the team may see it: the submitter masked as the seed asks (`张* (销售部)`)."""
    person = case.submitter
    masked = Person(
        name=person.masked_name,
        department=person.department,
        email=person.masked_email,
        phone=None,
    )
    return case.model_copy(update={"submitter": masked})


# Composing ------------------------------------------------------------------------------------
def compose(
    kind: str,
    case: Case,
    *,
    recipients: list[str],
    identity: SenderIdentity,
    now: datetime,
    round_number: int = 1,
    thread: list[str] | None = None,
    note: str | None = None,
    deadline: datetime | None = None,
    language: str | None = None,
    templates: MailTemplates | None = None,
) -> OutboxMessage:
    """Render one kind of mail about one case into a ready-to-send message.

    `note` is free text for the kind (the plan for progress, what is asked for assignment, the
    reason for escalation); `deadline` is when an unanswered feedback request closes the case.
    """
    if case.number is None:
        raise ComposeError(f"cannot write {kind} mail about a case that has no number yet")
    if round_number < 1:
        raise ComposeError(f"round_number starts at 1, got {round_number}")
    templates = templates or _default_templates(identity)
    chosen = templates.language_for(language or case.language.value, identity.default_language)
    to_user = kind in USER_KINDS
    shown = case if to_user else _masked_case(case)
    plan = note or next(
        (entry.text for entry in reversed(case.process_log) if entry.kind is LogKind.PLAN),
        case.initial_analysis or "",
    )
    token = case_token(case.number)
    rendered = templates.render(
        kind,
        chosen,
        {
            "case": shown,
            "token": token,
            "now": now,
            "round_number": round_number,
            "note": note,
            "deadline": deadline,
            "plan": plan,
        },
    )
    key = case_mail_key(case.number, kind, round_number)
    return _assemble(
        key=key,
        case_number=case.number,
        kind=kind,
        subject=f"{token} {rendered.subject}",
        rendered=rendered,
        recipients=recipients,
        identity=identity,
        now=now,
        thread=thread,
        auto_submitted="auto-replied" if to_user else "auto-generated",
    )


def compose_digest(
    kind: str,
    cases: Sequence[Case],
    *,
    recipients: list[str],
    identity: SenderIdentity,
    now: datetime,
    period: str,
    note: str | None = None,
    language: str | None = None,
    templates: MailTemplates | None = None,
) -> OutboxMessage:
    """Render a digest over several cases (lead's P0/P1 progress, team case sharing).

    `period` names what the digest covers (e.g. `20240520T08`, `2024-W21`); with the kind it is
    the outbox key, so each period's digest is queued once.
    """
    if not _PERIOD.match(period):
        raise ComposeError(f"digest period {period!r} must be 1-40 letters, digits or '-'")
    templates = templates or _default_templates(identity)
    chosen = templates.language_for(language, identity.default_language)
    shown = [_masked_case(case) for case in cases]
    overdue = {
        case.number
        for case in cases
        if case.due_at is not None and case.due_at < now and case.status.is_open
    }
    rendered = templates.render(
        kind,
        chosen,
        {
            "cases": shown,
            "overdue": overdue,
            "token": None,
            "now": now,
            "period": period,
            "note": note,
        },
    )
    return _assemble(
        key=digest_key(kind, period),
        case_number=None,
        kind=kind,
        subject=rendered.subject,
        rendered=rendered,
        recipients=recipients,
        identity=identity,
        now=now,
        thread=None,
        auto_submitted="auto-generated",
    )


def _assemble(
    *,
    key: str,
    case_number: str | None,
    kind: str,
    subject: str,
    rendered: RenderedMail,
    recipients: Sequence[str],
    identity: SenderIdentity,
    now: datetime,
    thread: Sequence[str] | None,
    auto_submitted: str,
) -> OutboxMessage:
    """Headers and both parts into one MIME message; every header value is made safe first."""
    if not recipients:
        raise ComposeError(f"{kind} mail ({key}) has no recipient")
    addresses = [validate_address(address) for address in recipients]
    sender = validate_address(identity.from_address, role="sender")
    subject = header_text(subject, limit=_MAX_SUBJECT + 30)
    message_id = message_id_for(key, identity)
    headers = [
        _from_header(header_text(identity.from_name), sender),
        _header("To", ", ".join(addresses), structured=True),
        _header("Subject", subject),
        _header("Date", format_datetime(now.astimezone(_zone(identity.timezone)))),
        _header("Message-ID", f"<{message_id}>", structured=True),
    ]
    references = _clean_references(thread)
    if references:
        headers.append(_header("In-Reply-To", f"<{references[-1]}>", structured=True))
        references_value = " ".join(f"<{ref}>" for ref in references)
        headers.append(_header("References", references_value, structured=True))
    # RFC 3834 and Exchange's own header: auto-responders must not answer us (no loops).
    headers.append(_header("Auto-Submitted", auto_submitted))
    headers.append(_header("X-Auto-Response-Suppress", "All"))
    parts = [
        _text_part(rendered.text, "plain", mime_version=False),
        _text_part(rendered.html, "html", mime_version=True),
    ]
    boundary = _boundary(parts)
    headers.append("MIME-Version: 1.0" + _CRLF)
    headers.append(f'Content-Type: multipart/alternative;{_CRLF} boundary="{boundary}"{_CRLF}')
    headers.append(_header("Content-Language", rendered.language))
    body = f"{_CRLF}--{boundary}{_CRLF}".join(parts)
    content = f"{''.join(headers)}{_CRLF}--{boundary}{_CRLF}{body}{_CRLF}--{boundary}--{_CRLF}"
    return OutboxMessage(
        key=key,
        case_number=case_number,
        kind=kind,
        recipients=addresses,
        subject=subject,
        message_id=message_id,
        content=content.encode("ascii"),
    )


# MIME, written directly -----------------------------------------------------------------------
# Headers and parts are written here rather than through `EmailMessage` and the email package's
# header registry: that parses every value back into a tree and refolds it (`fold`,
# `_refold_parse_tree`, `_encoded_words` choosing q or b per word by counting characters in
# Python), which cost ~300 of the ~760 us a confirmation took to compose (40 %, cProfile over the
# intake benchmark's cases); quoted-printable bodies (`quoprimime.body_encode`, pure Python) cost
# another ~110 us. What we write instead is the small subset a mail client needs, checked against
# the stdlib *parser* (tests/mapping/test_outgoing_mime.py): every header decodes back to exactly
# the value we were given, no line is longer than 78 characters (bar a Message-ID or address that
# is longer on its own), and the parts decode to exactly the rendered text and HTML.
_CRLF = "\r\n"
#: RFC 5322's recommended line length, which the SMTP policy also uses.
_MAX_LINE = 78
# Printable ASCII words separated by single spaces: written as they are, folded at the spaces.
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")
_PLAIN_WORD = re.compile(r"[!-~]+")
# A display name of atoms (RFC 5322 atext) separated by single spaces needs no quoting.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# Printable ASCII with spaces: can go into a quoted string ("..." with \\ and \" escaped).
_QUOTABLE = re.compile(r"[ -~]+")
# RFC 2047: an encoded word is at most 75 characters; `=?utf-8?b?` + `?=` leave 63 for base64,
# i.e. 15 groups of four, 45 bytes of UTF-8.
_EW_OVERHEAD = len("=?utf-8?b??=")
_EW_MAX_BYTES = (75 - _EW_OVERHEAD) // 4 * 3
# Below this many bytes of room at the end of a line, the next encoded word starts a new line.
_EW_MIN_BYTES = 12
# Base64 body lines: 76 characters (RFC 2045).
_BASE64_LINE = 76


def _header(name: str, value: str, *, structured: bool = False) -> str:
    """One header line, folded at spaces to 78 characters and CRLF-terminated.

    Unstructured values (Subject) keep their leading plain ASCII words as they are and write
    the rest, from the first word that is not plain ASCII (or contains `=?`, or is too long for
    a line), as UTF-8 "B" encoded words. `structured` values (addresses, Message-IDs) are never
    encoded: a long one stays whole on its own line (RFC 5322 allows up to 998 characters).
    """
    head = f"{name}:"
    if structured:
        # Spaces between addresses or IDs carry nothing; runs of them (or one at the end) would
        # fold into a continuation line of white space only, which ends the header block.
        value = " ".join(word for word in value.split(" ") if word)
    if _PLAIN_VALUE.fullmatch(value) and "=?" not in value:
        if len(head) + 1 + len(value) <= _MAX_LINE:
            return f"{head} {value}{_CRLF}"
        if structured:
            return _fold(head, value.split(" "))
    elif structured and _QUOTABLE.fullmatch(value):
        return _fold(head, value.split(" "))
    words = value.split(" ")
    room = _MAX_LINE - len(head)
    for index, word in enumerate(words):
        if not _PLAIN_WORD.fullmatch(word) or "=?" in word or len(word) >= room:
            return _fold(head, words[:index], encoded=" ".join(words[index:]))
        room = _MAX_LINE
    return _fold(head, words)


@lru_cache(maxsize=16)
def _from_header(display_name: str, address: str) -> str:
    """The From line, `display name <address>`: only the display name is ever encoded."""
    if not display_name:
        return _header("From", address, structured=True)
    angle = f"<{address}>"
    if "=?" not in display_name:
        words = display_name.split(" ")
        if _ATOM_PHRASE.fullmatch(display_name) and max(map(len, words)) <= _MAX_LINE - 6:
            return _fold("From:", [*words, angle])
        quoted = '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if _QUOTABLE.fullmatch(display_name) and len("From: ") + len(quoted) <= _MAX_LINE:
            return _fold("From:", [quoted, angle])
    return _fold("From:", [], encoded=display_name, after=[angle])


def _fold(head: str, words: Sequence[str], *, encoded: str = "", after: Sequence[str] = ()) -> str:
    """`head`, the literal `words`, `encoded` as encoded words, then the literal `after` words,
    separated by single spaces and folded (CRLF + space) wherever the next piece would make the
    line longer than 78 characters. A literal word is never split."""
    lines: list[str] = []
    line = _fold_words(lines, head, words)
    if encoded:
        data = encoded.encode("utf-8")
        start, size = 0, len(data)
        while start < size:
            room = (_MAX_LINE - len(line) - 1 - _EW_OVERHEAD) // 4 * 3
            end = min(size, start + min(room, _EW_MAX_BYTES))
            if end < size:
                # Never split a character: back up to the first byte of one (not 10xxxxxx).
                while end > start and data[end] & 0xC0 == 0x80:
                    end -= 1
                if room < _EW_MIN_BYTES:
                    end = start
            if end <= start:
                lines.append(line)
                line = ""
                continue
            chunk = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
            line += f" =?utf-8?b?{chunk}?="
            start = end
    lines.append(_fold_words(lines, line, after))
    return _CRLF.join(lines) + _CRLF


def _fold_words(lines: list[str], line: str, words: Sequence[str]) -> str:
    """Add literal `words` to `line`, moving full lines to `lines`; returns the open line.

    Even the first word moves on when it does not fit: a Message-ID too long for
    `Message-ID:`'s line goes on the next, as the email package folds it; one longer than a line
    is alone on its own."""
    for word in words:
        if len(line) + 1 + len(word) > _MAX_LINE:
            lines.append(line)
            line = ""
        line += " " + word
    return line


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _encode_text(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, body with CRLF line ends) of a UTF-8 text part.

    7bit when the text is ASCII with lines of at most 78 characters, else base64 of the UTF-8
    bytes with CRLF line ends, in 76-character lines: what Chinese mail clients send, and C speed
    (binascii) where quoted-printable is pure Python (`quoprimime`, ~110 us a confirmation).
    Never 8bit, so no relay needs 8BITMIME (nor SMTPUTF8: headers are ASCII too).
    """
    # Every line end (CRLF, CR, LF) becomes CRLF and the last line gets one; str.replace, as a
    # regex split over the HTML cost ~20 us.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    body = text.replace("\n", _CRLF)
    if text.isascii() and "\x00" not in text and max(map(len, text.split("\n"))) <= _MAX_LINE:
        return "7bit", body
    encoded = binascii.b2a_base64(body.encode("utf-8"), newline=False).decode("ascii")
    size = len(encoded)
    lines = [encoded[start : start + _BASE64_LINE] for start in range(0, size, _BASE64_LINE)]
    return "base64", _CRLF.join(lines) + _CRLF


def _text_part(text: str, subtype: str, *, mime_version: bool) -> str:
    """One text/* part: its headers, a blank line, the encoded body with CRLF line ends."""
    encoding, data = _encode_text(text)
    headers = (
        f'Content-Type: text/{subtype}; charset="utf-8"{_CRLF}'
        f"Content-Transfer-Encoding: {encoding}{_CRLF}"
    )
    if mime_version:
        # add_alternative builds the second part as a whole message, which gets its own.
        headers += f"MIME-Version: 1.0{_CRLF}"
    return f"{headers}{_CRLF}{data}"


def _boundary(parts: Sequence[str]) -> str:
    """A random multipart boundary (the email package's format) found in no part."""
    token = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
    candidate, counter = token, 0
    while any(f"--{candidate}" in part for part in parts):
        candidate = f"{token}.{counter}"
        counter += 1
    return candidate
