"""Run casedesk's mail parsing over ../shared/corpus and print how many mails match.

    python bench/corpus_eval.py [--corpus PATH] [--quick] [--show-failures | --verbose]

Three scores:
- parse: parse-imap_tools raw mails against imap_tools' expectations; subject, sender address and
  name, date, plain text and attachment names/types/bytes compared field by field (a mail
  matches when all fields do).
- reply: visible reply text of the reply corpora, whitespace-normalised: zapier and
  mail-parser-reply reference replies (what their code outputs; "asserted" counts the EXACT
  ones their tests assert in full), talon standard replies, HTML replies and inline cases.
- bounce: auto/flufl.bounce; the mail is classified as a bounce and the failed recipients equal
  the labelled ones (permanent or temporary as labelled).

A mismatch is never counted as a match. Where we differ from an expectation on purpose, the
difference is reported as "deliberate" with its reason from DELIBERATE below; each reason has a
check that the difference really is the documented one (our text plus a signature they keep,
their text plus an attached mail's text...), so an unrelated regression on the same mail still
shows as a failure. --show-failures prints, for each failing mail, the field, expected and got;
--verbose also prints the deliberate differences.
"""

from __future__ import annotations

import argparse
import base64
import binascii
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


@dataclass(frozen=True)
class Diff:
    """One field of one mail that differs: what the source expects and what we produce."""

    field: str
    want: Any
    got: Any


@dataclass
class Case:
    """What a deliberate-difference check may look at besides the diff itself."""

    label: str
    raw: bytes = b""
    parsed: Any = None


@dataclass(frozen=True)
class Deliberate:
    """A difference we keep on purpose: which field, why, and a check that it is that one."""

    key: str
    fields: frozenset[str]
    reason: str
    applies: Callable[[Case, Diff], bool]


@dataclass
class Score:
    name: str
    total: int = 0
    matched: int = 0
    failures: list[str] = field(default_factory=list)
    deliberate: list[str] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)
    fields: dict[str, list[int]] = field(default_factory=dict)

    def add(self, ok: bool, label: str) -> None:
        self.total += 1
        self.matched += ok
        if not ok:
            self.failures.append(label)

    def judge(self, case: Case, diffs: list[Diff], detail: str = "") -> None:
        """Count one mail: a match, a deliberate difference (every diff explained) or a failure."""
        self.total += 1
        if not diffs:
            self.matched += 1
            return
        reasons = [_deliberate_reason(case, diff) for diff in diffs]
        lines = [f"{diff.field}: want {_show(diff.want)}" for diff in diffs]
        lines += [f"{diff.field}:  got {_show(diff.got)}" for diff in diffs]
        if all(reasons):
            keys = sorted({reason.key for reason in reasons if reason is not None})
            self.deliberate.append(f"{case.label}: {', '.join(keys)}")
            self.details[self.deliberate[-1]] = lines
            return
        bad = [diff.field for diff, reason in zip(diffs, reasons, strict=True) if reason is None]
        self.failures.append(f"{case.label}: {', '.join(bad)}{detail}")
        self.details[self.failures[-1]] = lines

    def field(self, name: str, ok: bool) -> None:
        counts = self.fields.setdefault(name, [0, 0])
        counts[0] += ok
        counts[1] += 1

    def line(self) -> str:
        share = self.matched / self.total if self.total else 0.0
        text = f"{self.name:<8} {self.matched:>4} / {self.total:<4} match ({share:.0%})"
        if self.deliberate or self.failures:
            text += f"; {len(self.deliberate)} differ deliberately, {len(self.failures)} fail"
        return text


