"""Bytes to text for mail: charsets, RFC 2047 headers, raw 8-bit headers, HTML bodies.

Why these libraries: the standard library's `email` package splits MIME well but trusts
declared charsets and turns anything it cannot decode into U+FFFD (a GBK name labelled
`gb2312` comes out broken, see the engineering notes). So the MIME tree comes from `email`
(compat32 policy: the fastest, and it keeps raw bytes reachable through surrogateescape), and
the text is decoded here: declared labels are first widened to the superset senders really
use (GB2312/GBK -> GB18030, Big5 -> Big5-HKSCS), and when the label is missing or wrong the
bytes are identified with `charset-normalizer` (pure Python fallback-free detection that knows
the CJK encodings, maintained, and what `requests` uses). HTML-only mail is turned into text
with `inscriptis`, which keeps the layout of tables and lists that a regex strip would lose.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import logging
import quopri
import re
from functools import lru_cache

from charset_normalizer import from_bytes
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

__all__ = [
    "decode_bytes",
    "decode_header_value",
    "html_to_text",
    "normalise_charset",
]

logger = logging.getLogger(__name__)

#: Labels senders put on mail, mapped to the codec that decodes what they really send.
#: GB2312 and GBK are subsets of GB18030 and mislabelled all the time (朱镕喆 is not in GB2312);
#: Big5 mail from Hong Kong and Taiwan carries HKSCS characters; cp936 is Windows' GBK.
CHARSET_ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gb231280": "gb18030",
    "euc-cn": "gb18030",
    "euccn": "gb18030",
    "x-gbk": "gb18030",
    "gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "hz-gb-2312": "hz",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cp950": "cp950",
    "x-windows-950": "cp950",
    "iso-2022-jp": "iso2022_jp_ext",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "us-ascii": "utf-8",  # 8-bit bytes in "ascii" mail are nearly always UTF-8
    "ascii": "utf-8",
    "iso-8859-1": "cp1252",  # what Windows senders mean by latin-1
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}

#: A second codec to try when the first still fails (Big5 bytes outside HKSCS are cp950).
_SECOND_CHOICE = {"big5hkscs": "cp950"}


@lru_cache(maxsize=256)
def normalise_charset(label: str | None) -> str | None:
    """The Python codec for a declared charset label, or None when unknown or absent."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").lower()
    cleaned = CHARSET_ALIASES.get(cleaned, cleaned)
    try:
        return codecs.lookup(cleaned).name
    except LookupError:
        return None


def _detect(data: bytes) -> str | None:
    best = from_bytes(data[:65536]).best()
    return None if best is None else normalise_charset(best.encoding)


