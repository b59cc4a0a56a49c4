"""The visible part of a reply: the user's new words, without quoted history or signature.

Why mail-parser-reply: it splits a thread into replies with per-language header patterns
(Outlook `From:/Sent:` blocks, `On … wrote:`, many languages) and separates signatures and
disclaimers, without talon's machine-learning model and its heavy dependencies. Its Chinese
patterns miss what Chinese clients really write (its `写道` pattern even excludes itself), so the
quote headers of QQ Mail / Foxmail, Outlook in Chinese, Gmail in Chinese and 163/126 mail are cut
here first, from a table of patterns, and the rest goes through the library.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mailparser_reply import EmailMessage
from mailparser_reply.constants import MAIL_LANGUAGES

__all__ = ["CHINESE_QUOTE_HEADERS", "OTHER_QUOTE_HEADERS", "visible_reply"]

logger = logging.getLogger(__name__)

#: Where quoted history starts in mail from Chinese clients; the earliest match wins.
CHINESE_QUOTE_HEADERS: dict[str, re.Pattern[str]] = {
    # QQ Mail / Foxmail: a rule of dashes around 原始邮件 (or "Original" in QQ's English UI).
    "qq": re.compile(r"^[ \t>]*-{3,}\s*(?:原始邮件|Original)\s*-{3,}[ \t]*$", re.MULTILINE),
    # Outlook in Chinese (and Foxmail's header block): 发件人 followed within a few lines by
    # 发送时间 / 日期 / 时间.
    "outlook": re.compile(
        r"^[ \t>*]*(?:发件人|寄件者|From)\s*[:：].*\n(?:.*\n){0,2}?"
        r"[ \t>*]*(?:发送时间|寄件日期|日期|时间|Sent|Date)\s*[:：]",
        re.MULTILINE,
    ),
    # Outlook's older separator and 163/126's forwarding rule.
    "original_message": re.compile(
        r"^[ \t>]*-{2,}\s*(?:原始邮件|原始信件|回复的原邮件|转发的邮件|Original Message)"
        r"\s*-{2,}[ \t]*$",
        re.MULTILINE,
    ),
    # Gmail in Chinese: `张三 <a@b.c> 于2024年5月20日周一 14:00写道：`, sometimes wrapped.
    "gmail": re.compile(
        r"^[ \t>]*[^\n]{0,200}?于\s*\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"
        r"[^\n]{0,40}(?:\n[^\n]{0,80})?写道[:：]\s*$",
        re.MULTILINE,
    ),
    # 163 / 126 mail: `在 2024-05-20 14:00:00，"张三" <a@163.com> 写道：`.
    "netease": re.compile(
        r"^[ \t>]*在\s*\d{4}[-/年]\d{1,2}[-/月]\d{1,2}[^\n]{0,120}(?:\n[^\n]{0,80})?写道[:：]\s*$",
        re.MULTILINE,
    ),
}

#: Where quoted history starts in other clients' languages, beyond what mail-parser-reply knows
#: (it has no Russian, Norwegian, Vietnamese, ... and wants "On ... wrote:" on a line of its own).
OTHER_QUOTE_HEADERS: dict[str, re.Pattern[str]] = {
    # Outlook's separator in other languages ("-----Ursprüngliche Nachricht-----").
    "original_message": re.compile(
        r"^[ \t>]*-{3,}\s*(?:Original Message|Reply Message|Ursprüngliche Nachricht|"
        r"Antwort Nachricht|Oprindelig meddelelse|Opprinnelig melding|Ursprungligt meddelande|"
        r"Message d'origine|Mensaje original|Messaggio originale|Oorspronkelijk bericht|"
        r"Wiadomość oryginalna|Původní zpráva|Исходное сообщение)\s*-{3,}[ \t]*$",
        re.MULTILINE | re.IGNORECASE,
    ),
    # An attribution line in any of a dozen languages, wrapped over up to three lines: it starts
    # like one ("On", "Op", "Am", "På", "W dniu", "Vào", a date, dashes) and ends with the verb
    # ("wrote:", "skrev:", "napisał:", "написал:", "wrote -----"); Dutch and German clients put
    # the name after the verb ("Am … schrieb Max <max@x.de>:").
    "attribution": re.compile(
        r"^[ \t>]*(?:-{2,}|(?:On|Op|Le|Am|El|Il|Em|På|Den|Dne|W dniu|Vào|Sent from)\b|"
        r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b)[^\n]{0,200}(?:\n[^\n]{1,200}){0,2}?"
        r"(?:(?:\s|^)(?:wrote|sent|geschreven|skrev|napisał(?:\(a\)|a)?|đã viết|"
        r"написал(?:\(а\)|а)?|a écrit|escribió|ha scritto|escreveu|napsal(?:\(a\)|a)?)"
        r"\s*(?::|-{2,})|\s(?:schreef|schrieb)\s[^\n]{0,120}:)[ \t]*$",
        re.MULTILINE,
    ),
    # Old Gmail: "2011/4/7 Name <a@b.c>" (or with a time and zone, the address wrapped) and the
    # quote right after.
    "date_address": re.compile(
        r"^[ \t]*\d{4}[/-]\d{1,2}[/-]\d{1,2}\b[^\n<]{0,80}<\n?[^\n<>@\s]+@[^\n<>\s]+>:?[ \t]*$"
        r"(?=\s*\n[ \t]*>)",
        re.MULTILINE,
    ),
    # A forwarded message's marker: the reply ends there (a forwarded report's description is
    # the whole text, see mapping.email_to_case).
    "forward": re.compile(
        r"^[ \t>]*(?:-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré|"
        r"Mensaje reenviado|Messaggio inoltrato)\s*-{2,}|Begin forwarded message:)[ \t]*$",
        re.MULTILINE | re.IGNORECASE,
    ),
    # "reply On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:" on one line with the reply.
    "same_line": re.compile(r"[ \t]*-*[ \t]*On\s[^\n]{0,200}?\d[^\n]{0,200}\swrote:[ \t]*$", re.M),
}

#: Mobile and webmail footers that are signatures, not words of the user.
_CHINESE_SIGNATURES = re.compile(
    r"^[ \t]*(?:发自我的\s*\S+|来自\s*\S*(?:邮箱|邮件|Mail)\S*|发自网易邮箱\S*|"
    r"Sent from my \S+|Get Outlook for \S+|"
    # Chinese sign-offs on a line of their own start the signature block.
    r"此致|此致敬礼|祝好|顺祝商祺|顺颂商祺|顺颂时祺)[ \t，,。!！]*$",
    re.MULTILINE | re.IGNORECASE,
)
_SIGNATURE_RULE = re.compile(r"^-- ?$", re.MULTILINE)
#: A "-Name" sign-off (dash, no space, capital) as the last words or above a footer rule; a
#: "- item" or "-item" list line is not one.
_DASH_SIGNOFF = re.compile(r"^-[A-Z][^\s-][^\n]{0,30}$(?=\s*(?:\Z|^[ \t]*[-_=]{3,}[ \t]*$))", re.M)
#: A rule line followed only by a few unquoted lines naming a list: a mailing list's footer.
#: Each of the (one to five) lines ends at a line break or at the end: written `[^>\n][^\n]*\n?`
#: (what it was) a line could also be cut into several pieces, which matches the same texts but
#: backtracks through every way to cut long lines when more than five follow (minutes on a
#: newsletter's footer).
_FOOTER_RULE = re.compile(
    r"^[ \t]*[-_=]{10,}[ \t]*\n(?=(?:[^\n]*\n)*?[^\n]*(?:mailing list|listinfo|unsubscribe|退订))"
    r"(?:[^>\n][^\n]*(?:\n|\Z)){1,5}\Z",
    re.MULTILINE | re.IGNORECASE,
)
#: Bodies longer than this are cut before the reply patterns run (they are regex-heavy).
_MAX_SCAN = 100_000

#: Every language the library knows: our users write Chinese and English, but quote headers
#: come from whatever client the other side of a thread used.
_LANGUAGES = [name for name in MAIL_LANGUAGES if name != "david"]
# The library builds and compiles its (large, all-language) patterns once per message; they
# depend only on the languages, so they are built once here and handed to every message
# (measured: 0.8 ms of the 1.8 ms a message took to parse).
# keep_hyphen_lists: by default the library takes any line starting "- word" for a "-Name"
# signature and drops everything after it, which loses every bulleted list of steps.
_PROTOTYPE = EmailMessage(text="", languages=list(_LANGUAGES), keep_hyphen_lists=True)
#: The library's own compiled patterns, as it builds them.
LIBRARY_PATTERNS: dict[str, re.Pattern[str]] = {
    "_header_regex": _PROTOTYPE.HEADER_REGEX,
    "_signature_regex": _PROTOTYPE.SIGNATURE_REGEX,
    "_disclaimers_regex": _PROTOTYPE.DISCLAIMERS_REGEX,
}

# The library's patterns, tried only where they can match -------------------------------------
# `EmailMessage.read()` runs HEADER_REGEX.findall over the whole text: one IGNORECASE
# alternation of 27 patterns tried at every character, about 1.5 us a character (0.56 ms for
# the benchmark's bodies, which have no quote header at all), then SIGNATURE_REGEX.search and
# DISCLAIMERS_REGEX.findall over each piece between headers (the latter 130 us on a short
# text). The `_AtStarts` objects handed to the library instead answer the same `findall` and
# `search` calls with the same results: they run the library's own compiled pattern with
# `pattern.match(text, position)` only at the positions where a match can start, found with a
# cheap pattern or a character scan. That is exact as long as those positions include every
# position where the pattern can match, in increasing order: `search` returns the match at the
# leftmost position where there is one, and `findall` is the leftmost match at or after the end
# of the previous one, again and again. `match` at a position sees the whole text (`^`, `\A` and
# lookbehinds look before the position; no `endpos` is given), so a match found there is the
# one `search` finds there.
#
# Where a match can start is read off the pattern sources of mail-parser-reply 1.36
# (constants.py, parser.py), quoted beside each table below; tests check the tables against the
# installed library's sources and compare the results with the plain patterns. The fingerprints
# pin those sources: with any other version of the library the plain patterns run.

#: sha256 of the three patterns' sources (mail-parser-reply 1.36, our languages, hyphen lists kept).
_FINGERPRINTS = {
    "_header_regex": "486eea5c58a3ddbc7c36b717d995b43c8f9ab9e85e283c17937bb45c9da3fad3",
    "_signature_regex": "4dacd098be446d1e426cf87223d21542c05f2157052353365ac63de2e9628121",
    "_disclaimers_regex": "c3e731a4dd1c6f8d9b4beb78781c074ed080f33535c5e9b8e0aca736d6881ac3",
}
_CHECKED = {
    key: hashlib.sha256(pattern.pattern.encode("utf-8")).hexdigest()
    for key, pattern in LIBRARY_PATTERNS.items()
} == _FINGERPRINTS and all(
    pattern.flags == re.MULTILINE | re.IGNORECASE | re.UNICODE
    for pattern in LIBRARY_PATTERNS.values()
)
if not _CHECKED:
    logger.warning("mail-parser-reply's patterns are not the ones checked: plain patterns run")

#: HEADER_REGEX, part 1: per language, `^(?!...)((?:> ?)*` and then these words start its "wrote"
#: line, verbatim from `wrote_header` (a digit: the date of the ja/ko/zh forms).
WROTE_WORDS: dict[str, str] = {
    "en": r"On\s",
    "de": r"Am\s",
    "cs": r"Dne\s",
    "da": r"(?:Den|[Mm]an|[Tt]ir|[Oo]ns|[Tt]or|[Ff]re|[Ll]ør|[Ss]øn|[0-9])",
    "es": r"El\s",
    "fr": r"Le\s",
    "it": r"Il\s",
    "ja": r"\d",
    "ko": r"\d",
    "nl": r"Op\s",
    "pl": r"Dnia\s",
    "sv": r"(?:Den|[Mm]ån|[Tt]is|[Oo]ns|[Tt]or|[Ff]re|[Ll]ör|[Ss]ön|"
    r"(?:[0-9]+\s+(?:jan|feb|mar|apr|maj|jun|jul|aug|sep|okt|nov|dec)))",
    "zh": r"\d",
}
#: HEADER_REGEX, part 2: per language, a "From:/Sent:" block starts
#: `(?:^|\n|\n(?:> ?)*)[* ]*(?:NAMES):`, verbatim from `from_header`.
HEADER_NAMES: dict[str, str] = {
    "en": "From|Sent|To|Subject|Date|Cc|Organization",
    "de": "Von|Gesendet|An|Betreff|Datum|Cc|Organisation",
    "cs": "Od|Odesláno|Komu|Předmět|Datum|Kopie",
    "da": "[Ff]ra|[Ss]endt|[Tt]il|[Ee]mne|[Dd]ato|[Cc]c|[Kk]opi|[Vv]edhæftet",
    "es": "De|Enviado|Para|Asunto|Fecha|CC|Organización",
    "fr": r"De |Envoy\u00e9 |\u00C0 |Objet |  |Cc ",
    "it": "Da|Inviato|A|Oggetto|Data|Cc",
    "ja": "From|Sent|To|Subject|Date|Cc",
    "ko": r"보낸\s?사람|보낸\s?날짜|받는\s?사람|제목|참조",
    "nl": "Van|Verzonden|Aan|Onderwerp|Datum|Cc",
    "pl": "Od|Wysłano|Do|Temat|Data|DW",
    "sv": "Från|Skickat|Till|Ämne|Datum|Kopia",
    "zh": "发件人|发送时间|收件人|主题|抄送|组织",
}


# Part 3, the generic separator, is `^-{5,} ?Original Message ?-{5,}$`. The Danish block may
# start with `(?:(?:^|\n|\n(?:> ?)*)?-----Oprindelig meddelelse-----\n)?`: with its anchor that
# is a line starting with dashes; without it (the anchor is optional) the text can start a
# match at any position: `_DANISH_RULE`.
#
# So every match of HEADER_REGEX starts at the start of a line `_HEADER_LINE` matches, or at the
# line break just before one (`\n` and `\n(?:> ?)*` before the names; `[> *]*` covers both
# `(?:> ?)*` and `[* ]*`), or where `_DANISH_RULE` matches. Same flags as the library's pattern,
# so the words compare case-insensitively exactly as there.
class _Lines:
    """The starts of the lines that begin as `lookahead` says (case-insensitive, as the library's
    patterns). Position 0 is tried with `match`; the others are found by searching for a line
    break followed by the lookahead: with a literal first character the regex engine skips from
    line break to line break instead of trying `^` at every character (6.9 -> 1.5 us a text)."""

    def __init__(self, lookahead: str) -> None:
        self.first = re.compile(f"(?={lookahead})", re.MULTILINE | re.IGNORECASE)
        self.after_break = re.compile(f"\\n(?={lookahead})", re.MULTILINE | re.IGNORECASE)

    def starts(self, text: str) -> Iterator[int]:
        if self.first.match(text) is not None:
            yield 0
        for line_break in self.after_break.finditer(text):
            yield line_break.start() + 1


_HEADER_LINES = _Lines(
    r"[> *]*(?:"
    + "|".join(WROTE_WORDS.values())
    + "|-----|(?:"
    + "|".join(HEADER_NAMES.values())
    + "):)"
)
_DANISH_RULE = re.compile(r"-----Oprindelig meddelelse-----\n", re.MULTILINE | re.IGNORECASE)


def _header_starts(text: str) -> list[int]:
    starts: set[int] = set()
    for start in _HEADER_LINES.starts(text):
        starts.add(start)
        if start:
            starts.add(start - 1)  # the "\n" before it
    if "-----" in text:
        starts.update(match.start() for match in _DANISH_RULE.finditer(text))
    return sorted(starts)


def library_alternation(key: str) -> str:
    """One of the library's per-language lists ("sent_from", "signatures", "disclaimers") joined
    over our languages, exactly as its pattern properties join them."""
    parts = [
        _PROTOTYPE._get_language_regex(language=name, regex_key=key)
        for name in _PROTOTYPE.languages
    ]
    return "|".join(part for part in parts if part)


#: Lines where SIGNATURE_REGEX can match. The pattern (parser.py, keep_hyphen_lists) is
#: `((A|B|C|D)(.|\s)*)` with A `\s*^(?:> ?)*(?:[-_]{2}\n).*`, B `(\n{2,} ?[_-]{32,})`,
#: C `\s*^(?:> ?)*(?:SENT_FROM) ?(...)$` and D `(?<!\A)^(?:> ?)*(?:SIGNATURES)`: each needs a
#: line that starts as this pattern says (C and D with the same alternations).
_SIGNATURE_LINES = _Lines(
    (
        r"(?:> ?)*(?:[-_]{2}\n|"
        + library_alternation("sent_from")
        + "|"
        + library_alternation("signatures")
        + r")| ?[_-]{32}"
    )
    if _CHECKED
    else "(?!)"
)


def _signature_starts(text: str) -> Iterator[int]:
    r"""A, B and C start anywhere in the whitespace before their line (`\s*^`, `\n{2,}`), D at
    the line; a position before that whitespace cannot reach the line (what `\s` matches is
    what str.isspace says)."""
    done = -1
    for start in _SIGNATURE_LINES.starts(text):
        first = start
        while first > 0 and text[first - 1].isspace():
            first -= 1
        yield from range(max(first, done + 1), start + 1)
        done = start


class _AtStarts:
    """`pattern.findall` / `.search` trying `pattern.match` only at the positions `starts` gives
    (in increasing order; it must include every position where `pattern` can match)."""

    def __init__(self, pattern: re.Pattern[str], starts: Callable[[str], Iterable[int]]) -> None:
        self.pattern = pattern
        self.starts = starts

    def search(self, text: str) -> re.Match[str] | None:
        for start in self.starts(text):
            match = self.pattern.match(text, start)
            if match is not None:
                return match
        return None

    def findall(self, text: str) -> list[Any]:
        found: list[Any] = []
        end = 0
        groups = self.pattern.groups
        for start in self.starts(text):
            if start < end:
                continue
            match = self.pattern.match(text, start)
            if match is None:
                continue
            if match.end() == start:
                # An empty match: findall's own rules for what follows one; let it decide.
                return self.pattern.findall(text)
            if groups > 1:
                found.append(match.groups(""))
            else:
                found.append(match.group(groups) or "")
            end = match.end()
        return found


#: DISCLAIMERS_REGEX is `SENTENCE_START(?:DISCLAIMERS)(?:...(?:mail)...){1,2}` with
#: SENTENCE_START `(?:[\n\r.!?]|^)[ \u200b\xA0\t]{0,3}`: a match starts at one of those
#: characters or at a line start, and contains the letters "mail" (same flags: the same letters
#: compare equal).
_MAIL = re.compile("mail", re.MULTILINE | re.IGNORECASE)
_SENTENCE_END = re.compile(r"[\n\r.!?]")


def _disclaimer_starts(text: str) -> list[int]:
    if _MAIL.search(text) is None:
        return []
    starts = {0}
    for end in _SENTENCE_END.finditer(text):
        position = end.start()
        starts.add(position)
        if text[position] == "\n":
            starts.add(position + 1)  # `^`
    return sorted(starts)


def _fast_patterns() -> dict[str, Any]:
    if not _CHECKED:
        return dict(LIBRARY_PATTERNS)
    return {
        "_header_regex": _AtStarts(LIBRARY_PATTERNS["_header_regex"], _header_starts),
        "_signature_regex": _AtStarts(LIBRARY_PATTERNS["_signature_regex"], _signature_starts),
        "_disclaimers_regex": _AtStarts(LIBRARY_PATTERNS["_disclaimers_regex"], _disclaimer_starts),
    }


#: What the library is handed: the patterns above, or its own when they were not checked.
_PATTERNS: dict[str, Any] = _fast_patterns()


#: What every match of a quote header pattern contains: one string of each tuple. A text without
#: them is not searched, since the search would find nothing (most texts have no ":" or "写道";
#: the ten searches took 50 us a text). The strings are parts of each pattern outside any
#: IGNORECASE, or dashes and colons, which have no case: `in` compares them as the pattern does.
CHINESE_NEEDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "qq": (("---",), ("原始邮件", "Original")),
    "outlook": (
        ("发件人", "寄件者", "From"),
        (":", "："),
        ("发送时间", "寄件日期", "日期", "时间", "Sent", "Date"),
    ),
    "original_message": (
        ("--",),
        ("原始邮件", "原始信件", "回复的原邮件", "转发的邮件", "Original Message"),
    ),
    "gmail": (("于",), ("写道",)),
    "netease": (("在",), ("写道",)),
}
OTHER_NEEDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "original_message": (("---",),),
    "attribution": (
        (":", "--"),
        (
            *("wrote", "sent", "geschreven", "skrev", "napisał", "đã viết", "написал"),
            *("a écrit", "escribió", "ha scritto", "escreveu", "napsal", "schreef", "schrieb"),
        ),
    ),
    "date_address": (("@",), ("<",)),
    "forward": (("--", ":"),),
    "same_line": (("wrote:",), ("On",)),
}


def _may_match(text: str, needs: tuple[tuple[str, ...], ...]) -> bool:
    return all(any(part in text for part in group) for group in needs)


def _cut_quote(text: str) -> str:
    cut = len(text)
    for name, pattern in CHINESE_QUOTE_HEADERS.items():
        if not _may_match(text, CHINESE_NEEDS.get(name, ())):
            continue
        match = pattern.search(text, 0, cut)
        if match is not None:
            cut = min(cut, match.start())
    for name, pattern in OTHER_QUOTE_HEADERS.items():
        if not _may_match(text, OTHER_NEEDS.get(name, ())):
            continue
        for match in pattern.finditer(text, 0, cut):
            # A date or an address is what tells an attribution from a sentence that ends
            # in "wrote:"; the first candidate that has one is where the quote starts.
            found = match.group()
            if name != "attribution" or re.search(r"\d|@", found) or _DASHED.match(found):
                cut = min(cut, match.start())
                break
    return text[:cut]


_DASHED = re.compile(r"^[ \t>]*-{2,}.*-{2,}[ \t]*$", re.S)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _without_bottom_quote(text: str) -> str:
    """A bottom-posted answer: one quoted block (and the attribution line above it) with the
    user's words after it. The block goes, the words stay; interleaved answers (several quoted
    blocks) keep their quotes as context."""
    if ">" not in text:
        return text
    lines = text.split("\n")
    end = len(lines)
    footer = _FOOTER_RULE.search(text)
    if footer is not None:
        end = text.count("\n", 0, footer.start())  # a mailing list's footer is not an answer
    tail_quoted = False
    while end > 0 and (_is_quoted(lines[end - 1]) or not lines[end - 1].strip()):
        tail_quoted = tail_quoted or _is_quoted(lines[end - 1])
        end -= 1  # a trailing quote (the rest of the history) does not count as a block
    blocks: list[tuple[int, int]] = []
    index = 0
    while index < end:
        if _is_quoted(lines[index]):
            start = index
            while index < end and (_is_quoted(lines[index]) or not lines[index].strip()):
                index += 1
            blocks.append((start, index))
        else:
            index += 1
    if len(blocks) != 1 or blocks[0][1] >= end:
        return text
    start, stop = blocks[0]
    above = start - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above >= 0 and lines[above].rstrip().endswith(":"):
        start = above  # the "On … wrote:" line belongs to the quote
        head = "\n".join(lines[: above + 1])
        cut = len(_cut_quote(head))
        if cut < len(head):
            start = min(start, head.count("\n", 0, cut))  # an attribution wrapped over lines
    elif above >= 0:
        return text  # a ">>>" line inside the text, not a quote
    before = [line for line in lines[:start] if line.strip()]
    answer = [line for line in lines[stop:end] if line.strip()]
    after = "\n".join(lines[stop:end])
    if (
        len(before) > 2
        or (tail_quoted and len(answer) < 3)
        or _PATTERNS["_header_regex"].search(after)
        or _cut_quote(after) != after
    ):
        # More than a greeting above the quote; a line or two between quoted lines (a link the
        # quoting client broke); older history below: not a bottom-posted answer.
        return text
    return "\n".join(lines[:start] + lines[stop:])


def visible_reply(text: str) -> str:
    """The newest reply in a body: quoted history, signature and mobile footers removed."""
    if not text.strip():
        return ""
    text = text[:_MAX_SCAN].replace("\r\n", "\n")
    own = _cut_quote(_without_bottom_quote(text))
    # A signature rule is "--"; the dash sign-off starts with "-", a footer rule is ten of "-",
    # "_" or "=".
    for pattern, needs in (
        (_SIGNATURE_RULE, (("--",),)),
        (_CHINESE_SIGNATURES, ()),
        (_DASH_SIGNOFF, (("-",),)),
        (_FOOTER_RULE, (("-", "_", "="),)),
    ):
        footer = pattern.search(own) if _may_match(own, needs) else None
        if footer is not None:
            own = own[: footer.start()]
    if not own.strip():
        return ""
    message = EmailMessage(text=own, languages=list(_LANGUAGES), **_PATTERNS).read()
    body = message.replies[0].body if message.replies else own
    return _without_trailing_quote(body).strip()


_RULE_LINE = re.compile(r"^[ \t]*[-_=*~]{3,}[ \t]*$")


def _without_trailing_quote(text: str) -> str:
    """Drop a `>`-quoted block at the end (quoting without a header line) and the rule lines
    Outlook leaves above its quote header; inline answers between quoted lines stay."""
    lines = text.rstrip().split("\n")
    end = len(lines)
    while end > 0 and (
        _is_quoted(lines[end - 1]) or not lines[end - 1].strip() or _RULE_LINE.match(lines[end - 1])
    ):
        end -= 1
    return "\n".join(lines[:end]) if end > 0 else text
