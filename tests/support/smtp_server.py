"""A real SMTP server for tests: aiosmtpd on loopback, keeping every message it accepts.

It speaks real SMTP to real clients (smtplib, the project's mailer), so tests see what a
relay would see: the envelope, the exact bytes, and the parsed message. Faults a real relay
produces can be injected: ``fail_next(1, 451, "4.3.0 Try again later")`` makes the next DATA
answer 451; ``stop()``/``start()`` take the server away and bring it back on the same port.

    server = SmtpTestServer(auth=("mailer", "secret"))
    server.start()
    ... send to server.host, server.port ...
    assert server.messages[0].message["Subject"] == "Hello"
    server.stop()
"""

from __future__ import annotations

import email
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.dovecot import free_port

log = logging.getLogger(__name__)

SmtpCommand = Literal["MAIL", "RCPT", "DATA"]
_COMMANDS: tuple[SmtpCommand, ...] = ("MAIL", "RCPT", "DATA")
# aiosmtpd's SMTP() calls socket.getfqdn() without a hostname: a DNS lookup that can take
# seconds on a machine with a broken resolver. A fixed name keeps start() at a few ms.
SERVER_HOSTNAME = "smtp.casedesk.test"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted (answered 250 to DATA)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    mail_options: tuple[str, ...] = ()
    auth_login: str | None = None  # the AUTH user of the session, when AUTH was used


class _Handler:
    """aiosmtpd handler hooks; they run in the controller's event-loop thread."""

    def __init__(self, owner: SmtpTestServer) -> None:
        self._owner = owner

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # AUTH is enforced here rather than with aiosmtpd's auth_required=True: that flag
        # together with auth_require_tls=False emits a UserWarning on every connection, and
        # warnings are errors in this project's tests.
        if self._owner.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        fault = self._owner._take_fault("MAIL", server)
        if fault is not None:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        fault = self._owner._take_fault("RCPT", server)
        if fault is not None:
            return fault
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self._owner._take_fault("DATA", server)
        if fault is not None:
            return fault
        # original_content: the bytes as received (dot-unstuffed), whatever decode_data says.
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)  # policy.default always builds EmailMessage
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self._owner._record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                mail_options=tuple(envelope.mail_options),
                auth_login=login,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class SmtpTestServer:
    """An SMTP server on 127.0.0.1 that records messages and fails on request."""

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        data_size_limit: int = 33_554_432,
    ) -> None:
        self.host = host
        self.port = port or 0
        self.auth = auth
        self._data_size_limit = data_size_limit
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._messages: list[ReceivedMessage] = []
        self._faults: dict[SmtpCommand, deque[tuple[int, str]]] = {c: deque() for c in _COMMANDS}
        self._controller: Controller | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Listen (again). A restart keeps the port, so clients configured earlier reconnect."""
        if self._controller is not None:
            raise RuntimeError("SMTP test server already running")
        fixed = self.port != 0
        attempts = 1 if fixed else 3
        for attempt in range(1, attempts + 1):
            port = self.port if fixed else free_port(self.host)
            controller = self._make_controller(port)
            started = time.monotonic()
            try:
                controller.start()
            except OSError as error:
                # The port picked a moment ago was taken by someone else: try another.
                self._discard(controller)
                if attempt == attempts:
                    raise
                log.warning("SMTP test server could not bind port %d: %s", port, error)
                continue
            self._controller = controller
            self.port = port
            log.info(
                "SMTP test server on %s:%d (started in %.3f s)",
                self.host,
                port,
                time.monotonic() - started,
            )
            return

    def _make_controller(self, port: int) -> Controller:
        kwargs: dict[str, Any] = {}
        if self.auth is not None:
            # AUTH over plain loopback: real relays want TLS first, a test relay can't have it.
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        # The controller owns a fresh event loop: aiosmtpd closes it on stop(), so every
        # start() needs a new controller.
        return Controller(
            _Handler(self),
            hostname=self.host,
            port=port,
            server_hostname=SERVER_HOSTNAME,
            data_size_limit=self._data_size_limit,
            **kwargs,
        )

    @staticmethod
    def _discard(controller: Controller) -> None:
        # A controller whose thread failed to bind never closes its loop; an unclosed loop
        # is a ResourceWarning at garbage collection, which the test settings make an error.
        # aiosmtpd 1.4 has no public way to do this, hence its private _thread.
        if controller._thread is not None:
            controller._thread.join(timeout=5)
            controller._thread = None
        if not controller.loop.is_closed():
            controller.loop.close()

    def stop(self) -> None:
        """Stop listening and drop open connections (a relay going down)."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        controller.stop()
        log.info("SMTP test server on port %d stopped", self.port)

    def __enter__(self) -> SmtpTestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- faults and auth -----------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        code: int = 451,
        text: str = "4.3.0 Temporary failure, try again later",
        command: SmtpCommand = "DATA",
    ) -> None:
        """Answer the next ``n`` ``command`` commands (MAIL, RCPT or DATA) with ``code text``.

        A 421 also closes the connection after answering, as a relay shutting down does.
        """
        if command not in _COMMANDS:
            raise ValueError(f"command must be one of {_COMMANDS}, not {command!r}")
        if not 400 <= code <= 599:
            raise ValueError(f"{code} is not an SMTP failure code")
        with self._lock:
            self._faults[command].extend([(code, text)] * n)

    def _take_fault(self, command: SmtpCommand, server: SMTP) -> str | None:
        with self._lock:
            if not self._faults[command]:
                return None
            code, text = self._faults[command].popleft()
        log.info("SMTP test server answers %s with injected %d %s", command, code, text)
        if code == 421 and server.transport is not None:
            # Scheduled, not immediate: aiosmtpd writes the reply right after this hook
            # returns, and close() flushes it before the socket goes.
            server.loop.call_soon(server.transport.close)
        return f"{code} {text}"

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        assert self.auth is not None
        # aiosmtpd logs "Session.login_data is deprecated" on every successful AUTH: its own
        # code sets that attribute; a log line only, not a Python warning.
        if isinstance(auth_data, LoginPassword):
            user, password = self.auth
            login = auth_data.login.decode("utf-8", "replace")
            if login == user and auth_data.password.decode("utf-8", "replace") == password:
                # auth_data becomes session.auth_data: kept so messages record the login.
                return AuthResult(success=True, auth_data=login)
        log.info("SMTP test server refused AUTH %s", mechanism)
        return AuthResult(success=False, handled=False)

    # -- what arrived --------------------------------------------------------------------

    def _record(self, message: ReceivedMessage) -> None:
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of the messages accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget received messages and pending faults."""
        with self._lock:
            self._messages.clear()
            for queue in self._faults.values():
                queue.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until at least ``count`` messages arrived (for senders in other threads)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} messages within {timeout} s, got {len(self._messages)}"
                )
            return list(self._messages)
