"""Matching in two steps: the content where the mail is parsed, the time at intake.

`email_content(parsed, mailbox)` must be what the rules would read from the case intake builds,
`prematch` + `finish` must be what `matching` and `decide` give, the time conditions must be
checked (with their evidence after the content's) only in `finish`, a prematched result must
never be finished by other rules, and the conditions must survive the trip to a parse worker.
"""

from __future__ import annotations

import itertools
import pickle
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.rules_bench import make_mail, make_rules
from mapping.email_to_case import case_from_email
from mapping.errors import MessageParseError
from mapping.parsed_email import ParsedEmail, parse_email
from mapping.rules import ReportFacts, RuleEngine, facts_from_email, load_rules, parse_rules
from mapping.rules.conditions import Conditions, Prematched
from mapping.rules.facts import ReportContent, content_of, email_content
from tests.support.services import require_service

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
MONDAY_2PM = datetime(2024, 5, 20, 14, 0, tzinfo=ZONE)  # a weekday afternoon
SATURDAY_11AM = datetime(2024, 5, 25, 11, 0, tzinfo=ZONE)
TUESDAY_2AM = datetime(2024, 5, 21, 2, 0, tzinfo=ZONE)  # a night hour
TIMES = [MONDAY_2PM, SATURDAY_11AM, TUESDAY_2AM]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "emails"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
MAILBOX = "support"


_numbers = itertools.count(1)


