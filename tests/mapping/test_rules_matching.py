"""How the rules find keywords, regexes and senders fast: same answers as the plain definition."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.case import Case, CaseSource, Person, SourceKind
from mapping.rules import (
    PreviewState,
    ReportFacts,
    RuleEngine,
    apply_outcome,
    load_rules,
    parse_rules,
)
from mapping.rules.matcher import KeywordIndex, fold, normalize

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY_2PM = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
WORD_CHAR = re.compile(r"[0-9a-z_\u00c0-\u024f]")


def occurs(keyword: str, text: str) -> bool:
    """The definition (docs/rules.md): the text, with no word character next to a Latin end."""
    for start in range(len(text) - len(keyword) + 1):
        if not text.startswith(keyword, start):
            continue
        end = start + len(keyword)
        left_ok = not (WORD_CHAR.match(keyword[0]) and start and WORD_CHAR.match(text[start - 1]))
        right_ok = not (
            WORD_CHAR.match(keyword[-1]) and end < len(text) and WORD_CHAR.match(text[end])
        )
        if left_ok and right_ok:
            return True
    return False


VOCABULARY = [
    "log", "login", "login error", "error", "e-mail", "c++", "+1", "!!", "crm", "crm系统",
    "登录crm", "订单", "订单失败", "单失", "失败", "失败很慢", "慢", "x_y", "café", "v2",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    keywords=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=8, unique=True),
    subject=st.lists(st.sampled_from([*VOCABULARY, " ", "x", "s", "-", "中"]), max_size=6),
    body=st.lists(st.sampled_from([*VOCABULARY, " ", "x", "s", "-", "中", "\n"]), max_size=12),
)
def test_the_index_finds_exactly_what_the_definition_does(
    keywords: list[str], subject: list[str], body: list[str]
) -> None:
    index = KeywordIndex.build(keywords)
    subject_text, body_text = normalize("".join(subject)), normalize("".join(body))
    in_subject, found = index.find_in(subject_text, body_text)
    assert in_subject == {k for k in keywords if occurs(k, subject_text)}
    assert found == in_subject | {k for k in keywords if occurs(k, body_text)}
    # Without the subject's own hits, both are searched as one text joined by a line break.
    assert index.find(f"{subject_text}\n{body_text}") == found


WHITE_SPACE = [" ", "  ", "\n", "\t", "\r\n", "\u3000", "\u2028"]


@settings(max_examples=300, deadline=None)
@given(
    keywords=st.lists(
        st.sampled_from([*VOCABULARY, "LOGIN  Error", "Straße", "订单 失败"]),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    subject=st.lists(st.sampled_from([*VOCABULARY, *WHITE_SPACE, "STRASSE", "X"]), max_size=6),
    body=st.lists(st.sampled_from([*VOCABULARY, *WHITE_SPACE, "STRASSE", "X"]), max_size=12),
)
def test_folded_texts_give_what_normalized_ones_do(
    keywords: list[str], subject: list[str], body: list[str]
) -> None:
    # Case-folding is always enough, phrases with white space in them included.
    index = KeywordIndex.build(keywords)
    raw_subject, raw_body = "".join(subject), "".join(body)
    normalized = normalize(raw_subject), normalize(raw_body)
    folded = fold(raw_subject), fold(raw_body)
    assert index.find_in(*folded) == index.find_in(*normalized)
    assert index.find("\n".join(folded)) == index.find_in(*normalized)[1]


def test_a_folded_phrase_spans_lines_of_one_text_but_not_two_texts() -> None:
    index = KeywordIndex.build(["login error", "订单失败"])
    body = "LOGIN\r\n  Error 订单失败"
    assert index.find("\n".join([fold("x"), fold(body)])) == {"login error", "订单失败"}
    assert index.find("\n".join([fold("LOGIN"), fold("error")])) == set()
    cjk = KeywordIndex.build(["订单 失败"])
    assert cjk.find("\n".join([fold("x"), fold("订单\t\u3000失败")])) == {"订单 失败"}
    assert cjk.find("\n".join([fold("订单"), fold("失败")])) == set()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Overlapping and nested keywords are all found.
        ("订单失败很慢", {"订单", "订单失败", "单失", "失败", "失败很慢", "慢"}),
        # A Latin phrase needs both words, whole and next to each other.
        ("login error", {"login", "error", "login error"}),
        ("login errors", {"login"}),
        ("xlogin error", {"error"}),
        ("登录login error了", {"login", "error", "login error"}),
        ("error login", {"login", "error"}),
    ],
)
def test_overlapping_keywords_and_phrases(text: str, expected: set[str]) -> None:
    keywords = [
        "订单",
        "订单失败",
        "单失",
        "失败",
        "失败很慢",
        "慢",
        "login",
        "error",
        "login error",
    ]
    assert KeywordIndex.build(keywords).find(normalize(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 知识库 ends where 库存失败 starts, which ends where 失败很慢 starts: found one pass.
        ("知识库存失败很慢", {"知识库", "库存失败", "失败", "失败很慢", "很慢"}),
        ("知识库存失败", {"知识库", "库存失败", "失败"}),
        ("知识库 库存失败", {"知识库", "库存失败", "失败"}),
        ("知识库存", {"知识库"}),
        # A keyword inside another, with a Latin end: only where no letter follows it.
        ("登录crm系统", {"登录crm", "录crm系"}),
        ("登录crmx", set()),
    ],
)
def test_keywords_that_start_inside_others(text: str, expected: set[str]) -> None:
    keywords = ["知识库", "库存失败", "失败", "失败很慢", "很慢", "登录crm", "录crm系", "录cr"]
    assert KeywordIndex.build(keywords).find(normalize(text)) == expected


def test_subject_and_body_are_searched_apart() -> None:
    index = KeywordIndex.build(["订单失败", "订单", "login error"])
    # Searched in one go, but a keyword never spans the end of the subject and the body.
    assert index.find_in("报表订单", "失败了") == ({"订单"}, {"订单"})
    assert index.find_in("login", "error") == (set(), set())
    assert index.find_in("x", "订单失败") == (set(), {"订单", "订单失败"})
    assert index.find("报表订单\n失败了") == {"订单"}
    assert index.find("login\nerror") == set()


@pytest.mark.parametrize(
    ("keyword", "text", "found"),
    [
        # Full-width letters and digits, as a Chinese input method types them.
        ("error", "ＥＲＲＯＲ 500", True),
        ("erp", "ＥＲＰ系统报错", True),
        ("vpn", "ＶＰＮ连不上", True),
        ("error 500", "Ｅｒｒｏｒ　５００", True),  # and the ideographic space between
        ("ＳＳＯ", "sso login fails", True),  # a keyword typed full-width too
        ("login", "ｌｏｇｉｎｓ", False),  # still whole words only
        # The typographic apostrophe of phones and word processors.
        ("can't log in", "I can’t log in since Monday", True),
        ("can’t access", "we can't access the portal", True),
        ("can't", "we cant", False),
    ],
)
def test_keywords_match_however_the_letters_were_typed(
    keyword: str, text: str, found: bool
) -> None:
    index = KeywordIndex.build([keyword])
    assert bool(index.find(fold(text))) is found
    assert bool(index.find(normalize(text))) is found


# Rules, end to end -------------------------------------------------------------------------
def facts(subject: str = "", body: str = "", **more: object) -> ReportFacts:
    return ReportFacts.model_validate(
        {"subject": subject, "body": body, "received_at": MONDAY_2PM, **more}
    )


def engine(text: str) -> RuleEngine:
    return RuleEngine(parse_rules(text, source="test.toml"), ZONE)


BACK_REFERENCES = r"""
[[rule]]
id = "double-x"
when.regex = ['(x)\1']
then.tags = ["x"]

