"""The reply patterns tried only where they can match give what the library's plain patterns give.

`mapping.reply_text` hands mail-parser-reply objects that run its compiled patterns at the
positions where a match can start (see the comment above `_FINGERPRINTS`). These tests check
the tables those positions come from against the installed library's sources, and compare the
results with the plain patterns: for every language's quote headers, signatures and
disclaimers the library knows, the Chinese clients' headers, and generated texts.
"""

from __future__ import annotations

import re
import time
import warnings
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mailparser_reply import EmailMessage
from mailparser_reply.constants import (
    GENERIC_MAIL_SEPARATOR,
    MAIL_LANGUAGES,
    OPTIONAL_LINEBREAK,
    QUOTED_MATCH_INCLUDE,
    SENTENCE_START,
    SINGLE_SPACE_VARIATIONS,
)

from mapping import reply_text
from mapping.reply_text import (
    HEADER_NAMES,
    LIBRARY_PATTERNS,
    WROTE_WORDS,
    visible_reply,
)

LANGUAGES = reply_text._LANGUAGES
FAST = reply_text._PATTERNS


def _read(text: str, patterns: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
    message = EmailMessage(text=text, languages=list(LANGUAGES), **patterns).read()
    return [(r.content, r.headers, r.signatures, r.disclaimers) for r in message.replies]


def _plain_visible_reply(text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(reply_text, "_PATTERNS", dict(LIBRARY_PATTERNS))
        patch.setattr(reply_text, "CHINESE_NEEDS", {})
        patch.setattr(reply_text, "OTHER_NEEDS", {})
        return visible_reply(text)


def _plain_cut_quote(text: str) -> str:
    chinese, other = reply_text.CHINESE_NEEDS, reply_text.OTHER_NEEDS
    reply_text.CHINESE_NEEDS, reply_text.OTHER_NEEDS = {}, {}
    try:
        return reply_text._cut_quote(text)
    finally:
        reply_text.CHINESE_NEEDS, reply_text.OTHER_NEEDS = chinese, other


def assert_same(text: str) -> None:
    """findall / search of each fast pattern equal the plain pattern's on the library's text."""
    normalised = EmailMessage(text=text, languages=list(LANGUAGES)).text
    for candidate in (text, normalised):
        for key in ("_header_regex", "_disclaimers_regex"):
            assert FAST[key].findall(candidate) == LIBRARY_PATTERNS[key].findall(candidate), key
        for key in ("_header_regex", "_signature_regex"):
            fast = FAST[key].search(candidate)
            plain = LIBRARY_PATTERNS[key].search(candidate)
            assert (fast and (fast.span(), fast.groups())) == (
                plain and (plain.span(), plain.groups())
            ), key
    assert _read(text, FAST) == _read(text, dict(LIBRARY_PATTERNS))
    assert reply_text._cut_quote(text) == _plain_cut_quote(text)


# the tables against the library's sources ----------------------------------------------------
def test_the_fast_patterns_are_in_use() -> None:
    # False means the installed mail-parser-reply is not the version whose patterns were checked:
    # read its sources again, update the tables and the fingerprints.
    assert isinstance(FAST["_header_regex"], reply_text._AtStarts)
    assert isinstance(FAST["_signature_regex"], reply_text._AtStarts)
    assert isinstance(FAST["_disclaimers_regex"], reply_text._AtStarts)


def test_header_regex_is_made_of_the_alternatives_the_tables_describe() -> None:
    wrote = [MAIL_LANGUAGES[name]["wrote_header"] for name in LANGUAGES]
    sent = [MAIL_LANGUAGES[name]["from_header"] for name in LANGUAGES]
    expected = "|".join([*wrote, *sent, f"({GENERIC_MAIL_SEPARATOR})"])
    assert LIBRARY_PATTERNS["_header_regex"].pattern == expected
    assert GENERIC_MAIL_SEPARATOR.startswith("^-{5,}")
    assert set(WROTE_WORDS) == set(HEADER_NAMES) == set(LANGUAGES)


@pytest.mark.parametrize("name", LANGUAGES)
def test_wrote_header_starts_with_the_tabled_words(name: str) -> None:
    source = MAIL_LANGUAGES[name]["wrote_header"]
    # `^(?!...)` and then the one capturing group, which starts with the quote marks and words.
    assert source.startswith("^(?!")
    lookahead_end = _group_end(source, 1)
    assert source[lookahead_end:].startswith("(" + QUOTED_MATCH_INCLUDE + WROTE_WORDS[name])
    assert source.endswith("$")


@pytest.mark.parametrize("name", LANGUAGES)
def test_from_header_starts_with_the_tabled_names(name: str) -> None:
    source = MAIL_LANGUAGES[name]["from_header"]
    anchor = r"(?:^|\n|\n" + QUOTED_MATCH_INCLUDE + ")"
    block = anchor + r"[* ]*(?:" + HEADER_NAMES[name] + "):"
    if name == "da":
        danish = "(?:" + anchor + "?-----Oprindelig meddelelse-----\\n)?"
        assert source.startswith("(" + danish + "(?:" + block)
    else:
        assert source.startswith("((?:" + block)


def _group_end(source: str, start: int) -> int:
    """The index after the group opening at source[start] (escapes and classes skipped)."""
    depth = 0
    index = start
    in_class = False
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise AssertionError(f"unbalanced: {source}")


def test_signature_and_disclaimer_patterns_are_built_as_described() -> None:
    # The whole sources, rebuilt from the pieces the line patterns use.
    sent_from = reply_text.library_alternation("sent_from")
    signatures = reply_text.library_alternation("signatures")
    assert LIBRARY_PATTERNS["_signature_regex"].pattern == (
        r"((\s*^(?:> ?)*(?:[-_]{2}\n).*|(\n{2,} ?[_-]{32,})|"
        rf"\s*^(?:> ?)*(?:{sent_from}) ?(?:(?:[\w.<>:// ]+)|(?:\w+ )(1, 3))$|"
        rf"(?<!\A)^(?:> ?)*(?:{signatures}))(.|\s)*)"
    )
    assert reply_text._SIGNATURE_LINES.first.pattern == (
        rf"(?=(?:> ?)*(?:[-_]{{2}}\n|{sent_from}|{signatures})| ?[_-]{{32}})"
    )
    words = reply_text.library_alternation("disclaimers").replace(" ", SINGLE_SPACE_VARIATIONS)
    extension = r"[a-zA-Z0-9\u00C0-\u017F:;.,?!<>()@&/\'\"\“\” \u200b\xA0\t\-]*"
    assert LIBRARY_PATTERNS["_disclaimers_regex"].pattern == (
        f"{SENTENCE_START}(?:{words})(?:{OPTIONAL_LINEBREAK}{extension}?(?:mail){extension}){{1,2}}"
    )
    assert SENTENCE_START == r"(?:[\n\r.!?]|^)[ \u200b\xA0\t]{0,3}"


@pytest.mark.parametrize(
    ("patterns", "needs"),
    [
        (reply_text.CHINESE_QUOTE_HEADERS, reply_text.CHINESE_NEEDS),
        (reply_text.OTHER_QUOTE_HEADERS, reply_text.OTHER_NEEDS),
    ],
    ids=["chinese", "other"],
)
def test_quote_pattern_needs_are_parts_of_the_patterns(
    patterns: dict[str, re.Pattern[str]], needs: dict[str, tuple[tuple[str, ...], ...]]
) -> None:
    assert set(needs) == set(patterns)
    for name, groups in needs.items():
        pattern = patterns[name]
        # "-{3,}" is at least "---".
        source = re.sub(r"-\{(\d+),\}", lambda m: "-" * int(m.group(1)), pattern.pattern)
        for group in groups:
            for part in group:
                assert part in source, (name, part)
                if pattern.flags & re.IGNORECASE:
                    assert set(part) <= set("-:"), (name, part)  # characters without case


def test_whitespace_walk_back_is_what_the_pattern_calls_whitespace() -> None:
    space = re.compile(r"\s")
    for code in range(0x3100):
        char = chr(code)
        assert bool(space.match(char)) == char.isspace(), hex(code)
    for char in "\u2028\u2029\u3000\ufeff\u200b\u180e\U000e0020":
        assert bool(space.match(char)) == char.isspace(), ascii(char)


# every header, signature and disclaimer the library knows ------------------------------------
HEADER_SAMPLES = {
    "en": [
        "On Mon, May 20, 2024 at 2:00 PM Support <s@x.com> wrote:",
        "On Mon, May 20, 2024 at 2:00 PM Support\n<s@x.com> wrote:",
        "From: Support <s@x.com>\nSent: Monday, May 20, 2024 2:00 PM\nTo: Zhang\nSubject: RE: x",
        "*From:* Support\n*Date:* 20 May 2024\n*Subject:* x",
        "> hello\n> From: a\n> To: b",
        "-----Original Message-----",
    ],
    "de": [
        "Am 20.05.2024 um 14:00 schrieb Max Muster <max@x.de>:",
        "Von: Max\nGesendet: Montag\nAn: Zhang\nBetreff: AW: x",
    ],
    "cs": ["Dne 20. 5. 2024 14:00 Jan Novák napsal(a):", "Od: Jan\nOdesláno: pondělí\nKomu: x"],
    "da": [
        "Den 20. maj 2024 kl. 14.00 skrev Hans <h@x.dk>:",
        "man. 20. maj 2024 kl. 14.00 skrev Hans <h@x.dk>:",
        "20. maj 2024 kl. 14.00 skrev Hans <h@x.dk>:",
        "-----Oprindelig meddelelse-----\nFra: Hans\nSendt: 20. maj\nTil: x",
        "tekst-----Oprindelig meddelelse-----\nFra: Hans\nSendt: 20. maj\nTil: x",
        "Fra: Hans\nDato: 20. maj",
    ],
    "es": [
        "El lun, 20 may 2024 a las 14:00, Ana (<a@x.es>) escribió:",
        "De: Ana\nEnviado: lunes\nPara: x\nAsunto: RE: x",
    ],
    "fr": [
        "Le lun. 20 mai 2024 à 14:00, Marie <m@x.fr> a écrit :",
        "De : Marie\nEnvoyé : lundi\nÀ : x\nObjet : RE: x",
        "*  : x\n*  : y",
    ],
    "it": [
        "Il giorno lun 20 mag 2024 alle 14:00 Luca ha scritto:",
        "Da: Luca\nInviato: lunedì\nA: x",
    ],
    "ja": ["2024年5月20日(月) 14:00 山田 <y@x.jp>:", "From: 山田\nSent: 2024年5月20日"],
    "ko": [
        "2024년 5월 20일 (월) 오후 2:00, 김 <k@x.kr>님이 작성하였습니다:",
        "보낸 사람: 김\n받는사람: x\n제목: x",
    ],
    "nl": ["Op 20 mei 2024 om 14:00 schreef Jan <j@x.nl>:", "Van: Jan\nVerzonden: maandag\nAan: x"],
    "pl": [
        "Dnia 20.05.2024 o 14:00 Jan <j@x.pl> napisał(a):",
        "Od: Jan\nWysłano: poniedziałek",
        "Temat: tylko jeden",
    ],
    "sv": [
        "Den 20 maj 2024 kl. 14:00 skrev Sven <s@x.se>:",
        "mån 20 maj 2024 kl. 14:00 skrev Sven <s@x.se>:",
        "20 maj 2024 kl. 14:00 skrev Sven <s@x.se>:",
        "Från: Sven\nSkickat: måndag\nTill: x\nÄmne: x",
    ],
    "zh": [
        "2024年5月20日 下午2:00，张三 <z@x.cn> 写道：",
        "发件人: 技术支持\n发送时间: 2024年5月20日\n收件人: 张三\n主题: 回复: x",
    ],
}
CHINESE_CLIENTS = [
    '------------------ 原始邮件 ------------------\n发件人: "支持"<s@x.cn>;\n发送时间: 2024年5月',
    '------------------ Original ------------------\nFrom: "支持"<s@x.cn>;\nDate: 2024年5月',
    "发件人: 技术支持 <s@x.cn>\n发送时间: 2024年5月20日 14:00\n收件人: 张三\n主题: RE: x",
    "寄件者: 技术支持 <s@x.cn>\n寄件日期: 2024年5月20日 14:00",
    "技术支持 <s@x.cn> 于2024年5月20日周一 14:00写道：",
    "技术支持 <s@x.cn> 于2024年5月20日周一 14:00\n写道：",
    '在 2024-05-20 14:00:00，"技术支持" <s@x.cn> 写道：',
    "-----原始邮件-----\n发件人: s@x.cn",
    "-------- 转发的邮件 --------\n发件人: s@x.cn",
]
SIGNATURES = [
    f"{word}\nName"
    for name in LANGUAGES
    for word in [
        "Best regards",
        "Thanks,",
        "Mit freundlichen Grüßen",
        "Viele Grüße",
        "S pozdravem,",
        "Med venlig hilsen",
        "Tak",
        "Saludos,",
        "cordialement",
        "Cordiali saluti",
        "감사합니다,",
        "Met vriendelijke groet",
        "Pozdrawiam",
        "Med vänliga hälsningar",
        "/Anna",
        "此致，",
        "谢谢，",
    ]
    if name == "en"
] + [
    "Sent from my iPhone",
    "Get Outlook for iOS",
    "Gesendet von meinem iPad",
    "Odesláno z mého telefonu",
    "Sendt fra min iPhone",
    "Enviado desde mi móvil",
    "Envoyé depuis mon iPhone",
    "Inviato da iPhone",
    "내 iPhone에서 보냄",
    "Verzonden vanaf mijn iPhone",
    "Wysłano z iPhone",
    "Skickat från min iPhone",
    "从我的iPhone发送",
    "--\nJohn",
    "__\nJohn",
    "> --\nJohn",
    "\n\n" + "_" * 32 + "\nFooter",
    "\n\n -" + "-" * 40 + "\nFooter",
]
DISCLAIMERS = [
    "CAUTION: This email originated from outside.",
    "Disclaimer: this e-mail is confidential.",
    "*** Disclaimer *** this email is private",
    "Confidential Notice: this mail is for the addressee only.",
    "CONFIDENTIALITY: The information in this email is confidential.",
    "Wichtiger Hinweis: Diese E-Mail ist vertraulich.",
    "Advarsel: denne mail er fortrolig.",
    "Aviso: este correo electrónico (e-mail) es confidencial.",
    "Descargo de responsabilidad: este email es privado.",
    "면책 조항: 이 메일은 기밀입니다.",
    "Waarschuwing: deze e-mail is vertrouwelijk.",
    "Uwaga: ten e-mail jest poufny.",
    "Observera: detta mail är konfidentiellt.",
    "免责声明：本邮件 mail 仅供收件人使用。",
    "注意：此 email 包含机密信息。",
]


def _samples() -> list[str]:
    quotes = [sample for samples in HEADER_SAMPLES.values() for sample in samples]
    quotes += CHINESE_CLIENTS
    texts = []
    for quote in quotes:
        texts.append(f"已经解决了，谢谢。\n\n{quote}\n> 旧内容\n> 更旧\n")
        texts.append(f"Fixed, thanks.\n{quote}\nold text\n")
        texts.append(f"{quote}\n\nnew text below\n")
        texts.append(f"Hi\n\n> {quote.replace(chr(10), chr(10) + '> ')}\n> q\n\nanswer\n")
    for signature in SIGNATURES:
        texts.append(f"The export works now.\n\n{signature}\n")
        texts.append(f"{signature}\n\nText after.\n")
        texts.append(f"Line one\n   \n\t{signature}\nmore\n")
    for disclaimer in DISCLAIMERS:
        texts.append(f"问题已解决。\n\n{disclaimer}\nmore mail text\n")
        texts.append(f"Hello. {disclaimer} Regards.\n")
    return texts


@pytest.mark.parametrize("text", _samples())
def test_known_headers_signatures_and_disclaimers_give_the_plain_result(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_same(text)
    assert visible_reply(text) == _plain_visible_reply(text, monkeypatch)


def test_the_samples_do_exercise_every_pattern() -> None:
    # The comparisons above would pass trivially if nothing matched.
    texts = _samples()
    for name, samples in HEADER_SAMPLES.items():
        # Not each: the es, ko and zh "wrote" lines cannot match (their negative lookahead is
        # the line itself), which the comparisons check all the same.
        assert any(LIBRARY_PATTERNS["_header_regex"].search(quote) for quote in samples), name
    assert sum(1 for t in texts if LIBRARY_PATTERNS["_signature_regex"].search(t)) > 50
    assert sum(1 for t in texts if LIBRARY_PATTERNS["_disclaimers_regex"].findall(t)) >= 15


def test_texts_without_any_candidate_line_skip_the_library_patterns() -> None:
    text = "登录系统时提示验证码失效，重试3次仍无法进入。\n\n#12\n详细描述。详细描述。"
    assert reply_text._header_starts(text) == []
    assert list(reply_text._signature_starts(text)) == []
    assert_same(text)


# generated texts -------------------------------------------------------------------------------
_PIECES = [
    *(s for samples in HEADER_SAMPLES.values() for s in samples),
    *CHINESE_CLIENTS,
    *SIGNATURES,
    *DISCLAIMERS,
    *["On", "on ", "wrote:", "Am ", "schrieb", "Den ", "skrev", "2024年", "写道：", "From:"],
    *["from:", "To:", "A:", "a:", "De :", "  :", "*", "> ", ">", "-----", "--", "__", "mail"],
    *["Email", "Disclaimer", "ſent from my", "ſubject:", "K", "ﬀ", "İ", "ı", "Tak", "Kh", "/x"],
    *["Thanks,", "1", "2024-05-20", "12:00", "Oprindelig meddelelse", "Original Message", "你好"],
    *[
        "发件人",
        "寄件者",
        "发送时间",
        "日期",
        "于2024年5月20日",
        "在 2024-05-20",
        "原始邮件",
        "---",
    ],
    *["Sent:", "skrev:", "napisał:", "написал:", "a écrit :", "schrieb Max:", "@", "<a@b.c>"],
    *["Forwarded message", "Begin forwarded message:", "写道", "：", "2011/4/7 ", "Op ", "W dniu"],
    *["\n", "\n\n", " ", "\t", "\u00a0", "\u2028", "\u3000", "\r"],
    "-----Oprindelig meddelelse-----\n",
]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)),
        max_size=30,
    )
)
@example(["tekst-----Oprindelig meddelelse-----\n", "Fra: a\n", "Til: b"])
@example(["x\n \n", "--\n", "sig"])
@example(["a\n\n", "_" * 40])
def test_fast_patterns_equal_plain_on_generated_texts(pieces: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same("".join(pieces))


# the mailing-list footer rule ------------------------------------------------------------------
#: What `_FOOTER_RULE` was: the same texts, but `\n?` lets a line be cut into pieces, and with
#: more than five lines after the rule it backtracks through every way to cut them.
_OLD_FOOTER_RULE = re.compile(
    r"^[ \t]*[-_=]{10,}[ \t]*\n(?=(?:[^\n]*\n)*?[^\n]*(?:mailing list|listinfo|unsubscribe|退订))"
    r"(?:[^>\n][^\n]*\n?){1,5}\Z",
    re.MULTILINE | re.IGNORECASE,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["-" * 10, "=" * 12, "unsubscribe", "listinfo", ">", "a", " ", "\n", "退订"]
        ),
        max_size=14,
    )
)
@example(["x\n", "-" * 10, "\n", "a\n", "unsubscribe"])
@example(["-" * 10, "\n", "a\n", "unsubscribe\n", "\n"])
def test_footer_rule_matches_where_it_did(pieces: list[str]) -> None:
    text = "".join(pieces)
    old = _OLD_FOOTER_RULE.search(text)
    new = reply_text._FOOTER_RULE.search(text)
    assert (old and old.span()) == (new and new.span())


def test_a_long_footer_below_a_rule_is_read_quickly() -> None:
    # Eight 80-character lines below a rule, "unsubscribe" in the last: the old pattern took
    # minutes on this; a newsletter's footer looks like it.
    text = "Hello\n\n" + "=" * 20 + "\n" + ("a" * 79 + "\n") * 8 + "unsubscribe here\n"
    started = time.perf_counter()
    assert visible_reply(text) == text.strip()
    assert time.perf_counter() - started < 1.0
