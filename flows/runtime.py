"""Builds the connectors a run needs from the settings; the only place that reads them."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from connectors.folder_mailer import FolderMailer
from connectors.mailbox import Mailbox
from connectors.maildir_mailbox import MaildirMailbox
from connectors.mailer import Mailer
from connectors.store import CaseStore
from flows.intake import IntakeContext
from flows.settings import FolderMailerSettings, MaildirMailboxSettings, Settings
from mapping.errors import ConfigError
from mapping.outgoing_mail import SenderIdentity

if TYPE_CHECKING:
    from connectors.jira_client import JiraClient

__all__ = ["build_mailbox", "build_mailer", "intake_context", "open_store", "sender_identity"]


def open_store(settings: Settings) -> CaseStore:
    if settings.database_url.startswith("sqlite:///"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return CaseStore.open(settings.database_url)


def build_mailbox(settings: Settings, index: int, stack: ExitStack) -> Mailbox:
    """The configured mailbox number `index`, closed when `stack` closes."""
    config = settings.mailboxes[index]
    mailbox: Mailbox
    if isinstance(config, MaildirMailboxSettings):
        mailbox = MaildirMailbox(config.name, config.path)
    else:
        from connectors.imap_mailbox import ImapMailbox  # only when configured

        mailbox = ImapMailbox.from_settings(config)
    stack.callback(mailbox.close)
    return mailbox


def build_mailer(settings: Settings, stack: ExitStack) -> Mailer:
    config = settings.mailer
    mailer: Mailer
    if isinstance(config, FolderMailerSettings):
        mailer = FolderMailer(config.path)
    else:
        from connectors.smtp_mailer import SmtpMailer  # only when configured

        mailer = SmtpMailer.from_settings(config)
    stack.callback(mailer.close)
    return mailer


def sender_identity(settings: Settings) -> SenderIdentity:
    outgoing = settings.outgoing
    return SenderIdentity(
        from_address=outgoing.from_address,
        from_name=outgoing.from_name,
        message_id_domain=outgoing.message_id_domain,
        signing_secret=outgoing.signing_secret,
        timezone=settings.timezone,
        default_language=settings.default_language.value,
    )


def intake_context(settings: Settings) -> IntakeContext:
    from flows.routing import make_router  # routing needs sender_identity from here

    names = [mailbox.name for mailbox in settings.mailboxes]
    if len(set(names)) != len(names):
        raise ConfigError(f"two mailboxes share a name: {names}", key="mailboxes")
    # Read the rules now, once per run: a bad file stops the run before any mail is read.
    router = make_router(settings)
    return IntakeContext(
        identity=sender_identity(settings),
        zone=settings.zone,
        max_message_bytes=settings.max_message_bytes,
        route_new_case=router,
        prematch=router.prematch,
    )


def build_jira_client(settings: Settings) -> JiraClient:
    """The Jira client for `settings.jira`; ConfigError naming the key when it is incomplete."""
    from pydantic import ValidationError

    from connectors.jira_client import JiraClient, JiraConnection  # only when Jira is on

    jira = settings.jira
    try:
        connection = JiraConnection(
            url=jira.url,
            flavor=jira.flavor,
            user=jira.user,
            token=jira.token,
            project=jira.project,
            timeout=jira.timeout_seconds,
            time_zone=jira.time_zone,
        )
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(["jira", *(str(part) for part in first["loc"])])
        raise ConfigError(str(first["msg"]), key=key) from error
    return JiraClient(
        connection,
        custom_fields=jira.mapping.custom_field_names,
        comment_marker=jira.mapping.comment_marker,
    )
