"""`parse_mime` (long base64 runs past the line parser) builds the tree the plain parser builds.

`mapping.parsed_email.parse_mime` replaces each long run of equal-width base64 lines by a token
line before `email.message_from_bytes(raw, policy=compat32)` runs, and puts the runs back into
the payloads afterwards (the reasoning is above `_BASE64_BYTES`). These tests compare the whole
tree, part by part, with the plain parser's: on our fixtures, the corpus, generated messages
and hand-made edge cases, with LF and CRLF line endings, and with the minimum run length
lowered to one line so that every base64 line in them goes through a token.
"""

from __future__ import annotations

import base64
import email.utils
import random
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import compat32
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mapping import parsed_email
from mapping.parsed_email import parse_mime

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


def tree(message: Message) -> list[Any]:
    """Everything the parser decides, part by part."""
    parts: list[Any] = []
    for part in message.walk():
        payload = part._payload  # as the parser left it (get_payload() decodes 8-bit text)
        parts.append(
            (
                part.get_unixfrom(),
                list(part.raw_items()),
                payload if isinstance(payload, str) else len(payload),
                part.get_payload(decode=True),
                part.preamble,
                part.epilogue,
                [(type(defect).__name__, str(defect)) for defect in part.defects],
                part.get_default_type(),
                part.get_charset(),
            )
        )
    try:
        parts.append(message.as_bytes(policy=compat32))
    except (LookupError, ValueError, TypeError, UnicodeError) as error:
        parts.append(type(error).__name__)
    return parts


