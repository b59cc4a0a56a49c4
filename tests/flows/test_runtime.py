"""Connectors and contexts are built from the settings, every setting carried through."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from connectors.folder_mailer import FolderMailer
from connectors.maildir_mailbox import MaildirMailbox
from flows.runtime import build_mailbox, build_mailer, intake_context, sender_identity
from flows.settings import MaildirMailboxSettings, Settings
from mapping.case import Language
from mapping.errors import ConfigError


def test_sender_identity_carries_language_and_zone() -> None:
    settings = Settings(default_language=Language.EN, timezone="Europe/Berlin")
    identity = sender_identity(settings)
    assert identity.default_language == "en"
    assert identity.timezone == "Europe/Berlin"


def test_the_embedded_default_builds_a_maildir_and_a_folder_mailer(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path).resolve_paths(tmp_path)
    with ExitStack() as stack:
        assert isinstance(build_mailbox(settings, 0, stack), MaildirMailbox)
        mailer = build_mailer(settings, stack)
        assert isinstance(mailer, FolderMailer)
        assert mailer.path == tmp_path / "var/outbox"


def test_two_mailboxes_with_one_name_are_refused() -> None:
    twice = [MaildirMailboxSettings(name="support"), MaildirMailboxSettings(name="support")]
    with pytest.raises(ConfigError, match="two mailboxes share a name"):
        intake_context(Settings(mailboxes=twice))
