"""Classification table, charset decoding and the visible reply: pure, no server."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mapping.classify import MessageKind, accept_subject_reply, case_token_in, classify
from mapping.email_to_case import case_from_email
from mapping.mail_decoding import decode_bytes, decode_header_value
from mapping.outgoing_mail import message_id_for
from mapping.parsed_email import parse_email
from mapping.reply_text import visible_reply
from tests.flows.intake_mail import IDENTITY, NOW, report
from tests.support.services import require_service

OURS = message_id_for("202405-001/confirmation/1", IDENTITY)


def kind_of(raw: bytes) -> tuple[MessageKind, str, str | None]:
    verdict = classify(parse_email(raw), raw, IDENTITY)
    return verdict.kind, verdict.reason, verdict.case_number


CLASSIFICATION_TABLE = [
    # (name, headers, subject, sender, expected kind, expected reason fragment)
    ("new", {}, "登录失败", "u@example.cn", MessageKind.NEW_REPORT, "new report"),
    (
        "in-reply-to",
        {"In-Reply-To": f"<{OURS}>"},
        "Re: hi",
        "u@example.cn",
        MessageKind.REPLY,
        "matched via In-Reply-To",
    ),
    (
        "references",
        {"References": f"<x@y> <{OURS}>"},
        "Re: hi",
        "u@example.cn",
        MessageKind.REPLY,
        "matched via References",
    ),
    (
        "token",
        {},
        "回复：[Case 202405-007] 登录失败",
        "u@example.cn",
        MessageKind.REPLY,
        "matched via subject token",
    ),
    (
        "forged id",
        {"In-Reply-To": f"<{OURS.replace('1.', '2.', 1)}>"},
        "Re: hi",
        "u@example.cn",
        MessageKind.NEW_REPORT,
        "new report",
    ),
    (
        "auto-submitted",
        {"Auto-Submitted": "auto-replied"},
        "[Case 202405-001] x",
        "u@e.cn",
        MessageKind.AUTO_REPLY,
        "auto-reply: Auto-Submitted=auto-replied",
    ),
    (
        "auto-submitted no",
        {"Auto-Submitted": "no"},
        "hello",
        "u@e.cn",
        MessageKind.NEW_REPORT,
        "new report",
    ),
    (
        "precedence bulk",
        {"Precedence": "bulk"},
        "news",
        "u@e.cn",
        MessageKind.AUTO_REPLY,
        "Precedence=bulk",
    ),
    (
        "precedence auto_reply",
        {"Precedence": "auto_reply"},
        "x",
        "u@e.cn",
        MessageKind.AUTO_REPLY,
        "Precedence=auto_reply",
    ),
    ("x-autoreply", {"X-Autoreply": "yes"}, "x", "u@e.cn", MessageKind.AUTO_REPLY, "X-Autoreply"),
    (
        "x-autorespond",
        {"X-Autorespond": "1"},
        "x",
        "u@e.cn",
        MessageKind.AUTO_REPLY,
        "X-Autorespond",
    ),
    (
        "exchange suppress",
        {"X-Auto-Response-Suppress": "All"},
        "x",
        "u@e.cn",
        MessageKind.AUTO_REPLY,
        "X-Auto-Response-Suppress=All",
    ),
    (
        "exchange loop",
        {"X-MS-Exchange-Inbox-Rules-Loop": "u@e.cn"},
        "x",
        "u@e.cn",
        MessageKind.AUTO_REPLY,
        "Inbox-Rules-Loop",
    ),
    ("subject zh", {}, "自动回复: 休假中", "u@e.cn", MessageKind.AUTO_REPLY, "subject"),
    ("subject en", {}, "Automatic reply: login", "u@e.cn", MessageKind.AUTO_REPLY, "subject"),
    (
        "out of office",
        {},
        "Out of Office: back Monday",
        "u@e.cn",
        MessageKind.AUTO_REPLY,
        "subject",
    ),
    (
        "daemon",
        {},
        "Undelivered Mail Returned to Sender",
        "MAILER-DAEMON@mx.example.cn",
        MessageKind.BOUNCE,
        "bounce: sender mailer-daemon@mx.example.cn",
    ),
    ("postmaster", {}, "failure", "postmaster@example.cn", MessageKind.BOUNCE, "postmaster"),
    (
        "x-failed",
        {"X-Failed-Recipients": "gone@example.cn"},
        "oops",
        "x@mx.example.cn",
        MessageKind.BOUNCE,
        "X-Failed-Recipients=gone@example.cn",
    ),
    (
        "our from",
        {},
        "[Case 202405-001] 已收到",
        "support@casedesk.test",
        MessageKind.OWN_MAIL,
        "own mail: From is our address",
    ),
]


@pytest.mark.parametrize(
    ("headers", "subject", "sender", "kind", "reason"),
    [row[1:] for row in CLASSIFICATION_TABLE],
    ids=[row[0] for row in CLASSIFICATION_TABLE],
)
def test_classification_table(
    headers: dict[str, str], subject: str, sender: str, kind: MessageKind, reason: str
) -> None:
    raw = report(subject=subject, sender=("某人", sender), headers=headers)
    got_kind, got_reason, _ = kind_of(raw)
    assert got_kind == kind
    assert reason in got_reason


def test_our_own_message_id_coming_back_is_dropped() -> None:
    raw = report(message_id=OURS, sender=("relay", "relay@example.cn"))
    assert kind_of(raw)[0] == MessageKind.OWN_MAIL


def test_bounce_names_the_case_and_the_failed_address() -> None:
    raw = (Path(__file__).parent.parent / "fixtures/emails/bounce_dsn.eml").read_bytes()
    parsed = parse_email(raw)
    from mapping.outgoing_mail import SenderIdentity

    identity = SenderIdentity.model_validate(
        {**IDENTITY.model_dump(), "signing_secret": "golden-secret"}
    )
    verdict = classify(parsed, raw, identity)
    assert verdict.kind == MessageKind.BOUNCE
    assert verdict.case_number == "202405-001"
    assert verdict.permanent_failures == ["nobody@example.cn"]


def test_subject_reply_accepted_only_from_people_on_the_case() -> None:
    case = case_from_email(parse_email(report()), mailbox="support", now=NOW)
    case.number = "202405-001"
    case.collaborators = ["dev@corp.example"]
    assert accept_subject_reply(case, "zhangsan@example.cn")[0]
    assert accept_subject_reply(case, "DEV@corp.example")[0]
    accepted, why = accept_subject_reply(case, "stranger@evil.example")
    assert not accepted and why.startswith("held for review")


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("Re: [Case 202405-001] x", "202405-001"),
        ("[case 202412-1234]", "202412-1234"),
        ("回复：[案例 202405-002]", "202405-002"),
        ("Case 202405-001", None),
    ],
)
def test_case_token(subject: str, number: str | None) -> None:
    assert case_token_in(subject) == number


@pytest.mark.parametrize(
    ("text", "label", "codec"),
    [
        ("朱镕喆 报表", "gb2312", "gbk"),
        ("朱镕喆 报表", "GBK", "gb18030"),
        ("香港 㗎 報表", "big5", "big5hkscs"),
        ("ログイン", "iso-2022-jp", "iso2022_jp"),
        ("你好 world", "utf-8", "utf-8"),
        ("你好，系统报错了，无法登录", "iso-8859-1", "gbk"),
    ],
)
def test_decode_bytes_by_label_or_detection(text: str, label: str, codec: str) -> None:
    assert decode_bytes(text.encode(codec), label)[0] == text


def test_one_bad_part_never_fails_the_message() -> None:
    raw = (
        b"From: a@example.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfine part\r\n"
        b"--b\r\nContent-Type: text/plain; charset=x-unknown-charset\r\n\r\n"
        b"\xff\xfe broken\r\n--b--\r\n"
    )
    parsed = parse_email(raw)
    assert "fine part" in parsed.text
    assert parsed.problems


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=?utf-8?B?5byg5LiJ?=<zs@x.cn>", "张三<zs@x.cn>"),  # no space before the address
        ('"=?gbk?B?1cXI/Q==?=" <zs@x.cn>', '"张三" <zs@x.cn>'),  # inside quotes
        ("=?utf-8?B?5byg5LiJ?= =?utf-8?B?5p2O?=", "张三李"),  # whitespace between words dropped
        ("=?utf-8?B?5byg5LiJ?=", "张三"),
        ("=?utf-8?B?5byg5L?=", "张"),  # truncated base64: the whole characters that are there
        ("=?utf-8?Q?Re:_=E4=BD=A0=E5=A5=BD?=", "Re: 你好"),
    ],
)
def test_broken_encoded_words(value: str, expected: str) -> None:
    assert decode_header_value(value)[0] == expected


def test_raw_8bit_header_uses_the_body_charset() -> None:
    headers = "From: 陳大文 <c@x.hk>\nSubject: 報表\nContent-Type: text/plain; charset=big5\n"
    raw = (headers + "\n測試").encode("big5")
    parsed = parse_email(raw)
    assert (parsed.from_name, parsed.subject, parsed.text) == ("陳大文", "報表", "測試")


def test_split_multibyte_character_across_encoded_words() -> None:
    data = "朱镕喆".encode("gbk")
    words = [base64.b64encode(data[:3]).decode(), base64.b64encode(data[3:]).decode()]
    value = f"=?gb2312?B?{words[0]}?= =?gb2312?B?{words[1]}?="
    assert decode_header_value(value)[0] == "朱镕喆"


@pytest.mark.parametrize(
    "quote",
    [
        "------------------ 原始邮件 ------------------\n"
        '发件人: "支持"<s@x.cn>;\n发送时间: 2024年5月20日',
        "发件人: 技术支持 <s@x.cn>\n发送时间: 2024年5月20日 14:00\n收件人: 张三\n主题: RE: x",
        "技术支持 <s@x.cn> 于2024年5月20日周一 14:00写道：\n> 您好",
        '在 2024-05-20 14:00:00，"技术支持" <s@x.cn> 写道：\n>您好',
        "-----原始邮件-----\n发件人: s@x.cn",
        "On Mon, May 20, 2024 at 2:00 PM Support <s@x.cn> wrote:\n> hello",
    ],
    ids=["qq", "outlook", "gmail", "netease", "outlook-old", "english"],
)
def test_visible_reply_cuts_quotes_of_chinese_clients(quote: str) -> None:
    assert visible_reply(f"已经解决了，谢谢。\n\n{quote}\n> 旧内容\n") == "已经解决了，谢谢。"


def test_mobile_footer_is_not_part_of_the_reply() -> None:
    assert visible_reply("部分解决\n\n发自我的iPhone\n") == "部分解决"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Bottom-posting: the quote and its attribution go, the answer below stays.
        ("On 20/05/2024, Support wrote:\n> 哪个浏览器？\n\nChrome 125。\n", "Chrome 125。"),
        # A greeting above the attribution stays with the answer.
        (
            "Hi,\nOn Mon, 2024-05-20 at 14:00, S wrote:\n> q\n\nOne\nTwo\nThree\n> old\n",
            "Hi,\nOne\nTwo\nThree",
        ),
        # Interleaved answers keep the quoted question between them.
        ("> 问题一\n\n回答一\n\n> 问题二\n\n回答二\n", "> 问题一\n\n回答一\n\n> 问题二\n\n回答二"),
        # A ">>>" line inside the text is no quote.
        (
            "Visit us.\n>>> http://example.com <<<\nThen click.",
            "Visit us.\n>>> http://example.com <<<\nThen click.",
        ),
        # A link the quoting client broke onto an unquoted line is not an answer.
        ("Blah\n\nOn 1 May 2024, bob wrote:\n\n> View (http://x.example/a\n_n=3)\n>\n", "Blah"),
        # Bullets and dashed steps are the report, not a "-Name" signature.
        ("步骤：\n- 打开页面\n- 点击提交\n\n-Carol\n", "步骤：\n- 打开页面\n- 点击提交"),
        # A rule line with steps below it is no mailing-list footer.
        ("Steps:\n----------\n1. open\n2. click\n", "Steps:\n----------\n1. open\n2. click"),
        (
            "Thanks\n\n____________\nriak-users mailing list\nhttp://l.example/listinfo/r\n",
            "Thanks",
        ),
        # Attributions of other clients and languages, and Outlook's rule line above them.
        ("好了\n\n---- John Smith wrote ----\n\n> q\n", "好了"),
        ("好了\n\n-----Ursprüngliche Nachricht-----\nVon: a@b.de\n", "好了"),
        (
            "好了\n\n------------------------------\nOp 13-02-2014 3:18 schreef J <j@r.nl>:\n\nq",
            "好了",
        ),
        ("好了\n\nPå 14 sep 2015 02:23, V (v@r.be) skrev:\n\nq", "好了"),
        ("好了\n2011/4/7 Nathan <support@example.com>\n\n> q\n", "好了"),
        ("reply--- On Wed, Apr 4, 2012 at 3:59 PM, me@domain.com wrote:\n> q", "reply"),
        # The reply ends at a forwarded message's marker.
        ("FYI\n\n---------- Forwarded message ----------\nFrom: a@b.c\n\nText", "FYI"),
        # An attribution wrapped over two lines goes whole with the quote below it.
        (
            "Hi\n\nOn Fri, May 6, 2011 at 6:03 PM, Roman from News\n<r@d.com> wrote:\n\n> T\n\nOK",
            "Hi\n\nOK",
        ),
        # A sentence ending in "wrote:" without a date or address is not an attribution.
        ("He wrote:\nthe export is broken\n", "He wrote:\nthe export is broken"),
    ],
    ids=[
        "bottom-post",
        "greeting-bottom-post",
        "interleaved",
        "arrows",
        "broken-link",
        "bullets",
        "steps-rule",
        "list-footer",
        "dashed-wrote",
        "german-separator",
        "dutch-schreef",
        "norwegian-skrev",
        "gmail-date-address",
        "same-line",
        "forward-marker",
        "wrapped-attribution",
        "plain-wrote",
    ],
)
def test_visible_reply_rules(text: str, expected: str) -> None:
    assert visible_reply(text) == expected


CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


@pytest.mark.corpus
def test_corpus_quick_subset() -> None:
    if not CORPUS.is_dir():
        require_service("corpus", f"no corpus at {CORPUS}; it lives beside the project")
    from bench.corpus_eval import eval_bounce, eval_parse, eval_reply

    # Floors at today's figures: a parser change that loses ground fails here (the full sets
    # are in test_email_corpus_eval.py).
    assert eval_parse(CORPUS, quick=True).matched >= 15
    assert eval_reply(CORPUS, quick=True).matched >= 34
    assert eval_bounce(CORPUS, quick=True).matched >= 14
