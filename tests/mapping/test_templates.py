"""Every template renders in both languages, full and minimal case; a language is a folder."""

from __future__ import annotations

import os
import re
import shutil
import time
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from mapping import outgoing_mail
from mapping.case import Case
from mapping.outgoing_mail import (
    DIGEST_KINDS,
    EMAIL_TEMPLATES_DIR,
    TEAM_KINDS,
    USER_KINDS,
    ComposeError,
    MailTemplates,
    OutboxMessage,
    compose,
    compose_digest,
)
from tests.mapping.mail_samples import IDENTITY, NOW, SUBMITTER_NAME, full_case, minimal_case

LANGUAGES = ["zh", "en"]
CASE_KINDS = sorted(USER_KINDS | TEAM_KINDS)
SHAPES = {"full": full_case, "minimal": minimal_case}


def parts(outgoing: OutboxMessage) -> tuple[EmailMessage, str, str]:
    message = message_from_bytes(outgoing.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return message, text.get_content(), html.get_content()


def check_html(html: str) -> None:
    """Inline styles only, nothing fetched from anywhere, nothing executable."""
    lowered = html.lower()
    for forbidden in ("<style", "<link", "<script", "<img", "<iframe", "src=", "url(", "http"):
        assert forbidden not in lowered, forbidden


def test_every_language_has_every_kind_in_both_formats() -> None:
    for language in LANGUAGES:
        for kind in [*CASE_KINDS, *DIGEST_KINDS]:
            for suffix in ("txt", "html"):
                assert (EMAIL_TEMPLATES_DIR / language / f"{kind}.{suffix}.j2").is_file()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("kind", CASE_KINDS)
def test_case_mail_renders(kind: str, shape: str, language: str) -> None:
    case: Case = SHAPES[shape](language)
    outgoing = compose(
        kind,
        case,
        recipients=["someone@example.cn"],
        identity=IDENTITY,
        now=NOW,
        deadline=NOW + timedelta(days=3),
    )
    message, text, html = parts(outgoing)
    assert message["Subject"].startswith(f"[Case {case.number}] ")
    assert message["Content-Language"] == language
    assert case.number in text and case.number in html
    assert "{{" not in text and "{%" not in text and "None" not in text
    check_html(html)
    if language == "en":  # the English mail has no Chinese of its own (case data aside)
        own_words = text.replace(case.subject, "").replace(case.description, "")
        assert "您好" not in own_words and "技术支持团队" not in own_words
    if kind == "feedback_request":
        assert all(option in text for option in ("1 ", "2 ", "3 ", "已解决", "部分解决", "未解决"))
    if shape == "full":
        assert "&lt;script&gt;" in html or kind not in ("confirmation", "assignment")
        if kind in TEAM_KINDS:
            assert SUBMITTER_NAME not in text and SUBMITTER_NAME not in html
            if kind == "assignment":
                assert "张* (销售部)" in text
        if kind == "confirmation":
            assert "知识库-系统故障-验证码模块问题处理指南" in text  # related knowledge
            assert "2024-05-21 10:00" in text  # expected resolution, in the team's time zone


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", sorted(DIGEST_KINDS))
def test_digests_render_over_several_cases_and_none(kind: str, language: str) -> None:
    cases = [full_case(language), minimal_case(language)]
    later = NOW + timedelta(days=1)  # the full case is overdue by then
    outgoing = compose_digest(
        kind,
        cases,
        recipients=["lead@example.cn"],
        identity=IDENTITY,
        now=later,
        period="2024-W21",
        language=language,
    )
    message, text, html = parts(outgoing)
    assert message["Auto-Submitted"] == "auto-generated"
    assert outgoing.case_number is None and outgoing.key == f"digest/{kind}/2024-W21"
    assert "202405-001" in text and "202405-002" in text and "202405-001" in html
    assert SUBMITTER_NAME not in text and SUBMITTER_NAME not in html
    check_html(html)
    if kind == "lead_digest":
        assert ("已超期" if language == "zh" else "OVERDUE") in text
        assert "接口响应时间超5秒" in text  # the latest progress entries
    empty = compose_digest(
        kind, [], recipients=["lead@example.cn"], identity=IDENTITY, now=later, period="2024-W22"
    )
    assert parts(empty)[1]


def test_language_falls_back_to_the_default() -> None:
    case = full_case("en")
    fallback = IDENTITY.model_copy(update={"default_language": "zh"})
    outgoing = compose(
        "confirmation", case, recipients=["a@example.cn"], identity=fallback, now=NOW, language="fr"
    )
    assert parts(outgoing)[0]["Content-Language"] == "zh"


def test_a_new_language_is_a_folder_of_files(tmp_path: Path) -> None:
    root = tmp_path / "email"
    shutil.copytree(EMAIL_TEMPLATES_DIR, root)
    french = root / "fr"
    shutil.copytree(root / "en", french)
    for file in french.iterdir():
        content = file.read_text(encoding="utf-8")
        content = content.replace("Hello", "Bonjour").replace("Received: ", "Reçu : ")
        file.write_text(content, encoding="utf-8")
    templates = MailTemplates(root)
    assert "fr" in templates.languages()
    outgoing = compose(
        "confirmation",
        full_case("en"),
        recipients=["a@example.cn"],
        identity=IDENTITY,
        now=NOW,
        language="fr",
        templates=templates,
    )
    message, text, _ = parts(outgoing)
    assert message["Subject"].startswith("[Case 202405-001] Reçu : ")
    assert text.startswith("Bonjour 张三丰")
    assert message["Content-Language"] == "fr"


def test_a_missing_template_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "email"
    shutil.copytree(EMAIL_TEMPLATES_DIR, root)
    (root / "en" / "progress.html.j2").unlink()
    with pytest.raises(ComposeError, match=r"progress\.html\.j2"):
        compose(
            "progress",
            full_case("en"),
            recipients=["a@example.cn"],
            identity=IDENTITY,
            now=NOW,
            templates=MailTemplates(root),
        )


def test_text_is_tidy() -> None:
    _, text, _ = parts(
        compose(
            "confirmation", minimal_case("en"), recipients=["a@b.cn"], identity=IDENTITY, now=NOW
        )
    )
    assert "\n\n\n" not in text
    assert not re.search(r"[ \t]+\n", text)


def test_a_template_that_fails_or_has_no_subject_is_a_compose_error(tmp_path: Path) -> None:
    root = tmp_path / "email"
    shutil.copytree(EMAIL_TEMPLATES_DIR, root)
    (root / "en" / "progress.txt.j2").write_text(
        '{% extends lang ~ "/_to_user.txt.j2" %}{% block subject %}s{% endblock %}'
        "{% block content %}{{ no_such_value }}{% endblock %}",
        encoding="utf-8",
    )
    (root / "en" / "escalation.txt.j2").write_text("no subject block", encoding="utf-8")
    templates = MailTemplates(root)
    for kind, error in [
        ("progress", r"failed to render: 'no_such_value' is undefined"),
        ("escalation", r"escalation\.txt\.j2 has no \{% block subject %\}"),
    ]:
        with pytest.raises(ComposeError, match=error):
            compose(
                kind,
                full_case("en"),
                recipients=["a@example.cn"],
                identity=IDENTITY,
                now=NOW,
                templates=templates,
            )


def test_rendering_twice_gives_the_same_mail() -> None:
    """Templates, their imports and the language list are cached: nothing carries over."""
    first = [
        compose(kind, full_case(language), recipients=["a@b.cn"], identity=IDENTITY, now=NOW)
        for language in LANGUAGES
        for kind in CASE_KINDS
    ]
    again = [
        compose(kind, case, recipients=["a@b.cn"], identity=IDENTITY, now=NOW)
        for language in LANGUAGES
        for kind, case in zip(CASE_KINDS, [full_case(language)] * len(CASE_KINDS), strict=True)
    ]
    assert [parts(mail)[1:] for mail in first] == [parts(mail)[1:] for mail in again]


def test_an_edited_default_template_is_read_again_at_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `casedesk serve` calls at the start of each run: nothing changed, nothing dropped;
    an edit (or a new file) drops the compiled templates, so the next mail uses the new text."""
    root = tmp_path / "email"
    shutil.copytree(EMAIL_TEMPLATES_DIR, root)
    monkeypatch.setattr(outgoing_mail, "EMAIL_TEMPLATES_DIR", root)
    monkeypatch.setattr(outgoing_mail, "_templates_stamp", None)

    def subject_now() -> str:
        mail = compose(
            "confirmation", full_case("en"), recipients=["a@example.cn"], identity=IDENTITY, now=NOW
        )
        return mail.subject

    outgoing_mail._templates_for_zone.cache_clear()
    try:
        assert outgoing_mail.reload_templates_if_changed(root) is False  # the first look
        assert "EDITED" not in subject_now()
        assert outgoing_mail.reload_templates_if_changed(root) is False  # nothing changed
        template = root / "en" / "confirmation.txt.j2"
        text = template.read_text(encoding="utf-8")
        edited = text.replace("{% block subject %}", "{% block subject %}EDITED ")
        template.write_text(edited, encoding="utf-8")
        later = time.time_ns() + 10**9
        os.utime(template, ns=(later, later))
        assert "EDITED" not in subject_now()  # compiled once: not looked at on every mail
        assert outgoing_mail.reload_templates_if_changed(root) is True
        assert "EDITED" in subject_now()
    finally:
        outgoing_mail._templates_for_zone.cache_clear()
        outgoing_mail._environment.cache_clear()