# Mails -------------------------------------------------------------------------------------
def mail(
    subject: str | None,
    body: str = "",
    *,
    charset: str = "utf-8",
    sender: str = "张三 <zhangsan@example.cn>",
    attachments: Sequence[tuple[str, str]] = (),
    html: str | None = None,
) -> bytes:
    """A mail as a client sends it; `attachments` are (filename, MIME type)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.cn"
    if subject is not None:
        message["Subject"] = subject
    message["Date"] = format_datetime(MONDAY_2PM)
    message["Message-ID"] = f"<m{next(_numbers)}@example.cn>"
    if html is not None:
        message.set_content(html, subtype="html", charset=charset)
    else:
        message.set_content(body, charset=charset)
    for filename, mime in attachments:
        maintype, _, subtype = mime.partition("/")
        message.add_attachment(b"x" * 64, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


HAND_MADE = {
    "gbk": mail("服务器宕机", "今天上午生产环境宕机，所有用户都进不去。", charset="gbk"),
    "gb18030": mail("报表导出失败", "导出月报时报错：内存不足。", charset="gb18030"),
    "utf8 chinese": mail("登录提示验证码失效", "登录系统时提示'验证码失效'，重试3次仍无法进入"),
    "english": mail("Cannot log in", "Login fails with error 'captcha expired' after 3 tries."),
    "no subject": mail(None, "没有主题的邮件：订单同步延迟\n第二行说明"),
    "empty subject": mail("", "Order sync is late again.\nSecond line."),
    "subject only": mail("紧急：系统宕机", ""),
    "subject only, blank body": mail("Production outage", "\n\n   \n"),
    "forwarded": mail(
        "Fwd: 系统报错",
        "请看下面的报错\n\n---------- Forwarded message ---------\n"
        "From: 李四 <lisi@example.cn>\nDate: Mon, 20 May 2024 10:00:00 +0800\n"
        "Subject: 系统报错\nTo: <it@example.cn>\n\n生产环境无法访问，所有用户都受影响。\n",
    ),
    "forwarded, english": mail(
        "FW: outage",
        "---------- Forwarded message ---------\nFrom: ops <ops@example.com>\n\n"
        "Production down for all users.\n",
    ),
    "reply with history": mail(
        "Re: 登录问题",
        "还是不行，依然报错。\n\n在 2024年5月19日 10:00，技术支持 <support@example.cn> 写道：\n"
        "> 请清除缓存后再试。\n> 宕机 所有用户\n",
    ),
    "english reply with history": mail(
        "RE: export",
        "Still failing.\n\nOn Sun, 19 May 2024 at 10:00, Support <support@example.cn> wrote:\n"
        "> Please try again.\n> outage for all users\n",
    ),
    "attachments": mail(
        "日志见附件",
        "请看附件中的日志",
        attachments=[
            ("ERROR.LOG", "text/plain"),
            ("Screen Shot.PNG", "image/png"),
            ("dump.Tar.GZ", "application/gzip"),
            ("README", "application/octet-stream"),
        ],
    ),
    "long subject": mail("服务器报错" * 30 + " error " * 20, "正文很短"),
    "long subject, no body": mail("x" * 150 + " " + "宕机" * 60, ""),
    "whitespace subject": mail("   ", "主题只有空格，正文说：登录失败"),
    "spaced subject": mail("  登录   失败\t 了  ", "正文"),
    "no subject, long first line": mail(None, "很长的第一行" * 60 + "\n第二行"),
    "html only": mail(
        "HTML report",
        html="<html><body><p>Access <b>denied</b> on the report page.</p><p>谢谢</p></body></html>",
    ),
    "vip sender": mail("请问如何导出", "怎么导出报表？", sender="CEO <ceo@VIP.example.com>"),
}


def case_content(parsed: ParsedEmail, mailbox: str = MAILBOX) -> ReportContent:
    """What the rules read from the case intake builds (the definition `email_content` keeps)."""
    case = case_from_email(parsed, mailbox=mailbox, now=NOW)
    return content_of(facts_from_email(case, parsed))


def assert_same_content(parsed: ParsedEmail, mailbox: str = MAILBOX) -> None:
    assert email_content(parsed, mailbox) == case_content(parsed, mailbox)


def bench_mails(count: int = 300) -> list[bytes]:
    rng = random.Random(11)
    return [make_mail(number, rng) for number in range(count)]


# email_content = content_of(facts_from_email(case_from_email(...))) -------------------------
@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_email_content_is_what_the_case_gives_hand_made(name: str) -> None:
    parsed = parse_email(HAND_MADE[name])
    assert_same_content(parsed)
    assert_same_content(parsed, mailbox="other-box")


def test_the_hand_made_mails_cover_what_they_are_named_for() -> None:
    """The mails above are the cases they claim to be (else the equality proves little)."""
    content = {name: email_content(parse_email(raw), MAILBOX) for name, raw in HAND_MADE.items()}
    assert content["gbk"].subject == "服务器宕机" and "所有用户" in content["gbk"].body
    assert content["no subject"].subject == "没有主题的邮件：订单同步延迟"
    assert content["empty subject"].subject == "Order sync is late again."
    assert content["subject only"].body == "紧急：系统宕机"
    # A forwarded mail's words are its whole text; a reply's only the visible part.
    assert "所有用户都受影响" in content["forwarded"].body
    assert "all users" in content["forwarded, english"].body
    assert "宕机" not in content["reply with history"].body
    assert "all users" not in content["english reply with history"].body
    assert content["attachments"].attachment_types == [
        ".log",
        "text/plain",
        ".png",
        "image/png",
        ".gz",
        "application/gzip",
        "application/octet-stream",
    ]
    # The rules read the mail's own subject (not cut), the case keeps 200 characters.
    assert len(content["long subject"].subject) > 200
    assert content["long subject, no body"].body == ("x" * 150 + " " + "宕机" * 60)[:200]
    assert content["whitespace subject"].subject == "主题只有空格，正文说：登录失败"
    assert content["no subject, long first line"].subject == ("很长的第一行" * 60)[:200]
    assert content["vip sender"].sender == "ceo@vip.example.com"
    assert all(c.mailbox == MAILBOX for c in content.values())


def parsed_by_hand(**fields: object) -> ParsedEmail:
    values: dict[str, object] = {"message_id": "x@example.cn", "from_address": "a@example.cn"}
    return ParsedEmail.model_validate({**values, **fields})


BY_HAND = {
    # What the parser would tidy, as another parser (or a future one) might leave it.
    "whitespace subject": parsed_by_hand(subject="   ", text="登录失败", reply_text="登录失败"),
    "whitespace subject, no words": parsed_by_hand(subject=" \t ", text="正文"),
    "subject with line breaks": parsed_by_hand(subject="登录\n  失败\r\n了", text=""),
    "long subject only": parsed_by_hand(subject="宕机 " * 120),
    "reply without visible words": parsed_by_hand(
        subject="Re: 报错", text="> 宕机\n> 所有用户", reply_text="  \n"
    ),
    "reply": parsed_by_hand(subject="Re: 报错", text="还是不行\n> 宕机", reply_text="还是不行"),
    "forward keeps the quote": parsed_by_hand(
        subject="Fwd: 报错", text="看下面\n> 宕机", reply_text="看下面"
    ),
    "words start with blank lines": parsed_by_hand(text="\n\n  第一行\n第二行", reply_text=""),
}


@pytest.mark.parametrize("name", sorted(BY_HAND))
def test_email_content_is_what_the_case_gives_parsed_by_hand(name: str) -> None:
    assert_same_content(BY_HAND[name])


def test_a_mail_the_case_refuses_is_no_content_either() -> None:
    """No subject and no words: `case_from_email` refuses it, so intake never prematches it."""
    parsed = parse_email(mail("   ", "\n  \n"))
    with pytest.raises(MessageParseError):
        case_from_email(parsed, mailbox=MAILBOX, now=NOW)


def test_email_content_is_what_the_case_gives_bench_mails() -> None:
    mails = bench_mails()
    for raw in mails:
        assert_same_content(parse_email(raw))


def test_email_content_is_what_the_case_gives_golden_fixtures() -> None:
    compared = 0
    for path in sorted(FIXTURES.glob("*.eml")):
        try:
            parsed = parse_email(path.read_bytes())
            case_content(parsed)
        except MessageParseError:
            continue
        assert email_content(parsed, MAILBOX) == case_content(parsed), path.name
        compared += 1
    assert compared >= 20


def corpus_mails() -> Iterator[tuple[str, ParsedEmail]]:
    for path in sorted(CORPUS.rglob("*.eml")):
        try:
            parsed = parse_email(path.read_bytes())
            case_content(parsed)
        except MessageParseError:  # unreadable, or a case intake would refuse
            continue
        yield str(path.relative_to(CORPUS)), parsed


@pytest.mark.corpus
def test_email_content_is_what_the_case_gives_corpus() -> None:
    if not CORPUS.is_dir():
        require_service("corpus", f"no corpus at {CORPUS}; it lives beside the project")
    compared = 0
    for name, parsed in corpus_mails():
        assert email_content(parsed, MAILBOX) == case_content(parsed), name
        compared += 1
    assert compared >= 50


SUBJECT_PARTS = ["Fwd: ", "Re: ", "回复：", "登录", "失败", " ", "  ", "\t", "error", "宕机"]
SUBJECT_PARTS += ["x" * 60, "紧急"]
BODY_PARTS = [
    "登录失败",
    "\n",
    "\n\n",
    " ",
    "error",
    "谢谢",
    "> 引用的内容 宕机\n",
    "在 2024年5月20日 张三 <a@example.cn> 写道：\n",
    "On Mon, 20 May 2024 at 10:00, A <a@example.com> wrote:\n",
    "---------- Forwarded message ---------\nFrom: b@example.cn\n\n",
    "-- \n签名\n",
]
FILENAMES = ["a.LOG", "b.Png", "noext", "c.tar.GZ", "d.TXT"]


@settings(max_examples=150, deadline=None)
@given(
    subject=st.one_of(st.none(), st.lists(st.sampled_from(SUBJECT_PARTS), max_size=6)),
    body=st.lists(st.sampled_from(BODY_PARTS), max_size=10),
    attached=st.lists(st.sampled_from(FILENAMES), max_size=3),
    charset=st.sampled_from(["utf-8", "gb18030"]),
)
def test_email_content_is_what_the_case_gives_generated(
    subject: list[str] | None, body: list[str], attached: list[str], charset: str
) -> None:
    raw = mail(
        None if subject is None else "".join(subject),
        "".join(body),
        charset=charset,
        attachments=[(name, "application/octet-stream") for name in attached],
    )
    parsed = parse_email(raw)
    try:
        case_content(parsed)
    except MessageParseError:
        return
    assert_same_content(parsed)


# prematch + finish = matching = decide ------------------------------------------------------
#: A weekend rule and a night rule, tags only: the start of both rule sets below.
WEEKEND_AND_NIGHT = """
[[rule]]
id = "weekend"
when.weekdays = ["sat", "sun"]
then.tags = ["周末"]

