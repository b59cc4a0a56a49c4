"""Rules over 10,000 reports with 200 rules, and their share of intake time, in one run.

    python bench/rules_bench.py [--reports 10000] [--rules 200] [--full 10000]
                                [--realistic 10000]

Generates 200 rules and 10,000 reports (`make_rules`, `make_mail`), then measures in this order:
1. load + compile of the rules; the rules alone (facts + decide + apply, as the intake hook runs
   them) over the parsed reports, in reports/s and us each; parse_email + case_from_email +
   rules, with the rules' share of it;
2. intake as the `casedesk-intake` flow does it, the target's measurement: the bench starts its
   own Dovecot (tests/support/dovecot.py), delivers the `--full` reports to two users, and reads
   each user's mail with ImapMailbox + ParseAhead + ingest_batch (watermark included) +
   mark_done into a fresh SQLite store, as `run()` in bench/intake_bench.py does, the rules
   written to a file and read by `intake_context`: (a) with a parse worker, as the flow runs on
   2+ cores, (b) parsing in-process (one core, or a run of one batch). For each: reports/s, the
   rules' time in this process (content matching done here + decide, log, assign; composing the
   notices is mail work, counted as intake) in us a report and as a share of intake, and for (a)
   the worker's content matching, which runs beside this process;
3. the same over `--realistic` mails like those of bench/intake_bench.py (`make_messages`:
   Chinese and English in five charsets, some HTML-only, one in four with a 100 KB
   attachment), as a support mailbox receives them: the generated reports above are short
   (~300 characters, no attachment) and each matches several rules, the worst case for the
   rules' share, since intake does the least per mail;
4. the stricter variant, ingest only: `ingest_batch` over the generated reports held in memory
   (no IMAP read, so a smaller denominator), both modes, the same figures.
The target is a share of at most 5% of intake, measured against 2 and 3: intake is what the
flow does, and reading the mail from IMAP is part of it. Without a `dovecot` binary, 2 and 3
are skipped (one line says why) and 1 and 4 still run.
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from connectors.imap_mailbox import ImapMailbox
from connectors.mailbox import RawMessage
from connectors.store import CaseStore
from flows.intake import IntakeContext, ingest_batch
from flows.parse_ahead import ParseAhead
from flows.runtime import intake_context
from flows.settings import Settings
from mapping.email_to_case import case_from_email
from mapping.parsed_email import parse_email
from mapping.rules import (
    PreviewState,
    RuleEngine,
    apply_outcome,
    facts_from_email,
    parse_rules,
)

if TYPE_CHECKING:
    from tests.support.dovecot import DovecotServer

ZONE = ZoneInfo("Asia/Shanghai")
BATCH = 200  # the flow's default batch_size
NOW = datetime(2024, 5, 20, 6, 0, tzinfo=UTC)
DOMAIN = [
    *[
        "订单",
        "报表",
        "审批",
        "流程",
        "客户",
        "合同",
        "发票",
        "库存",
        "仓库",
        "物流",
        "结算",
        "工资",
        "考勤",
        "门户",
        "接口",
        "服务器",
    ],
    *[
        "数据库",
        "缓存",
        "网络",
        "打印",
        "邮件",
        "短信",
        "通知",
        "附件",
        "上传",
        "下载",
        "搜索",
        "页面",
        "按钮",
        "菜单",
        "账号",
        "密码",
    ],
    *[
        "角色",
        "部门",
        "系统",
        "版本",
        "验证码",
        "报销",
        "预算",
        "采购",
        "合同",
        "招聘",
        "培训",
        "会议",
        "日程",
        "文档",
        "知识库",
        "看板",
    ],
]
SYMPTOMS = [
    *[
        "失败",
        "报错",
        "超时",
        "很慢",
        "丢失",
        "无法打开",
        "白屏",
        "闪退",
        "不一致",
        "延迟",
        "没有入口",
        "无权限",
        "重复",
    ],
    *["如何设置", "怎么导出", "建议增加", "希望优化", "显示乱码"],
]
LATIN = [
    *[
        "login",
        "export",
        "invoice",
        "order",
        "server",
        "database",
        "cache",
        "network",
        "printer",
        "upload",
    ],
    *[
        "download",
        "search",
        "page",
        "button",
        "menu",
        "account",
        "password",
        "role",
        "report",
        "portal",
    ],
]
LATIN_SYMPTOMS = ["error", "timeout", "failed", "is slow", "access denied", "how to", "crash"]
FILLER = [
    *[
        "今天上午",
        "用户反馈",
        "在使用过程中",
        "发现",
        "一直",
        "还是",
        "请帮忙",
        "看一下",
        "谢谢",
        "麻烦",
        "尽快",
        "处理",
    ],
    *[
        "我们部门",
        "好几个人",
        "都遇到了",
        "这个问题",
        "从昨天开始",
        "重启之后",
        "也没有用",
        "附上截图",
    ],
]
LATIN_FILLER = [
    "we",
    "have",
    "a",
    "problem",
    "since",
    "this",
    "morning",
    "please",
    "help",
    "thanks",
    "team",
    "the",
    "with",
]


def make_rules(count: int, rng: random.Random) -> str:
    """`count` rules: mostly "thing + symptom" keywords in Chinese and English, some others."""
    types = ["system_fault", "how_to", "permission", "data_anomaly", "improvement"]
    lines = ['[groups]\nl1 = ["a@example.com", "b@example.com", "c@example.com"]\n']
    for number in range(count):
        lines.append(f'[[rule]]\nid = "r{number:03d}"')
        kind = number % 20
        if kind == 0:
            lines.append(f"when.regex = ['ERR-{number:03d}\\d+']")
        elif kind == 1:
            lines.append(f'when.sender = ["@dept{number}.example.com"]')
        elif kind == 2:
            lines.append(f"when.all_keywords = {rng.sample(DOMAIN, 2)!r}")
        else:
            words = [f"{rng.choice(DOMAIN)}{rng.choice(SYMPTOMS)}" for _ in range(4)]
            words += [f"{rng.choice(LATIN)} {rng.choice(LATIN_SYMPTOMS)}" for _ in range(2)]
            lines.append(f"when.keywords = {words!r}")
        lines.append(f'then.problem_type = "{types[number % len(types)]}"')
        lines.append(f'then.priority = "P{number % 3}"')
        lines.append(f'then.tags = ["t{number % 17}"]')
        if number % 10 == 5:
            lines.append('then.owner = { group = "l1", strategy = "round_robin" }')
        lines.append("")
    return "\n".join(lines)


def make_mail(number: int, rng: random.Random) -> bytes:
    """A plausible report: filler around one or two "thing + symptom" phrases, ~300 chars."""
    message = EmailMessage()
    message["From"] = f"用户{number} <user{number}@dept{number % 50}.example.com>"
    message["To"] = "support@example.com"
    message["Message-ID"] = f"<bench-{number}@example.com>"
    message["Date"] = "Mon, 20 May 2024 14:00:00 +0800"
    if number % 3 == 0:
        topic = f"{rng.choice(LATIN)} {rng.choice(LATIN_SYMPTOMS)}"
        message["Subject"] = topic
        words = [rng.choice(LATIN_FILLER + LATIN) for _ in range(50)]
    else:
        topic = f"{rng.choice(DOMAIN)}{rng.choice(SYMPTOMS)}"
        message["Subject"] = topic
        words = [rng.choice(FILLER + DOMAIN) for _ in range(60)]
    words.insert(rng.randrange(len(words)), topic)
    message.set_content(" ".join(words) + f"\n错误码 ERR-{number % 400:03d}{number}\n")
    return message.as_bytes()


@dataclass
class Measured:
    """One intake run: what it read, how long it took, and what the rules took inside it."""

    reports: int = 0
    new_cases: int = 0
    seconds: float = 0.0
    #: The hook's time but the notices' (decide, log, assign), in this process.
    routing_seconds: float = 0.0
    #: Composing the triage/assignment notices: mail work, counted as intake.
    notice_seconds: float = 0.0
    #: The rules' content matching in this process, and over how many reports.
    matching_seconds: float = 0.0
    matching_calls: int = 0
    #: What the parse worker wrote of its content matching (every 20th call).
    worker_calls: int = 0
    worker_seconds: float = 0.0


@contextmanager
def timed_intake(
    rules_text: str, workers: int
) -> Iterator[tuple[Settings, IntakeContext, CaseStore, ParseAhead, Measured]]:
    """A fresh folder, rules file, store and `intake_context` (the rules read as the flow reads
    them), with the rules timed inside: `TimedRouter` on the hook, `TimedPrematch` on the content
    matching, wherever it runs. The caller counts reports and new cases into the `Measured`; the
    time runs from the parse pool's start to its end, as in the flow."""
    from bench.rules_timing import time_rules

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = folder / "rules.toml"
        path.write_text(rules_text, encoding="utf-8")
        settings = Settings(rules_path=path, data_dir=folder, database_url="sqlite://")
        context = intake_context(settings)
        # The router here; the rules' content matching where mail is parsed, timed there too.
        timed, timed_prematch = time_rules(context, folder)
        store = CaseStore.open(f"sqlite:///{folder}/bench.sqlite3")
        measured = Measured()
        try:
            start = time.perf_counter()
            with ParseAhead(
                settings.max_message_bytes, workers=workers, prematch=context.prematch
            ) as ahead:
                yield settings, context, store, ahead, measured
            measured.seconds = time.perf_counter() - start
        finally:
            store.close()
        measured.routing_seconds = timed.rules_seconds
        measured.notice_seconds = timed.notice_seconds
        measured.matching_seconds = timed_prematch.seconds
        measured.matching_calls = timed_prematch.calls
        measured.worker_calls, measured.worker_seconds = timed_prematch.worker_totals()


