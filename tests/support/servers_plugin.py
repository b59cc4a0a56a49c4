"""pytest fixtures for the real servers the tests talk to: Dovecot, an SMTP relay, PostgreSQL.

Load with ``pytest_plugins = ["tests.support.servers_plugin"]`` (or ``-p``). Fixtures:

- ``dovecot`` (session): one Dovecot for the whole run; about 30 ms to start.
- ``imap_user`` (function): a fresh user with an empty mailbox on that Dovecot.
- ``tls_files`` (session): a throwaway CA and a certificate for 127.0.0.1/localhost
  (``tests.support.tls``).
- ``dovecot_tls`` (session): a second Dovecot that also speaks TLS: STARTTLS (or plain) on
  ``.port``, imaps on ``.ssl_port``, its certificate signed by ``tls_files.ca``. Started only
  when a test asks for it, so runs without TLS tests don't pay for it.
- ``imap_tls_user`` (function): a fresh user on that server (``.ssl_port``, ``.ca_file``).
- ``smtp_server`` (function): an aiosmtpd relay that records messages and fails on request.
- ``postgres_url`` (function): the SQLAlchemy URL of a fresh database, dropped afterwards.
- ``store_url`` (function, parametrized ``sqlite`` / ``postgresql``): the same store test
  runs once on a SQLite file and once on a fresh PostgreSQL database.

A server that cannot be had skips the test, or fails it with CASEDESK_REQUIRE_SERVICES=1.
Tests using them get the ``dovecot`` / ``postgres`` markers, so ``-m "not dovecot"`` works.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import imaplib
import itertools
import logging
import secrets
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.dovecot import DOVECOT_ENV, DOVECOT_HINT, DovecotServer, find_dovecot
from tests.support.postgres import create_database, drop_database
from tests.support.services import require_service
from tests.support.smtp_server import SmtpTestServer
from tests.support.tls import TlsFiles, make_tls_files

log = logging.getLogger(__name__)

# Which marker a test gets when it uses one of these fixtures.
_FIXTURE_MARKERS = {
    "dovecot": "dovecot",
    "imap_user": "dovecot",
    "dovecot_tls": "dovecot",
    "imap_tls_user": "dovecot",
    "postgres_url": "postgres",
}
_MARKER_HELP = {
    "dovecot": "dovecot: needs a Dovecot binary",
    "postgres": "postgres: needs the PostgreSQL server at CASEDESK_TEST_POSTGRES_URL",
}
_LOG_TAIL_LINES = 40

_user_numbers = itertools.count(1)


@dataclass(frozen=True)
class ImapUser:
    """A Dovecot user of one test: what a client needs to log in, plus loading helpers."""

    name: str
    password: str
    host: str
    port: int
    server: DovecotServer = field(repr=False, compare=False)
    # Set on a TLS server (imap_tls_user): its imaps port and the CA that signed its certificate.
    ssl_port: int = 0
    ca_file: Path | None = None

    def append(
        self,
        raw: bytes,
        folder: str = "INBOX",
        flags: Iterable[str] = (),
        date: dt.datetime | None = None,
    ) -> int:
        """IMAP APPEND one message; returns its UID."""
        return self.server.append(self.name, folder, raw, flags=flags, date=date)

    def deliver_fast(self, raws: Sequence[bytes], folder: str = "INBOX") -> None:
        """Write messages into the maildir directly (benchmark-sized mailboxes)."""
        self.server.deliver_fast(self.name, folder, raws)

    def create_folder(self, folder: str) -> None:
        self.server.create_folder(self.name, folder)

    def change_uidvalidity(self, folder: str = "INBOX") -> int:
        """Give the folder a new UIDVALIDITY (messages stay); returns the new value."""
        return self.server.change_uidvalidity(self.name, folder)

    def status(self, folder: str = "INBOX") -> dict[str, int]:
        return self.server.status(self.name, folder)

    def imap(self) -> contextlib.AbstractContextManager[imaplib.IMAP4]:
        """A logged-in imaplib connection: ``with imap_user.imap() as conn: ...``."""
        return self.server.imap(self.name)


def pytest_configure(config: pytest.Config) -> None:
    # Registered here too so the plugin works where pyproject does not declare them
    # (--strict-markers would reject the markers added below).
    for line in _MARKER_HELP.values():
        config.addinivalue_line("markers", line)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: -m selection also happens in this hook, and must see these markers.
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture_name, marker in _FIXTURE_MARKERS.items():
            if fixture_name in names and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    # A failing IMAP test is much easier to understand with Dovecot's side of the story.
    funcargs = getattr(item, "funcargs", {})
    server = funcargs.get("dovecot") or funcargs.get("dovecot_tls")
    user = funcargs.get("imap_user")
    if server is None and isinstance(user, ImapUser):
        server = user.server
    if report.failed and isinstance(server, DovecotServer):
        tail = server.log_text().splitlines()[-_LOG_TAIL_LINES:]
        report.sections.append(("dovecot log (tail)", "\n".join(tail)))
    return report


def _running_dovecot(tls: TlsFiles | None = None) -> Iterator[DovecotServer]:
    binary = find_dovecot()
    if binary is None:
        require_service(
            "dovecot", f"no dovecot binary (PATH, /usr/sbin or ${DOVECOT_ENV}); {DOVECOT_HINT}"
        )
    server = DovecotServer(binary, tls=tls)
    try:
        server.start()
    except BaseException:
        # A Dovecot that is installed but does not start is a bug to see, not a skip.
        server.close()
        raise
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One real Dovecot for the test session on 127.0.0.1 (``.host``, ``.port``)."""
    yield from _running_dovecot()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA (``.ca``) and its server certificate for 127.0.0.1 and localhost."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def dovecot_tls(tls_files: TlsFiles) -> Iterator[DovecotServer]:
    """A Dovecot with TLS: STARTTLS or plain on ``.port``, imaps on ``.ssl_port``.

    A server of its own rather than TLS on ``dovecot``: the plaintext one stays exactly as
    the other tests know it, and this one starts only in runs that have TLS tests.
    """
    yield from _running_dovecot(tls_files)


def _fresh_user(server: DovecotServer) -> Iterator[ImapUser]:
    name = f"user{next(_user_numbers)}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    server.add_user(name, password)
    try:
        yield ImapUser(
            name,
            password,
            server.host,
            server.port,
            server,
            ssl_port=server.ssl_port,
            ca_file=server.tls.ca if server.tls is not None else None,
        )
    finally:
        server.remove_user(name)


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> Iterator[ImapUser]:
    """A fresh Dovecot user with an empty mailbox; removed (with its mail) afterwards."""
    yield from _fresh_user(dovecot)


@pytest.fixture
def imap_tls_user(dovecot_tls: DovecotServer) -> Iterator[ImapUser]:
    """A fresh user on the TLS Dovecot: ``.port`` (STARTTLS/plain), ``.ssl_port``, ``.ca_file``."""
    yield from _fresh_user(dovecot_tls)


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A running SMTP relay on 127.0.0.1 without AUTH; stopped afterwards.

    For AUTH, make your own: ``with SmtpTestServer(auth=("user", "pw")) as server: ...``.
    """
    server = SmtpTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database; dropped after the test."""
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store database URL: once a SQLite file under tmp_path, once a fresh PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