[[rule]]
id = "night"
when.hours = ["18-9"]
then.tags = ["夜间"]
"""
TIMED_RULES = (
    WEEKEND_AND_NIGHT
    + """
[[rule]]
id = "night-servers"
when.keywords = ["服务器", "server"]
when.hours = ["18-9"]
then.priority = "P0"
override = true

[[rule]]
id = "weekend-dept"
when.sender = ["@dept7.example.com", "@dept8.example.com"]
when.weekdays = ["sat", "sun"]
when.hours = ["9-18"]
then.owner = { group = "l1", strategy = "round_robin" }

[[rule]]
id = "weekday-errors"
when.regex = ['ERR-0\\d\\d']
when.weekdays = ["mon", "tue", "wed", "thu", "fri"]
then.related_system = "ERP"
"""
)


def engine_of(text: str) -> RuleEngine:
    return RuleEngine(parse_rules(text, source="test.toml"), ZONE)


@pytest.fixture(scope="module")
def shipped() -> RuleEngine:
    return RuleEngine(load_rules(), ZONE)


@pytest.fixture(scope="module")
def generated() -> RuleEngine:
    return engine_of(make_rules(200, random.Random(4)) + TIMED_RULES)


def facts_of(raw: bytes, at: datetime = NOW) -> ReportFacts:
    parsed = parse_email(raw)
    case = case_from_email(parsed, mailbox=MAILBOX, now=at)
    return facts_from_email(case, parsed)


@pytest.fixture(scope="module")
def reports() -> list[ReportFacts]:
    raws = [*HAND_MADE.values(), *bench_mails(120)]
    return [facts_of(raw) for raw in raws]


def at(facts: ReportFacts, when: datetime) -> ReportFacts:
    return facts.model_copy(update={"received_at": when.astimezone(UTC)})


def assert_two_steps_agree(engine: RuleEngine, facts: ReportFacts) -> None:
    conditions = engine.conditions
    prematched = conditions.prematch(content_of(facts))
    assert prematched.token == conditions.token
    finished = conditions.finish(prematched, facts.received_at)
    assert conditions.matching(facts) == finished
    # What a worker prematches from the parse is what the facts give.
    verdict = engine.decide_prematched(prematched, received_at=facts.received_at)
    assert verdict == engine.decide(facts)


@pytest.mark.parametrize("when", TIMES, ids=["monday-2pm", "saturday-11am", "tuesday-2am"])
def test_two_steps_agree_with_matching_and_decide(
    shipped: RuleEngine, generated: RuleEngine, reports: list[ReportFacts], when: datetime
) -> None:
    for facts in reports:
        assert_two_steps_agree(shipped, at(facts, when))
        assert_two_steps_agree(generated, at(facts, when))


def test_the_timed_rules_do_match_in_the_reports(
    generated: RuleEngine, reports: list[ReportFacts]
) -> None:
    """Else the agreement above would not cover the time conditions."""
    ids = [rule.id for rule in generated.conditions.rules]
    matched: dict[datetime, set[str]] = {}
    for when in TIMES:
        matched[when] = {
            ids[position]
            for facts in reports
            for position, _ in generated.conditions.matching(at(facts, when))
        }
    assert {"night", "night-servers"} <= matched[TUESDAY_2AM]
    assert {"weekend", "weekend-dept"} <= matched[SATURDAY_11AM]
    assert "weekday-errors" in matched[MONDAY_2PM]
    assert not {"weekend", "weekend-dept", "night", "night-servers"} & matched[MONDAY_2PM]
    assert "weekday-errors" not in matched[SATURDAY_11AM]


@settings(max_examples=200, deadline=None)
@given(
    received=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
    ),
    index=st.integers(min_value=0, max_value=10_000),
)
def test_two_steps_agree_at_any_time(
    shipped: RuleEngine,
    generated: RuleEngine,
    reports: list[ReportFacts],
    received: datetime,
    index: int,
) -> None:
    facts = at(reports[index % len(reports)], received)
    assert_two_steps_agree(shipped, facts)
    assert_two_steps_agree(generated, facts)
    # The time conditions hold by the definition in docs/rules.md, in the team's zone.
    local = received.astimezone(ZONE)
    ids = [rule.id for rule in generated.conditions.rules]
    matched = {ids[position] for position, _ in generated.conditions.matching(facts)}
    assert ("weekend" in matched) == (local.weekday() >= 5)
    assert ("night" in matched) == (local.hour >= 18 or local.hour < 9)


# Time conditions ---------------------------------------------------------------------------
TIME_ONLY = (
    WEEKEND_AND_NIGHT
    + """