def imap_intake(server: DovecotServer, user: str, rules_text: str, workers: int) -> Measured:
    """The intake flow over `user`'s INBOX (`read_mailbox` of bench/intake_bench.py), rules
    timed."""
    from bench.intake_bench import read_mailbox

    with timed_intake(rules_text, workers) as (settings, context, store, ahead, measured):
        box = ImapMailbox(
            "support",
            host=server.host,
            port=server.port,
            security="plain",
            user=user,
            password=SecretStr(server.password(user)),
        )
        report = read_mailbox(store, box, context, ahead, settings.batch_size)
        measured.reports, measured.new_cases = report.fetched, len(report.new_cases)
    return measured


def memory_intake(batches: Iterable[list[RawMessage]], rules_text: str, workers: int) -> Measured:
    """`ingest_batch` over raw messages held in memory: no IMAP read, rules timed."""
    with timed_intake(rules_text, workers) as (_settings, context, store, ahead, measured):
        for batch, parsed in ahead.pipeline(batches):
            measured.reports += len(batch)
            measured.new_cases += len(ingest_batch(store, batch, context, parsed=parsed).new_cases)
    return measured


def show(title: str, run: Measured, *, target: bool) -> None:
    count = run.reports
    here = run.routing_seconds + run.matching_seconds
    # A worker's time per report, over every report it matched (it wrote every 20th).
    worker = (
        run.worker_seconds / run.worker_calls * (count - run.matching_calls)
        if run.worker_calls
        else 0.0
    )
    print(
        f"{title}: {count} reports ({run.new_cases} new cases) in {run.seconds:.1f} s = "
        f"{count / run.seconds:,.0f} reports/s"
    )
    print(
        f"  rules in this process (content matching {run.matching_seconds:.2f} s, "
        f"decide, log, assign {run.routing_seconds:.2f} s): {here / count * 1e6:.0f} us "
        f"a report = {here / run.seconds:.1%} of intake{' (target <= 5%)' if target else ''}"
    )
    if run.worker_calls:
        print(
            f"  rules' content matching in the parse worker: "
            f"{run.worker_seconds / run.worker_calls * 1e6:.0f} us a report (beside this "
            f"process: the worker parses and matches while this process writes); counted as if "
            f"it were on this process's path: {(here + worker) / run.seconds:.1%} of intake"
        )
    print(f"  composing triage/assignment notices (not rules): {run.notice_seconds:.1f} s")