def _show(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _norm(text: str | None) -> str:
    lines = [" ".join(line.split()) for line in (text or "").replace("\r", "").split("\n")]
    return "\n".join(line for line in lines if line).strip()


def _nows(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


# deliberate differences -----------------------------------------------------------------------
_SIGN_OFF = re.compile(
    r"^(?:thanks|thank you|regards|best|cheers|kind regards|sent from|sent with|--(?:\s|$)|-\w)",
    re.I,
)
_RULE = re.compile(r"^[-_=*~]{3,}$")
_FORWARD = re.compile(r"^-*\s*(?:forwarded message|begin forwarded message)", re.I)


def _rest(longer: str, shorter: str) -> str | None:
    """What `longer` has after `shorter` (normalised), or None when it does not start with it."""
    longer, shorter = _norm(longer), _norm(shorter)
    return longer[len(shorter) :].strip() if longer.startswith(shorter) else None


def _they_keep_signature(_case: Case, diff: Diff) -> bool:
    rest = _rest(diff.want, diff.got)
    return bool(rest) and bool(_SIGN_OFF.match(rest))


def _they_keep_rule_line(_case: Case, diff: Diff) -> bool:
    rest = _rest(diff.want, diff.got)
    return bool(rest) and all(_RULE.match(line) for line in rest.split("\n"))


def _they_keep_trailing_quote(_case: Case, diff: Diff) -> bool:
    rest = _rest(diff.want, diff.got)
    return bool(rest) and all(line.startswith(">") for line in rest.split("\n"))


def _they_drop_hyphen_list(_case: Case, diff: Diff) -> bool:
    rest = _rest(diff.got, diff.want)
    return bool(rest) and rest.startswith("-")


def _they_drop_inline_quotes(_case: Case, diff: Diff) -> bool:
    ours = "\n".join(line for line in _norm(diff.got).split("\n") if not line.startswith(">"))
    return ours != _norm(diff.got) and ours == _norm(diff.want)


def _sent_from_sentence(_case: Case, diff: Diff) -> bool:
    rest = _rest(diff.got, diff.want)
    return bool(rest) and rest.startswith("Sent from my") and len(rest.split()) > 6


def _we_stop_at_forward(_case: Case, diff: Diff) -> bool:
    rest = _rest(diff.want, diff.got)
    return bool(rest) and bool(_FORWARD.match(rest))


def _attached_texts(case: Case) -> str:
    texts = []
    for attachment in case.parsed.attachments if case.parsed is not None else []:
        if attachment.info.content_type == "message/rfc822" and attachment.content:
            inner = parse_email(attachment.content)
            texts.append(inner.text + (html_to_text(inner.html) if inner.html else ""))
    return _nows("".join(texts))


def _they_add_attached_text(case: Case, diff: Diff) -> bool:
    want, got = _nows(diff.want), _nows(diff.got)
    if not want.startswith(got) or want == got:
        return False
    rest = want[len(got) :]
    return rest[:200] in _attached_texts(case)


def _they_keep_attached_base64(case: Case, diff: Diff) -> bool:
    compact = _nows(diff.want)
    compact = compact[: len(compact) // 4 * 4]
    try:
        start = base64.b64decode(compact[:400], validate=True)
    except (binascii.Error, ValueError):
        return False
    attachments = case.parsed.attachments if case.parsed is not None else []
    return bool(start) and any(a.content.startswith(start) for a in attachments)


def _they_flatten_attached_parts(case: Case, diff: Diff) -> bool:
    missing = [name for name in diff.want if name not in diff.got]
    inner_names: set[str] = set()
    for attachment in case.parsed.attachments if case.parsed is not None else []:
        if attachment.info.content_type == "message/rfc822" and attachment.content:
            inner_names.update(a.info.filename for a in parse_email(attachment.content).attachments)
    return bool(missing) and all(name in inner_names for name in missing)


def _ascii_skeleton(text: str) -> str:
    return _nows(re.sub(r"[^\x00-\x7f]+", "", text))


def _we_decode_8bit(_case: Case, diff: Diff) -> bool:
    want = " ".join(diff.want) if isinstance(diff.want, list) else str(diff.want)
    got = " ".join(diff.got) if isinstance(diff.got, list) else str(diff.got)
    theirs = {ch for ch in want if ord(ch) > 0x7F}
    return _ascii_skeleton(want) == _ascii_skeleton(got) and all(
        ch == "\ufffd" or ord(ch) <= 0xFF for ch in theirs
    )


def _whitespace_only(_case: Case, diff: Diff) -> bool:
    return _nows(diff.want) == _nows(diff.got)


def _neither_reads_headers(_case: Case, diff: Diff) -> bool:
    return diff.got == "MessageParseError" and diff.want == "no headers"


def _expanded_address(case: Case, diff: Diff) -> bool:
    extra = set(diff.got) - set(diff.want)
    text = case.raw.decode("latin-1").lower()
    return bool(extra) and set(diff.want) <= set(diff.got) and "expanded from" in text


def _talon_patched_limit(case: Case, _diff: Diff) -> bool:
    return case.label.endswith("/test_too_many_lines#0")


#: The differences we keep on purpose. Each check proves the difference is the documented one.
DELIBERATE: list[Deliberate] = [
    Deliberate(
        "attached-mail-text",
        frozenset({"text"}),
        "imap_tools' text goes on into the text parts of an attached message/rfc822; we keep an "
        "attached mail whole as one .eml attachment (docs/intake.md), so its words are not the "
        "sender's report",
        _they_add_attached_text,
    ),
    Deliberate(
        "attached-mail-base64",
        frozenset({"text"}),
        "a base64-encoded message/rfc822 (forbidden by RFC 2046, sent by Yandex): imap_tools "
        "reads the base64 as the body; we decode it into the attachment",
        _they_keep_attached_base64,
    ),
    Deliberate(
        "attached-mail-parts",
        frozenset({"attachments"}),
        "imap_tools lists the attachments inside an attached mail as the outer mail's; ours stay "
        "inside the .eml",
        _they_flatten_attached_parts,
    ),
    Deliberate(
        "8bit-decoded",
        frozenset({"text", "subject", "attachments", "from_name"}),
        "8-bit bytes imap_tools drops, replaces with U+FFFD or leaves as Latin-1 mojibake: we "
        "decode them (the guess is noted in ParsedEmail.problems); the ASCII text is the same",
        _we_decode_8bit,
    ),
    Deliberate(
        "rfc2047-space",
        frozenset({"subject"}),
        "whitespace only: RFC 2047 6.2 keeps the space between ordinary text and an encoded "
        "word, imap_tools drops it",
        _whitespace_only,
    ),
    Deliberate(
        "unreadable-header",
        frozenset({"parse"}),
        "obsolete header syntax (spaces before the colon): neither reads a header; imap_tools "
        "returns the whole mail as body, we refuse it (intake holds it for review)",
        _neither_reads_headers,
    ),
    Deliberate(
        "rule-line",
        frozenset({"reply"}),
        "mail-parser-reply keeps the Outlook rule line above the quote header; zapier's test "
        "asserts it gone on the same text (email_2_1), and it is no word of the sender",
        _they_keep_rule_line,
    ),
    Deliberate(
        "signature",
        frozenset({"reply"}),
        "talon's quotation stripping keeps the signature and sign-off (it removes them in a "
        "separate step); the visible reply on a case does not carry them",
        _they_keep_signature,
    ),
    Deliberate(
        "trailing-quote",
        frozenset({"reply"}),
        "a '>'-quoted block after the last answer is history, not words of the sender; "
        "mail-parser-reply's reference keeps it",
        _they_keep_trailing_quote,
    ),
    Deliberate(
        "hyphen-list",
        frozenset({"reply"}),
        "mail-parser-reply's reference takes a '- item' list for a '-Name' signature and drops "
        "it; its own test (email_1_5: 15 lines) and zapier's keep it, and so do we",
        _they_drop_hyphen_list,
    ),
    Deliberate(
        "inline-quotes",
        frozenset({"reply"}),
        "answers written between quoted lines keep the quoted questions as context; zapier's "
        "reply joins the answers alone",
        _they_drop_inline_quotes,
    ),
    Deliberate(
        "sent-from-sentence",
        frozenset({"reply"}),
        "'Sent from my desk, ...' is a sentence, not a device footer: mail-parser-reply's test "
        "asserts it is body; zapier's unasserted reference drops it",
        _sent_from_sentence,
    ),
    Deliberate(
        "forward",
        frozenset({"reply"}),
        "the visible reply stops at a forwarded message; a forwarded report (Fwd:/转发: "
        "subject) takes the whole text as its description (mapping/email_to_case.py)",
        _we_stop_at_forward,
    ),
    Deliberate(
        "talon-test-setup",
        frozenset({"reply"}),
        "talon's test_too_many_lines patches its line limit to 1; unpatched, talon keeps the "
        "second line as we do",
        _talon_patched_limit,
    ),
    Deliberate(
        "expanded-recipient",
        frozenset({"bounce"}),
        "sendmail reports the address an alias expanded to beside the original; flufl.bounce 6.0 "
        "returns both, the label (flufl's test) only the original",
        _expanded_address,
    ),
]


def _deliberate_reason(case: Case, diff: Diff) -> Deliberate | None:
    for reason in DELIBERATE:
        if diff.field in reason.fields and reason.applies(case, diff):
            return reason
    return None


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
        raw = eml.read_bytes()
        case = Case(str(relative), raw)
        try:
            case.parsed = parse_email(raw)
        except MessageParseError as error:
            unread = not expected.get("from_values") and not expected.get("subject")
            want = "no headers" if unread else "a parsed mail"
            score.judge(case, [Diff("parse", want, "MessageParseError")], f" ({error})")
            continue
        checks = _parse_checks(case.parsed, expected)
        for name, (ok, _want, _got) in checks.items():
            score.field(name, ok)
        score.judge(case, [Diff(n, want, got) for n, (ok, want, got) in checks.items() if not ok])
    return score


def _parse_checks(parsed: Any, expected: dict[str, Any]) -> dict[str, tuple[bool, Any, Any]]:
    """field -> (equal, expected, got)."""
    checks: dict[str, tuple[bool, Any, Any]] = {}
    want_subject = expected.get("subject", "")
    checks["subject"] = (_norm(parsed.subject) == _norm(want_subject), want_subject, parsed.subject)
    sender = expected.get("from_values")
    want_address = (getattr(sender, "email", "") or "").lower()
    got_address = parsed.from_address or ""
    checks["from"] = (got_address == want_address, want_address, got_address)
    if sender is not None and getattr(sender, "name", ""):
        ok = _norm(parsed.from_name) == _norm(sender.name)
        checks["from_name"] = (ok, sender.name, parsed.from_name)
    want_date = expected.get("date")
    if isinstance(want_date, datetime):
        got = parsed.date
        if want_date.year == 1900:  # imap-tools' "no usable date"
            checks["date"] = (got is None, None, got)
        else:
            ok = got is not None and (
                got == want_date if want_date.tzinfo else got.replace(tzinfo=None) == want_date
            )
            checks["date"] = (ok, want_date, got)
    want_text = expected.get("text", "")
    if want_text.strip():
        checks["text"] = (_nows(parsed.text) == _nows(want_text), want_text, parsed.text)
    wanted = [a for a in expected.get("attachments", []) if a.get("filename")]
    if wanted:
        got_files = {(a.info.filename, a.info.content_type): a.content for a in parsed.attachments}
        ok = all(
            got_files.get((a["filename"], a["content_type"])) == a.get("payload") for a in wanted
        )
        checks["attachments"] = (
            ok,
            [a["filename"] for a in wanted],
            [a.info.filename for a in parsed.attachments],
        )
    return checks


# reply ----------------------------------------------------------------------------------------
#: A reply case: label, the text, the expected reply, how to normalise, and what the source
#: project's tests assert ("asserted": its test checks this exact reply; "reference": its code
#: outputs it but no test pins it down).
ReplyCase = tuple[str, str, str, Callable[[str], str], str]


def _reply_cases(corpus: Path, quick: bool) -> Iterator[ReplyCase]:
    reply = corpus / "reply"
    for source in ("zapier", "mail-parser-reply"):
        expected = json.loads((reply / source / "expected.json").read_text(encoding="utf-8"))
        for name, item in sorted(expected.items())[: 8 if quick else None]:
            want = item.get("reference_reply")
            if want is None:
                replies = item.get("reference_replies") or [{}]
                want = replies[0].get("body", "")
            text = (reply / source / f"{name}.txt").read_text(encoding="utf-8", errors="replace")
            status = "asserted" if item.get("status") == "EXACT" else "reference"
            yield f"{source}/{name}", text, want, _norm, status
    talon = json.loads((reply / "talon" / "expected.json").read_text(encoding="utf-8"))
    for name, item in sorted(talon.items()):
        if name.startswith("standard_replies/"):
            raw = (reply / "talon" / name).read_bytes()
            text = parse_email(raw).text
            yield f"talon/{name}", text, item["expected_reply_text"], _norm, "asserted"
        elif name.startswith("html_replies/") and not quick:
            html = (reply / "talon" / name).read_text(encoding="utf-8", errors="replace")
            want = item["expected_reply_text"]
            yield f"talon/{name}", html_to_text(html), want, _nows, "asserted"
    inline = reply / "talon" / "inline" / "text_quotations_cases.jsonl"
    for index, line in enumerate(inline.read_text(encoding="utf-8").splitlines()):
        if quick and index >= 10:
            break
        case = json.loads(line)
        label = f"talon/inline/{case['id']}"
        yield label, case["input"], case["expected_reply"], _norm, "asserted"


def eval_reply(corpus: Path, quick: bool) -> Score:
    score = Score("reply")
    for label, text, want, norm, status in _reply_cases(corpus, quick):
        try:
            got = visible_reply(text)
        except MessageParseError as error:
            score.judge(Case(label), [Diff("reply", want, f"MessageParseError: {error}")])
            continue
        ok = norm(got) == norm(want)
        score.field(status, ok)
        score.judge(Case(label), [] if ok else [Diff("reply", want, got)])
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
        case = Case(row["file"], raw)
        try:
            case.parsed = parse_email(raw)
        except MessageParseError as error:
            score.judge(case, [Diff("parse", "a parsed mail", f"MessageParseError: {error}")])
            continue
        verdict = classify(case.parsed, raw, IDENTITY)
        wanted = {a.lower() for a in re.findall(r"[^\s{},]+@[^\s{},]+", row["assertion"])}
        detected = verdict.kind == MessageKind.BOUNCE
        score.field("detected", detected)
        diffs: list[Diff] = []
        if not detected:
            diffs.append(Diff("kind", "bounce", f"{verdict.kind.value} ({verdict.reason})"))
        elif row["category"] != "bounce-unlabelled" and wanted:
            temporary = row["category"] == "bounce-temporary"
            got = verdict.temporary_failures if temporary else verdict.permanent_failures
            if set(got) != wanted:
                diffs.append(Diff("bounce", sorted(wanted), sorted(got)))
        score.judge(case, diffs)
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--quick", action="store_true", help="A small subset of each set.")
    parser.add_argument(
        "--show-failures", action="store_true", help="Each failing mail: field, expected, got."
    )
    parser.add_argument(
        "--verbose", action="store_true", help="--show-failures and the deliberate differences."
    )
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
        if args.verbose:
            for item in score.deliberate:
                print(f"    ~ {item}")
                for line in score.details.get(item, []):
                    print(f"        {line}")
        if args.show_failures or args.verbose:
            for failure in score.failures:
                print(f"    x {failure}")
                for line in score.details.get(failure, []):
                    print(f"        {line}")
    if args.verbose:
        print("deliberate differences:")
        for reason in DELIBERATE:
            print(f"    {reason.key}: {reason.reason}")
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
