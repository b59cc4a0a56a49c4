"""Composing outgoing mail: identity, threading, headers, header-injection, digests."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from pydantic import SecretStr

from mapping.outgoing_mail import (
    ComposeError,
    InvalidAddress,
    OutboxMessage,
    SenderIdentity,
    compose,
    compose_digest,
    digest_key,
    is_role_address,
    message_id_for,
    parse_message_id,
)
from tests.mapping.mail_samples import NOW, SUBMITTER_NAME, USER_MESSAGE_ID, full_case

USER = "zhang.sf@example.cn"

IDENTITY = SenderIdentity(
    from_address="support@example.cn",
    from_name="技术支持 Support",
    message_id_domain="casedesk.example.cn",
    signing_secret=SecretStr("test-signing-secret"),
)


def test_our_message_id_parses_back_to_case_kind_and_round() -> None:
    message_id = message_id_for("202405-001/feedback_request/2", IDENTITY)
    for form in (message_id, f"<{message_id}>", f"  <{message_id}> "):
        ref = parse_message_id(form, IDENTITY)
        assert ref is not None
        assert (ref.case_number, ref.kind, ref.round_number) == (
            "202405-001",
            "feedback_request",
            2,
        )


def test_digest_message_id_parses_back_without_a_case() -> None:
    ref = parse_message_id(
        message_id_for(digest_key("lead_digest", "20240520T08"), IDENTITY), IDENTITY
    )
    assert ref is not None
    assert (ref.case_number, ref.kind, ref.period) == (None, "lead_digest", "20240520T08")


def test_foreign_forged_or_other_domain_message_ids_are_not_ours() -> None:
    genuine = message_id_for("202405-001/confirmation/1", IDENTITY)
    local, _, _ = genuine.partition("@")
    forged = genuine.replace("202405-001", "202405-002")
    other_secret = IDENTITY.model_copy(update={"signing_secret": SecretStr("another")})
    assert parse_message_id(forged, IDENTITY) is None
    assert parse_message_id(f"{local}@elsewhere.example", IDENTITY) is None
    assert parse_message_id(genuine, other_secret) is None
    assert parse_message_id("CAF=abc123@mail.gmail.com", IDENTITY) is None
    assert parse_message_id("", IDENTITY) is None


# Headers ---------------------------------------------------------------------------------------
def _headers(outgoing: OutboxMessage) -> EmailMessage:
    message = message_from_bytes(outgoing.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_same_case_kind_and_round_give_the_same_key_and_message_id() -> None:
    first = compose("progress", full_case(), recipients=[USER], identity=IDENTITY, now=NOW)
    later = compose(
        "progress",
        full_case(),
        recipients=[USER],
        identity=IDENTITY,
        now=NOW + timedelta(hours=1),
    )
    round_two = compose(
        "progress", full_case(), recipients=[USER], identity=IDENTITY, now=NOW, round_number=2
    )
    assert (first.key, first.message_id) == (later.key, later.message_id)
    assert round_two.key == "202405-001/progress/2" and round_two.message_id != first.message_id


def test_loop_and_thread_headers() -> None:
    user_mail = compose(
        "confirmation",
        full_case(),
        recipients=[USER],
        identity=IDENTITY,
        now=NOW,
        thread=["<root@mail.example.cn>", USER_MESSAGE_ID],
    )
    headers = _headers(user_mail)
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["X-Auto-Response-Suppress"] == "All"
    assert headers["In-Reply-To"].strip() == f"<{USER_MESSAGE_ID}>"
    assert headers["References"].split() == ["<root@mail.example.cn>", f"<{USER_MESSAGE_ID}>"]
    assert headers["Date"] == "Mon, 20 May 2024 14:00:00 +0800"
    team_mail = _headers(
        compose("assignment", full_case(), recipients=[USER], identity=IDENTITY, now=NOW)
    )
    assert team_mail["Auto-Submitted"] == "auto-generated"
    assert team_mail["In-Reply-To"] is None


INJECTIONS = [
    "Hello\r\nBcc: victim@example.com",
    "Hello\nBcc: victim@example.com",
    "Hello\rBcc: victim@example.com",
    "Hello\u2028Bcc: victim@example.com",
    "Hello\x00\x0bBcc: victim@example.com",
]


@pytest.mark.parametrize("subject", INJECTIONS)
def test_line_breaks_in_user_values_never_make_headers(subject: str) -> None:
    case = full_case()
    case.subject = subject
    identity = IDENTITY.model_copy(update={"from_name": "Support\r\nBcc: victim@example.com"})
    outgoing = compose(
        "confirmation",
        case,
        recipients=[USER],
        identity=identity,
        now=NOW,
        thread=[f"{USER_MESSAGE_ID}>\r\nBcc: victim@example.com", "<ok@mail.example.cn>"],
    )
    headers = _headers(outgoing)
    assert headers["Bcc"] is None
    assert "\n" not in headers["Subject"] and "\r" not in headers["Subject"]
    assert "Hello Bcc: victim@example.com" in headers["Subject"]
    assert headers["References"].split() == ["<ok@mail.example.cn>"]
    head = outgoing.content.split(b"\r\n\r\n", 1)[0]
    assert not any(line.startswith(b"Bcc") for line in head.split(b"\r\n"))


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.com\r\nBcc: x@example.com",
        "Name <a@example.com>",
        "a@example.com, b@example.com",
        "no-at-sign",
        "a@localhost",
        "用户@example.cn",
        '"quoted"@example.com',
        "",
    ],
)
def test_bad_addresses_are_refused_with_a_clear_error(address: str) -> None:
    with pytest.raises(InvalidAddress, match=r"expected a plain address like name@example\.com"):
        compose("confirmation", full_case(), recipients=[address], identity=IDENTITY, now=NOW)


def test_a_bad_sender_address_is_refused_too() -> None:
    identity = IDENTITY.model_copy(update={"from_address": "support@example.cn\nBcc: x@y.cn"})
    with pytest.raises(InvalidAddress, match="invalid sender address"):
        compose("confirmation", full_case(), recipients=[USER], identity=identity, now=NOW)


def test_role_addresses_are_recognised() -> None:
    for address in ("MAILER-DAEMON@x.cn", "postmaster@x.cn", "noreply@x.cn", "no-reply+a@x.cn"):
        assert is_role_address(address), address
    for address in ("zhang@x.cn", "replyto@x.cn", "norepl@x.cn"):
        assert not is_role_address(address), address


def test_case_without_number_or_unknown_kind_is_a_compose_error() -> None:
    case = full_case()
    case.number = None
    with pytest.raises(ComposeError, match="no number yet"):
        compose("confirmation", case, recipients=[USER], identity=IDENTITY, now=NOW)
    with pytest.raises(ComposeError, match="no template"):
        compose("no_such_kind", full_case(), recipients=[USER], identity=IDENTITY, now=NOW)
    with pytest.raises(ComposeError, match="period"):
        compose_digest(
            "lead_digest", [], recipients=[USER], identity=IDENTITY, now=NOW, period="a/b"
        )


def test_team_mail_never_shows_the_submitters_name_or_address() -> None:
    for kind in ("assignment", "escalation"):
        outgoing = compose(kind, full_case(), recipients=[USER], identity=IDENTITY, now=NOW)
        decoded = _headers(outgoing).get_body(("plain",))
        assert decoded is not None
        text = decoded.get_content()
        assert SUBMITTER_NAME not in text and "zhang.sf@example.cn" not in text