[[rule]]
id = "double-y"
when.regex = ['(y)\1']
then.tags = ["y"]
"""


def test_regexes_with_back_references_still_match() -> None:
    # Combined into one gate, the second rule's \1 would name the first rule's group.
    rules = engine(BACK_REFERENCES)
    assert rules.evaluate(facts(body="yy")).tags == ["y"]
    assert rules.evaluate(facts(body="xx")).tags == ["x"]
    assert rules.evaluate(facts(body="xy")).tags == []


REGEXES = r"""
[[rule]]
id = "codes"
when.regex = ['ERR-\d+', 'WARN-\d+']
then.tags = ["code"]

[[rule]]
id = "subject-only"
when.subject_regex = ['^urgent']
then.raise_priority = true
"""


@pytest.mark.parametrize(
    ("subject", "body", "evidence"),
    [
        # The rule's first pattern that matches, the subject before the body.
        ("hello", "WARN-1 then ERR-22", ["/ERR-\\d+/ ('ERR-22')"]),
        ("warn-7", "ERR-3", ["/ERR-\\d+/ ('ERR-3')"]),
        ("WARN-7", "nothing", ["/WARN-\\d+/ ('WARN-7')"]),
        ("nothing", "nothing", None),
    ],
)
def test_regex_evidence(subject: str, body: str, evidence: list[str] | None) -> None:
    outcome = engine(REGEXES).evaluate(facts(subject, body))
    codes = [match for match in outcome.matches if match.rule_id == "codes"]
    assert (codes[0].evidence if codes else None) == evidence


def test_a_subject_regex_looks_at_the_subject_only() -> None:
    rules = engine(REGEXES)
    assert rules.evaluate(facts("Urgent: down", "x")).matched_rules == ["subject-only"]
    assert rules.evaluate(facts("down", "urgent")).matched_rules == []


SENDERS = """
[[rule]]
id = "vip"
when.sender = ["@vip.example.com", "ceo@example.com", "partner.org"]
then.tags = ["vip"]
"""


@pytest.mark.parametrize(
    ("sender", "hit"),
    [
        ("li@vip.example.com", True),
        ("li@eu.vip.example.com", True),  # sub-domains included
        ("li@novip.example.com", False),
        ("CEO@Example.com", True),
        ("cfo@example.com", False),
        ("a@partner.org", True),  # a bare domain is a domain
        (None, False),
    ],
)
def test_senders(sender: str | None, hit: bool) -> None:
    assert (engine(SENDERS).evaluate(facts(body="x", sender=sender)).tags == ["vip"]) is hit


# The plain verdict intake applies is the outcome, without the models ----------------------
SAMPLES = [
    ("登录提示验证码失效", "登录系统时提示'验证码失效'，重试3次仍无法进入"),
    ("生产环境宕机", "今天上午生产环境宕机，所有用户都进不去"),
    ("紧急：报表没有入口", "我没有权限，看不到报表的入口 access denied"),
    ("Hello", "Nothing to see."),
]


@pytest.mark.parametrize(("subject", "body"), SAMPLES)
def test_decide_is_evaluate_in_plain_values(subject: str, body: str) -> None:
    rules = RuleEngine(load_rules(), ZONE)
    report = facts(subject, body, sender="li@example.com")
    verdict = rules.decide(report)
    assert verdict.to_outcome() == rules.evaluate(report)

    def case() -> Case:
        return Case(
            subject=subject,
            description=body,
            submitter=Person(name="李", email="li@example.com"),
            source=CaseSource(kind=SourceKind.EMAIL, mailbox="support"),
            created_at=MONDAY_2PM,
            updated_at=MONDAY_2PM,
        )

    by_verdict, by_outcome = case(), case()
    at = MONDAY_2PM + timedelta(minutes=1)
    routed = apply_outcome(by_verdict, verdict, groups={}, state=PreviewState(), at=at)
    outcome = rules.evaluate(report)
    assert routed == apply_outcome(by_outcome, outcome, groups={}, state=PreviewState(), at=at)
    assert by_verdict == by_outcome


def test_default_rules_read_full_width_and_curly_apostrophes() -> None:
    shipped = RuleEngine(load_rules(None), ZONE)
    typed = shipped.evaluate(facts("I can\u2019t log in", "Since this morning."))
    plain = shipped.evaluate(facts("I can't log in", "Since this morning."))
    assert typed.matched_rules == plain.matched_rules != []
    assert (typed.problem_type, typed.priority) == (plain.problem_type, plain.priority)
    wide = shipped.evaluate(facts("ＬＯＧＩＮ ＥＲＲＯＲ", "ＳＳＯ"))
    assert wide.matched_rules == shipped.evaluate(facts("login error", "sso")).matched_rules != []


# all_keywords with groups of alternatives ---------------------------------------------------
SCOPE_AND_FAULT = """
[[rule]]
id = "outage"
when.all_keywords = [["所有用户", "全公司", "all users"], ["宕机", "无法访问", "down"], "系统"]
then.priority = "P0"
"""


@pytest.mark.parametrize(
    ("text", "evidence"),
    [
        ("全公司的系统都无法访问", ["'全公司'", "'无法访问'", "'系统'"]),
        # each group's first alternative in the order written, not in the text's order
        ("系统宕机，无法访问，所有用户和全公司", ["'所有用户'", "'宕机'", "'系统'"]),
        ("all users: the 系统 is down", ["'all users'", "'down'", "'系统'"]),
        ("全公司都在问系统怎么用", None),  # no fault word: a scope word alone
        ("系统宕机了", None),  # no scope word
        ("全公司宕机", None),  # the plain keyword 系统 is missing
    ],
)
def test_all_keywords_takes_groups_of_alternatives(text: str, evidence: list[str] | None) -> None:
    engine = RuleEngine(parse_rules(SCOPE_AND_FAULT, source="test.toml"), ZONE)
    outcome = engine.evaluate(ReportFacts(subject=text, received_at=MONDAY_2PM))
    if evidence is None:
        assert outcome.matches == []
    else:
        [match] = outcome.matches
        assert match.evidence == evidence
        [decided] = [d.text for d in outcome.decisions if d.rule_id == "outage"]
        assert decided == f"P0 by rule outage: matched {', '.join(evidence[:2])} and {evidence[2]}"


def test_any_alternative_of_the_first_group_triggers_the_rule() -> None:
    # The rule is looked at only when one of its trigger keys occurs: every alternative of its
    # first group is one (a report without the first alternative still matches).
    engine = RuleEngine(parse_rules(SCOPE_AND_FAULT, source="test.toml"), ZONE)
    facts = ReportFacts(subject="All users say the 系统 is down", received_at=MONDAY_2PM)
    assert [m.rule_id for m in engine.evaluate(facts).matches] == ["outage"]


@pytest.mark.parametrize(
    ("all_keywords", "message"),
    [
        ("[[]]", "an empty list of alternatives can never match; remove it"),
        ('[["宕机", " "]]', "an empty keyword would match everything; remove it"),
        ('["宕机", ""]', "an empty keyword would match everything; remove it"),
        ('["宕机", 3]', "3 is neither a keyword nor a list of keywords (alternatives)"),
        (
            '[["宕机", ["a"]]]',
            "['宕机', ['a']] is neither a keyword nor a list of keywords (alternatives)",
        ),
    ],
)
def test_an_empty_group_or_keyword_in_all_keywords_is_refused(
    all_keywords: str, message: str
) -> None:
    from tests.mapping.test_rules_loader import refusal

    text = f'[[rule]]\nid = "a"\nwhen.all_keywords = {all_keywords}\nthen.priority = "P0"\n'
    assert refusal(text) == f"rules.toml:3 rule 'a': when.all_keywords: {message}"