MODES = ((1, "a parse worker, as the flow runs on 2+ cores"), (0, "parsing in-process"))


def start_dovecot() -> tuple[DovecotServer | None, str]:
    """A started Dovecot of the bench's own, or None and why not."""
    from tests.support.dovecot import DovecotError, DovecotServer

    try:
        server = DovecotServer()
    except DovecotError as error:
        return None, str(error)
    try:
        server.start()
    except DovecotError as error:
        server.close()
        return None, str(error)
    return server, ""


def main() -> None:
    # No lead address, on purpose (triage notices then go to nobody, as the bench has always
    # measured): the run's warning about it is not news here.
    logging.getLogger("flows.routing").setLevel(logging.ERROR)
    # The parse worker unpickles `TimedPrematch` by its module, and the bench imports Dovecot's
    # test helper: the project's root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--full", type=int, default=10_000, help="Reports for the full intake.")
    parser.add_argument(
        "--realistic",
        type=int,
        default=10_000,
        help="Mails like bench/intake_bench.py's for the second intake from IMAP (0: none).",
    )
    args = parser.parse_args()
    rng = random.Random(4)
    rules_text = make_rules(args.rules, rng)
    raws = [make_mail(number, rng) for number in range(max(args.reports, args.full))]
    full = raws[: args.full]
    raws = raws[: args.reports]

    # 1. The rules alone, and with parsing and mapping.
    start = time.perf_counter()
    rules = parse_rules(rules_text, source="bench")
    engine = RuleEngine(rules, ZONE)
    print(f"load + compile {len(rules.rules)} rules: {(time.perf_counter() - start) * 1e3:.1f} ms")

    parsed_cases = []
    start = time.perf_counter()
    for raw in raws:
        parsed = parse_email(raw)
        parsed_cases.append((parsed, case_from_email(parsed, mailbox="support", now=NOW)))
    mapping_seconds = time.perf_counter() - start

    # The 10,000 parsed mails and cases are the bench's own scaffolding, not what an intake
    # holds: out of the collector's sight while the rules run over them (otherwise each full
    # collection, ~0.3 s, walks them all, and that was half of the time counted as rules), and
    # gone before the full intake (whose full collections walked them too).
    gc.collect()
    gc.freeze()
    state = PreviewState()
    start = time.perf_counter()
    for parsed, case in parsed_cases:
        # What the intake hook runs (flows.routing): the plain verdict, not the explained outcome.
        verdict = engine.decide(facts_from_email(case, parsed))
        apply_outcome(case, verdict, groups=rules.groups, state=state, at=NOW)
    rules_seconds = time.perf_counter() - start
    del parsed_cases
    gc.unfreeze()
    gc.collect()
    count = len(raws)
    print(
        f"rules: {count} reports x {len(rules.rules)} rules in {rules_seconds:.2f} s = "
        f"{count / rules_seconds:,.0f} reports/s ({rules_seconds / count * 1e6:.0f} us each)"
    )
    light = mapping_seconds + rules_seconds
    print(
        f"parse_email + case_from_email + rules: {count / light:,.0f} reports/s; "
        f"rules are {rules_seconds / light:.1%} of it"
    )

    # 2 and 3. Intake as the flow does it, from IMAP: the target's measurement.
    server, why = start_dovecot()
    if server is None:
        print(f"intake from IMAP skipped: Dovecot cannot start ({why})")
    else:
        from bench.intake_bench import make_messages

        try:
            workloads = [("generated reports", "short", full)]
            if args.realistic:
                workloads.append(("realistic mail", "real", make_messages(args.realistic)))
            runs = []
            for label, prefix, raws_of in workloads:
                for workers, how in MODES:
                    # Each run reads fresh mail of its own.
                    user = f"{prefix}{workers}"
                    server.add_user(user, f"{user}-pw")
                    server.deliver_fast(user, "INBOX", raws_of)
                    # Dovecot indexes the delivered files now, as a delivery agent would have
                    # done: the intake is not charged for the bench writing the maildir behind
                    # its back.
                    server.status(user, "INBOX")
                    runs.append((f"intake from IMAP, {label} ({how})", user, workers))
            del workloads, raws_of  # the realistic mail's ~350 MB, in Dovecot now
            for title, user, workers in runs:
                show(title, imap_intake(server, user, rules_text, workers), target=True)
        finally:
            server.close()

    # 4. The stricter variant: ingest only, the same mail held in memory.
    batches = [
        [
            RawMessage(mailbox="support", folder="INBOX", uidvalidity=1, uid=str(i), raw=raw)
            for i, raw in enumerate(full[first : first + BATCH], start=first)
        ]
        for first in range(0, len(full), BATCH)
    ]
    for workers, how in MODES:
        show(
            f"ingest only (no IMAP read; stricter: a smaller denominator), {how}",
            memory_intake(iter(batches), rules_text, workers),
            target=False,
        )


if __name__ == "__main__":
    main()
