"""Intake benchmark: raw imap-tools fetch (the floor) against full intake into cases, one run.

    python bench/intake_bench.py [--messages 5000] [--database-url URL]

Starts its own Dovecot (tests/support/dovecot.py), writes N varied messages into a fresh
mailbox (Chinese and English, UTF-8 / GBK / GB2312 / Big5 / ISO-2022-JP, HTML-only, one in
four with a 100 KB attachment), then measures in this order:
1. raw: imap-tools `fetch(bulk=200, mark_seen=False)` over the folder (what any client pays);
2. intake: ImapMailbox + parse workers + ingest_batch + mark_done, as the intake flow does it
   (the shipped rules, `parse_workers` as configured: default one worker on 2+ cores), into a
   fresh store;
3. no-op: a second intake run from a cold connection (no new mail: no body may be fetched).
Prints throughput, the ratio intake/raw (target >= 0.5), memory (target < 300 MB and flat: this
process and its parse workers, after 20 % of the mail and at the end), and the no-op time.
The messages are generated in a child process, so that this process's memory is intake's.
"""

from __future__ import annotations

import argparse
import base64
import gc
import logging
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imap_tools import MailBoxUnencrypted  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from bench.rules_timing import time_rules  # noqa: E402
from connectors.imap_mailbox import ImapMailbox  # noqa: E402
from connectors.mailbox import MailboxCursor  # noqa: E402
from connectors.store import CaseStore  # noqa: E402
from flows.intake import (  # noqa: E402
    IntakeContext,
    IntakeReport,
    cursor_name,
    finish_pending_marks,
    ingest_batch,
)
from flows.parse_ahead import ParseAhead  # noqa: E402
from flows.runtime import intake_context  # noqa: E402
from flows.settings import OutgoingSettings, Settings  # noqa: E402
from tests.support.dovecot import DovecotServer  # noqa: E402

BATCH = 200
ZONE = ZoneInfo("Asia/Shanghai")
ZH_BODIES = [
    "登录系统时提示'验证码失效'，重试3次仍无法进入，使用Chrome浏览器，系统版本V2.1。",
    "导出报表时报错“数据异常”，每次都出现，Windows 10，客户端版本 3.4.1。",
    "审批流程卡住了，点击提交没有反应，影响整个部门的报销。",
    "权限不足，无法查看部门数据。之前是可以的，今天早上开始不行。",
]
EN_BODIES = [
    "The dashboard shows Error 500 since this morning. Firefox 125 on Windows 11.",
    "I cannot reset my password; the link in the mail has expired twice.",
    "Export to Excel produces an empty file for reports with more than 10,000 rows.",
]
CHARSETS = ["utf-8", "gbk", "gb2312", "gb18030", "big5", "utf-8"]


def make_message(index: int, rng: random.Random, attachment: bytes) -> bytes:
    """One varied report; every fourth carries a 100 KB attachment."""
    message = EmailMessage()
    chinese = index % 3 != 2
    charset = rng.choice(CHARSETS) if chinese else "utf-8"
    if chinese and charset == "big5":
        body = "你好，報表匯出時出現錯誤，使用 Edge 瀏覽器。香港分行"
        name = "陳大文"
    elif chinese:
        body = rng.choice(ZH_BODIES)
        name = rng.choice(["张三", "李四", "王五", "赵六"])
    else:
        body = rng.choice(EN_BODIES)
        name = rng.choice(["Alice Smith", "Bob Jones"])
    body = f"{body}\n\n#{index}\n" + ("详细描述。" if chinese else "More detail. ") * rng.randint(
        5, 80
    )
    message["From"] = formataddr((name, f"user{index % 500}@example.cn"))
    message["To"] = "support@casedesk.bench"
    message["Subject"] = f"{'问题' if chinese else 'Issue'} {index}: {body[:20]}"
    message["Date"] = format_datetime(
        __import__("datetime").datetime(2024, 5, 20, 9, 0, tzinfo=ZONE)
    )
    message["Message-ID"] = f"<bench-{index}@example.cn>"
    if index % 7 == 3:
        paragraphs = "".join(f"<p>{line}</p>" for line in body.splitlines() if line)
        message.set_content(f"<html><body>{paragraphs}</body></html>", subtype="html")
    elif charset == "iso-2022-jp":
        message.set_content(body, charset=charset)
    else:
        try:
            message.set_content(body, charset=charset)
        except (UnicodeEncodeError, LookupError):
            message.set_content(body, charset="utf-8")
    if index % 4 == 0:
        message.add_attachment(
            attachment, maintype="application", subtype="octet-stream", filename=f"log-{index}.bin"
        )
    return message.as_bytes()


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def make_messages(count: int) -> list[bytes]:
    """`count` varied reports (`make_message`), the same for every run but the attachment's
    random bytes."""
    rng = random.Random(20240520)
    attachment = base64.b64encode(os.urandom(75_000))[:100_000]
    return [make_message(i, rng, attachment) for i in range(count)]


def deliver(server: DovecotServer, count: int, total: Any) -> None:
    """Generate and deliver the messages (run in a child: its memory is not intake's)."""
    raws = make_messages(count)
    server.deliver_fast("bench", "INBOX", raws)
    total.value = sum(len(raw) for raw in raws)


