"""Run casedesk's mail parsing over ../shared/corpus and print how many mails match.

    python bench/corpus_eval.py [--corpus PATH] [--quick] [--show-failures]

Three scores, each against what the source project's own tests assert:
- parse: parse-imap_tools raw mails; subject, sender address and name, date, plain text and
  attachment names/types/bytes compared field by field (a mail matches when all fields do).
- reply: visible reply text of the reply corpora (zapier, mail-parser-reply reference replies,
  talon standard replies, HTML replies and inline plain-text cases), whitespace-normalised.
- bounce: auto/flufl.bounce; the mail is classified as a bounce and the failed recipients equal
  the labelled ones (permanent or temporary as labelled).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections import namedtuple
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from mapping.classify import MessageKind, classify  # noqa: E402
from mapping.errors import MessageParseError  # noqa: E402
from mapping.mail_decoding import html_to_text  # noqa: E402
from mapping.outgoing_mail import SenderIdentity  # noqa: E402
from mapping.parsed_email import parse_email  # noqa: E402
from mapping.reply_text import visible_reply  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
IDENTITY = SenderIdentity(
    from_address="support@casedesk.invalid",
    message_id_domain="casedesk.invalid",
    signing_secret=SecretStr("corpus-eval"),
)
EmailAddress = namedtuple("EmailAddress", "name email")


@dataclass
class Score:
    name: str
    total: int = 0
    matched: int = 0
    failures: list[str] = field(default_factory=list)
    fields: dict[str, list[int]] = field(default_factory=dict)

    def add(self, ok: bool, label: str) -> None:
        self.total += 1
        self.matched += ok
        if not ok:
            self.failures.append(label)

    def field(self, name: str, ok: bool) -> None:
        counts = self.fields.setdefault(name, [0, 0])
        counts[0] += ok
        counts[1] += 1

    def line(self) -> str:
        share = self.matched / self.total if self.total else 0.0
        return f"{self.name:<8} {self.matched:>4} / {self.total:<4} match ({share:.0%})"


def _norm(text: str | None) -> str:
    lines = [" ".join(line.split()) for line in (text or "").replace("\r", "").split("\n")]
    return "\n".join(line for line in lines if line).strip()


def _nows(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


# parse ----------------------------------------------------------------------------------------
def _expected_parse(data_file: Path) -> dict[str, Any] | None:
    source = data_file.read_text(encoding="utf-8")
    source = re.sub(r"^from imap_tools import .*$", "", source, flags=re.MULTILINE)
    namespace: dict[str, Any] = {"EmailAddress": EmailAddress}
    try:
        # The expectations are Python files from the corpus (trusted, read-only data).
        exec(compile(source, str(data_file), "exec"), namespace)
    except Exception as error:  # noqa: BLE001 - a broken expectation file is skipped, reported
        print(f"  cannot read {data_file.name}: {error}", file=sys.stderr)
        return None
    data = namespace.get("DATA")
    return data if isinstance(data, dict) else None


def eval_parse(corpus: Path, quick: bool) -> Score:
    score = Score("parse")
    messages = corpus / "parse-imap_tools" / "messages"
    data_root = corpus / "parse-imap_tools" / "messages_data"
    emls = sorted(messages.rglob("*.eml"))
    for eml in emls[:20] if quick else emls:
        relative = eml.relative_to(messages).with_suffix(".py")
        expected = _expected_parse(data_root / relative)
        if expected is None:
            continue
        try:
            parsed = parse_email(eml.read_bytes())
        except MessageParseError as error:
            score.add(False, f"{relative}: {error}")
            continue
        checks = _parse_checks(parsed, expected)
        for name, ok in checks.items():
            score.field(name, ok)
        bad = [name for name, ok in checks.items() if not ok]
        score.add(not bad, f"{relative}: {', '.join(bad)}")
    return score


def _parse_checks(parsed: Any, expected: dict[str, Any]) -> dict[str, bool]:
    checks: dict[str, bool] = {}
    checks["subject"] = _norm(parsed.subject) == _norm(expected.get("subject", ""))
    sender = expected.get("from_values")
    want_address = (getattr(sender, "email", "") or "").lower()
    checks["from"] = (parsed.from_address or "") == want_address
    if sender is not None and getattr(sender, "name", ""):
        checks["from_name"] = _norm(parsed.from_name) == _norm(sender.name)
    want_date = expected.get("date")
    if isinstance(want_date, datetime):
        if want_date.year == 1900:  # imap-tools' "no usable date"
            checks["date"] = parsed.date is None
        else:
            got = parsed.date
            checks["date"] = got is not None and (
                got == want_date if want_date.tzinfo else got.replace(tzinfo=None) == want_date
            )
    want_text = expected.get("text", "")
    if want_text.strip():
        checks["text"] = _nows(parsed.text) == _nows(want_text)
    wanted = [a for a in expected.get("attachments", []) if a.get("filename")]
    if wanted:
        got = {(a.info.filename, a.info.content_type): a.content for a in parsed.attachments}
        checks["attachments"] = all(
            got.get((a["filename"], a["content_type"])) == a.get("payload") for a in wanted
        )
    return checks


# reply ----------------------------------------------------------------------------------------
def _reply_cases(corpus: Path, quick: bool) -> Iterator[tuple[str, Callable[[], bool]]]:
    reply = corpus / "reply"
    for source in ("zapier", "mail-parser-reply"):
        expected = json.loads((reply / source / "expected.json").read_text(encoding="utf-8"))
        for name, item in sorted(expected.items())[: 8 if quick else None]:
            want = item.get("reference_reply")
            if want is None:
                replies = item.get("reference_replies") or [{}]
                want = replies[0].get("body", "")
            text = (reply / source / f"{name}.txt").read_text(encoding="utf-8", errors="replace")
            yield f"{source}/{name}", _compare(text, want, _norm)
    talon = json.loads((reply / "talon" / "expected.json").read_text(encoding="utf-8"))
    for name, item in sorted(talon.items()):
        if name.startswith("standard_replies/"):
            raw = (reply / "talon" / name).read_bytes()
            text = parse_email(raw).text
            yield f"talon/{name}", _compare(text, item["expected_reply_text"], _norm)
        elif name.startswith("html_replies/") and not quick:
            html = (reply / "talon" / name).read_text(encoding="utf-8", errors="replace")
            yield f"talon/{name}", _compare(html_to_text(html), item["expected_reply_text"], _nows)
    inline = reply / "talon" / "inline" / "text_quotations_cases.jsonl"
    for index, line in enumerate(inline.read_text(encoding="utf-8").splitlines()):
        if quick and index >= 10:
            break
        case = json.loads(line)
        yield f"talon/inline/{case['id']}", _compare(case["input"], case["expected_reply"], _norm)


def _compare(text: str, want: str, norm: Callable[[str], str]) -> Callable[[], bool]:
    return lambda: norm(visible_reply(text)) == norm(want)


def eval_reply(corpus: Path, quick: bool) -> Score:
    score = Score("reply")
    for label, check in _reply_cases(corpus, quick):
        try:
            ok = check()
        except MessageParseError as error:
            ok, label = False, f"{label}: {error}"
        score.add(ok, label)
    return score


# bounce ---------------------------------------------------------------------------------------
def eval_bounce(corpus: Path, quick: bool) -> Score:
    score = Score("bounce")
    folder = corpus / "auto" / "flufl.bounce"
    seen: set[str] = set()
    with (folder / "labels.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows[:15] if quick else rows:
        if row["file"] in seen:
            continue  # the labels repeat a few files
        seen.add(row["file"])
        raw = (folder / row["file"]).read_bytes()
        try:
            parsed = parse_email(raw)
        except MessageParseError as error:
            score.add(False, f"{row['file']}: {error}")
            continue
        verdict = classify(parsed, raw, IDENTITY)
        wanted = {a.lower() for a in re.findall(r"[^\s{},]+@[^\s{},]+", row["assertion"])}
        if row["category"] == "bounce-unlabelled" or not wanted:
            ok = verdict.kind == MessageKind.BOUNCE
        elif row["category"] == "bounce-temporary":
            ok = verdict.kind == MessageKind.BOUNCE and set(verdict.temporary_failures) == wanted
        else:
            ok = verdict.kind == MessageKind.BOUNCE and set(verdict.permanent_failures) == wanted
        score.field("detected", verdict.kind == MessageKind.BOUNCE)
        score.add(ok, f"{row['file']}: {verdict.kind.value} {verdict.permanent_failures}")
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--quick", action="store_true", help="A small subset of each set.")
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    scores = [
        eval_parse(args.corpus, args.quick),
        eval_reply(args.corpus, args.quick),
        eval_bounce(args.corpus, args.quick),
    ]
    for score in scores:
        print(score.line())
        for name, (ok, total) in sorted(score.fields.items()):
            print(f"    {name:<12} {ok:>4} / {total}")
        if args.show_failures:
            for failure in score.failures:
                print(f"    x {failure}")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
