"""Settings: defaults, file, environment, secrets masked, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.settings import FolderMailerSettings, ImapMailboxSettings, load_settings
from mapping.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CASEDESK_") and name != "CASEDESK_REQUIRE_SERVICES":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_without_a_file_the_embedded_default_needs_no_server(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/var/casedesk.db"
    assert settings.mailboxes[0].kind == "maildir"
    assert isinstance(settings.mailer, FolderMailerSettings)
    assert settings.mailer.path == tmp_path.resolve() / "var/outbox"


def test_file_values_and_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "conf" / "casedesk.toml"
    config.parent.mkdir()
    config.write_text(
        """
database_url = "sqlite:///data/cases.db"
[[mailboxes]]
kind = "imap"
name = "support"
host = "imap.example.com"
user = "support@example.com"
password = "imap-secret"
[outgoing]
from_address = "support@example.com"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("CASEDESK_OUTGOING__FROM_ADDRESS", "help@example.com")
    settings = load_settings(config)
    assert settings.database_url == f"sqlite:///{config.parent.resolve()}/data/cases.db"
    mailbox = settings.mailboxes[0]
    assert isinstance(mailbox, ImapMailboxSettings)
    assert mailbox.password.get_secret_value() == "imap-secret"
    assert settings.outgoing.from_address == "help@example.com"
    dumped = str(settings.redacted())
    assert "imap-secret" not in dumped and "**********" in dumped


def test_relative_paths_are_taken_from_the_settings_file(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "casedesk.toml"
    config.parent.mkdir()
    config.write_text(
        """
[[mailboxes]]
kind = "imap"
host = "imap.example.com"
user = "support"
password = "x"
ca_file = "certs/team-ca.pem"
[mailer]
kind = "smtp"
host = "smtp.example.com"
ca_file = "/etc/ssl/team-ca.pem"
""",
        encoding="utf-8",
    )
    settings = load_settings(config)
    mailbox = settings.mailboxes[0]
    assert isinstance(mailbox, ImapMailboxSettings)
    assert mailbox.ca_file == config.parent.resolve() / "certs/team-ca.pem"
    assert getattr(settings.mailer, "ca_file", None) == Path("/etc/ssl/team-ca.pem")


def test_an_invalid_value_names_the_file_and_the_key(tmp_path: Path) -> None:
    config = tmp_path / "casedesk.toml"
    config.write_text('batch_size = 0\ntimezone = "Asia/Shanghai"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert str(config) in message and "'batch_size'" in message and "greater than" in message


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "casedesk.toml"
    config.write_text("[mailer]\nkind = 'folder'\npaht = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"at 'mailer\.folder\.paht': Extra inputs"):
        load_settings(config)


def test_broken_toml_and_a_missing_file_are_clear(tmp_path: Path) -> None:
    config = tmp_path / "casedesk.toml"
    config.write_text("database_url = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_an_unknown_time_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEDESK_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        load_settings()


def test_the_example_file_is_valid() -> None:
    example = Path(__file__).parents[2] / "casedesk.example.toml"
    settings = load_settings(example)
    assert settings.outgoing.signing_secret.get_secret_value()


def test_jira_accounts_are_keyed_by_address(tmp_path: Path) -> None:
    config = tmp_path / "casedesk.toml"
    config.write_text(
        '[jira.accounts]\n"Wang.Fang@Example.cn" = " 5b109f2e9729b51b54dc274d "\n', encoding="utf-8"
    )
    assert load_settings(config).jira.accounts == {
        "wang.fang@example.cn": "5b109f2e9729b51b54dc274d"
    }
    config.write_text('[jira.accounts]\n"王芳" = "wang.fang"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"keyed by the owner's email address.*'王芳'"):
        load_settings(config)