def read_mailbox(
    store: CaseStore,
    box: ImapMailbox,
    context: IntakeContext,
    ahead: ParseAhead,
    batch_size: int,
    *,
    after_batch: Callable[[], None] | None = None,
) -> IntakeReport:
    """The intake flow's loop over one mailbox (`flows.intake_flow`), without Prefect's tasks:
    from its stored cursor, earlier marks finished first, batch by batch (its cursor stored in
    each batch's transaction), each batch marked done, then `after_batch`. Closes the box."""
    name = cursor_name(box)
    stored = store.watermark(name)
    cursor = MailboxCursor.model_validate_json(stored) if stored else MailboxCursor()
    finish_pending_marks(store, box, cursor)
    report = IntakeReport()
    for batch, parsed in ahead.pipeline(box.fetch_new(cursor, batch_size)):
        cursor = box.cursor_after(batch)
        watermark = (name, cursor.model_dump_json())
        report.merge(ingest_batch(store, batch, context, watermark=watermark, parsed=parsed))
        box.mark_done(batch)
        if after_batch is not None:
            after_batch()
    box.close()
    return report


def main(argv: list[str] | None = None) -> int:
    # No lead address, on purpose (triage notices then go to nobody, as the bench has always
    # measured): the run's warning about it is not news here.
    logging.getLogger("flows.routing").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--database-url", default=None, help="Default: a fresh SQLite file.")
    parser.add_argument(
        "--parse-workers", type=int, default=None, help="Default: as the flow (1 on 2+ cores)."
    )
    args = parser.parse_args(argv)
    count: int = args.messages

    server = DovecotServer()
    server.start()
    workdir = Path(tempfile.mkdtemp(prefix="casedesk-bench-"))
    try:
        server.add_user("bench", "bench-pw")
        started = time.perf_counter()
        fork = multiprocessing.get_context("fork")
        total = fork.Value("q", 0)  # a forked child: no pickling of the server
        child = fork.Process(target=deliver, args=(server, count, total))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"generating the messages failed (exit code {child.exitcode})")
        size = total.value
        print(
            f"generated {count} messages, {size / 1e6:.0f} MB, in "
            f"{time.perf_counter() - started:.1f} s"
        )

        # 1. The floor: imap-tools' own bulk fetch of everything.
        started = time.perf_counter()
        with MailBoxUnencrypted(server.host, server.port).login("bench", "bench-pw") as box:
            fetched = sum(1 for _ in box.fetch(bulk=BATCH, mark_seen=False))
        raw_seconds = time.perf_counter() - started
        raw_rate = fetched / raw_seconds
        print(f"raw imap-tools fetch: {fetched} in {raw_seconds:.1f} s = {raw_rate:.0f} msg/s")
        gc.collect()
        baseline = rss_mb()

        # 2. Full intake, as the flow runs it.
        url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
        store = CaseStore.open(url)
        settings = Settings(
            database_url=url,
            data_dir=workdir,
            parse_workers=args.parse_workers,
            outgoing=OutgoingSettings(
                from_address="support@casedesk.bench",
                message_id_domain="casedesk.bench",
                signing_secret=SecretStr("bench"),
            ),
        )
        context = intake_context(settings)  # the shipped rules, as the flow reads them
        # The rules timed inside: the router here, the prematch where it runs (the worker too).
        timed_router, timed_prematch = time_rules(context, workdir)

        def mailbox() -> ImapMailbox:
            return ImapMailbox(
                "support",
                host=server.host,
                port=server.port,
                security="plain",
                user="bench",
                password=SecretStr("bench-pw"),
            )

        def run() -> tuple[IntakeReport, ImapMailbox, list[float]]:
            box = mailbox()
            samples: list[float] = []
            with ParseAhead(
                settings.max_message_bytes,
                workers=settings.parse_workers,
                prematch=context.prematch,
            ) as ahead:

                def sample() -> None:
                    samples.append(rss_mb() + sum(rss_mb(pid) for pid in ahead.worker_pids()))

                report = read_mailbox(store, box, context, ahead, BATCH, after_batch=sample)
            return report, box, samples

        started = time.perf_counter()
        report, _box, samples = run()
        intake_seconds = time.perf_counter() - started
        intake_rate = report.fetched / intake_seconds
        print(
            f"full intake: {report.fetched} in {intake_seconds:.1f} s = {intake_rate:.0f} msg/s, "
            f"{len(report.new_cases)} cases, decisions {report.decisions}"
        )
        print(f"intake / raw fetch = {intake_rate / raw_rate:.2f}x (target >= 0.5x)")
        worker_calls, worker_seconds = timed_prematch.worker_totals()
        here = timed_router.rules_seconds + timed_prematch.seconds
        worker_note = (
            f"; in the parse worker, beside it, {worker_seconds / worker_calls * 1e6:.0f} us"
            if worker_calls
            else ""
        )
        print(
            f"the shipped rules inside intake: {here / report.fetched * 1e6:.0f} us a report in "
            f"this process = {here / intake_seconds:.1%} of intake{worker_note} "
            f"(bench/rules_bench.py measures 200 rules against its target)"
        )
        early = max(samples[: max(1, len(samples) // 5)])
        print(
            f"memory (this process + parse workers): RSS {baseline:.0f} MB before intake, "
            f"{early:.0f} MB after 20 % of the mail, {max(samples):.0f} MB at most during intake; "
            f"this process's peak {peak_mb():.0f} MB (target < 300 MB, flat)"
        )

        # 3. A second run: nothing new, so no body may be fetched.
        started = time.perf_counter()
        again, box, _ = run()
        noop_seconds = time.perf_counter() - started
        print(
            f"second run: {noop_seconds * 1000:.0f} ms, {again.fetched} fetched, "
            f"{box.bodies_fetched} bodies read (target < 1 s, none)"
        )
        store.close()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