[[rule]]
id = "night-outage"
when.keywords = ["宕机", "outage"]
when.hours = ["18-9"]
then.priority = "P0"

[[rule]]
id = "saturday-night-vip"
when.sender = ["@vip.example.com"]
when.weekdays = ["sat"]
when.hours = ["20-23"]
then.tags = ["vip-weekend"]
"""
)


def content(
    subject: str = "你好", body: str = "麻烦看一下", sender: str = "a@example.cn"
) -> ReportContent:
    return email_content(parse_email(mail(subject, body, sender=sender)), MAILBOX)


def finished(
    engine: RuleEngine, report: ReportContent, when: datetime
) -> dict[str, tuple[str, ...]]:
    ids = [rule.id for rule in engine.conditions.rules]
    conditions = engine.conditions
    return {
        ids[position]: evidence
        for position, evidence in conditions.finish(conditions.prematch(report), when)
    }


def test_a_rule_with_only_time_conditions_matches_only_at_those_times() -> None:
    engine = engine_of(TIME_ONLY)
    report = content()
    # Prematched whatever the time: its content conditions (none) hold.
    prematched = engine.conditions.prematch(report)
    assert [position for position, _ in prematched.matches] == [0, 1]
    assert finished(engine, report, MONDAY_2PM) == {}
    assert finished(engine, report, SATURDAY_11AM) == {"weekend": ("weekday sat",)}
    assert finished(engine, report, TUESDAY_2AM) == {"night": ("hour 02",)}
    sunday_night = datetime(2024, 5, 26, 23, 30, tzinfo=ZONE)
    assert finished(engine, report, sunday_night) == {
        "weekend": ("weekday sun",),
        "night": ("hour 23",),
    }
    # 18:00 is in "18-9", 09:00 is not; the hour is the team's, not UTC's.
    assert "night" in finished(engine, report, datetime(2024, 5, 20, 18, 0, tzinfo=ZONE))
    assert "night" not in finished(engine, report, datetime(2024, 5, 20, 9, 0, tzinfo=ZONE))
    assert "night" not in finished(engine, report, datetime(2024, 5, 20, 3, 0, tzinfo=UTC))
    # ...and the verdict says why.
    verdict = engine.decide_prematched(prematched, received_at=SATURDAY_11AM)
    assert verdict.tags == ("周末",)
    assert [(m.rule_id, m.evidence) for m in verdict.matches] == [("weekend", ("weekday sat",))]


def test_the_time_evidence_comes_after_the_content_evidence() -> None:
    engine = engine_of(TIME_ONLY)
    report = content("系统宕机", "outage since 9pm", sender="Boss <boss@vip.example.com>")
    night = finished(engine, report, TUESDAY_2AM)
    assert night["night-outage"] == ("'宕机'", "'outage'", "hour 02")
    assert "night-outage" not in finished(engine, report, MONDAY_2PM)
    saturday_night = datetime(2024, 5, 25, 21, 0, tzinfo=ZONE)
    assert finished(engine, report, saturday_night)["saturday-night-vip"] == (
        "sender domain '@vip.example.com'",
        "weekday sat",
        "hour 21",
    )
    # Not on a Saturday morning, nor on another evening: every condition must hold.
    assert "saturday-night-vip" not in finished(engine, report, SATURDAY_11AM)
    assert "saturday-night-vip" not in finished(
        engine, report, datetime(2024, 5, 24, 21, 0, tzinfo=ZONE)
    )
    verdict = engine.decide_prematched(engine.conditions.prematch(report), received_at=TUESDAY_2AM)
    assert verdict.priority.value == "P0"
    texts = [decided.text for decided in verdict.decisions]
    assert "P0 by rule night-outage: matched '宕机', 'outage' and hour 02" in texts


def test_without_time_conditions_finish_keeps_the_prematched() -> None:
    engine = engine_of('[[rule]]\nid = "r"\nwhen.keywords = ["宕机"]\nthen.priority = "P0"\n')
    prematched = engine.conditions.prematch(content("系统宕机"))
    assert prematched.matches == ((0, ("'宕机'",)),)
    for when in TIMES:
        assert engine.conditions.finish(prematched, when) == [(0, ("'宕机'",))]


# Tokens ------------------------------------------------------------------------------------
def test_another_engines_prematched_is_refused() -> None:
    rules = parse_rules(TIME_ONLY, source="test.toml")
    first, second = RuleEngine(rules, ZONE), RuleEngine(rules, ZONE)
    assert first.conditions.token != second.conditions.token
    report = content("系统宕机", "outage")
    theirs = second.conditions.prematch(report)
    with pytest.raises(ValueError, match="another rule set"):
        first.conditions.finish(theirs, TUESDAY_2AM)
    with pytest.raises(ValueError):
        first.decide_prematched(theirs, received_at=TUESDAY_2AM)
    # The same matches under the right token are fine: only the token is refused.
    ours = Prematched(first.conditions.token, theirs.matches)
    assert first.conditions.finish(ours, TUESDAY_2AM) == second.conditions.finish(
        theirs, TUESDAY_2AM
    )
    # Conditions compiled from the same rules get a new token too, unless given one.
    assert Conditions(first.conditions.rules, ZONE).token != first.conditions.token
    same = Conditions(first.conditions.rules, ZONE, token=first.conditions.token)
    assert first.conditions.finish(same.prematch(report), TUESDAY_2AM) == (
        first.conditions.finish(first.conditions.prematch(report), TUESDAY_2AM)
    )


# Pickling (what a parse worker gets) -------------------------------------------------------
def test_the_engine_pickles_as_its_rules_with_the_same_token(generated: RuleEngine) -> None:
    data = pickle.dumps(generated)
    copy = pickle.loads(data)
    assert isinstance(copy, RuleEngine) and copy is not generated
    conditions = generated.conditions
    assert copy.conditions.token == conditions.token
    assert copy.zone == generated.zone
    assert copy.rules == generated.rules
    # Only the rules travel, not the compiled tables.
    assert b"_by_keyword" not in data
    for raw in [*HAND_MADE.values(), *bench_mails(100)]:
        report = email_content(parse_email(raw), MAILBOX)
        theirs = copy.conditions.prematch(report)
        assert theirs == conditions.prematch(report)
        # What the copy prematched, the original finishes.
        for when in TIMES:
            assert conditions.finish(theirs, when) == conditions.finish(
                conditions.prematch(report), when
            )


def test_the_bound_prematch_email_pickles(shipped: RuleEngine, generated: RuleEngine) -> None:
    for engine in (shipped, generated):
        prematch = pickle.loads(pickle.dumps(engine.prematch_email))
        hits = 0
        for raw in [*HAND_MADE.values(), *bench_mails(60)]:
            parsed = parse_email(raw)
            theirs = prematch(parsed, MAILBOX)
            assert isinstance(theirs, Prematched)
            assert theirs == engine.prematch_email(parsed, MAILBOX)
            assert (
                theirs.matches == engine.conditions.prematch(email_content(parsed, MAILBOX)).matches
            )
            # The result travels back to the engine, which decides from it.
            back = pickle.loads(pickle.dumps(theirs))
            facts = facts_of(raw)
            assert engine.decide_prematched(back, received_at=facts.received_at) == engine.decide(
                facts
            )
            hits += bool(theirs.matches)
        assert hits > 10  # the rules did match something


def test_a_pickled_copy_is_compiled_in_a_fresh_process(tmp_path: Path) -> None:
    """Unpickled where nothing was compiled before (as in a worker), it prematches the same."""
    engine = engine_of(TIME_ONLY)
    (tmp_path / "conditions.pickle").write_bytes(pickle.dumps(engine.prematch_email))
    raw = mail("系统宕机", "outage", sender="Boss <boss@vip.example.com>")
    (tmp_path / "mail.eml").write_bytes(raw)
    script = (
        "import pickle, sys\n"
        "from mapping.parsed_email import parse_email\n"
        "prematch = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "parsed = parse_email(open(sys.argv[2], 'rb').read())\n"
        "sys.stdout.buffer.write(pickle.dumps(prematch(parsed, 'support')))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(tmp_path / "conditions.pickle"),
            str(tmp_path / "mail.eml"),
        ],
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    )
    theirs = pickle.loads(done.stdout)
    assert theirs == engine.prematch_email(parse_email(raw), MAILBOX)
    assert engine.conditions.finish(theirs, TUESDAY_2AM + timedelta(days=4)) != []


# What the rules decide before the time: `RuleEngine.prematch_email` -------------------------
DECIDING_RULES = """
[groups]
l1 = ["a@example.com", "b@example.com"]

