"""pytest fixtures for the real servers the tests talk to: Dovecot, an SMTP relay, PostgreSQL.

Load with ``pytest_plugins = ["tests.support.servers_plugin"]`` (or ``-p``). Fixtures:

- ``dovecot`` (session): one Dovecot for the whole run; about 30 ms to start.
- ``imap_user`` (function): a fresh user with an empty mailbox on that Dovecot.
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

log = logging.getLogger(__name__)

# Which marker a test gets when it uses one of these fixtures.
_FIXTURE_MARKERS = {
    "dovecot": "dovecot",
    "imap_user": "dovecot",
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
    server = funcargs.get("dovecot")
    user = funcargs.get("imap_user")
    if server is None and isinstance(user, ImapUser):
        server = user.server
    if report.failed and isinstance(server, DovecotServer):
        tail = server.log_text().splitlines()[-_LOG_TAIL_LINES:]
        report.sections.append(("dovecot log (tail)", "\n".join(tail)))
    return report


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One real Dovecot for the test session on 127.0.0.1 (``.host``, ``.port``)."""
    binary = find_dovecot()
    if binary is None:
        require_service(
            "dovecot", f"no dovecot binary (PATH, /usr/sbin or ${DOVECOT_ENV}); {DOVECOT_HINT}"
        )
    server = DovecotServer(binary)
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


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> Iterator[ImapUser]:
    """A fresh Dovecot user with an empty mailbox; removed (with its mail) afterwards."""
    name = f"user{next(_user_numbers)}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    dovecot.add_user(name, password)
    try:
        yield ImapUser(name, password, dovecot.host, dovecot.port, dovecot)
    finally:
        dovecot.remove_user(name)


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