def assert_same_tree(raw: bytes) -> None:
    assert tree(parse_mime(raw)) == tree(message_from_bytes(raw, policy=compat32))


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture
def every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of a single line are tokenised too: every base64 line of a test goes through one."""
    monkeypatch.setattr(parsed_email, "MIN_RUN_LINES", 1)


def _attachment_mail(index: int, size: int = 20_000) -> bytes:
    rng = random.Random(index)
    message = EmailMessage()
    message["From"] = "张三 <z@example.cn>"
    message["To"] = "support@example.cn"
    message["Subject"] = f"问题 {index}"
    message.set_content("登录时提示验证码失效。\n" * (index % 5 + 1), charset="gbk")
    message.add_attachment(
        rng.randbytes(size), maintype="application", subtype="octet-stream", filename="a.bin"
    )
    return message.as_bytes()


def test_long_attachments_are_tokenised() -> None:
    raw = _attachment_mail(1, 100_000)
    runs = parsed_email._base64_runs(raw)
    assert len(runs) == 1 and runs[0][1] - runs[0][0] > 130_000
    assert len(parsed_email._base64_runs(crlf(raw))) == 1
    assert_same_tree(raw)
    assert_same_tree(crlf(raw))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("endings", ["as-is", "crlf"])
def test_fixtures_give_the_same_tree(path: Path, endings: str, every_run: None) -> None:
    raw = path.read_bytes()
    assert_same_tree(raw if endings == "as-is" else crlf(raw))


def test_corpus_mails_give_the_same_tree(every_run: None) -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"no corpus at {CORPUS}")
    names = [
        p
        for p in sorted(CORPUS.rglob("*"))
        if p.is_file() and p.suffix not in (".json", ".md", ".csv", ".py", ".jsonl", ".html")
    ]
    assert len(names) > 200
    for path in names:
        raw = path.read_bytes()
        assert_same_tree(raw)
        assert_same_tree(crlf(raw))


@pytest.mark.parametrize("index", range(12))
def test_generated_attachment_mails_give_the_same_tree(index: int, every_run: None) -> None:
    raw = _attachment_mail(index, 3_000 + 997 * index)
    assert_same_tree(raw)
    assert_same_tree(crlf(raw))


def _lines(count: int, width: int = 60, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(B64) for _ in range(width)) for _ in range(count)]


RUN = "\n".join(_lines(5))
EDGE_CASES = {
    # The run right after the headers, without the blank line: it ends the header block.
    "no-blank-line": f"Subject: x\nContent-Type: text/plain\n{RUN}\nmore text\n",
    "only-a-run": f"{RUN}\n",
    "no-final-newline": f"Subject: x\n\n{RUN}",
    "run-then-boundary": (
        'Subject: x\nContent-Type: multipart/mixed; boundary="b"\n\n'
        f"{RUN}\n--b\nContent-Transfer-Encoding: base64\n\n{RUN}\n--b\n\n{RUN}\n--b--\n{RUN}\n"
    ),
    "preamble-and-epilogue": (
        'Subject: x\nContent-Type: multipart/mixed; boundary="b"\n\n'
        f"{RUN}\n\n--b\n\n{RUN}\n\n--b--\n\n{RUN}\n\n"
    ),
    "no-start-boundary": (
        f'Subject: x\nContent-Type: multipart/mixed; boundary="b"\n\n{RUN}\n--c\n{RUN}\n'
    ),
    "no-close-boundary": f'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\n{RUN}\n',
    "no-boundary": f"Content-Type: multipart/mixed\n\n{RUN}\n",
    "delivery-status": (
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; x\n{RUN}\n\nFinal-Recipient: rfc822; a@b\n\n{RUN}\n--b--\n"
    ),
    "nested-message": (
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: message/rfc822\n\n'
        'Subject: inner\nContent-Type: multipart/mixed; boundary="c"\n\n--c\n\n'
        f"{RUN}\n--c--\n\n--b--\n"
    ),
    "message-without-headers": f"Content-Type: message/rfc822\n\n{RUN}\n",
    "widths-vary": "Subject: x\n\n" + "\n".join(_lines(3, 60) + _lines(3, 64) + _lines(3, 60)),
    "bad-line-inside": "Subject: x\n\n" + "\n".join([*_lines(3), "-" * 60, *_lines(3)]) + "\n",
    "colon-inside": "Subject: x\n\n" + "\n".join([*_lines(3), "A" * 30 + ":" + "A" * 29]) + "\n",
    "space-inside": "Subject: x\n\n" + "\n".join([*_lines(3), "A" * 30 + " " + "A" * 29]) + "\n",
    "blank-lines-between": "Subject: x\n\n" + "\n\n".join(_lines(4)) + "\n",
    "short-last-line": f"Subject: x\n\n{RUN}\nQUJD\n--\n",
    "mark-in-text": f"Subject: QcasedeskRunQ0QcasedeskRunQ\n\n{RUN}\nQcasedeskRunQ1QcasedeskRunQ\n",
    "from-line": f"From someone\nSubject: x\n\n{RUN}\nFrom x\n",
    # 8-bit text in the same part as a run: the part's string holds surrogate escapes.
    "8bit-text-and-run": (
        f"Subject: x\nContent-Type: text/plain; charset=utf-8\n\n你好，日志：\n{RUN}\n结束\n"
    ),
    "8bit-headers": f"Subject: 你好\nContent-Type: text/plain; charset=gbk\n\n{RUN}\n",
}


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
@pytest.mark.parametrize("endings", ["\n", "\r\n", "\r", "mixed"])
def test_edge_cases_give_the_same_tree(text: str, endings: str, every_run: None) -> None:
    if endings == "mixed":
        lines = text.split("\n")
        text = "".join(line + ("\r\n" if i % 3 == 1 else "\n") for i, line in enumerate(lines))
    else:
        text = text.replace("\n", endings)
    assert_same_tree(text.encode("utf-8"))


def test_mixed_line_endings_in_a_run_are_not_tokenised(every_run: None) -> None:
    lines = _lines(6)
    raw = ("Subject: x\n\n" + lines[0] + "\n" + lines[1] + "\r\n" + "\n".join(lines[2:])).encode()
    runs = parsed_email._base64_runs(raw)
    assert all(raw[start:end].count(b"\r") == 0 for start, end in runs)
    assert_same_tree(raw)


_PIECES = [
    "Subject: x",
    "Content-Type: multipart/mixed; boundary=b",
    "Content-Type: message/rfc822",
    "Content-Type: message/delivery-status",
    "Content-Transfer-Encoding: base64",
    " folded",
    "--b",
    "--b--",
    "",
    "From x",
    "text with: colon",
    *_lines(4, 40, seed=1),
    *_lines(4, 76, seed=2),
    "QUJD",
    "你好，日志：",  # 8-bit bytes: surrogate escapes in the parser's strings
    "Content-Type: text/plain; charset=gbk",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_PIECES), st.sampled_from(["\n", "\r\n", "\r"])),
        max_size=40,
    ),
    st.booleans(),
)
@example([("Subject: x", "\n"), ("", "\n"), (_lines(1)[0], "\n"), (_lines(1)[0], "")], True)
def test_generated_line_sequences_give_the_same_tree(
    lines: list[tuple[str, str]], last_ending: bool
) -> None:
    raw = "".join(text + ending for text, ending in lines)
    if lines and not last_ending:
        raw = raw.rstrip("\r\n")
    original = parsed_email.MIN_RUN_LINES
    parsed_email.MIN_RUN_LINES = 1
    try:
        assert_same_tree(raw.encode("utf-8"))
    finally:
        parsed_email.MIN_RUN_LINES = original


def test_base64_bodies_decode_as_before() -> None:
    data = random.Random(3).randbytes(50_000)
    raw = _attachment_mail(3, 50_000)
    parts = [p for p in parse_mime(raw).walk() if p.get_filename() == "a.bin"]
    assert parts[0].get_payload(decode=True) == data
    assert base64.b64encode(data)[:76].decode() in parts[0].get_payload()


def _old_guess_language(text: str) -> str:
    """What guess_language was: a character loop in Python."""
    sample = text[:4000]
    cjk = sum(1 for ch in sample if "\u4e00" <= ch <= "\u9fff")
    latin = sum(1 for ch in sample if ch.isascii() and ch.isalpha())
    return "zh" if cjk and cjk * 3 >= latin * 0.5 else "en"


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["\u4dff", "\u4e00", "\u9fff", "\ua000", "é", "ß", "\udc80", "Ａ"]),
            st.sampled_from(["问题", "登录", "Error", "a", "Z", " ", "\n", "1", "_"]),
            st.text(max_size=5),
        ),
        max_size=60,
    ),
    st.integers(min_value=0, max_value=4100),
)
@example(["a" * 3999, "问"], 0)
@example(["问" * 4000, "a" * 9000], 0)
def test_guess_language_counts_as_before(pieces: list[str], padding: int) -> None:
    text = "x" * padding + "".join(pieces)
    for candidate in (text, "".join(pieces)):
        assert parsed_email.guess_language(candidate) == _old_guess_language(candidate)


@pytest.mark.parametrize(
    "values",
    [
        ["support@casedesk.test"],
        ['"张三" <z@example.cn>, Bob <b@example.com>', "c@example.com"],
        ["=?utf-8?b?5byg5LiJ?= <z@example.cn>"],
        ["undisclosed-recipients:;"],
        ["a@b.c, " * 400],  # longer than what is kept
        [],
    ],
)
def test_kept_address_answers_are_the_standard_librarys(values: list[str]) -> None:
    for _ in range(2):  # the second time from the cache
        assert list(parsed_email._address_list(values)) == email.utils.getaddresses(values)
        for value in values:
            assert parsed_email._parse_address(value) == email.utils.parseaddr(value)


@pytest.mark.parametrize("hint", [None, "gbk", "utf-8"])
@pytest.mark.parametrize(
    "value",
    [
        "=?gb2312?b?1cXI/Q==?= <z@example.cn>",
        "\udcd5\udcc5\udcc8\udcfd",  # raw 8-bit GBK, as compat32 keeps it
        "Re: =?utf-8?q?=E9=97=AE=E9=A2=98?=",
        "=?utf-8?b?" + "5byg5LiJ" * 300 + "?=",  # longer than what is kept
        "",
    ],
)
def test_kept_header_values_are_what_decoding_gives(value: str, hint: str | None) -> None:
    expected = parsed_email.decode_header_value(value, hint=hint)
    for _ in range(2):  # the second time from the cache
        assert parsed_email._decode_header(value, hint) == expected


# base64 payloads decoded without the line list ------------------------------------------------
def _part(payload: str, encoding: str | None) -> Message:
    part = Message()
    if encoding is not None:
        part["Content-Transfer-Encoding"] = encoding
    part.set_payload(payload)
    return part


def _all_parts() -> list[Message]:
    raws = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]
    raws += [_attachment_mail(i, 500 + 311 * i) for i in range(6)]
    if CORPUS.is_dir():
        raws += [p.read_bytes() for p in sorted((CORPUS / "parse-imap_tools").rglob("*.eml"))]
    parts = []
    for raw in raws:
        for variant in (raw, crlf(raw)):
            parts += [p for p in message_from_bytes(variant, policy=compat32).walk()]
    return parts


def test_decoded_payloads_are_get_payloads() -> None:
    parts = _all_parts()
    assert sum(1 for p in parts if p.get("content-transfer-encoding", "").lower() == "base64") > 50
    for part in parts:
        ours = parsed_email._decoded_payload(part)
        assert ours == part.get_payload(decode=True)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(["QUJD", "QUI=", "QQ==", "AAAA", "=", "*", "\n", "\r\n", "\r", "é", " "])
        | st.sampled_from(["\udce9", "\x0b", "-", "QUJDRA"]),
        max_size=30,
    ),
    st.sampled_from(["base64", "BASE64", " base64", "quoted-printable", "7bit", None]),
)
@example(["QUJD", "\r", "QUJD"], "base64")
@example(["QUJ", "\n", "D"], "base64")
@example(["QUJ"], "base64")
def test_decoded_payloads_with_their_defects(pieces: list[str], encoding: str | None) -> None:
    ours_part, theirs_part = (_part("".join(pieces), encoding) for _ in range(2))
    assert _outcome(parsed_email._decoded_payload, ours_part) == _outcome(
        lambda part: part.get_payload(decode=True), theirs_part
    )
    assert [type(d) for d in ours_part.defects] == [type(d) for d in theirs_part.defects]


def _outcome(decode: Any, part: Message) -> Any:
    try:
        return decode(part)
    except UnicodeError as error:  # 8-bit text mixed with other non-ASCII: both raise
        return type(error)


@pytest.mark.parametrize("endings", ["lf", "crlf"])
def test_clean_base64_is_decoded_without_get_payload(
    endings: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _attachment_mail(2, 30_000)
    message = parse_mime(raw if endings == "lf" else crlf(raw))
    (part,) = [p for p in message.walk() if p.get_filename() == "a.bin"]
    expected = part.get_payload(decode=True)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the fast path was not taken")

    monkeypatch.setattr(part, "get_payload", refuse)
    assert parsed_email._decoded_payload(part) == expected == random.Random(2).randbytes(30_000)
