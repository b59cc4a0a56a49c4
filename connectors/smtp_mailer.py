"""SMTP as the mailer: one connection reused across a batch, each answer turned into our errors.

    SmtpMailer.send(message)
      ├── returns the server's answer to DATA ("250 2.0.0 queued as ..."), plus the recipients
      │   the server refused for good when it accepted the others
      ├── TransientSendError   4xx anywhere, or the connection broke: try again later
      │   └── MailerUnavailable  cannot connect, TLS or login failed: the whole batch waits
      └── PermanentSendError   5xx to MAIL, to DATA, or to every recipient: do not retry

`SSL`, `STARTTLS` and plain connections differ only in `_open_connection`. A connection the
server dropped while idle is reopened once, transparently, but only when DATA was not yet sent:
after DATA the server may already have the message, and sending it again at once would be a
duplicate (see docs/outgoing-mail.md, "the duplicate window").
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from mapping.errors import PermanentSendError, TransientSendError
from mapping.outgoing_mail import OutboxMessage

if TYPE_CHECKING:
    from flows.settings import SmtpMailerSettings

__all__ = ["MailerUnavailable", "SmtpMailer"]

logger = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "plain"]
_DEFAULT_PORTS: dict[str, int] = {"ssl": 465, "starttls": 587, "plain": 25}


class MailerUnavailable(TransientSendError):
    """The server cannot be reached or refused us (TLS, login): no message can go right now."""


class SmtpMailer:
    """Delivers outbox messages through one SMTP server."""

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        security: Security = "starttls",
        user: str | None = None,
        password: SecretStr | None = None,
        timeout_seconds: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if security not in _DEFAULT_PORTS:
            raise ValueError(f"security must be one of {sorted(_DEFAULT_PORTS)}, not {security!r}")
        self.host = host
        self.port = port or _DEFAULT_PORTS[security]
        self.security = security
        self.user = user
        self._password = password
        self.timeout_seconds = timeout_seconds
        self._ssl_context = ssl_context
        self._local_hostname = local_hostname
        self._client: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: SmtpMailerSettings) -> SmtpMailer:
        """Build from the `[mailer]` settings (kind = "smtp")."""
        ca_file = settings.ca_file
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        return cls(
            settings.host,
            settings.port,
            security=settings.security,
            user=settings.user,
            password=settings.password,
            timeout_seconds=settings.timeout_seconds,
            ssl_context=context,
            local_hostname=settings.local_hostname,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"

    # Connection --------------------------------------------------------------------------------
    def _open_connection(self) -> smtplib.SMTP:
        """A greeted connection; the only place SSL, STARTTLS and plain differ."""
        context = self._ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if self.security == "ssl":
            client = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout_seconds,
                context=context,
            )
        else:
            client = smtplib.SMTP(
                self.host,
                self.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout_seconds,
            )
        try:
            client.ehlo()
            if self.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
        except BaseException:
            _quietly_close(client)
            raise
        return client

    def _connect(self) -> smtplib.SMTP:
        try:
            client = self._open_connection()
        except (smtplib.SMTPException, OSError) as error:
            raise MailerUnavailable(
                f"cannot connect to SMTP server {self.where}: {error}"
            ) from error
        if self.user:
            password = self._password.get_secret_value() if self._password else ""
            try:
                client.login(self.user, password)
            except smtplib.SMTPAuthenticationError as error:
                _quietly_close(client)
                # The password is never part of the message: only who tried where.
                raise MailerUnavailable(
                    f"SMTP server {self.where} refused the login as {self.user!r}: "
                    f"{error.smtp_code} {_text(error.smtp_error)}; check mailer.user and "
                    "mailer.password"
                ) from error
            except (smtplib.SMTPException, OSError) as error:
                _quietly_close(client)
                raise MailerUnavailable(
                    f"login as {self.user!r} at {self.where} failed: {error}"
                ) from error
        logger.debug("connected to SMTP server %s", self.where)
        return client

    def close(self) -> None:
        """Say QUIT and drop the connection; safe to call twice."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            _quietly_close(client)

    # Sending -----------------------------------------------------------------------------------
    def send(self, message: OutboxMessage, *, envelope_from: str) -> str:
        """Deliver one message to its recipients; returns the server's answer (see module doc)."""
        for attempt in (1, 2):
            reused = self._client is not None
            if self._client is None:
                self._client = self._connect()
            data_sent = False
            try:
                return self._transaction(self._client, message, envelope_from)
            except _DataSent as marker:
                data_sent = True
                error: Exception = marker.cause
            except (smtplib.SMTPServerDisconnected, OSError) as caught:
                error = caught
            self._drop()
            if reused and not data_sent and attempt == 1:
                # Servers close idle connections (and some close after N messages): reconnect.
                logger.info("SMTP connection to %s was closed; reconnecting", self.where)
                continue
            after_data = " after DATA (the server may have it already)" if data_sent else ""
            raise TransientSendError(
                f"connection to {self.where} broke{after_data} while sending {message.key}: "
                f"{error}",
                recipient=", ".join(message.recipients),
            ) from error
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(self, client: smtplib.SMTP, message: OutboxMessage, envelope_from: str) -> str:
        recipients = ", ".join(message.recipients)
        code, reply = client.mail(envelope_from)
        if code != 250:
            self._failed(client, code, reply, f"MAIL FROM:<{envelope_from}>", recipients)
        accepted: list[str] = []
        refused: dict[str, tuple[int, str]] = {}
        for recipient in message.recipients:
            code, reply = client.rcpt(recipient)
            if code in (250, 251):
                accepted.append(recipient)
            else:
                refused[recipient] = (code, _text(reply))
        if any(400 <= code < 500 or code == 421 for code, _ in refused.values()) or not accepted:
            # A recipient that may take it later: send to nobody now, everyone on the retry, so
            # nobody gets it twice. Every recipient refused for good: a permanent failure.
            self._reset(client)
            detail = "; ".join(f"{r}: {c} {t}" for r, (c, t) in refused.items())
            if all(code >= 500 for code, _ in refused.values()) and not accepted:
                raise PermanentSendError(
                    f"{self.where} refused every recipient of {message.key}: {detail}",
                    recipient=recipients,
                    answer=detail,
                )
            if any(code == 421 for code, _ in refused.values()):
                self._drop()
            raise TransientSendError(
                f"{self.where} deferred recipients of {message.key}: {detail}",
                recipient=recipients,
                answer=detail,
            )
        try:
            code, reply = client.data(message.content)
        except smtplib.SMTPDataError as error:
            self._failed(client, error.smtp_code, error.smtp_error, "DATA", recipients)
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            raise _DataSent(error) from error
        if code != 250:
            self._failed(client, code, reply, "DATA", recipients)
        answer = f"{code} {_text(reply)}"
        if refused:
            gone = "; ".join(f"{r}: {c} {t}" for r, (c, t) in refused.items())
            logger.warning("%s: delivered, but %s refused %s", message.key, self.where, gone)
            answer += f" (refused for good: {gone})"
        return answer

    def _failed(
        self, client: smtplib.SMTP, code: int, reply: bytes | str, command: str, recipients: str
    ) -> None:
        """Turn a refusal into our error; the connection stays usable unless the server quit."""
        text = f"{code} {_text(reply)}"
        if code == 421:
            self._drop()
        else:
            self._reset(client)
        kind = PermanentSendError if code >= 500 else TransientSendError
        raise kind(f"{self.where} answered {text} to {command}", recipient=recipients, answer=text)

    def _reset(self, client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _quietly_close(client)


class _DataSent(Exception):
    """The connection broke after the message was handed over: never retried at once."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())


def _quietly_close(client: smtplib.SMTP) -> None:
    # close() only shuts the socket; there is nothing left to report to anyone.
    try:
        client.close()
    except OSError as error:
        logger.debug("closing an SMTP connection failed: %s", error)
