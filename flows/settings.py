"""casedesk's settings: `casedesk.toml` (or the file in CASEDESK_CONFIG), then CASEDESK_* variables.

Nested keys come from the environment with a double underscore, e.g.
`CASEDESK_MAILER__PASSWORD` or `CASEDESK_JIRA__TOKEN`. Secrets are `SecretStr`: they print as
`**********` everywhere, `casedesk config check` included. Relative paths are taken from the
folder of the settings file (or the working folder when there is none).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mapping.case import Language, Priority
from mapping.errors import ConfigError
from mapping.jira_issue import JiraMapping

__all__ = [
    "FolderMailerSettings",
    "ImapMailboxSettings",
    "JiraSettings",
    "MaildirMailboxSettings",
    "Settings",
    "SmtpMailerSettings",
    "load_settings",
]

DEFAULT_CONFIG_NAME = "casedesk.toml"
_Section_T = TypeVar("_Section_T", bound=BaseModel)


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class MaildirMailboxSettings(_Section):
    """A local Maildir folder: the embedded default, no server needed."""

    kind: Literal["maildir"] = "maildir"
    name: str = "support"
    path: Path = Path("var/mailbox")


class ImapMailboxSettings(_Section):
    """A real IMAP mailbox."""

    kind: Literal["imap"]
    name: str = "support"
    host: str
    port: int | None = Field(default=None, description="Default: 993 for ssl, 143 otherwise.")
    security: Literal["ssl", "starttls", "plain"] = "ssl"
    user: str
    password: SecretStr
    folder: str = "INBOX"
    processed: Literal["flag", "move"] = "flag"
    processed_keyword: str = "$casedesk"
    processed_folder: str = "casedesk-processed"
    mark_seen: bool = False
    timeout_seconds: float = 30.0
    ca_file: Path | None = Field(
        default=None, description="Trust this CA bundle (a server certificate from a private CA)."
    )


MailboxSettings = Annotated[
    MaildirMailboxSettings | ImapMailboxSettings, Field(discriminator="kind")
]


class FolderMailerSettings(_Section):
    """Write each outgoing message as an .eml file into a folder: the embedded default."""

    kind: Literal["folder"] = "folder"
    path: Path = Path("var/outbox")


class SmtpMailerSettings(_Section):
    """Send through an SMTP server."""

    kind: Literal["smtp"]
    host: str
    port: int | None = Field(default=None, description="Default: 465 for ssl, 587 starttls, 25.")
    security: Literal["ssl", "starttls", "plain"] = "starttls"
    user: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = 30.0
    ca_file: Path | None = Field(
        default=None, description="Trust this CA bundle (an internal relay's own certificate)."
    )
    local_hostname: str | None = Field(default=None, description="Our name in EHLO.")


MailerSettings = Annotated[FolderMailerSettings | SmtpMailerSettings, Field(discriminator="kind")]


class OutgoingSettings(_Section):
    """Who our mail comes from and how it is kept from looping."""

    from_address: str = "support@casedesk.invalid"
    from_name: str = "技术支持 Support"
    message_id_domain: str = "casedesk.invalid"
    signing_secret: SecretStr = SecretStr("change-me-casedesk-signing-secret")
    lead_address: str | None = Field(default=None, description="Gets triage and P0/P1 notices.")
    per_recipient_10min: int = 10
    per_recipient_day: int = 50
    max_attempts: int = 8


class JiraSettings(_Section):
    """The Jira project casedesk syncs with; see docs/jira.md for every key and an example."""

    enabled: bool = False
    url: str = ""
    flavor: Literal["cloud", "dc"] = "cloud"
    user: str | None = Field(default=None, description="Cloud: the account's email.")
    token: SecretStr = SecretStr("")
    project: str = ""
    page_size: int = Field(default=100, ge=2, le=1000)
    overlap_minutes: int = Field(default=2, ge=1)
    time_zone: str | None = Field(
        default=None,
        description="The Jira user's time zone (JQL dates are read in it); None: ask Jira once "
        "per run (one /myself request).",
    )
    timeout_seconds: float = Field(default=30.0, gt=0)
    mapping: JiraMapping = Field(default_factory=JiraMapping)
    push_email_cases: bool = Field(
        default=True, description="Create a Jira issue for every open email-born case."
    )
    issue_type: str = "Task"
    create_labels: list[str] = Field(default_factory=lambda: ["casedesk"])
    create_components: list[str] = Field(default_factory=list)
    priority_names: dict[Priority, str] = Field(
        default_factory=lambda: {
            Priority.P0: "Highest",
            Priority.P1: "High",
            Priority.P2: "Medium",
        },
        description="Case priority -> Jira priority name, for issues casedesk creates.",
    )
    push_assignments: bool = Field(
        default=True,
        description="Make the owner casedesk chose (by rule) the assignee of the case's Jira "
        "issue, unless a person assigned it in Jira.",
    )
    accounts: dict[str, str] = Field(
        default_factory=dict,
        description="Owner email -> their Jira account (Cloud: account id; Data Center: "
        "username), for people Jira does not find by their address.",
    )
    close_transition: str = Field(default="Close", description="When the user confirms the fix.")
    reopen_transition: str = Field(default="Reopen", description="When the user says it is not.")
    reopen_when_partially: bool = Field(
        default=True, description="A 'partially resolved' answer reopens the issue too."
    )

    @field_validator("accounts")
    @classmethod
    def _keyed_by_address(cls, value: dict[str, str]) -> dict[str, str]:
        names = [name for name in value if "@" not in name]
        if names:
            raise ValueError(
                "accounts are keyed by the owner's email address (as the rules name people), "
                f"not {', '.join(map(repr, names))}"
            )
        return {name.strip().casefold(): account.strip() for name, account in value.items()}


def _default_mailboxes() -> list[MailboxSettings]:
    """The embedded default: one local Maildir folder."""
    return [MaildirMailboxSettings()]


class Settings(BaseSettings):
    """Everything casedesk needs to run; see casedesk.example.toml for every key."""

    model_config = SettingsConfigDict(
        env_prefix="CASEDESK_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = "sqlite:///var/casedesk.db"
    timezone: str = "Asia/Shanghai"
    default_language: Language = Language.ZH
    data_dir: Path = Path("var")
    batch_size: int = Field(default=200, ge=1, le=500)
    max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    parse_workers: int | None = Field(
        default=None,
        ge=0,
        le=16,
        description="Processes that parse the next batches of mail while one is written; "
        "default 1 on a machine with two or more cores, 0 (parse in-process) on one.",
    )
    rules_path: Path | None = Field(default=None, description="Default: the shipped rule set.")
    schedule_minutes: int = Field(
        default=5, ge=1, description="How often `casedesk serve` runs the whole pass."
    )
    mailboxes: list[MailboxSettings] = Field(default_factory=lambda: _default_mailboxes())
    mailer: MailerSettings = Field(default_factory=FolderMailerSettings)
    outgoing: OutgoingSettings = Field(default_factory=OutgoingSettings)
    jira: JiraSettings = Field(default_factory=JiraSettings)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r} (use e.g. 'Asia/Shanghai')") from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def jira_overlap(self) -> timedelta:
        return timedelta(minutes=self.jira.overlap_minutes)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, which is passed in as init values.
        return (env_settings, init_settings)

    def resolve_paths(self, base: Path) -> Settings:
        """Make relative paths (and a relative SQLite file) absolute against `base`."""

        def absolute(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        update: dict[str, Any] = {"data_dir": absolute(self.data_dir)}
        if self.rules_path is not None:
            update["rules_path"] = absolute(self.rules_path)
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix) and not self.database_url.startswith(prefix + "/"):
            relative = self.database_url.removeprefix(prefix)
            if relative and relative != ":memory:":
                update["database_url"] = prefix + str(absolute(Path(relative)))
        update["mailboxes"] = [_absolute_paths(m, absolute) for m in self.mailboxes]
        update["mailer"] = _absolute_paths(self.mailer, absolute)
        return self.model_copy(update=update)

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, every secret masked."""
        return self.model_dump(mode="json")


def _absolute_paths(section: _Section_T, absolute: Callable[[Path], Path]) -> _Section_T:
    """The section with every path in it (a Maildir, an outbox folder, a CA file) absolute."""
    paths = {
        name: absolute(value)
        for name in type(section).model_fields
        if isinstance(value := getattr(section, name), Path)
    }
    return section.model_copy(update=paths) if paths else section


def config_path(explicit: Path | None = None) -> Path | None:
    """The settings file in use: --config, then CASEDESK_CONFIG, then ./casedesk.toml if any."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("CASEDESK_CONFIG")
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.exists() else None


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the settings; any problem is a ConfigError naming file, key and reason."""
    source = config_path(path)
    values: dict[str, Any] = {}
    if source is not None:
        try:
            values = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise ConfigError("the settings file does not exist", source=str(source)) from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"not valid TOML: {error}", source=str(source)) from error
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read it: {error}", source=str(source)) from error
    try:
        settings = Settings(**values)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        where = str(source) if source is not None else "the environment (CASEDESK_*)"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ConfigError(f"{first['msg']}{more}", source=where, key=key) from error
    base = source.resolve().parent if source is not None else Path.cwd()
    return settings.resolve_paths(base)
