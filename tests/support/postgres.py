"""Fresh PostgreSQL databases for tests, one per test, on the server the suite is pointed at.

The server comes from ``CASEDESK_TEST_POSTGRES_URL`` (a SQLAlchemy URL); on the development
and CI machines it is ``postgresql+psycopg://postgres@127.0.0.1:5432/test`` with trust auth.
Each test gets its own database so tests can run in any order (and in parallel) without
cleaning tables, and so migrations run from an empty schema.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, make_url

from tests.support.services import require_service

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

POSTGRES_URL_ENV = "CASEDESK_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASE_PREFIX = "casedesk_test_"
_CONNECT_TIMEOUT_S = 3
_POSTGRES_HINT = (
    f"apt-get install postgresql and start it (trust auth for 127.0.0.1), or set {POSTGRES_URL_ENV}"
)
# The names create_database() makes; drop_database() drops nothing else.
_OWN_NAME = re.compile(rf"^{DATABASE_PREFIX}[0-9a-f]{{16}}$")


def postgres_admin_url() -> str:
    """The SQLAlchemy URL of the database used to create and drop test databases."""
    return os.environ.get(POSTGRES_URL_ENV, "").strip() or DEFAULT_POSTGRES_URL


def _libpq_conninfo(url: URL) -> str:
    """psycopg wants a libpq URI: the same URL without SQLAlchemy's ``+driver`` part."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connection() -> psycopg.Connection[Any]:
    """An autocommit psycopg connection to the admin database (CREATE DATABASE needs it)."""
    admin = make_url(postgres_admin_url())
    try:
        import psycopg
    except ImportError:
        require_service(
            "postgresql", "the psycopg package is missing: pip install 'psycopg[binary]'"
        )
    try:
        return psycopg.connect(
            _libpq_conninfo(admin), autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
        )
    except psycopg.OperationalError as error:
        where = admin.render_as_string(hide_password=True)
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        require_service("postgresql", f"cannot connect to {where}: {first_line}; {_POSTGRES_HINT}")


def create_database() -> str:
    """Create a new, empty, uniquely named database; returns its SQLAlchemy URL."""
    name = f"{DATABASE_PREFIX}{uuid.uuid4().hex[:16]}"
    from psycopg import sql

    with _admin_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(postgres_admin_url()).set(database=name)
    log.info("created test database %s", name)
    return url.render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database made by create_database(), even if a test left connections open."""
    name = make_url(url).database or ""
    if not _OWN_NAME.match(name):
        # Refuse anything this module did not name: a mistyped URL must never drop `test`.
        raise ValueError(f"refusing to drop {name!r}: not a database made by create_database()")
    from psycopg import sql

    with _admin_connection() as conn:
        # WITH (FORCE), PostgreSQL 13+: an engine a test forgot to dispose would otherwise
        # make DROP fail with "is being accessed by other users".
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    log.info("dropped test database %s", name)


def database_exists(url: str) -> bool:
    """Whether the database named in ``url`` exists on the admin URL's server."""
    name = make_url(url).database
    with _admin_connection() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None