[[rule]]
id = "outage"
when.keywords = ["宕机", "outage", "失败"]
then.priority = "P0"
then.due_in = "2h"
then.tags = ["outage"]

[[rule]]
id = "servers"
when.keywords = ["服务器", "server", "报错"]
then.problem_type = "system_fault"
then.owner = { group = "l1", strategy = "round_robin" }
then.collaborators = ["ops@example.com"]
then.tags = ["server"]

[[rule]]
id = "vip"
when.sender = ["@example.cn"]
then.raise_priority = true

[[rule]]
id = "late-override"
when.keywords = ["导出"]
then.due_in = "1d"
then.priority = "P1"
override = true
"""


@pytest.mark.parametrize("when", TIMES, ids=["monday-2pm", "saturday-11am", "tuesday-2am"])
def test_what_is_decided_before_the_time_is_what_decide_gives(
    shipped: RuleEngine, generated: RuleEngine, when: datetime
) -> None:
    deciding = engine_of(DECIDING_RULES)
    raws = [*HAND_MADE.values(), *bench_mails(120)]
    precided = timed = 0
    for engine in (shipped, generated, deciding):
        for raw in raws:
            parsed = parse_email(raw)
            prematched = engine.prematch_email(parsed, MAILBOX)
            if prematched.precided is None:
                timed += 1
            else:
                precided += 1
            facts = facts_of(raw, when.astimezone(UTC))
            verdict = engine.decide_prematched(prematched, received_at=facts.received_at)
            assert verdict == engine.decide(facts)
    # Both ways are taken: decided ahead, and (a time rule matched) decided at intake.
    assert precided > 0 and timed > 0


def test_a_rules_own_due_time_is_logged_where_it_was_decided() -> None:
    engine = engine_of(DECIDING_RULES)
    raw = mail("服务器宕机", "导出也失败", sender="李四 <li@example.cn>")
    prematched = engine.prematch_email(parse_email(raw), MAILBOX)
    assert prematched.precided is not None
    verdict = engine.decide_prematched(prematched, received_at=NOW)
    assert [decided.attribute for decided in verdict.decisions] == [
        "priority",
        "due",
        "problem_type",
        "priority",
        "tags",
        "tags",
    ]
    due = verdict.decisions[1]
    assert due.rule_id == "late-override" and "(1d) by rule late-override" in due.text
    assert verdict.due_at == NOW + timedelta(days=1)
    assert verdict.decisions[3].text.startswith("P0 by rule vip: raised from P1")