def decode_bytes(
    data: bytes, declared: str | None, *, hint: str | None = None
) -> tuple[str, str | None]:
    """Decode a body or header; returns the text and a problem note (None when clean).

    Order: 7-bit data by its label (ISO-2022-JP is 7-bit); otherwise strict UTF-8 first (valid
    multibyte UTF-8 is almost never an accident, and it is the commonest mislabel), then the
    declared label widened, then what detection says; only as a last resort are undecodable
    bytes replaced, and the note says so. `hint` (e.g. the body's charset for a raw 8-bit
    header) is tried before detection when nothing is declared.
    """
    if not data:
        return "", None
    codec = normalise_charset(declared)
    unknown = f"unknown charset {declared!r}; " if declared and codec is None else ""
    if data.isascii():
        if codec is not None and codec not in ("utf-8", "ascii"):
            try:
                return data.decode(codec), None
            except (UnicodeDecodeError, LookupError):
                pass
        return data.decode("ascii"), unknown.rstrip("; ") or None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if codec == "utf-8":
            # A cut-off last character (truncated encoded word or body): keep what is whole.
            try:
                text = codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
            except UnicodeDecodeError:
                pass
            else:
                return text, "utf-8 text cut off in the middle of a character"
    else:
        if codec in (None, "utf-8") or unknown:
            return text, unknown.rstrip("; ") or None
        return text, f"declared {declared!r} but the bytes are utf-8"
    guesses: tuple[str | None, ...] = (codec, _SECOND_CHOICE.get(codec or ""))
    if codec is None:
        # Too little text for statistics (a name, a subject): our senders are Chinese, so the
        # hint, then GB18030, whose strict decoding rejects most Latin-1 text anyway.
        short = len(data) < _SHORT
        guesses = (normalise_charset(hint), *(("gb18030", "cp1252") if short else ()))
    for candidate in guesses:
        if candidate is None or candidate == "utf-8":
            continue
        try:
            text = data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
        if codec is None and candidate == "gb18030" and not _reads_as_chinese(text):
            # Latin-1 names and subjects ("Formação", "Verão") often decode as GB18030 too,
            # pairing an accented letter with the ASCII letter after it into a rare character.
            continue
        if candidate == codec and not _looks_mislabelled(data, codec):
            return text, None
        if codec is None:
            return text, f"{unknown}no charset declared; decoded as {candidate}"
        if candidate != codec:
            return text, f"declared {declared!r} but decodable only as {candidate}"
        break
    chinese = _as_chinese(data)
    if chinese is not None:
        what = f"declared {declared!r}" if declared else "no charset declared"
        return chinese, f"{unknown}{what}; decoded as gb18030"
    detected = _detect(data)
    if detected is not None:
        try:
            text = data.decode(detected)
        except (UnicodeDecodeError, LookupError):
            pass
        else:
            if detected == codec:
                return text, None
            what = f"declared {declared!r}" if declared else "no charset declared"
            return text, f"{unknown}{what}; detected {detected}"
    fallback = codec or "gb18030"
    return data.decode(fallback, errors="replace"), (
        f"{unknown}undecodable bytes replaced (decoded as {fallback})"
    )


def _as_chinese(data: bytes) -> str | None:
    """GB18030 text when the bytes decode strictly into mostly common Chinese characters.

    Detection libraries confuse short GBK text with cp949 (Korean) and Shift-JIS; our senders
    are Chinese, so this guess goes first and only wins when the result reads as Chinese.
    """
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return None
    wide = [ch for ch in text if ord(ch) > 0x7F]
    common = sum(
        1
        for ch in wide
        if "\u4e00" <= ch <= "\u9fa5" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"
    )
    if not wide or common < 0.9 * len(wide):
        return None
    return text if _reads_as_chinese(text) else None


def _reads_as_chinese(text: str) -> bool:
    """Most non-ASCII characters are in GB2312 (the 6,763 characters in everyday use).

    Any byte string of Latin-1 or Cyrillic letters decodes as *some* GB18030 text, but into rare
    characters (an accented letter pairs with the ASCII letter after it: "Dij\\x8aat" gives
    "Dij奱t"); real Chinese text is almost all GB2312 characters, a rare name character aside.
    """
    wide = "".join(ch for ch in text if ord(ch) > 0x7F)
    if not wide:
        return True
    rare = wide.encode("gb2312", errors="replace").count(b"?")
    return rare * 3 <= len(wide)


def _looks_mislabelled(data: bytes, codec: str) -> bool:
    """A single-byte label on bytes that are mostly 8-bit: likely CJK sent as 'latin-1'."""
    if codecs.lookup(codec).name not in _SINGLE_BYTE:
        return False
    high = sum(1 for byte in data[:4096] if byte >= 0x80)
    return high * 3 > min(len(data), 4096)


_SHORT = 48
#: Latin labels Chinese clients put on GBK bytes. Cyrillic labels are not among them: Russian text
#: is all 8-bit bytes by nature, and read as GB18030 it turns into Chinese-looking nonsense.
_SINGLE_BYTE = frozenset({"cp1252", "iso8859-1", "iso8859-15", "cp1250", "iso8859-2"})


