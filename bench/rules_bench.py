"""Rules over 10,000 reports with 200 rules, and their share of intake time, in one run.

    python bench/rules_bench.py [--reports 10000] [--rules 200] [--full 2000]

Prints reports per second for the rules alone (facts + decide + apply, as the intake hook runs
them), for parse + map + rules, and for the full `ingest_batch` into a SQLite store (the rules
timed inside it, round-robin watermark reads and writes included), with the rules' share of
each: once parsing in-process, once with a parse worker as the intake flow runs (the rules then
are a larger share of a shorter intake). The target is a share of at most 5% of intake.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from connectors.mailbox import RawMessage
from connectors.store import CaseStore, StoreTransaction
from flows.intake import ingest_batch
from flows.parse_ahead import ParseAhead
from flows.routing import CaseRouter
from flows.runtime import intake_context
from flows.settings import Settings
from mapping.case import Case
from mapping.email_to_case import case_from_email
from mapping.parsed_email import ParsedEmail, parse_email
from mapping.rules import (
    Prematched,
    PreviewState,
    RuleEngine,
    apply_outcome,
    facts_from_email,
    parse_rules,
)

ZONE = ZoneInfo("Asia/Shanghai")
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


class TimedRouter:
    """Wraps the intake hook to add up the time the rules take inside a real intake.

    Composing the notices (triage, assignment mail) is mail work like the confirmation, so it is
    timed apart and counted as intake, not as rules.
    """

    def __init__(self, inner: CaseRouter) -> None:
        self.inner, self.seconds, self.notice_seconds = inner, 0.0, 0.0
        notify = inner._notify

        def timed_notify(tx: StoreTransaction, case: Case, kind: str, to: list[str]) -> None:
            start = time.perf_counter()
            notify(tx, case, kind, to)
            self.notice_seconds += time.perf_counter() - start

        inner._notify = timed_notify  # type: ignore[method-assign]

    def __call__(
        self,
        tx: StoreTransaction,
        case: Case,
        parsed: ParsedEmail,
        prematched: Prematched | None = None,
    ) -> None:
        start = time.perf_counter()
        self.inner(tx, case, parsed, prematched)
        self.seconds += time.perf_counter() - start

    @property
    def rules_seconds(self) -> float:
        return self.seconds - self.notice_seconds


def main() -> None:
    # The parse worker unpickles `TimedPrematch` by its module: the project's root on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.prematch_timing import TimedPrematch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--full", type=int, default=10_000, help="Reports for the full intake.")
    args = parser.parse_args()
    rng = random.Random(4)
    rules_text = make_rules(args.rules, rng)
    raws = [make_mail(number, rng) for number in range(args.reports)]

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

    full = raws[: args.full]
    batches = [
        [
            RawMessage(mailbox="support", folder="INBOX", uidvalidity=1, uid=str(i), raw=raw)
            for i, raw in enumerate(full[first : first + 200], start=first)
        ]
        for first in range(0, len(full), 200)
    ]
    for workers, how in ((0, "in-process parsing"), (1, "a parse worker, as the flow runs")):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rules.toml"
            path.write_text(rules_text, encoding="utf-8")
            settings = Settings(rules_path=path, data_dir=Path(folder), database_url="sqlite://")
            context = intake_context(settings)
            assert isinstance(context.route_new_case, CaseRouter)
            timed = TimedRouter(context.route_new_case)
            context.route_new_case = timed
            # The rules' content matching runs where mail is parsed: timed there too.
            assert context.prematch is not None
            timed_prematch = TimedPrematch(context.prematch, Path(folder))
            context.prematch = timed_prematch
            store = CaseStore.open(f"sqlite:///{folder}/bench.sqlite3")
            start = time.perf_counter()
            new_cases = 0
            with ParseAhead(
                settings.max_message_bytes, workers=workers, prematch=context.prematch
            ) as ahead:
                for batch, parsed in ahead.pipeline(iter(batches)):
                    new_cases += len(ingest_batch(store, batch, context, parsed=parsed).new_cases)
            intake_seconds = time.perf_counter() - start
            store.close()
            worker_calls, worker_seconds = timed_prematch.worker_totals()
        here = timed.rules_seconds + timed_prematch.seconds
        # A worker's time per report, over every report it matched (it wrote every 20th).
        worker = (
            worker_seconds / worker_calls * (len(full) - timed_prematch.calls)
            if worker_calls
            else 0.0
        )
        print(
            f"full intake ({how}, ingest_batch into SQLite): {len(full)} reports "
            f"({new_cases} new cases) in {intake_seconds:.1f} s = "
            f"{len(full) / intake_seconds:,.0f} reports/s"
        )
        print(
            f"  rules in this process (content matching {timed_prematch.seconds:.2f} s, "
            f"decide, log, assign {timed.rules_seconds:.2f} s): {here / len(full) * 1e6:.0f} us "
            f"a report = {here / intake_seconds:.1%} of intake (target <= 5%)"
        )
        if worker_calls:
            print(
                f"  rules' content matching in the parse worker: "
                f"{worker_seconds / worker_calls * 1e6:.0f} us a report, beside this process; "
                f"counted as if it were on this process's path: "
                f"{(here + worker) / intake_seconds:.1%} of intake"
            )
        print(f"  composing triage/assignment notices (not rules): {timed.notice_seconds:.1f} s")


if __name__ == "__main__":
    main()
