"""Every error casedesk raises on purpose, with what a person needs to act on it.

    CasedeskError                      base: catch this at the CLI and flow boundaries
    ├── ConfigError                    bad settings file or value (file, key, reason)
    ├── RulesError                     a rules file that cannot be loaded (file, rule id, reason)
    ├── CaseError                      something wrong with one case (case number)
    │   ├── IllegalTransition          a lifecycle move the process does not allow (from, to)
    │   └── CaseNotFound               no case with that number
    ├── StoreError                     the case store refused or failed an operation
    │   └── ConcurrentUpdate           the case changed since it was read (case number, version)
    ├── MailboxError                   reading or marking mail failed (mailbox, folder, uid)
    │   └── MailboxLoginError          the server refused the login (host, user, server answer)
    ├── MessageParseError              a message could not be parsed (location, reason)
    ├── ComposeError*                  an outgoing mail cannot be rendered (kind, case, template)
    │   └── InvalidAddress*            a recipient or sender address we refuse to write
    ├── MailerError                    sending failed (outbox id, recipient, server answer)
    │   ├── TransientSendError         4xx or connection trouble: retried later
    │   │   └── MailerUnavailable**    the SMTP server cannot be reached: the batch waits
    │   └── PermanentSendError         5xx: marked failed, shown by `casedesk outbox list`
    ├── JiraMappingError***            a Jira issue that cannot become a case: skipped, listed
    └── JiraError                      Jira refused or failed (URL, issue key)
        ├── JiraAuthError              401/403: credentials or permissions (URL, user)
        │   └── JiraForbiddenError†    403: a permission the user lacks for this request
        ├── JiraRateLimitError         429/503 after the bounded retries
        ├── JiraRequestError†          another 4xx/5xx answer (status)
        ├── JiraNotFoundError†         no such issue or project
        ├── JiraGoneError†             410: an API Jira has removed (Cloud's old /search)
        ├── JiraTransitionError†       no transition of that name from the issue's status
        └── JiraConnectionError†       Jira could not be reached

Defined beside the code that raises them: * mapping.outgoing_mail, ** connectors.smtp_mailer,
*** mapping.jira_issue, † connectors.jira_client.

A bad item (one mail, one issue) is quarantined with its reason and the run goes on; a bad
configuration stops the run before it touches anything.
"""

from __future__ import annotations

__all__ = [
    "CaseError",
    "CaseNotFound",
    "CasedeskError",
    "ConcurrentUpdate",
    "ConfigError",
    "IllegalTransition",
    "JiraAuthError",
    "JiraError",
    "JiraRateLimitError",
    "MailboxError",
    "MailboxLoginError",
    "MailerError",
    "MessageParseError",
    "PermanentSendError",
    "RulesError",
    "StoreError",
    "TransientSendError",
]


class CasedeskError(Exception):
    """Base of every error casedesk raises on purpose."""


class ConfigError(CasedeskError):
    """The settings cannot be used; nothing has been touched."""

    def __init__(self, reason: str, *, source: str | None = None, key: str | None = None) -> None:
        self.reason, self.source, self.key = reason, source, key
        where = " ".join(
            part for part in (source and f"in {source}", key and f"at {key!r}") if part
        )
        super().__init__(f"invalid settings {where}: {reason}" if where else reason)


class RulesError(CasedeskError):
    """A rules file that cannot be loaded; no case is touched with half-loaded rules."""

    def __init__(self, reason: str, *, source: str, rule_id: str | None = None) -> None:
        self.reason, self.source, self.rule_id = reason, source, rule_id
        rule = f" rule {rule_id!r}" if rule_id else ""
        super().__init__(f"{source}{rule}: {reason}")


class CaseError(CasedeskError):
    """Something is wrong with one case."""

    def __init__(self, message: str, *, case_number: str | None = None) -> None:
        self.case_number = case_number
        super().__init__(message)


class IllegalTransition(CaseError):
    """The case's lifecycle does not allow this move."""

    def __init__(self, case_number: str | None, from_status: str, to_status: str) -> None:
        self.from_status, self.to_status = from_status, to_status
        name = case_number or "(unnumbered case)"
        super().__init__(
            f"case {name} cannot go from {from_status!r} to {to_status!r}",
            case_number=case_number,
        )


class CaseNotFound(CaseError):
    """No case with that number."""

    def __init__(self, case_number: str) -> None:
        super().__init__(f"no case numbered {case_number!r}", case_number=case_number)


class StoreError(CasedeskError):
    """The case store refused or failed an operation."""


class ConcurrentUpdate(StoreError):
    """The case was changed by someone else since it was read; read it again and retry."""

    def __init__(self, case_number: str, expected_version: int) -> None:
        self.case_number, self.expected_version = case_number, expected_version
        super().__init__(
            f"case {case_number} changed since it was read (expected version "
            f"{expected_version}); read it again and retry"
        )


class MailboxError(CasedeskError):
    """Reading or marking mail failed."""

    def __init__(
        self, message: str, *, mailbox: str, folder: str | None = None, uid: str | None = None
    ) -> None:
        self.mailbox, self.folder, self.uid = mailbox, folder, uid
        where = "/".join(part for part in (mailbox, folder, uid) if part)
        super().__init__(f"mailbox {where}: {message}")


class MailboxLoginError(MailboxError):
    """The mail server refused the login."""

    def __init__(self, *, mailbox: str, host: str, user: str, answer: str) -> None:
        self.host, self.user, self.answer = host, user, answer
        super().__init__(f"login as {user!r} at {host} refused: {answer}", mailbox=mailbox)


class MessageParseError(CasedeskError):
    """A message could not be parsed; it is kept raw and quarantined with this reason."""

    def __init__(self, reason: str, *, location: str | None = None) -> None:
        self.reason, self.location = reason, location
        super().__init__(f"{location}: {reason}" if location else reason)


class MailerError(CasedeskError):
    """Sending a message failed."""

    def __init__(
        self,
        message: str,
        *,
        outbox_id: int | None = None,
        recipient: str | None = None,
        answer: str | None = None,
    ) -> None:
        self.outbox_id, self.recipient, self.answer = outbox_id, recipient, answer
        super().__init__(message)


class TransientSendError(MailerError):
    """A 4xx answer or a connection problem: the message stays queued and is retried."""


class PermanentSendError(MailerError):
    """A 5xx answer: the message is marked failed with this reason."""


class JiraError(CasedeskError):
    """Jira refused or failed a request."""

    def __init__(self, message: str, *, url: str | None = None, key: str | None = None) -> None:
        self.url, self.key = url, key
        super().__init__(message)


class JiraAuthError(JiraError):
    """Jira answered 401 or 403: fix the credentials or permissions; not retried."""


class JiraRateLimitError(JiraError):
    """Jira kept answering 429/503 after the bounded retries; the next run resumes."""
