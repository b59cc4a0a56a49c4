"""Composing outgoing mail: identity, threading, headers, header-injection, digests."""

from __future__ import annotations

from pydantic import SecretStr

from mapping.outgoing_mail import (
    SenderIdentity,
    digest_key,
    message_id_for,
    parse_message_id,
)

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