# RFC 2047 encoded words. Deliberately lenient: senders leave out the whitespace around them,
# put them inside quoted strings, split one multibyte character over two words, or use
# spaces inside the encoded text (broken clients); `email.header` gives up on all of these.
_ENCODED_WORD = re.compile(
    r"=\?(?P<charset>[^?*\s]+)(?:\*[^?\s]*)?\?(?P<encoding>[bBqQ])\?(?P<text>.*?)\?=",
    re.DOTALL,
)
_BETWEEN_WORDS = re.compile(r"^[ \t\r\n]*$")


def _decode_word_payload(encoding: str, text: str) -> bytes:
    if encoding.lower() == "b":
        compact = re.sub(r"[^A-Za-z0-9+/=]", "", text).rstrip("=")
        compact += "=" * (-len(compact) % 4)
        try:
            return base64.b64decode(compact)
        except (binascii.Error, ValueError):
            # A truncated word: decode the longest well-formed prefix.
            usable = len(compact.rstrip("=")) // 4 * 4
            return base64.b64decode(compact[:usable]) if usable else b""
    return quopri.decodestring(text.replace("_", " ").encode("latin-1", "replace"), header=True)


def decode_header_value(
    value: str | bytes | None, *, hint: str | None = None
) -> tuple[str, str | None]:
    """A header as readable text: encoded words decoded, raw 8-bit bytes identified.

    `hint` is the charset raw 8-bit bytes most likely use (the message body's).
    """
    if value is None:
        return "", None
    problems: list[str] = []
    if isinstance(value, bytes):
        raw = value
    else:
        # compat32 keeps raw 8-bit header bytes as surrogate escapes: get them back.
        try:
            raw = value.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            raw = b""
            text = value
        else:
            text = ""
        if not raw and text:
            return _decode_words(text, problems), "; ".join(problems) or None
    if raw.isascii():
        text = raw.decode("ascii")
    else:
        text, problem = decode_bytes(raw, None, hint=hint)
        if problem:
            problems.append(f"raw 8-bit header: {problem}")
    return _decode_words(text, problems), "; ".join(problems) or None


def _decode_words(text: str, problems: list[str]) -> str:
    if "=?" not in text:
        return _unfold(text)
    pieces: list[tuple[str, str | bytes, str | None]] = []  # (kind, content, charset)
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        if gap and not (pieces and pieces[-1][0] == "word" and _BETWEEN_WORDS.match(gap)):
            pieces.append(("text", gap, None))
        payload = _decode_word_payload(match["encoding"], match["text"])
        charset = match["charset"].lower()
        # Adjacent words in one charset are joined before decoding: a character split across
        # two words (common with GBK and UTF-8 in long subjects) then decodes whole.
        if pieces and pieces[-1][0] == "word" and pieces[-1][2] == charset:
            previous = pieces[-1][1]
            assert isinstance(previous, bytes)
            pieces[-1] = ("word", previous + payload, charset)
        else:
            pieces.append(("word", payload, charset))
        position = match.end()
    pieces.append(("text", text[position:], None))
    out: list[str] = []
    for kind, content, charset in pieces:
        if kind == "text":
            assert isinstance(content, str)
            out.append(content)
            continue
        assert isinstance(content, bytes)
        decoded, problem = decode_bytes(content, charset)
        if problem:
            problems.append(f"encoded word: {problem}")
        out.append(decoded)
    return _unfold("".join(out))


_FOLD = re.compile(r"[ \t]*(?:\r?\n[ \t]*)+")


def _unfold(text: str) -> str:
    # A fold and the whitespace around it are one space: a header folded over a blank
    # continuation line ("TEST\r\n \r\n\t=?...?=") must not come out with two.
    if "\n" not in text:
        return text.replace("\r", "").strip()
    return _FOLD.sub(" ", text).replace("\r", "").strip()


_HTML_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=False)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body, layout (paragraphs, lists, tables) kept."""
    if not html.strip():
        return ""
    text = get_text(html, _HTML_CONFIG)
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
