"""`KeywordIndex` finds exactly what a plain search for each keyword finds (docs/rules.md).

The reference below is deliberately naive: every occurrence of every keyword with `str.find`,
kept when no Latin word character is next to a Latin end of it. The index is compared with it
on random keyword sets and texts (overlapping and nested keywords, Latin prefixes, phrases,
odd white space) and on the bench's generated reports and rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.rules.matcher import KeywordIndex, fold, normalize

NOW = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
NARROW = "0123456789abcdefghijklmnopqrstuvwxyz"
WIDE = "０１２３４５６７８９ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ"
WORD_CHARS = frozenset(NARROW + "_" + "".join(map(chr, range(0xC0, 0x250))) + WIDE + WIDE.upper())


def key(keyword: str) -> str:
    """The keyword as rules know it: normalized, full-width letters and digits and ’ plain."""
    return normalize(keyword).translate(str.maketrans(WIDE + "’‘", NARROW + "''"))


def forms(keyword: str) -> set[str]:
    """As it may be typed: plain or all in full width, with either apostrophe."""
    typed = {keyword, keyword.translate(str.maketrans(NARROW, WIDE))}
    return typed | {form.replace("'", "’") for form in typed}


def occurrences(keyword: str, text: str) -> Iterable[int]:
    start = text.find(keyword)
    while start >= 0:
        yield start
        start = text.find(keyword, start + 1)


def occurs(keyword: str, text: str) -> bool:
    """The definition: the keyword's text, and no word character next to a Latin end of it."""
    end_offset = len(keyword)
    for start in occurrences(keyword, text):
        end = start + end_offset
        if keyword[0] in WORD_CHARS and start > 0 and text[start - 1] in WORD_CHARS:
            continue
        if keyword[-1] in WORD_CHARS and end < len(text) and text[end] in WORD_CHARS:
            continue
        return True
    return False


def expected(keywords: Iterable[str], subject: str, body: str) -> tuple[set[str], set[str]]:
    """What `find_in` must give for the raw subject and body: both normalized, searched apart."""
    wanted = {key(k) for k in keywords} - {""}
    subject, body = normalize(subject), normalize(body)

    def found(text: str) -> set[str]:
        return {k for k in wanted if any(occurs(form, text) for form in forms(k))}

    in_subject = found(subject)
    return in_subject, in_subject | found(body)


def check(index: KeywordIndex, keywords: Iterable[str], subject: str, body: str) -> None:
    in_subject, found = expected(keywords, subject, body)
    normalized = normalize(subject), normalize(body)
    folded = fold(subject), fold(body)
    # Normalized or only folded texts, searched apart or joined by a line break.
    assert index.find_in(*normalized) == (in_subject, found)
    assert index.find_in(*folded) == (in_subject, found)
    assert index.find("\n".join(normalized)) == found
    assert index.find("\n".join(folded)) == found
    assert index.find(normalized[0]) == in_subject


# Keywords: nested and overlapping CJK, Latin words that prefix each other, phrases, symbols.
VOCABULARY = [
    "订单", "订单失败", "失败很慢", "单失", "失败", "慢", "知识库", "库存失败", "订单 失败",
    "log", "login", "login error", "error", "log in", "is slow", "access denied", "e-mail",
    "c++", "+1", "!!", "crm", "crm系统", "登录crm", "录crm系", "x_y", "café", "v2", "a b c",
    "Straße", "LOGIN  Error", "ＳＳＯ", "can't", "can’t log", "ｅｒｒｏｒ", "v２",
]  # fmt: skip
PIECES = ["订", "单", "失", "败", "很", "慢", "l", "o", "g", "i", "n", "é", "2", "_", "-", "+", " ",
          "ｌ", "ｏ", "Ｇ", "２", "'", "’"]  # fmt: skip
WHITE_SPACE = [" ", "  ", "\n", "\t", "\r\n", "\u3000", "\xa0", "\u2028", " \n "]
TEXT_PIECES = [
    *VOCABULARY, *PIECES, *WHITE_SPACE, "LOGIN", "STRASSE", "X", "中", "\u200b",
    "ＬＯＧＩＮ", "ｌｏｇｉｎ ｅｒｒｏｒ", "ｃａｎ’ｔ", "ＣＡＮ'Ｔ", "sso", "Ｖ２",
]  # fmt: skip

keyword_sets = st.lists(
    st.one_of(
        st.sampled_from(VOCABULARY),
        st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    ),
    max_size=10,
)
texts = st.lists(st.sampled_from(TEXT_PIECES), max_size=14).map("".join)


@settings(max_examples=1000, deadline=None)
@given(keywords=keyword_sets, subject=texts, body=texts)
def test_random_keywords_and_texts(keywords: list[str], subject: str, body: str) -> None:
    check(KeywordIndex.build(keywords), keywords, subject, body)


@pytest.mark.parametrize(
    ("keywords", "text", "found"),
    [
        (
            ["订单", "订单失败", "失败很慢", "单失"],
            "订单失败很慢",
            {"订单", "订单失败", "失败很慢", "单失"},
        ),
        (["log", "login"], "login", {"login"}),
        (["log", "login"], "log-in", {"log"}),
        (["is slow"], "it IS\t SLOW", {"is slow"}),
        (["is slow"], "this slow", set()),
        (["订单 失败"], "订单\u3000\u3000失败", {"订单 失败"}),
        (["crm"], "登录CRM系统", {"crm"}),
        ([], "anything", set()),
        (["  ", ""], "anything", set()),
    ],
)
def test_examples(keywords: list[str], text: str, found: set[str]) -> None:
    index = KeywordIndex.build(keywords)
    assert index.find(fold(text)) == found
    assert index.find_in(fold(text), "") == (found, found)


def test_the_bench_reports() -> None:
    from bench.rules_bench import make_mail, make_rules
    from mapping.email_to_case import case_from_email
    from mapping.parsed_email import parse_email
    from mapping.rules import facts_from_email, parse_rules

    rng = random.Random(4)
    rules = parse_rules(make_rules(200, rng), source="bench")
    keywords = [
        k
        for rule in rules.rules
        for k in [
            *rule.when.keywords,
            *rule.when.all_keywords,
            *rule.when.subject_keywords,
            *rule.when.not_keywords,
        ]
    ]
    index = KeywordIndex.build(keywords)
    hits = 0
    for number in range(2000):
        parsed = parse_email(make_mail(number, rng))
        facts = facts_from_email(case_from_email(parsed, mailbox="support", now=NOW), parsed)
        check(index, keywords, facts.subject, facts.body)
        hits += len(index.find_in(fold(facts.subject), fold(facts.body))[1])
    assert hits > 2000  # the reports do contain keywords
